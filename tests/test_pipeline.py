"""The engine as a library: one call, many scans at once in one process, stop and deadline, settings, the item
and renderer registries."""

from __future__ import annotations

import dataclasses
import gc
import importlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan import heap, items
from hullscan.cancel import CancelToken
from hullscan.errors import HullscanError, ScanStopped, ScanTimedOut
from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout
from hullscan.layers.pool import WorkerPool
from hullscan.model import LayerInfo
from hullscan.oci.blobmemo import BlobMemo
from hullscan.pipeline import Engine, ScanRequest, run_scan
from hullscan.report.formats import FORMATS, UnknownFormat, render, render_text
from hullscan.scan import NoProgress, RegistryOptions
from hullscan.settings import Settings
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(300)
GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # shaped like a GitHub token, made up


def _many_files(prefix: str, count: int = 3000) -> bytes:
    files: list[tuple[str, bytes | str]] = [(f"{prefix}/mod{i:05d}.py", f"value = {i}\n") for i in range(count)]
    files.append((f"{prefix}/.env", f"GITHUB_TOKEN={GHP}\n"))
    return layer_tar(files)


def _layout(root: Path, *layers: bytes) -> str:
    write_oci_layout(root, Image([Layer(t) for t in layers]))
    return f"oci:{root}:latest"


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", work_dir=tmp_path / "work",
                    **kw)  # type: ignore[arg-type]


