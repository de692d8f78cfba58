"""Incremental `db update`: OSV's per-ecosystem `modified_id.csv` names what changed, only those records are fetched,
the change is applied atomically and counted (added / changed / withdrawn / removed), against a real HTTP server."""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hullscan.vulndb.store import Store
from hullscan.vulndb.update import Retry, parse_modified_ids, update_database

from .osvserver import OSV_EXTRACT, SHARED_OSV, OSVBucket, zip_folder

NO_WAIT = Retry(attempts=3, base_delay=0.0, max_delay=0.0)


def publish(root: Path, eco: str, records: dict[str, dict[str, object]]) -> None:
    """The bucket layout for one ecosystem: all.zip, one <ID>.json per record, and modified_id.csv (newest first)."""
    folder = root / eco
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    for rid, rec in records.items():
        (folder / f"{rid}.json").write_text(json.dumps(rec, indent=1))
    zip_folder(folder, folder / "all.zip")
    lines = sorted(((str(r["modified"]), rid) for rid, r in records.items()), reverse=True)
    (folder / "modified_id.csv").write_text("".join(f"{m},{rid}\n" for m, rid in lines))


def _load(eco: str) -> dict[str, dict[str, object]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((OSV_EXTRACT / eco).glob("*.json"))}


@pytest.fixture
def bucket(tmp_path: Path) -> Iterator[tuple[OSVBucket, dict[str, dict[str, object]]]]:
    pypi = _load("PyPI")
    publish(tmp_path / "bucket", "PyPI", pypi)
    publish(tmp_path / "bucket", "Debian", _load("Debian"))
    server = OSVBucket(tmp_path / "bucket").start()
    try:
        yield server, pypi
    finally:
        server.stop()


def test_parse_modified_ids() -> None:
    text = "2024-08-15T00:11:02Z,PYSEC-2024-1\nnot a line\n2023-01-01T00:00:00Z,PyPI/PYSEC-2023-74\n"
    assert parse_modified_ids(text) == [("2024-08-15T00:11:02Z", "PYSEC-2024-1"),
                                        ("2023-01-01T00:00:00Z", "PYSEC-2023-74")]


@pytest.mark.skipif(not SHARED_OSV.is_dir(), reason="../shared/vulndata is not available")
def test_only_changed_records_are_fetched_and_counted(tmp_path: Path,
                                                      bucket: tuple[OSVBucket, dict[str, dict[str, object]]]) -> None:
    server, pypi = bucket
    target = tmp_path / "db" / "hullscan.db"
    first = update_database(target, base_url=server.url, ecosystems=["PyPI", "Debian"], retry=NO_WAIT)
    assert first.mode == "full" and first.changes.added == len(pypi) + len(_load("Debian"))
    with Store.open(target) as s:
        assert set(s.meta("sync")) == {"PyPI", "Debian"}
        before = s.info().built_at

    # nothing changed upstream: two conditional requests, no record fetched, nothing rebuilt
    server.requests.clear()
    quiet = update_database(target, base_url=server.url, ecosystems=["PyPI", "Debian"], retry=NO_WAIT)
    assert quiet.mode == "unchanged" and quiet.changes.total() == 0
    assert sorted((r.path, r.status) for r in server.requests) == [("/Debian/modified_id.csv", 304),
                                                                   ("/PyPI/modified_id.csv", 304)]

    # upstream: a real record the database lacks appears, and a stored one is withdrawn (a mutated copy)
    with zipfile.ZipFile(SHARED_OSV / "PyPI" / "all.zip") as z:
        new = json.loads(z.read("PYSEC-2019-217.json"))
    changed = copy.deepcopy(pypi["PYSEC-2023-74"])
    changed["modified"] = "2030-01-01T00:00:00Z"
    changed["withdrawn"] = "2030-01-01T00:00:00Z"
    publish(server.root, "PyPI", {**pypi, "PYSEC-2023-74": changed, "PYSEC-2019-217": new})
    server.requests.clear()
    result = update_database(target, base_url=server.url, ecosystems=["PyPI", "Debian"], retry=NO_WAIT)
    assert result.mode == "incremental"
    assert (result.changes.added, result.changes.changed, result.changes.withdrawn, result.changes.removed) == \
        (1, 1, 1, 0)
    fetched = sorted(r.path for r in server.requests if r.path.endswith(".json"))
    assert fetched == ["/PyPI/PYSEC-2019-217.json", "/PyPI/PYSEC-2023-74.json"]  # only what changed
    assert not any(r.path.endswith("all.zip") for r in server.requests)
    # what was received: the PyPI change list and the two records (Debian's list answered 304); the comparison
    # with a full download on real data is `make bench` (benchmarks/bench_vulndb.py)
    received = sum((server.root / "PyPI" / n).stat().st_size
                   for n in ("modified_id.csv", "PYSEC-2019-217.json", "PYSEC-2023-74.json"))
    assert result.bytes_downloaded == received
    with Store.open(target) as s:
        assert [a.id for a, _ in s.lookup("PyPI", "jinja2")] == ["PYSEC-2019-217"]
        assert [a.id for a, _ in s.lookup("PyPI", "requests")] == ["PYSEC-2018-28"]  # the withdrawn one is gone
        assert s.info().built_at == before and s.meta("last_update")["withdrawn"] == 1
        assert s.meta("sync")["PyPI"]["newest"] == "2030-01-01T00:00:00Z"


