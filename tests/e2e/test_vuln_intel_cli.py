"""Issue 12 through the CLI, on a Debian 10 image built like tests/e2e/test_vuln_images.py builds them (sudo
1.8.27-1+deb10u2, open to Baron Samedit, CVE-2021-3156, which is in CISA's KEV catalogue) with real OSV, KEV and CVE
data: KEV and EPSS on findings, `--sort risk`, VEX from the image and from `--vex`, the exit code, and
`--format openvex`.

EPSS: no real EPSS rows for these CVEs are available offline (see tests/vulndb/data/epss/PROVENANCE.md), so the
EPSS file here is a FORMAT SAMPLE written by the test: its numbers are made up and only exercise the plumbing.
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
from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout

from .test_vuln_images import SHARED, ImagePlan, Triple, os_image

pytestmark = pytest.mark.slow

CVE_DIR = Path(__file__).resolve().parents[1] / "vulndb" / "data" / "cve"
KEV = SHARED / "kev" / "known_exploited_vulnerabilities.json"
runner = CliRunner()
SUDO = Triple("flag", "Debian:10", "sudo", "1.8.27-1+deb10u2", "DSA-4839-1", ())
# FORMAT SAMPLE, not real EPSS scores (see the module docstring).
FORMAT_SAMPLE_EPSS = ("#model_version:format-sample,score_date:2000-01-01T00:00:00+0000\ncve,epss,percentile\n"
                      "CVE-2023-22809,0.50000,0.90000\nCVE-2021-3156,0.10000,0.50000\n")


def _openvex(*statements: dict[str, Any]) -> str:
    return json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex",
                       "author": "test", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
                       "statements": list(statements)})


def run(args: list[str], env: dict[str, str], code: int = 0) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == code, result.output
    return result.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str], Path]]:
    if not KEV.is_file():
        pytest.skip("needs ../shared/vulndata")
    work = tmp_path_factory.mktemp("intel")
    env = {"HULLSCAN_DATA_DIR": str(work / "data"), "HULLSCAN_CACHE_DIR": str(work / "cache")}
    db = work / "vuln.db"
    run(["db", "import", str(SHARED / "osv" / "Debian" / "all.zip"), "--kev", str(KEV), "--db", str(db), "-q"], env)
    epss = work / "epss-format-sample.csv"
    epss.write_text(FORMAT_SAMPLE_EPSS)
    out = run(["db", "import", str(CVE_DIR), str(epss), "--db", str(db), "-q"], env)
    assert "EPSS 2000-01-01T00:00:00+0000: 2 scores" in out
    image, _ = os_image(ImagePlan("debian-10", "Debian:10", [SUDO]))
    vex = _openvex({"vulnerability": {"name": "CVE-2023-22809"}, "products": [{"@id": "pkg:deb/debian/sudo"}],
                    "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
                    "impact_statement": "sudoedit is not installed setuid in this image"})
    image = Image([*image.layers, Layer(layer_tar([("app.vex.json", vex)]), "COPY app.vex.json /")])
    layout = write_oci_layout(work / "oci", image, "1")
    cwd = Path.cwd()
    os.chdir(work)
    try:
        yield layout, db, env, work
    finally:
        os.chdir(cwd)


def scan(setup: tuple[Path, Path, dict[str, str], Path], *extra: str, code: int = 0) -> str:
    layout, db, env, _ = setup
    return run(["scan", f"oci:{layout}:1", "--db", str(db), "--skip-db-update", "-q", "--scanners", "vuln", *extra],
               env, code)


def test_kev_epss_and_the_image_vex(setup: tuple[Path, Path, dict[str, str], Path]) -> None:
    doc = json.loads(scan(setup, "-f", "json"))
    by_id = {v["id"]: v for v in doc["vulnerabilities"]}
    assert by_id["CVE-2021-3156"]["kev"] is True and by_id["CVE-2021-3156"]["epss"]["score"] == 0.1
    assert not any(v["kev"] for v in doc["vulnerabilities"] if v["id"] != "CVE-2021-3156")
    (sup,) = doc["suppressed"]
    assert sup["id"] == "CVE-2023-22809" and sup["package"]["name"] == "sudo"
    assert sup["vex"] == {"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
                          "impact": "sudoedit is not installed setuid in this image",
                          "document": "/app.vex.json (in the image)"}
    assert sup["epss"]["score"] == 0.5  # the finding keeps its data, it is only set aside
    assert "CVE-2023-22809" not in by_id and doc["summary"]["vulnerabilities"]["suppressed"] == 1


def test_risk_order_puts_kev_first_in_table_and_html(setup: tuple[Path, Path, dict[str, str], Path]) -> None:
    severity_order = [v["id"] for v in json.loads(scan(setup, "-f", "json"))["vulnerabilities"]]
    risk = json.loads(scan(setup, "-f", "json", "--sort", "risk"))
    assert risk["order"] == "risk" and risk["vulnerabilities"][0]["id"] == "CVE-2021-3156"
    assert sorted(v["id"] for v in risk["vulnerabilities"]) == sorted(severity_order)
    table = scan(setup, "--sort", "risk")
    rows = [line for line in table.splitlines() if line.startswith("sudo ")]
    assert "CVE-2021-3156 KEV" in rows[0]
    assert "Suppressed by VEX (1; not counted)" in table and "vulnerable_code_not_in_execute_path" in table
    html = scan(setup, "-f", "html", "--sort", "risk")
    assert html.index("CVE-2021-3156") < min(html.index(i) for i in severity_order if i != "CVE-2021-3156")
    assert "Suppressed by VEX" in html


def test_vex_files_suppress_and_leave_the_exit_code(setup: tuple[Path, Path, dict[str, str], Path]) -> None:
    work = setup[3]
    remaining = [v["id"] for v in json.loads(scan(setup, "-f", "json"))["vulnerabilities"]]
    scan(setup, "--exit-code", "5", code=5)
    pending = work / "triage.vex.json"
    pending.write_text(_openvex(*({"vulnerability": {"name": i}, "products": [{"@id": "pkg:deb/debian/sudo"}],
                                   "status": "under_investigation"} for i in remaining)))
    scan(setup, "--exit-code", "5", "--vex", str(pending), code=5)  # under_investigation changes nothing
    done = work / "done.vex.json"
    done.write_text(_openvex(*({"vulnerability": {"name": i}, "products": [{"@id": "pkg:deb/debian/sudo"}],
                                "status": "fixed"} for i in remaining)))
    out = scan(setup, "--exit-code", "5", "--vex", str(pending), "--vex", str(done), "-f", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    assert results and all(r.get("suppressions") for r in results)
    assert {r["ruleId"] for r in results} == {*remaining, "CVE-2023-22809"}
    fixed = next(r for r in results if r["ruleId"] == "CVE-2021-3156")["suppressions"][0]
    assert fixed["kind"] == "external" and fixed["properties"]["vexStatus"] == "fixed"


def test_bad_vex_file_is_a_clear_usage_error(setup: tuple[Path, Path, dict[str, str], Path]) -> None:
    bad = setup[3] / "bad.vex.json"
    bad.write_text('{"statements": ["unterminated"')
    result = runner.invoke(app, ["scan", f"oci:{setup[0]}:1", "--db", str(setup[1]), "--skip-db-update", "-q",
                                 "--vex", str(bad)], env=setup[2])
    assert result.exit_code == 2 and "VEX_INVALID" in result.output and "Traceback" not in result.output


def test_openvex_output_publishes_the_ignore_file_triage(setup: tuple[Path, Path, dict[str, str], Path]) -> None:
    ignore = setup[3] / ".hullscanignore"
    ignore.write_text("CVE-2021-3156 exp:2099-01-01 # sudo is never used by the service\n")
    try:
        doc = json.loads(scan(setup, "-f", "openvex"))
    finally:
        ignore.unlink()
    (st,) = doc["statements"]
    assert st["vulnerability"]["name"] == "CVE-2021-3156" and st["status"] == "not_affected"
    assert st["impact_statement"] == "sudo is never used by the service"
    assert st["products"] == [{"@id": st["products"][0]["@id"]}] and st["products"][0]["@id"].startswith("pkg:deb/")
