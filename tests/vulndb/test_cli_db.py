"""`hullscan db ...` end to end: import, status, update against a local bucket, push/pull through registries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app
from hullscan.vulndb.store import SCHEMA_VERSION, Store, build_from_paths
from tests.support.registry import RegistryServer

from .osvserver import KEV_EXTRACT, OSV_EXTRACT, OSVBucket, bucket_from_extract

runner = CliRunner()


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data" / "hullscan.db"
    monkeypatch.setenv("HULLSCAN_DB", str(path))
    return path


def test_status_without_a_database_says_how_to_get_one(db_env: Path) -> None:
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 3
    out = result.output
    assert "No vulnerability database" in out and str(db_env) in out
    assert "hullscan db update" in out and "hullscan db import PATH" in out and "hullscan db pull REF" in out


def test_import_then_status(db_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "import", str(OSV_EXTRACT / "PyPI"), str(OSV_EXTRACT / "Maven"),
                                 "--kev", str(KEV_EXTRACT)])
    assert result.exit_code == 0, result.output
    assert "PyPI 4" in result.stdout and "Maven 2" in result.stdout
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 0, status.output
    for text in ("Schema", "Built", "Updated", "PyPI", "Maven", "CISA KEV 2025.08.25", "just now"):
        assert text in status.stdout
    doc = json.loads(runner.invoke(app, ["db", "status", "--json"]).stdout)
    assert doc["counts"] == {"Maven": 2, "PyPI": 4}
    assert doc["totals"]["withdrawn"] == 1 and doc["totals"]["kev"] == 2
    assert doc["stale"] is False and doc["schema_version"] == SCHEMA_VERSION and doc["path"] == str(db_env)


def test_import_reports_malformed_records_and_refuses_nothing(db_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI"}}]}]))
    good = OSV_EXTRACT / "Go" / "GO-2020-0001.json"
    result = runner.invoke(app, ["db", "import", str(bad), str(good)])
    assert result.exit_code == 0, result.output
    assert "1 malformed record(s) skipped" in result.output and "X-1" in result.output
    nothing = runner.invoke(app, ["db", "import", str(bad)])
    assert nothing.exit_code == 3 and "no advisory was found" in nothing.output
    with Store.open(db_env) as s:  # the failed import left the previous database
        assert s.lookup("Go", "github.com/gin-gonic/gin")
    missing = runner.invoke(app, ["db", "import", str(tmp_path / "nope")])
    assert missing.exit_code == 2


def test_stale_database_warns_and_strict_fails(db_env: Path) -> None:
    build_from_paths(db_env, [OSV_EXTRACT / "npm"], updated_at="2020-01-01T00:00:00Z")
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 0
    assert "warning" in result.output and "days old" in result.output and "hullscan db update" in result.output
    assert runner.invoke(app, ["db", "status", "--strict"]).exit_code == 1


def test_db_option_overrides_the_environment(db_env: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    assert runner.invoke(app, ["db", "import", "--db", str(other), str(OSV_EXTRACT / "Alpine")]).exit_code == 0
    assert other.is_file() and not db_env.exists()


@pytest.fixture
def bucket(tmp_path: Path) -> Iterator[OSVBucket]:
    server = OSVBucket(bucket_from_extract(tmp_path / "bucket")).start()
    try:
        yield server
    finally:
        server.stop()


def test_update_command(db_env: Path, bucket: OSVBucket) -> None:
    args = ["db", "update", "--base-url", bucket.url, "-e", "Debian", "-e", "Go", "-e", "Wolfi", "--no-enrichment"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "full rebuild (0.01 MB downloaded): 9 added, 0 changed, 1 withdrawn" in result.stdout
    assert "no OSV data for ecosystem 'Wolfi'" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "no advisory changed" in again.stdout and "updated_at refreshed" in again.stdout
    with Store.open(db_env) as s:
        assert s.lookup("Debian:11", "xorg-server")
    down = runner.invoke(app, ["db", "update", "--base-url", "http://127.0.0.1:9/", "-e", "Go"],
                         env={"HULLSCAN_DB": str(db_env)})
    assert down.exit_code == 3 and "DB_DOWNLOAD_FAILED" in down.output


def test_push_and_pull_commands_with_credentials(basic_registry: RegistryServer, db_env: Path,
                                                 tmp_path: Path) -> None:
    build_from_paths(db_env, [OSV_EXTRACT / "Debian"])
    ref = basic_registry.ref("hullscan/cli-db:2024")
    user, password = basic_registry.creds or ("", "")
    refused = runner.invoke(app, ["db", "push", ref])
    assert refused.exit_code == 3 and "AUTH_FAILED" in refused.output
    pushed = runner.invoke(app, ["db", "push", ref, "-u", user, "--password-stdin"], input=password + "\n")
    assert pushed.exit_code == 0, pushed.output
    assert "pushed" in pushed.stdout and "@sha256:" in pushed.stdout
    target = tmp_path / "site" / "hullscan.db"
    pulled = runner.invoke(app, ["db", "pull", ref, "--db", str(target), "-u", user, "--password-stdin"],
                           input=password + "\n")
    assert pulled.exit_code == 0, pulled.output
    assert target.read_bytes() == db_env.read_bytes()
    assert f"schema {SCHEMA_VERSION}" in pulled.stdout


def test_pull_of_an_image_is_refused(registry: RegistryServer, tmp_path: Path) -> None:
    from hullscan.imagebuild import Image, Layer, layer_tar

    image = Image(layers=[Layer(layer_tar([("etc/os-release", b"ID=debian\n")]))])
    registry.push_images(image, "hullscan/not-a-db:latest", tmp_path)
    result = runner.invoke(app, ["db", "pull", registry.ref("hullscan/not-a-db:latest"),
                                 "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 3
    assert "not a hullscan database artifact" in result.output
    assert not (tmp_path / "x.db").exists()