def test_too_many_changes_fall_back_to_the_zip(tmp_path: Path,
                                               bucket: tuple[OSVBucket, dict[str, dict[str, object]]]) -> None:
    server, pypi = bucket
    target = tmp_path / "hullscan.db"
    update_database(target, base_url=server.url, ecosystems=["PyPI"], retry=NO_WAIT)
    bumped = {rid: {**rec, "modified": "2031-01-01T00:00:00Z"} for rid, rec in pypi.items()}
    publish(server.root, "PyPI", bumped)
    server.requests.clear()
    result = update_database(target, base_url=server.url, ecosystems=["PyPI"], retry=NO_WAIT, max_incremental=2)
    assert result.mode == "incremental" and result.changes.changed == len(pypi)
    assert [r.path for r in server.requests] == ["/PyPI/modified_id.csv", "/PyPI/all.zip"]


def test_a_failed_record_download_leaves_the_database_unchanged(
        tmp_path: Path, bucket: tuple[OSVBucket, dict[str, dict[str, object]]]) -> None:
    server, pypi = bucket
    target = tmp_path / "hullscan.db"
    update_database(target, base_url=server.url, ecosystems=["PyPI"], retry=NO_WAIT)
    before = target.read_bytes()
    changed = {**pypi["PYSEC-2018-28"], "modified": "2032-01-01T00:00:00Z"}
    publish(server.root, "PyPI", {**pypi, "PYSEC-2018-28": changed})
    server.faults["/PyPI/PYSEC-2018-28.json"] = [503, 503, 503]
    from hullscan.errors import HullscanError

    with pytest.raises(HullscanError) as err:
        update_database(target, base_url=server.url, ecosystems=["PyPI"], retry=NO_WAIT, sleep=lambda _: None)
    assert err.value.code == "DB_DOWNLOAD_FAILED"
    assert target.read_bytes() == before


