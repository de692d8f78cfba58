"""CVE enrichment: the CVE JSON 5 / NVD 2.0 / EPSS parsers on real extracts, the store's enrichment tables (atomic,
carried over an OSV rebuild, refused for an old schema), the rating order, and the KEV blocking primitive."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from hullscan.errors import DatabaseError
from hullscan.findings import VulnFinding
from hullscan.model import Package
from hullscan.policy import BlockPolicy, blocking_findings, in_kev
from hullscan.vulndb.cverecords import (
    CveImportStats,
    CveIntel,
    best_metric,
    iter_cve_path,
    metric_label,
    parse_cve5,
    parse_nvd,
    sniff_cve_path,
)
from hullscan.vulndb.enrich import apply_intel
from hullscan.vulndb.epss import load_epss, parse_epss
from hullscan.vulndb.osv import OSVImportError, load_kev
from hullscan.vulndb.store import Store, build_from_paths, enrich_database

from .osvserver import KEV_EXTRACT, OSV_EXTRACT

DATA = Path(__file__).resolve().parent / "data"
CVE_DIR, NVD_DIR, EPSS_DIR = DATA / "cve", DATA / "nvd", DATA / "epss"


def record(cve: str) -> object:
    return parse_cve5(json.loads((CVE_DIR / f"{cve}.json").read_text()))


def test_cve5_cna_cvss_adp_cvss_and_cna_words() -> None:
    r = parse_cve5(json.loads((CVE_DIR / "CVE-2023-32681.json").read_text()))
    assert r is not None and r.origin == "cve5"
    (m,) = r.metrics
    assert (m.source, m.kind, m.level, m.version, m.score) == ("cna:GitHub_M", "cvss", "MEDIUM", "3.1", 6.1)
    r = parse_cve5(json.loads((CVE_DIR / "CVE-2022-4450.json").read_text()))
    assert r is not None
    assert [(m.source, m.kind, m.level) for m in r.metrics] == [("cna:openssl", "rating", "MEDIUM"),
                                                                ("adp:CISA-ADP", "cvss", "HIGH")]
    best = best_metric(r.metrics)
    assert best is not None and metric_label(best) == "adp:CISA-ADP/cvss:3.1"  # CVSS before the CNA's word
    for cve, level in (("CVE-2023-0286", "HIGH"), ("CVE-2022-2097", "MEDIUM"), ("CVE-2022-4304", "MEDIUM")):
        r = parse_cve5(json.loads((CVE_DIR / f"{cve}.json").read_text()))
        assert r is not None and [(m.kind, m.level) for m in r.metrics] == [("rating", level)], cve
    r = parse_cve5(json.loads((CVE_DIR / "CVE-2023-22809.json").read_text()))
    assert r is not None and r.metrics == []
    assert parse_cve5({"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "not-a-cve"}}) is None
    assert parse_cve5({"id": "PYSEC-2020-96"}) is None


def test_rejected_record_and_ssvc_are_no_rating() -> None:
    doc = json.loads((CVE_DIR / "CVE-2023-0215.json").read_text())
    r = parse_cve5(doc)
    assert r is not None and all(m.kind == "cvss" or m.source.startswith("cna:") for m in r.metrics)
    doc["cveMetadata"]["state"] = "REJECTED"
    r = parse_cve5(doc)
    assert r is not None and r.rejected and r.metrics == []


def test_nvd_primary_v31_is_preferred() -> None:
    (r,) = parse_nvd(json.loads((NVD_DIR / "CVE-2019-14697.json").read_text()))
    assert r.origin == "nvd" and [(m.version, m.level, m.score) for m in r.metrics] == [("3.1", "CRITICAL", 9.8),
                                                                                        ("2.0", "HIGH", 7.5)]
    best = best_metric(r.metrics)
    assert best is not None and metric_label(best) == "nvd/cvss:3.1"
    # the API answer shape holds the same object under vulnerabilities[].cve
    api = {"resultsPerPage": 1, "vulnerabilities": [{"cve": json.loads((NVD_DIR / "CVE-2019-14697.json").read_text())}]}
    assert [x.cve for x in parse_nvd(api)] == ["CVE-2019-14697"]


def test_cve_list_v5_layout_flat_dir_and_nested_zip(tmp_path: Path) -> None:
    layout = tmp_path / "cvelistV5" / "cves"
    for f in CVE_DIR.glob("CVE-*.json"):
        year, num = f.stem.split("-")[1:]
        dest = layout / year / f"{int(num) // 1000}xxx" / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    (layout / "delta.json").write_text("{}")  # the repository's own bookkeeping, not a record
    stats = CveImportStats()
    assert len(list(iter_cve_path(tmp_path / "cvelistV5", stats))) == 17 and stats.skipped == 0
    inner = tmp_path / "cves.zip"
    with zipfile.ZipFile(inner, "w") as z:
        for f in sorted(layout.rglob("CVE-*.json")):
            z.write(f, f"cves/{f.relative_to(layout)}")
    outer = tmp_path / "2025-01-01_all_CVEs_at_midnight.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.write(inner, "cves.zip")
    stats = CveImportStats()
    assert len(list(iter_cve_path(outer, stats))) == 17
    assert sniff_cve_path(outer) and sniff_cve_path(CVE_DIR) and sniff_cve_path(NVD_DIR)
    assert not sniff_cve_path(OSV_EXTRACT / "PyPI")
    (tmp_path / "junk.json").write_text("[1, 2")
    stats = CveImportStats()
    assert list(iter_cve_path(tmp_path / "junk.json", stats)) == [] and stats.skipped == 1


def test_epss_real_rows_and_refusals(tmp_path: Path) -> None:
    data = load_epss(EPSS_DIR / "epss_scores-2025-01-01.head.csv")
    assert data.model_version == "v2023.03.01" and data.score_date == "2025-01-01T00:00:00+0000"
    assert data.scores == {"CVE-1999-0001": (0.00383, 0.72779), "CVE-1999-0002": (0.01328, 0.85717),
                           "CVE-1999-0003": (0.04409, 0.92305)}
    import gzip

    gz = tmp_path / "epss_scores-2025-01-01.csv.gz"
    gz.write_bytes(gzip.compress((EPSS_DIR / "epss_scores-2025-01-01.head.csv").read_bytes()))
    assert load_epss(gz).scores == data.scores
    # format sample (made-up numbers): columns by header name, bad rows counted, not fatal
    sample = parse_epss(b"percentile,cve,epss\n0.5,CVE-2023-0286,0.25\n0.5,CVE-x,0.1\n2,CVE-2023-0215,0.1\n")
    assert sample.scores == {"CVE-2023-0286": (0.25, 0.5)} and sample.bad_rows == 2
    with pytest.raises(OSVImportError, match="not an EPSS CSV"):
        parse_epss(b"id,score\nCVE-2023-0286,0.1\n")


def _db(tmp_path: Path) -> Path:
    target = tmp_path / "db" / "hullscan.db"
    build_from_paths(target, [OSV_EXTRACT / "Debian", OSV_EXTRACT / "PyPI"], kev_path=KEV_EXTRACT)
    return target


def test_enrich_existing_database_then_rebuild_keeps_it(tmp_path: Path) -> None:
    target = _db(tmp_path)
    with Store.open(target) as s:
        assert s.cve_intel(["CVE-2023-0215"]) == {} and s.kev_cves()  # KEV from the build
        assert "CVE-2018-6789" in s.kev_cves()
    records = list(iter_cve_path(CVE_DIR, CveImportStats())) + list(iter_cve_path(NVD_DIR, CveImportStats()))
    epss = load_epss(EPSS_DIR / "epss_scores-2025-01-01.head.csv")
    result = enrich_database(target, cve_records=records, cve_source=str(CVE_DIR), epss=epss)
    assert result.cve_records == 18 and result.with_metrics == 11 and result.epss == 3
    with Store.open(target) as s:
        intel = s.cve_intel(["CVE-2023-0215", "CVE-2019-14697", "CVE-1999-0002", "CVE-2000-0001"])
        assert set(intel) == {"CVE-2023-0215", "CVE-2019-14697", "CVE-1999-0002"}
        assert intel["CVE-2019-14697"].records == {"cve5", "nvd"}
        assert intel["CVE-1999-0002"].epss == 0.01328
        assert s.info().enrichment["cve5"]["records"] == 17 and s.info().enrichment["epss"]["records"] == 3
        before = s.info().counts
    # an OSV rebuild carries the enrichment into the new file
    build_from_paths(target, [OSV_EXTRACT / "Debian", OSV_EXTRACT / "PyPI"])
    with Store.open(target) as s:
        assert s.info().counts == before
        assert s.cve_intel(["CVE-2023-0215"])["CVE-2023-0215"].metrics
        assert "CVE-2018-6789" in s.kev_cves()  # the previous KEV import too


def test_enrich_refuses_missing_and_old_schema_databases(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as err:
        enrich_database(tmp_path / "none.db", cve_records=[])
    assert err.value.code == "NO_DATABASE"
    target = _db(tmp_path)
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    before = target.read_bytes()
    with pytest.raises(DatabaseError) as err:
        enrich_database(target, kev=load_kev(KEV_EXTRACT))
    assert err.value.code == "DB_INVALID" and "schema 1" in err.value.detail
    assert target.read_bytes() == before  # nothing written


def test_enrich_failure_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    target = _db(tmp_path)
    before = target.read_bytes()

    def broken():  # type: ignore[no-untyped-def]
        yield from iter_cve_path(CVE_DIR, CveImportStats())
        raise OSError("the disk went away")

    with pytest.raises(OSError):
        enrich_database(target, cve_records=broken())
    assert target.read_bytes() == before
    assert not list(target.parent.glob(".hullscan.db.*.building"))


PKG = Package(name="openssl", version="1", ecosystem="deb", purl="pkg:deb/debian/openssl@1")


def _finding(**kw: object) -> VulnFinding:
    return VulnFinding(id="CVE-2022-4450", package=PKG, **kw)  # type: ignore[arg-type]


def test_rating_order_vendor_first_then_cve_record() -> None:
    rec = parse_cve5(json.loads((CVE_DIR / "CVE-2022-4450.json").read_text()))
    assert rec is not None
    intel = CveIntel("CVE-2022-4450", rec.metrics, {"cve5"}, 0.2, 0.9, True)
    vendor = _finding(severity="LOW", severity_source="vendor:Debian")
    apply_intel(vendor, [intel])
    assert (vendor.severity, vendor.severity_source, vendor.cvss_score) == ("LOW", "vendor:Debian", 7.5)
    assert vendor.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" and vendor.kev and vendor.epss == 0.2
    unknown = _finding()
    apply_intel(unknown, [intel])
    assert (unknown.severity, unknown.severity_source) == ("HIGH", "adp:CISA-ADP/cvss:3.1")
    nothing = _finding()
    apply_intel(nothing, [CveIntel("CVE-2022-4450")])
    assert (nothing.severity, nothing.severity_source, nothing.cvss_score) == ("UNKNOWN", "", None)


def test_kev_blocking_primitive() -> None:
    kev = VulnFinding(id="CVE-2021-3156", package=PKG, severity="UNKNOWN", kev=True)
    high = VulnFinding(id="CVE-2023-0286", package=PKG, severity="HIGH")
    low = VulnFinding(id="CVE-2022-2097", package=PKG, severity="LOW")
    assert in_kev([kev, high, low]) == [kev]
    assert blocking_findings([kev, high, low], BlockPolicy(block_kev=True)) == [kev]
    assert blocking_findings([kev, high, low], BlockPolicy(severity="HIGH")) == [high]  # UNKNOWN never reaches HIGH
    assert blocking_findings([kev, high, low], BlockPolicy(severity="HIGH", block_kev=True)) == [kev, high]
    assert blocking_findings([kev, high], BlockPolicy(severity="HIGH", block_kev=True),
                             allowlist=["cve-2021-3156"]) == [high]
    with pytest.raises(ValueError):
        BlockPolicy(severity="SEVERE")