def test_two_scans_at_once_share_the_worker_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _layout(tmp_path / "a", _many_files("srv/a"))
    b = _layout(tmp_path / "b", _many_files("srv/b"))
    users: dict[str, set[int]] = {}
    real_submit = WorkerPool.submit

    def spy(self: WorkerPool, key: str, spec: bytes, batch: list) -> object:  # type: ignore[type-arg]
        future = real_submit(self, key, spec, batch)
        name = threading.current_thread().name
        future.add_done_callback(lambda f: users.setdefault(name, set()).add(f.result()[0]))
        return future

    monkeypatch.setattr(WorkerPool, "submit", spy)
    settings = _settings(tmp_path, pool_workers=1, cache="none")
    reports = {}
    with Engine(settings, pool="always") as engine:
        assert engine.pool is not None

        def run(name: str, target: str) -> None:
            reports[name] = engine.scan(ScanRequest(target, items=("secret",)))

        threads = [threading.Thread(target=run, args=(n, t), name=n) for n, t in (("scan-a", a), ("scan-b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert set(users) == {"scan-a", "scan-b"}  # both scans sent files to the shared workers ...
    assert all(pids and os.getpid() not in pids for pids in users.values())  # ... in other processes
    for name, prefix in (("scan-a", "srv/a"), ("scan-b", "srv/b")):
        assert [(c.id, c.path) for c in reports[name].checks] == [("github-pat", f"{prefix}/.env")]


class _StopWhenStarted(NoProgress):
    """Hands control to another thread once the first layer starts, and waits until it has acted."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.acted = threading.Event()

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        self.started.set()
        self.acted.wait(30)


def test_a_scan_stopped_from_another_thread_ends_stopped_and_caches_nothing_half_done(tmp_path: Path) -> None:
    target = _layout(tmp_path / "img", _many_files("srv"), _many_files("opt"))
    token = CancelToken()
    progress = _StopWhenStarted()

    def stopper() -> None:
        progress.started.wait(30)
        token.stop("the operator pressed stop")
        progress.acted.set()

    helper = threading.Thread(target=stopper)
    helper.start()
    with pytest.raises(ScanStopped) as err:
        run_scan(ScanRequest(target, items=("secret",)), _settings(tmp_path), progress, token)
    helper.join()
    assert err.value.code == "STOPPED" and "the operator pressed stop" in err.value.render()
    assert not list((tmp_path / "cache").rglob("*.zst"))  # the interrupted layer was not cached
    assert not any((tmp_path / "work").iterdir())  # and its work directory is gone


class _Slow(NoProgress):
    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        threading.Event().wait(0.6)  # longer than the deadline below: the next check must end the scan


def test_a_scan_past_its_deadline_ends_with_the_timeout_cause(tmp_path: Path) -> None:
    target = _layout(tmp_path / "img", _many_files("srv"))
    with pytest.raises(ScanTimedOut) as err:
        run_scan(ScanRequest(target, items=(), timeout=0.3), _settings(tmp_path), _Slow())
    assert err.value.code == "TIMEOUT"
    assert "Slim the image" in err.value.cause.solution

    # the default deadline comes from the settings
    with pytest.raises(ScanTimedOut):
        run_scan(ScanRequest(target, items=()), _settings(tmp_path, scan_timeout=0.3), _Slow())


def test_cli_timeout_gives_the_cause_and_its_solution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hullscan.cli import app

    target = _layout(tmp_path / "img", _many_files("srv"))
    monkeypatch.setattr("hullscan.cli.common.QuietProgress.layer_started", _Slow.layer_started)
    result = CliRunner().invoke(app, ["sbom", target, "--timeout", "0.3", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 3, result.output
    assert "[TIMEOUT] Slim the image" in result.output


def test_layers_read_concurrently_merge_in_layer_order(tmp_path: Path) -> None:
    """The last layer replaces a file of the first: concurrency must not change which one wins."""
    first = layer_tar([("srv/app/config.env", f"TOKEN={GHP}\n"), ("etc/os-release", "ID=debian\nVERSION_ID=12\n")])
    middle = _many_files("opt")
    last = layer_tar([("srv/app/config.env", "TOKEN=\n")])
    target = _layout(tmp_path / "img", first, middle, last)
    one = run_scan(ScanRequest(target, items=("secret",)), _settings(tmp_path / "1", layer_concurrency=1))
    three = run_scan(ScanRequest(target, items=("secret",)), _settings(tmp_path / "3", layer_concurrency=3))
    assert [(c.id, c.path, c.layer_index) for c in three.checks] == \
        [(c.id, c.path, c.layer_index) for c in one.checks]
    assert [e.path for e, _ in three.facts.files] == [e.path for e, _ in one.facts.files]
    assert {c.metadata.get("in_final_image") for c in three.checks if c.path == "/srv/app/config.env"} != {"true"}


def test_cached_and_walked_layers_merge_in_layer_order_and_a_warm_scan_starts_no_layer_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = layer_tar([("srv/app/config.env", f"TOKEN={GHP}\n"), ("etc/os-release", "ID=debian\nVERSION_ID=12\n")])
    middle = _many_files("opt")
    last = layer_tar([("srv/app/config.env", "TOKEN=\n")])
    settings = _settings(tmp_path / "shared", layer_concurrency=3)
    run_scan(ScanRequest(_layout(tmp_path / "alone", middle), items=("secret",)), settings)  # caches the middle
    target = _layout(tmp_path / "img", first, middle, last)
    fresh = run_scan(ScanRequest(target, items=("secret",), use_cache=False), _settings(tmp_path / "fresh"))
    mixed = run_scan(ScanRequest(target, items=("secret",)), settings)  # the middle cached, the others walked

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("layer threads started although every layer is cached")

    monkeypatch.setattr("hullscan.scan.ThreadPoolExecutor", forbidden)
    warm = run_scan(ScanRequest(target, items=("secret",)), settings)
    for report in (mixed, warm):
        assert [(c.id, c.path, c.layer_index) for c in report.checks] == \
            [(c.id, c.path, c.layer_index) for c in fresh.checks]
        assert [(e.path, i) for e, i in report.facts.files] == [(e.path, i) for e, i in fresh.facts.files]


def test_a_failing_layer_is_the_error_reported_when_layers_run_concurrently(tmp_path: Path) -> None:
    from hullscan.errors import DigestMismatch
    from hullscan.imagebuild import sha256

    bad = Layer(layer_tar([("srv/b", "b")]))
    target = _layout(tmp_path / "img", _many_files("srv"), bad.tar, _many_files("opt"))
    blob = tmp_path / "img" / "blobs" / "sha256" / sha256(bad.blob).split(":")[1]
    blob.write_bytes(Layer(layer_tar([("srv/b", "evil")])).blob)  # the registry served other bytes
    with pytest.raises(DigestMismatch):  # not "another layer failed" from a sibling
        run_scan(ScanRequest(target, items=()), _settings(tmp_path, layer_concurrency=3))
    assert not any((tmp_path / "work").iterdir())


def test_settings_come_from_the_environment_and_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hullscan.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-file"}"\nscan_timeout = 60\nlayer_concurrency = 2\n')
    monkeypatch.setenv("HULLSCAN_CONFIG", str(config))
    monkeypatch.setenv("HULLSCAN_SCAN_TIMEOUT", "120")
    settings = Settings()
    assert settings.data_dir == tmp_path / "from-file"  # the file
    assert settings.scan_timeout == 120  # the environment beats the file
    assert settings.layer_concurrency == 2
    assert settings.db_path == tmp_path / "from-file" / "db" / "hullscan.db"
    assert settings.scans_dir == tmp_path / "from-file" / "scans"
    assert Settings(scan_timeout=5).scan_timeout == 5  # arguments beat both
    monkeypatch.setenv("HULLSCAN_DB", str(tmp_path / "elsewhere.db"))
    assert Settings().db_path == tmp_path / "elsewhere.db"


def test_every_registered_item_declares_itself_in_one_place() -> None:
    assert items.NAMES == ("vuln", "secret", "malware", "file", "baseline", "compliance", "base")
    for name in items.NAMES:
        item = items.get(name)
        assert item.name == name and item.title
        assert isinstance(item.options(None), item.options_type)
        with pytest.raises(TypeError):
            item.options(object())
        module = importlib.import_module(items.REGISTRY[name])
        assert module.ITEM is item


def test_an_unknown_item_is_refused_before_any_work(tmp_path: Path) -> None:
    from hullscan.errors import OptionError

    with pytest.raises(OptionError, match="unknown scan item nope"):
        run_scan(ScanRequest("oci:/nonexistent:latest", items=("nope",)), _settings(tmp_path))


def test_every_format_renders_through_one_interface(tmp_path: Path) -> None:
    target = _layout(tmp_path / "img", _many_files("srv", 5))
    report = run_scan(ScanRequest(target, items=("secret", "file")), _settings(tmp_path))
    for name, fmt in FORMATS.items():
        text = render_text(report, name)
        assert text.strip(), name
        if fmt.media_type.endswith("json"):
            json.loads(text)
    out = io.StringIO()
    render(report, "sarif", out)
    assert json.loads(out.getvalue())["runs"][0]["results"][0]["ruleId"].endswith("github-pat")
    with pytest.raises(UnknownFormat, match="unknown format 'yaml'"):
        render(report, "yaml", out)


def test_a_resident_engine_compiles_the_built_in_secret_rules_once(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from hullscan.secrets import config as secret_config

    built: list[object] = []
    real = secret_config.SecretEngine

    def counting(*args: object) -> object:
        built.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(secret_config, "SecretEngine", counting)
    secret_config.default_config.cache_clear()
    try:
        target = _layout(tmp_path / "img", layer_tar([("srv/app/.env", f"GITHUB_TOKEN={GHP}\n")]))
        with Engine(_settings(tmp_path)) as engine:
            reports = [engine.scan(ScanRequest(target, items=("secret",))) for _ in range(3)]
    finally:
        secret_config.default_config.cache_clear()
    assert [[c.id for c in r.checks] for r in reports] == [["github-pat"]] * 3
    assert len(built) == 1


def test_a_resident_engine_fetches_the_config_of_an_unchanged_registry_image_once(
        tmp_path: Path, registry: RegistryServer, fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(registry)  # records every request the engine makes to the real registry
    debian = Image([Layer(layer_tar([("etc/os-release", "ID=debian\nVERSION_ID=12\n")]))])
    registry.push_images(debian, "memo/app:1", tmp_path)
    request = ScanRequest(f"{proxy.host}/memo/app:1", items=(), kind="sbom", remember=False,
                          registry=RegistryOptions(use_docker_config=False, insecure=True))
    with Engine(_settings(tmp_path)) as engine:
        first = engine.scan(request)
        again = engine.scan(request)
        config = first.facts.config_digest
        assert again.facts.config_digest == config and again.facts.os == first.facts.os
        assert len(proxy.matching(r"/manifests/1$")) == 2 and len(proxy.matching(f"/blobs/{config}$")) == 1

        # Kept per repository: a manifest in another repository naming that config (served here as a registry that
        # lies would) gets nothing the registry would not give it: that repository has no such blob.
        with registry.client() as client:
            fetched = client.get_manifest("memo/app", "1")
        proxy.serve(r"/v2/memo/elsewhere/manifests/1$", fetched.data, fetched.media_type)
        with pytest.raises(HullscanError):
            engine.scan(dataclasses.replace(request, target=f"{proxy.host}/memo/elsewhere:1"))
        assert len(proxy.matching(f"/v2/memo/elsewhere/blobs/{config}$")) == 1

        # The tag moves to another image: its config is fetched, and the report is about the new image.
        alpine = Image([Layer(layer_tar([("etc/os-release", "ID=alpine\nVERSION_ID=3.20.3\n")]))])
        registry.push_images(alpine, "memo/app:1", tmp_path)
        moved = engine.scan(request)
    assert moved.facts.config_digest != config and len(proxy.matching(f"/blobs/{moved.facts.config_digest}$")) == 1
    assert moved.facts.os is not None and (moved.facts.os.family, moved.facts.os.version) == ("alpine", "3.20.3")


def test_the_config_memo_is_bounded_by_size_and_drops_the_least_recently_used() -> None:
    memo = BlobMemo(max_bytes=10)
    memo.put("sha256:a", b"aaaa")
    memo.put("sha256:b", b"bbbb")
    assert memo.get("sha256:a") == b"aaaa"  # now the most recently used
    memo.put("sha256:c", b"cccc")  # 12 bytes: b goes
    assert memo.get("sha256:b") is None and memo.get("sha256:a") == b"aaaa" and memo.get("sha256:c") == b"cccc"
    memo.put("sha256:d", b"d" * 11)  # larger than the whole memo: not kept, nothing else dropped
    assert memo.get("sha256:d") is None and memo.get("sha256:a") == b"aaaa"


@pytest.fixture
def thawed() -> Iterator[None]:
    """The tests below settle this process's heap (hullscan.heap): each starts with nothing frozen and Python's
    default thresholds (an earlier test may have run the CLI in this process), and ends with the thresholds it
    found and the collector on."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.enable()


def test_a_resident_engine_settles_the_heap_once_after_a_scan_succeeds_with_none_running(
        tmp_path: Path, thawed: None) -> None:
    held = _layout(tmp_path / "held", layer_tar([("etc/hostname", "held\n")]))
    other = _layout(tmp_path / "other", layer_tar([("etc/hostname", "other\n")]))
    progress = _StopWhenStarted()  # keeps the first scan inside its first layer until told to go on
    with Engine(_settings(tmp_path), resident=True) as engine:
        with pytest.raises(HullscanError):  # a failed scan filled no cache worth keeping: nothing is settled
            engine.scan(ScanRequest(f"oci:{tmp_path / 'missing'}:latest", items=()))
        assert gc.get_freeze_count() == 0
        first = threading.Thread(target=lambda: engine.scan(ScanRequest(held, items=()), progress))
        first.start()
        assert progress.started.wait(30)
        engine.scan(ScanRequest(other, items=()))  # ends while the first scan still runs: its objects are live
        assert gc.get_freeze_count() == 0
        progress.acted.set()
        first.join(30)
        frozen = gc.get_freeze_count()
        assert frozen > 0 and gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        engine.scan(ScanRequest(other, items=()))
        assert gc.get_freeze_count() <= frozen  # once per process: the second quiet moment freezes nothing more


def test_a_one_off_engine_leaves_the_collector_alone_and_the_cli_settles_before_its_scan(
        tmp_path: Path, thawed: None) -> None:
    from hullscan.cli import app

    target = _layout(tmp_path / "img", layer_tar([("etc/hostname", "h\n")]))
    with Engine(_settings(tmp_path)) as engine:  # a library caller's engine: the process is not ours to tune
        engine.scan(ScanRequest(target, items=()))
    assert gc.get_freeze_count() == 0 and gc.get_threshold()[0] < heap.YOUNG_THRESHOLD

    gc.disable()  # as cli.main loads the command line (heap.hold): settling turns the collector on
    result = CliRunner().invoke(app, ["sbom", target, "--cache-dir", str(tmp_path / "cli-cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == heap.YOUNG_THRESHOLD and gc.isenabled()
