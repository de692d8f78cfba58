"""`hullscan scan` with vulnerabilities and `hullscan rescan`, on the demo image and real OSV records."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo"))
import run as demo  # noqa: E402

OSV = Path(__file__).parent / "vulndb" / "data" / "osv"  # real records, see PROVENANCE.md there
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo.OUT = tmp_path_factory.mktemp("demo")
    return demo.build()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HULLSCAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HULLSCAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _db(tmp: Path, name: str, records: list[str]) -> Path:
    src = tmp / f"{name}-records"
    src.mkdir()
    for rec in records:
        eco, rid = rec.split("/")
        shutil.copy(OSV / eco / f"{rid}.json", src / f"{rid}.json")
    db = tmp / f"{name}.db"
    result = runner.invoke(app, ["db", "import", str(src), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


def _scan(layout: Path, db: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["scan", f"oci:{layout}:demo", "--db", str(db), "--skip-db-update",
                                 "--scanners", "vuln", "-f", "json", *args])
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else {})


def test_findings_carry_package_layer_and_fix(demo_layout: Path, env: Path) -> None:
    db = _db(env, "full", ["PyPI/PYSEC-2018-28", "PyPI/PYSEC-2023-74", "PyPI/PYSEC-2020-96"])
    code, doc = _scan(demo_layout, db)
    assert code == 0
    found = {(v["id"], v["package"]["name"]): v for v in doc["vulnerabilities"]}
    assert set(found) == {("CVE-2018-18074", "requests"), ("CVE-2023-32681", "requests"),
                          ("CVE-2020-1747", "pyyaml")}
    req = found[("CVE-2018-18074", "requests")]
    assert req["installed_version"] == "2.19.0" and req["fixed_versions"] == ["2.20.0"]
    assert "PYSEC-2018-28" in req["advisory_ids"]
    assert req["package"]["layer"]["index"] == 2
    assert req["package"]["path"].endswith("requests-2.19.0.dist-info/METADATA")


def test_ignore_file_severity_and_exit_code(demo_layout: Path, env: Path) -> None:
    db = _db(env, "full", ["PyPI/PYSEC-2018-28", "PyPI/PYSEC-2023-74", "PyPI/PYSEC-2020-96"])
    (env / ".hullscanignore").write_text("CVE-2018-18074 exp:2999-01-01 # proxy strips auth anyway\n"
                                         "PYSEC-2023-74 exp:2001-01-01 # expired waiver\n")
    code, doc = _scan(demo_layout, db, "--exit-code", "7")
    assert code == 7
    ids = {v["id"] for v in doc["vulnerabilities"]}
    assert "CVE-2018-18074" not in ids and "CVE-2023-32681" in ids  # the expired entry ignores nothing
    assert [i["reason"] for i in doc["ignored"]] == ["proxy strips auth anyway"]
    assert any("expired" in n["message"] for n in doc["notes"])
    code, doc = _scan(demo_layout, db, "--exit-code", "7", "--severity", "CRITICAL,LOW")
    kept = {v["severity"] for v in doc["vulnerabilities"]}
    assert kept <= {"CRITICAL", "LOW"}
    assert code == (7 if doc["vulnerabilities"] else 0)


def test_no_database_is_an_error_not_zero_findings(demo_layout: Path, env: Path) -> None:
    result = runner.invoke(app, ["scan", f"oci:{demo_layout}:demo", "--db", str(env / "missing.db"),
                                 "--skip-db-update"])
    assert result.exit_code == 3
    assert "NO_DATABASE" in result.stderr and "hullscan db update" in result.stderr


def test_os_without_data_is_reported(demo_layout: Path, env: Path) -> None:
    db = _db(env, "deb", ["Debian/DSA-5380-1", "PyPI/PYSEC-2018-28"])
    code, doc = _scan(demo_layout, db)
    assert code == 0
    assert any("OS packages not checked" in n["message"] and "Debian:12" in n["message"] for n in doc["notes"])


def test_rescan_reports_new_and_gone_without_downloading(demo_layout: Path, env: Path) -> None:
    old = _db(env, "old", ["PyPI/PYSEC-2018-28", "PyPI/PYSEC-2020-96"])
    code, _ = _scan(demo_layout, old)
    assert code == 0
    new = _db(env, "new", ["PyPI/PYSEC-2018-28", "PyPI/PYSEC-2023-74"])
    shutil.rmtree(demo_layout.parent)  # the image is gone: rescan must not need it
    result = runner.invoke(app, ["rescan", "--db", str(new), "--json"])
    assert result.exit_code == 0, result.output
    [change] = json.loads(result.stdout)
    assert change["new"] == ["CVE-2023-32681 in requests"]
    assert change["gone"] == ["CVE-2020-1747 in pyyaml"]
    again = json.loads(runner.invoke(app, ["rescan", "--db", str(new), "--json"]).stdout)
    assert again[0]["new"] == [] and again[0]["gone"] == []
