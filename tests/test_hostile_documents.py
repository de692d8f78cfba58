"""Deeply nested JSON and YAML at every read site outside the image sources, and a non-UTF-8 ignore file.

Each used to end in RecursionError or UnicodeDecodeError (exit 4); each now fails with its own catalogue
cause, or, for caches, counts as a miss. Every document here is written by the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from hullscan.checks.baseimage import BaseCatalogue, CatalogueError
from hullscan.checks.compliance import LicencePolicy, PolicyError
from hullscan.checks.eol import EolDataError, load_table
from hullscan.cli import app
from hullscan.errors import HullscanError
from hullscan.ignorefile import IgnoreFileError, load
from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout
from hullscan.layers.cache import LayerCache
from hullscan.model import ImageFacts, LayerFacts
from hullscan.safejson import MAX_DEPTH
from hullscan.scanstore import ScanStore, StoredScan
from hullscan.secrets.config import SecretConfigError, load_secret_config
from hullscan.vex.parse import VexError, load_vex
from hullscan.vulndb.cverecords import CveImportStats, iter_cve_path, sniff_cve_path
from hullscan.vulndb.osv import OSVImportError, load_kev

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "forbidden: " + "[" * 100_000 + "]" * 100_000 + "\n"
OSV = Path(__file__).parent / "vulndb" / "data" / "osv"  # real records, see PROVENANCE.md there
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HULLSCAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HULLSCAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- db import ------------------------------------------------------------------------------------------


def test_db_import_of_a_deep_record_fails_with_its_cause(env: Path) -> None:
    deep = env / "deep.json"
    deep.write_text('{"id": "OSV-TEST-1", "affected": ' + DEEP_JSON + "}")
    result = runner.invoke(app, ["db", "import", str(deep), "--db", str(env / "x.db")])
    assert result.exit_code == 3, result.output
    assert "DB_IMPORT_FAILED" in result.output and "1 malformed" in result.output


def test_db_import_keeps_the_good_records_beside_a_deep_one(env: Path) -> None:
    src = env / "records"
    src.mkdir()
    (src / "PYSEC-2018-28.json").write_bytes((OSV / "PyPI" / "PYSEC-2018-28.json").read_bytes())
    (src / "deep.json").write_text(DEEP_JSON)
    result = runner.invoke(app, ["db", "import", str(src), "--db", str(env / "x.db")])
    assert result.exit_code == 0, result.output
    assert (env / "x.db").is_file()


def test_deep_kev_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "kev.json"
    path.write_text('{"vulnerabilities": ' + DEEP_JSON + "}")
    with pytest.raises(OSVImportError, match=f"the KEV catalogue {path} is not valid JSON: it nests deeper"):
        load_kev(path)


def test_deep_cve_record_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "CVE-2024-0001.json"
    path.write_text('{"dataType": "CVE_RECORD", "containers": ' + DEEP_JSON + "}")
    stats = CveImportStats()
    assert list(iter_cve_path(path, stats)) == []
    assert stats.problems == [f"{path}: not valid JSON (it nests deeper than {MAX_DEPTH} levels)"]
    assert not sniff_cve_path(path)


def test_deep_vex_document(tmp_path: Path) -> None:
    path = tmp_path / "vex.json"
    path.write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": ' + DEEP_JSON + "}")
    with pytest.raises(VexError) as info:
        load_vex(path)
    assert info.value.code == "VEX_INVALID" and f"{path} is not valid JSON: it nests deeper" in str(info.value)


# -- caches: a damaged entry is a miss ---------------------------------------------------------------------


def test_deep_layer_cache_entry_is_a_miss(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    diff_id = "sha256:" + "ab" * 32
    cache.put(LayerFacts(diff_id, "0123abcd"))
    assert cache.get(diff_id, "0123abcd") is not None
    (entry,) = (p for p in tmp_path.rglob("*") if p.is_file())
    entry.write_bytes(zstandard.ZstdCompressor().compress(DEEP_JSON.encode()))
    assert cache.get(diff_id, "0123abcd") is None


def test_deep_stored_scan_is_skipped(tmp_path: Path) -> None:
    store = ScanStore(tmp_path)
    store.save(StoredScan("a" * 32, ImageFacts("example/app:1", "sha256:" + "1" * 64)))
    store.save(StoredScan("b" * 32, ImageFacts("example/app:2", "sha256:" + "2" * 64)))
    (tmp_path / f"{'b' * 32}.json.zst").write_bytes(zstandard.ZstdCompressor().compress(DEEP_JSON.encode()))
    assert [s.facts.reference for s in store.all()] == ["example/app:1"]


# -- user configuration files ---------------------------------------------------------------------------


def test_deep_secret_config(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("rules: " + "[" * 100_000 + "\n")
    with pytest.raises(SecretConfigError) as info:
        load_secret_config(path)
    assert f"{path} is not valid YAML: it nests deeper than {MAX_DEPTH} levels" in str(info.value)
    assert info.value.cause.exit_code == 2


def test_deep_licence_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DEEP_YAML)
    with pytest.raises(PolicyError, match=f"licence policy {path} is not valid YAML: it nests deeper"):
        LicencePolicy.load(path)


def test_deep_policy_and_secret_config_through_the_cli(env: Path) -> None:
    (env / "policy.yaml").write_text(DEEP_YAML)
    (env / "secrets.yaml").write_text("rules:\n" + "".join("  " * i + "- \n" for i in range(1, 400)))
    layout = write_oci_layout(env / "layout", Image([Layer(layer_tar([("etc/os-release", "ID=alpine\n")]))]))
    for option, name in (("--licence-policy", "policy.yaml"), ("--secret-config", "secrets.yaml")):
        result = runner.invoke(app, ["scan", f"oci:{layout}", option, str(env / name), "--scanners",
                                     "compliance,secret", "--offline"])
        assert result.exit_code == 2, result.output
        assert "nests deeper than" in result.output


def test_deep_eol_table(tmp_path: Path) -> None:
    (tmp_path / "eol.json").write_text('{"distributions": ' + DEEP_JSON + "}")
    with pytest.raises(EolDataError, match="eol.json is not valid JSON: it nests deeper"):
        load_table(tmp_path)


def test_deep_base_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "base-catalogue.json"
    path.write_text('{"format": 1, "entries": ' + DEEP_JSON + "}")
    with pytest.raises(CatalogueError, match="is not valid JSON: it nests deeper"):
        BaseCatalogue(path).entries()


# -- .hullscanignore ------------------------------------------------------------------------------------


def test_non_utf8_ignore_file_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / ".hullscanignore"
    path.write_bytes(b"CVE-2018-18074 # fine\nCVE-2023-32681 # caf\xe9 (latin-1)\n")
    with pytest.raises(IgnoreFileError) as info:
        load(path)
    assert str(info.value) == (f"the ignore file {path} is not UTF-8 text: byte 0xe9 at offset 42 (line 2) is "
                               "not valid UTF-8")
    assert info.value.code == "IGNORE_FILE_INVALID" and info.value.cause.exit_code == 2


def test_non_utf8_ignore_file_in_the_working_directory_is_a_usage_error(env: Path) -> None:
    """The CLI reads .hullscanignore by itself: a broken one is the user's to fix (exit 2), not a crash (4)."""
    (env / ".hullscanignore").write_bytes(b"\xff\xfeC\x00V\x00E\x00")  # saved as UTF-16 by an editor
    db = env / "one.db"
    imported = runner.invoke(app, ["db", "import", str(OSV / "PyPI" / "PYSEC-2018-28.json"), "--db", str(db)])
    assert imported.exit_code == 0, imported.output
    layout = write_oci_layout(env / "layout", Image([Layer(layer_tar([("etc/os-release", "ID=alpine\n")]))]))
    result = runner.invoke(app, ["scan", f"oci:{layout}", "--db", str(db), "--skip-db-update", "--scanners", "vuln"])
    assert result.exit_code == 2, result.output
    assert "IGNORE_FILE_INVALID" in result.output and "byte 0xff at offset 0" in result.output


def test_catalogue_causes_render(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x80")
    with pytest.raises(HullscanError) as info:
        load(path)
    assert "[IGNORE_FILE_INVALID]" in info.value.render()
    assert json.dumps(info.value.render())  # plain text, no bytes
