"""Issue 12, accuracy check: the share of findings rated UNKNOWN before and after CVE enrichment.

The Debian 11, Alpine v3.10 and PyPI images are built the way tests/e2e/test_vuln_images.py builds them (its
`os_image` for the OS images, the same dist-info layout for PyPI), from examples.json triples whose CVE records
are kept in tests/vulndb/data/cve (real extracts, see PROVENANCE.md there). Each image is scanned against the
real OSV data of ../shared/vulndata, then again after `hullscan db import tests/vulndb/data/cve`.

After enrichment a finding may stay UNKNOWN only when no CVE record it names carries a metric; every CVE the
findings name must have its record in the extract (so a new finding without data fails here, not silently).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hullscan.cli import app
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from hullscan.vulndb.cverecords import parse_cve5

from .test_vuln_images import OSV_ZIPS, TRIPLES, ImagePlan, Triple, os_image

pytestmark = pytest.mark.slow

CVE_DIR = Path(__file__).resolve().parents[1] / "vulndb" / "data" / "cve"
runner = CliRunner()

PICKED = {
    "Debian:11": {"openssl", "curl", "sudo", "xorg-server"},
    "Alpine:v3.10": {"ansible", "musl", "sqlite"},
    "PyPI": {"requests", "pyyaml", "flask"},
}


def _triples(ecosystem: str) -> list[Triple]:
    return [t for t in TRIPLES if t.kind == "flag" and t.ecosystem == ecosystem and t.package in PICKED[ecosystem]]


def pypi_image(triples: list[Triple]) -> Image:
    files: list[FileSpec | tuple[str, bytes | str]] = []
    for t in triples:
        where = f"opt/venv/lib/python3.11/site-packages/{t.package}-{t.version}.dist-info/METADATA"
        files.append((where, f"Metadata-Version: 2.1\nName: {t.package}\nVersion: {t.version}\n"))
    return Image([Layer(layer_tar(files), "RUN pip install -r requirements.txt")])


def images() -> dict[str, Image]:
    out = {}
    for eco in ("Debian:11", "Alpine:v3.10"):
        image, _placements = os_image(ImagePlan(eco.lower().replace(":", "-"), eco, _triples(eco)))
        out[eco.split(":")[0]] = image
    out["PyPI"] = pypi_image(_triples("PyPI"))
    return out


def _cli(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
    work = tmp_path_factory.mktemp("accuracy")
    env = {"HULLSCAN_DATA_DIR": str(work / "data"), "HULLSCAN_CACHE_DIR": str(work / "cache")}
    db = work / "vuln.db"
    osv = [z for z in OSV_ZIPS if z.parent.name in ("Debian", "Alpine", "PyPI")]
    _cli(["db", "import", *map(str, osv), "--db", str(db), "--quiet"], env)
    layouts = {}
    for name, image in images().items():
        layouts[name] = write_oci_layout(work / f"oci-{name}", image, "1")
    cwd = Path.cwd()
    os.chdir(work)  # no .hullscanignore of the caller's applies

    def scan_all() -> dict[str, dict[str, Any]]:
        return {name: json.loads(_cli(["scan", f"oci:{layout}:1", "-f", "json", "--db", str(db), "--skip-db-update",
                                       "--quiet", "--scanners", "vuln"], env))
                for name, layout in layouts.items()}

    try:
        before = scan_all()
        out = _cli(["db", "import", str(CVE_DIR), "--db", str(db), "--quiet"], env)
        assert f"{len(list(CVE_DIR.glob('CVE-*.json')))} CVE records" in out, out
        after = scan_all()
    finally:
        os.chdir(cwd)
    yield {name: (before[name], after[name]) for name in before}


def _unknown_share(doc: dict[str, Any]) -> tuple[int, int]:
    vulns = doc["vulnerabilities"]
    return sum(v["severity"] == "UNKNOWN" for v in vulns), len(vulns)


def _records() -> dict[str, Any]:
    out = {}
    for path in CVE_DIR.glob("CVE-*.json"):
        record = parse_cve5(json.loads(path.read_text()))
        assert record is not None, path
        out[record.cve] = record
    return out


def test_unknown_share_before_and_after_enrichment(scans: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lines = []
    for name, (before, after) in scans.items():
        (ub, nb), (ua, na) = _unknown_share(before), _unknown_share(after)
        assert nb == na and nb > 0, f"{name}: enrichment must not change which findings there are"
        lines.append(f"{name:7} findings {nb:3}  UNKNOWN before {ub:3} ({ub / nb:6.1%})  after {ua:3} ({ua / na:6.1%})")
        assert ua < ub, f"{name}: enrichment rated nothing"
    with capsys.disabled():
        print("\nUNKNOWN share before/after CVE enrichment:\n  " + "\n  ".join(lines))


def test_unknown_remains_only_where_the_cve_record_has_no_metric(
        scans: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    records = _records()
    for name, (_before, after) in scans.items():
        for v in after["vulnerabilities"]:
            cves = [i for i in (v["id"], *v["aliases"]) if i.startswith("CVE-")]
            assert cves, f"{name}: {v['id']} names no CVE"
            missing = [c for c in cves if c not in records]
            assert not missing, f"{name}: no CVE record extract for {missing}"
            rated = [c for c in cves if records[c].metrics]
            if v["severity"] == "UNKNOWN":
                assert not rated, f"{name}: {v['id']} is UNKNOWN although {rated} carry metrics"
                assert v["severity_source"] == "" and v["cvss"]["score"] is None
            else:
                assert v["severity_source"], f"{name}: {v['id']} rated {v['severity']} with no source"


def test_sources_follow_the_documented_order(scans: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """CNA CVSS where the CNA gives one; CISA ADP's CVSS over the CNA's own word; the word when nothing else."""
    by_id = {(v["id"], v["package"]["name"]): v for _b, after in scans.values() for v in after["vulnerabilities"]}
    assert by_id[("CVE-2023-32681", "requests")]["severity_source"] == "cna:GitHub_M/cvss:3.1"
    assert by_id[("CVE-2023-32681", "requests")]["cvss"] == {"score": 6.1,
                                                             "vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}
    assert by_id[("CVE-2023-0215", "libssl1.1")]["severity_source"] == "adp:CISA-ADP/cvss:3.1"
    assert by_id[("CVE-2023-0215", "libssl1.1")]["severity"] == "HIGH"
    assert by_id[("CVE-2023-0286", "libssl1.1")]["severity_source"] == "cna:openssl/rating"
    assert by_id[("CVE-2023-0286", "libssl1.1")]["severity"] == "HIGH"
    assert by_id[("CVE-2022-2097", "libssl1.1")]["severity"] == "MEDIUM"
    assert by_id[("CVE-2019-10206", "ansible")]["severity_source"] == "cna:redhat/cvss:3.0"
