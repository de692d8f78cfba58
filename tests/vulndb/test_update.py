"""The updater against a real local HTTP server, and the database as an OCI artifact in real registries."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hullscan.errors import HullscanError
from hullscan.oci import media
from hullscan.vulndb.store import SCHEMA_VERSION, Store, build_from_paths
from hullscan.vulndb.update import (
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    Retry,
    pull_database,
    push_database,
    update_database,
)
from tests.support.registry import RegistryServer

from .osvserver import KEV_EXTRACT, OSV_EXTRACT, SHARED_OSV, OSVBucket, bucket_from_extract

NO_WAIT = Retry(attempts=4, base_delay=0.0, max_delay=0.0)


def no_sleep(_: float) -> None:
    pass


@pytest.fixture
def bucket(tmp_path: Path) -> Iterator[OSVBucket]:
    server = OSVBucket(bucket_from_extract(tmp_path / "bucket")).start()
    try:
        yield server
    finally:
        server.stop()


def _update(target: Path, server: OSVBucket, ecosystems: list[str], **kw: object) -> object:
    return update_database(target, base_url=server.url, ecosystems=ecosystems, retry=NO_WAIT, sleep=no_sleep,
                           **kw)  # type: ignore[arg-type]


@pytest.mark.skipif(not SHARED_OSV.is_dir(), reason="../shared/vulndata is not available")
def test_update_from_the_shared_mirror_with_default_ecosystems(tmp_path: Path) -> None:
    """The real updater against ../shared/vulndata/osv served over HTTP: six ecosystems are there, every other
    default one answers 404 and is a warning."""
    server = OSVBucket(SHARED_OSV).start()
    try:
        target = tmp_path / "db" / "hullscan.db"
        result = update_database(target, base_url=server.url, retry=NO_WAIT, sleep=no_sleep)
    finally:
        server.stop()
    got = {d.ecosystem: d.status for d in result.downloads}
    assert {e for e, s in got.items() if s == "downloaded"} == {"Alpine", "Debian", "Go", "Maven", "PyPI", "npm"}
    assert got["Red Hat"] == "missing" and got["crates.io"] == "missing"
    assert any("'Red Hat'" in w and "404" in w for w in result.warnings)
    assert any(r.path == "/Red%20Hat/all.zip" or r.path == "/Red Hat/all.zip" for r in server.requests)
    with Store.open(target) as s:
        assert s.info().counts["Debian"] == 8906
        assert [a.id for a, _ in s.lookup("PyPI", "flask")]
    assert (tmp_path / "db" / "osv-cache" / "PyPI" / "all.zip").is_file()


def test_second_update_is_conditional_and_only_refreshes(tmp_path: Path, bucket: OSVBucket) -> None:
    target = tmp_path / "hullscan.db"
    first = _update(target, bucket, ["PyPI", "npm"])
    assert first.rebuilt  # type: ignore[attr-defined]
    with Store.open(target) as s:
        built_at = s.info().built_at
    meta = json.loads((tmp_path / "osv-cache" / "PyPI" / "all.zip.json").read_text())
    assert meta["etag"] and meta["last_modified"] and meta["sha256"].startswith("sha256:")
    second = _update(target, bucket, ["PyPI", "npm"])
    assert not second.rebuilt  # type: ignore[attr-defined]
    zips = [d.status for d in second.downloads if d.url.endswith("all.zip")]  # type: ignore[attr-defined]
    assert zips == ["not-modified", "not-modified"]
    req = bucket.requests_for("/PyPI/all.zip")[-1]
    assert req.status == 304 and req.headers["if-none-match"] == meta["etag"]
    assert "if-modified-since" in req.headers
    with Store.open(target) as s:
        assert s.info().built_at == built_at and s.info().updated_at >= built_at


def test_changed_upstream_is_downloaded_and_rebuilt(tmp_path: Path, bucket: OSVBucket) -> None:
    target = tmp_path / "hullscan.db"
    _update(target, bucket, ["PyPI", "Go"])
    with Store.open(target) as s:
        assert s.lookup("Go", "github.com/gin-gonic/gin")
    # Upstream drops GO-2021-0052.
    go_dir = tmp_path / "go-new"
    shutil.copytree(OSV_EXTRACT / "Go", go_dir)
    (go_dir / "GO-2021-0052.json").unlink()
    from .osvserver import zip_folder

    zip_folder(go_dir, bucket.root / "Go" / "all.zip")
    result = _update(target, bucket, ["PyPI", "Go"])
    assert {d.ecosystem: d.status for d in result.downloads  # type: ignore[attr-defined]
            if d.url.endswith("all.zip")} == {"PyPI": "not-modified", "Go": "downloaded"}
    # no change list in this bucket: the changed zip is compared with the database, and the change applied
    assert result.mode == "incremental"  # type: ignore[attr-defined]
    assert result.changes.removed == 1 and result.changes.added == 0  # type: ignore[attr-defined]
    with Store.open(target) as s:
        assert [a.id for a, _ in s.lookup("Go", "github.com/gin-gonic/gin")] == ["GO-2020-0001"]
        assert s.lookup("PyPI", "requests")  # the unchanged zip came from the cache


def test_retries_throttling_errors_and_resets(tmp_path: Path, bucket: OSVBucket) -> None:
    bucket.faults["/npm/all.zip"] = [503, 429, "reset"]
    slept: list[float] = []
    target = tmp_path / "hullscan.db"
    result = update_database(target, base_url=bucket.url, ecosystems=["npm"],
                             retry=Retry(attempts=5, base_delay=0.01, max_delay=0.01), sleep=slept.append)
    assert result.rebuilt
    statuses = [r.status for r in bucket.requests_for("/npm/all.zip")]
    assert statuses == [503, 429, 200, 200]  # the third answer was cut off mid-body
    assert len(slept) == 3 and slept[1] == 0.0  # Retry-After: 0 was honoured
    with Store.open(target) as s:
        assert s.lookup("npm", "lodash")
    assert not list((tmp_path / "osv-cache" / "npm").glob("*.part"))


def test_persistent_failure_keeps_the_old_database(tmp_path: Path, bucket: OSVBucket) -> None:
    target = tmp_path / "hullscan.db"
    _update(target, bucket, ["PyPI"])
    before = target.read_bytes()
    (bucket.root / "PyPI" / "all.zip").write_bytes(b"changed")  # force a download, which then fails
    bucket.faults["/PyPI/all.zip"] = [500] * 10
    with pytest.raises(HullscanError) as err:
        _update(target, bucket, ["PyPI"])
    assert err.value.code == "DB_DOWNLOAD_FAILED" and "HTTP 500" in err.value.detail
    assert "after 4 attempts" in err.value.detail
    assert target.read_bytes() == before


def test_not_a_zip_is_retried_then_fails(tmp_path: Path, bucket: OSVBucket) -> None:
    (bucket.root / "Maven" / "all.zip").write_bytes(b"<html>captive portal</html>")
    with pytest.raises(HullscanError, match="not a valid zip"):
        _update(tmp_path / "hullscan.db", bucket, ["Maven"])
    assert not (tmp_path / "hullscan.db").exists()


def test_missing_ecosystems_warn_and_all_missing_fails(tmp_path: Path, bucket: OSVBucket) -> None:
    result = _update(tmp_path / "a.db", bucket, ["Maven", "Wolfi"])
    assert [d.status for d in result.downloads] == ["downloaded", "missing"]  # type: ignore[attr-defined]
    assert any("Wolfi" in w for w in result.warnings)  # type: ignore[attr-defined]
    with pytest.raises(HullscanError) as err:
        _update(tmp_path / "b.db", bucket, ["Wolfi", "Photon OS"])
    assert err.value.code == "DB_DOWNLOAD_FAILED"
    assert [r.path for r in bucket.requests[-2:]] == ["/Wolfi/all.zip", "/Photon OS/all.zip"]


def test_corrupted_cache_is_fetched_again(tmp_path: Path, bucket: OSVBucket) -> None:
    target = tmp_path / "hullscan.db"
    _update(target, bucket, ["Alpine"])
    (tmp_path / "osv-cache" / "Alpine" / "all.zip").write_bytes(b"bit rot")
    result = _update(target, bucket, ["Alpine"])
    assert [r.status for r in bucket.requests_for("/Alpine/all.zip")] == [200, 304, 200]
    assert [d.status for d in result.downloads if d.url.endswith("all.zip")] == ["downloaded"]  # type: ignore


def test_progress_and_kev(tmp_path: Path, bucket: OSVBucket) -> None:
    events: list[tuple[str, str, object]] = []

    class Recorder:
        def started(self, ecosystem: str, total: int | None) -> None:
            events.append(("started", ecosystem, total))

        def advanced(self, ecosystem: str, received: int) -> None:
            events.append(("advanced", ecosystem, received))

        def finished(self, ecosystem: str, status: str) -> None:
            events.append(("finished", ecosystem, status))

    target = tmp_path / "hullscan.db"
    _update(target, bucket, ["Maven"], kev_path=KEV_EXTRACT, progress=Recorder())
    size = (bucket.root / "Maven" / "all.zip").stat().st_size
    assert events[0] == ("started", "Maven", size)
    assert ("advanced", "Maven", size) in events and ("finished", "Maven", "downloaded") in events
    with Store.open(target) as s:
        assert all(a.kev for a, _ in s.lookup("Maven", "org.apache.logging.log4j:log4j-core"))
    # A changed KEV file alone is a reason to rebuild.
    kev2 = tmp_path / "kev2.json"
    doc = json.loads(KEV_EXTRACT.read_text())
    doc["vulnerabilities"] = [v for v in doc["vulnerabilities"] if v["cveID"] != "CVE-2021-44228"]
    kev2.write_text(json.dumps(doc))
    assert _update(target, bucket, ["Maven"], kev_path=kev2).rebuilt  # type: ignore[attr-defined]


# -- OCI artifact ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oci") / "hullscan.db"
    build_from_paths(path, [OSV_EXTRACT], kev_path=KEV_EXTRACT)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_and_pull_through_a_registry(registry: RegistryServer, small_db: Path, tmp_path: Path) -> None:
    ref = registry.ref("hullscan/db-roundtrip:v1")
    with registry.client() as c:
        pushed = push_database(small_db, ref, client=c)
        fetched = c.get_manifest("hullscan/db-roundtrip", "v1")
    manifest = json.loads(fetched.data)
    assert manifest["mediaType"] == media.OCI_MANIFEST
    assert manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE == manifest["artifactType"]
    assert [layer["mediaType"] for layer in manifest["layers"]] == [LAYER_MEDIA_TYPE]
    assert pushed.layer_size < pushed.db_size
    target = tmp_path / "pulled" / "hullscan.db"
    with registry.client() as c:
        pulled = pull_database(ref, target, client=c)
    assert _digest(target) == _digest(small_db)
    assert pulled.manifest_digest == pushed.manifest_digest == fetched.digest
    assert pulled.info.schema_version == SCHEMA_VERSION and pulled.info.path == str(target)
    with Store.open(target) as s:
        assert [a.id for a, _ in s.lookup("Debian:11", "xorg-server")] == ["DSA-5380-1"]
    # by digest too
    with registry.client() as c:
        pull_database(f"{registry.host}/hullscan/db-roundtrip@{fetched.digest}", tmp_path / "b.db", client=c)
    assert _digest(tmp_path / "b.db") == _digest(small_db)


def test_push_and_pull_with_basic_auth(basic_registry: RegistryServer, small_db: Path, tmp_path: Path) -> None:
    ref = basic_registry.ref("hullscan/db-auth:latest")
    user, password = basic_registry.creds or ("", "")
    push_database(small_db, ref, username=user, password=password)
    target = tmp_path / "hullscan.db"
    pull_database(ref, target, username=user, password=password)
    assert _digest(target) == _digest(small_db)
    with pytest.raises(HullscanError) as err:
        pull_database(ref, tmp_path / "anon.db", username=user, password="wrong")
    assert err.value.code == "AUTH_FAILED"
    assert not (tmp_path / "anon.db").exists()


def _upload_artifact(server: RegistryServer, repo: str, config: dict[str, object], layer: bytes,
                     config_type: str = CONFIG_MEDIA_TYPE) -> None:
    cfg = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": "sha256:" + hashlib.sha256(cfg).hexdigest(),
                   "size": len(cfg)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                    "size": len(layer)}],
    }
    server.upload(repo, "latest", json.dumps(manifest).encode(), media.OCI_MANIFEST, {"c": cfg, "l": layer})


def test_pull_refuses_foreign_schema_other_artifacts_and_bad_digests(registry: RegistryServer, small_db: Path,
                                                                      tmp_path: Path) -> None:
    import zstandard

    target = tmp_path / "hullscan.db"
    shutil.copyfile(small_db, target)
    before = target.read_bytes()
    raw = small_db.read_bytes()
    packed = zstandard.ZstdCompressor().compress(raw)
    good = {"schema_version": SCHEMA_VERSION, "db_digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
            "db_size": len(raw)}
    cases = {
        "hullscan/db-future": ({**good, "schema_version": 99}, CONFIG_MEDIA_TYPE, "DB_INVALID", "schema 99"),
        "hullscan/db-helm": (good, "application/vnd.cncf.helm.config.v1+json", "DB_INVALID", "config type"),
        "hullscan/db-liar": ({**good, "db_digest": "sha256:" + "0" * 64}, CONFIG_MEDIA_TYPE, "DIGEST_MISMATCH",
                             "decompressed"),
        "hullscan/db-short": ({**good, "db_size": 1000}, CONFIG_MEDIA_TYPE, "DB_INVALID", "larger than"),
    }
    for repo, (config, config_type, code, text) in cases.items():
        _upload_artifact(registry, repo, config, packed, config_type)
        with registry.client() as c, pytest.raises(HullscanError) as err:
            pull_database(registry.ref(f"{repo}:latest"), target, client=c)
        assert err.value.code == code, repo
        assert text in err.value.detail, (repo, err.value.detail)
        assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".pulling")]