def test_cli_update_fetches_enrichment_conditionally_and_rescans(
        tmp_path: Path, bucket: tuple[OSVBucket, dict[str, dict[str, object]]]) -> None:
    import gzip

    from typer.testing import CliRunner

    from hullscan.cli import app

    from .osvserver import KEV_EXTRACT

    server, _pypi = bucket
    data = Path(__file__).resolve().parent / "data"
    enrich = server.root / "enrich"
    enrich.mkdir()
    with zipfile.ZipFile(enrich / "cves.zip", "w") as z:
        for f in sorted((data / "cve").glob("CVE-*.json")):
            z.write(f, f"cvelistV5-main/cves/{f.name}")
    head = (data / "epss" / "epss_scores-2025-01-01.head.csv").read_bytes()
    (enrich / "epss.csv.gz").write_bytes(gzip.compress(head))
    (enrich / "kev.json").write_bytes(KEV_EXTRACT.read_bytes())
    env = {"HULLSCAN_DB": str(tmp_path / "hullscan.db"), "HULLSCAN_DATA_DIR": str(tmp_path / "data"),
           "HULLSCAN_CVE_URL": f"{server.url}/enrich/cves.zip", "HULLSCAN_NVD_URL": "",
           "HULLSCAN_EPSS_URL": f"{server.url}/enrich/epss.csv.gz", "HULLSCAN_KEV_URL": f"{server.url}/enrich/kev.json"}
    runner = CliRunner()
    args = ["db", "update", "--base-url", server.url, "-e", "PyPI", "-e", "Debian", "--rescan"]
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert "enrichment: 17 CVE records (10 with a metric), 3 EPSS scores, 5 KEV entries" in first.stdout
    assert "no stored scans to re-evaluate" in first.stdout
    server.requests.clear()
    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 0, second.output
    assert "enrichment:" not in second.stdout  # nothing new
    assert sorted((r.path, r.status) for r in server.requests if r.path.startswith("/enrich/")) == [
        ("/enrich/cves.zip", 304), ("/enrich/epss.csv.gz", 304), ("/enrich/kev.json", 304)]
    status = runner.invoke(app, ["db", "status", "--json"], env=env)
    doc = json.loads(status.stdout)
    assert doc["enrichment"]["cve5"]["records"] == 17 and doc["enrichment"]["epss"]["records"] == 3


@pytest.mark.skipif(not SHARED_OSV.is_dir(), reason="../shared/vulndata is not available")
def test_update_then_rescan_shows_new_and_fixed_findings(
        tmp_path: Path, bucket: tuple[OSVBucket, dict[str, dict[str, object]]]) -> None:
    from typer.testing import CliRunner

    from hullscan.cli import app
    from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout

    server, pypi = bucket
    site = "usr/lib/python3/site-packages"
    image = Image([Layer(layer_tar([
        (f"{site}/requests-2.19.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.1\n"),
        (f"{site}/Jinja2-2.10.dist-info/METADATA", "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n")]),
        "RUN pip install")])
    layout = write_oci_layout(tmp_path / "oci", image, "1")
    env = {"HULLSCAN_DB": str(tmp_path / "hullscan.db"), "HULLSCAN_DATA_DIR": str(tmp_path / "data"),
           "HULLSCAN_CACHE_DIR": str(tmp_path / "cache")}
    runner = CliRunner()
    update = ["db", "update", "--base-url", server.url, "-e", "PyPI", "--no-enrichment", "--rescan"]
    assert runner.invoke(app, update, env=env).exit_code == 0
    scanned = runner.invoke(app, ["scan", f"oci:{layout}:1", "--skip-db-update", "-q", "--scanners", "vuln",
                                  "-f", "json"], env=env)
    assert scanned.exit_code == 0, scanned.output
    assert {v["id"] for v in json.loads(scanned.stdout)["vulnerabilities"]} == {"CVE-2018-18074", "CVE-2023-32681"}
    with zipfile.ZipFile(SHARED_OSV / "PyPI" / "all.zip") as z:
        new = json.loads(z.read("PYSEC-2019-217.json"))
    withdrawn = {**pypi["PYSEC-2023-74"], "modified": "2030-01-01T00:00:00Z", "withdrawn": "2030-01-01T00:00:00Z"}
    publish(server.root, "PyPI", {**pypi, "PYSEC-2023-74": withdrawn, "PYSEC-2019-217": new})
    result = runner.invoke(app, update, env=env)
    assert result.exit_code == 0, result.output
    assert "incremental update" in result.stdout and "1 added, 1 changed, 1 withdrawn" in result.stdout
    assert f"{layout}:1: 2 findings, 1 new, 1 gone" in result.stdout
    assert "  + CVE-2019-10906 in jinja2" in result.stdout and "  - CVE-2023-32681 in requests" in result.stdout
