"""The fleet's layer cache in a real PostgreSQL: separate processes (spawned, each with its own engine) scanning
images in two real registries share one store, analyse a shared layer once even when they reach it at the same
moment, are not blocked for good by a holder that was killed, and never put sensitive contents in the store."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zstandard
from typer.testing import CliRunner

from hullscan.analyzers import default_analyzers
from hullscan.analyzers.base import analyzers_key
from hullscan.cancel import CancelToken
from hullscan.checks.crypt import system_crypt
from hullscan.cli import app
from hullscan.errors import OptionError, ScanStopped
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, sha256, write_oci_layout
from hullscan.layers.cache import SharedLayerStore
from hullscan.layers.pgcache import TABLE, PostgresLayerStore
from hullscan.model import FileEntry, FileFacts, LayerFacts, Package
from hullscan.pipeline import Engine, ScanRequest, layer_store
from hullscan.scan import NoProgress
from hullscan.settings import Settings
from hullscan.sharedstore import engine_for
from tests.support.postgres import layer_cache_rows
from tests.support.registry import RegistryServer, free_port, open_registry

from ._support import STATUS, dist_info, dpkg_status, os_release

pytestmark = pytest.mark.timeout(300)
SPAWN = multiprocessing.get_context("spawn")
HANG_GUARD = 120.0  # seconds: only so a broken build fails instead of hanging; nothing here measures time

BASE = layer_tar([FileSpec("etc", type="d"), ("etc/os-release", os_release("debian", "12")),
                  (STATUS, dpkg_status(("bash", "5.2.15-2"), ("libc6", "2.36-9")))])
APP_A = layer_tar([dist_info("requests", "2.31.0")])
APP_B = layer_tar([dist_info("flask", "3.0.0")])
KEY = analyzers_key(default_analyzers())  # the analyzer set of a scan with no items (the inventory alone)


@dataclass
class Fleet:
    a: str  # image A (base + APP_A) in the first registry
    b: str  # image B (base + APP_B) in the second


@pytest.fixture(scope="module")
def second_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = open_registry(tmp_path_factory.mktemp("registry-2"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fleet(registry: RegistryServer, second_registry: RegistryServer,
          tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    work = tmp_path_factory.mktemp("fleet-images")
    registry.push_images(Image([Layer(BASE), Layer(APP_A)]), "fleet/a:1", work)
    second_registry.push_images(Image([Layer(BASE), Layer(APP_B)]), "fleet/b:1", work)
    return Fleet(registry.ref("fleet/a:1"), second_registry.ref("fleet/b:1"))


def settings(root: Path, store_url: str) -> Settings:
    return Settings(data_dir=root / "data", cache_dir=root / "cache", work_dir=root / "work", pool_workers=0,
                    store_url=store_url)


def scan_in_process(root: str, store_url: str, ref: str, start: Any) -> list[str]:
    """A worker: its own engine, its own directories, the shared store; waits for `start` (a barrier)."""
    start.wait()
    with Engine(settings(Path(root), store_url)) as engine:
        report = engine.scan(ScanRequest(ref, items=()))
    return sorted(f"{p.name}@{p.version}" for p in report.facts.packages)


def run_workers(tmp_path: Path, store_url: str, refs: list[str]) -> list[list[str]]:
    with SPAWN.Manager() as manager:
        start = manager.Barrier(len(refs))
        with SPAWN.Pool(len(refs)) as pool:
            results = [pool.apply_async(scan_in_process, (str(tmp_path / f"w{i}"), store_url, ref, start))
                       for i, ref in enumerate(refs)]
            return [r.get(HANG_GUARD) for r in results]


def analyses(store_url: str) -> dict[str, int]:
    """diff_id -> how many times its facts were written to the store."""
    rows = layer_cache_rows(store_url)
    assert {key for _, key, _ in rows} <= {KEY}
    return {diff_id: n for diff_id, _, n in rows}


def waiting(store_url: str) -> int:
    """Connections waiting for a layer lock right now: their last statement tried one (they poll it) and they hold
    none (a holder's last statement is the same try, which succeeded)."""
    engine = engine_for(store_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() "
                "AND a.datname = current_database() AND a.query LIKE 'SELECT pg_try_advisory_lock%' "
                "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' "
                "AND l.granted)")).scalar() or 0)
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def test_a_base_layer_shared_by_images_in_two_registries_is_analysed_once_by_two_processes(
        fleet: Fleet, store_url: str, tmp_path: Path) -> None:
    packages = run_workers(tmp_path, store_url, [fleet.a, fleet.b])
    assert packages == [["bash@5.2.15-2", "libc6@2.36-9", "requests@2.31.0"],
                        ["bash@5.2.15-2", "flask@3.0.0", "libc6@2.36-9"]]
    assert analyses(store_url) == {sha256(BASE): 1, sha256(APP_A): 1, sha256(APP_B): 1}
    assert not list(tmp_path.rglob("*.json.zst"))  # nothing went to a per-process filesystem cache
    # a third worker, later, analyses nothing at all
    assert run_workers(tmp_path, store_url, [fleet.b]) == [packages[1]]
    assert analyses(store_url) == {sha256(BASE): 1, sha256(APP_A): 1, sha256(APP_B): 1}


def test_two_processes_reaching_a_new_layer_at_the_same_moment_analyse_it_once(
        fleet: Fleet, store_url: str, tmp_path: Path) -> None:
    # The test holds the base layer's lock until both workers are waiting for it, so both have missed the cache
    # and want to walk it at once; then lets them race.
    holder = PostgresLayerStore(store_url)
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with holder.flight(sha256(BASE), KEY, CancelToken()):
            held.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(HANG_GUARD)
        with SPAWN.Manager() as manager:
            start = manager.Barrier(2)
            with SPAWN.Pool(2) as pool:
                results = [pool.apply_async(scan_in_process, (str(tmp_path / f"w{i}"), store_url, ref, start))
                           for i, ref in enumerate([fleet.a, fleet.b])]
                wait_for(lambda: waiting(store_url) >= 2, "both workers waiting for the base layer")
                release.set()
                assert [r.get(HANG_GUARD) for r in results] == [["bash@5.2.15-2", "libc6@2.36-9", "requests@2.31.0"],
                                                                ["bash@5.2.15-2", "flask@3.0.0", "libc6@2.36-9"]]
    finally:
        release.set()
        thread.join()
        holder.close()
    assert analyses(store_url) == {sha256(BASE): 1, sha256(APP_A): 1, sha256(APP_B): 1}


def hold_and_hang(store_url: str, held: Any) -> None:
    """A worker that takes the base layer's lock, as a walk would, and then never finishes."""
    store = PostgresLayerStore(store_url)
    with store.flight(sha256(BASE), KEY, CancelToken()):
        held.set()
        time.sleep(3600)


def test_a_holder_killed_mid_analysis_does_not_block_the_others(fleet: Fleet, store_url: str, tmp_path: Path) -> None:
    held = SPAWN.Event()
    child = SPAWN.Process(target=hold_and_hang, args=(store_url, held))
    child.start()
    try:
        assert held.wait(HANG_GUARD)
        outcome: list[Any] = []

        def scan() -> None:
            try:
                outcome.append(scan_in_process(str(tmp_path / "w"), store_url, fleet.a, threading.Barrier(1)))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                outcome.append(exc)

        scanner = threading.Thread(target=scan)
        scanner.start()
        wait_for(lambda: waiting(store_url) >= 1, "the scan waiting for the holder")
        assert not outcome  # still waiting while the holder lives
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        scanner.join(HANG_GUARD)
        assert outcome == [["bash@5.2.15-2", "libc6@2.36-9", "requests@2.31.0"]]
    finally:
        if child.is_alive():
            child.kill()
        child.join()
    assert analyses(store_url) == {sha256(BASE): 1, sha256(APP_A): 1}


def test_a_scan_waiting_for_another_process_stops_when_asked(fleet: Fleet, store_url: str, tmp_path: Path) -> None:
    holder = PostgresLayerStore(store_url)
    cancel = CancelToken()
    try:
        with holder.flight(sha256(BASE), KEY, CancelToken()):
            stopper = threading.Thread(target=lambda: (wait_for(lambda: waiting(store_url) >= 1, "a waiting scan"),
                                                       cancel.stop("stopped by the test")))
            stopper.start()
            with Engine(settings(tmp_path, store_url)) as engine, pytest.raises(ScanStopped):
                engine.scan(ScanRequest(fleet.a, items=()), cancel=cancel)
            stopper.join()
    finally:
        holder.close()
    assert sha256(BASE) not in analyses(store_url)


def test_sensitive_contents_never_reach_the_shared_store(store_url: str, tmp_path: Path) -> None:
    crypt = system_crypt()
    hashes = [crypt.make("changeme", "$6$"), crypt.make("app123", "$y$")]
    layout = tmp_path / "img"
    write_oci_layout(layout, Image([Layer(layer_tar([
        FileSpec("etc", type="d"), ("etc/os-release", os_release("debian", "12")),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/bash\n"),
        FileSpec("etc/shadow", f"root:{hashes[0]}:19700:0:99999:7:::\napp:{hashes[1]}:19700:0:99999:7:::\n".encode(),
                 mode=0o640),
    ]))]))
    with Engine(settings(tmp_path, store_url)) as engine:
        report = engine.scan(ScanRequest(f"oci:{layout}:latest", items=("secret", "baseline")))
    assert any(c.id == "weak-password" for c in report.checks)  # the hashes were read, and judged
    engine_ = engine_for(store_url)
    with engine_.connect() as conn:
        rows = [bytes(r) for r in conn.execute(sa.text(f"SELECT facts FROM {TABLE}")).scalars()]
    engine_.dispose()
    kept = "\n".join(zstandard.ZstdDecompressor().stream_reader(r).read().decode() for r in rows)
    assert len(rows) == 1 and "etc/shadow" in kept and "$6$<redacted>" in kept
    for secret in [*hashes, "changeme", "app123"]:
        assert secret not in kept


def test_entries_round_trip_and_damage_is_a_miss(store_url: str) -> None:
    store = PostgresLayerStore(store_url)
    diff_id, key = sha256(b"layer"), "ab12"
    facts = LayerFacts(diff_id, key, files={"usr/lib/x": FileFacts([Package("x", "1", "python")],
                                                                   private={"hash": "$6$salt$SECRET"})},
                       entries=[FileEntry("usr/lib/x", "f", 3)])
    try:
        assert isinstance(store, SharedLayerStore)
        assert not store.has(diff_id, key) and store.get(diff_id, key) is None
        store.put(facts)
        got = store.get(diff_id, key)
        assert got is not None and got.files["usr/lib/x"].packages == facts.files["usr/lib/x"].packages
        assert got.files["usr/lib/x"].private == {} and got.entries == facts.entries
        assert store.get("sha256:../../etc", key) is None and store.has(diff_id, key)
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {TABLE} SET facts = :x"), {"x": b"\x28\xb5\x2f\xfd garbage"})
        assert store.get(diff_id, key) is None  # damaged: a miss, and gone
        assert not store.has(diff_id, key)
        store.put(facts)
        store.put(facts)
        assert store.analyses(diff_id, key) == 2
        assert store.clean() == 1 and store.get(diff_id, key) is None
    finally:
        store.close()


def test_the_settings_choose_the_shared_cache(tmp_path: Path) -> None:
    pg = "postgresql://u@127.0.0.1:1/x"
    assert Settings(data_dir=tmp_path).layer_cache == "fs"
    assert Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/s.db").layer_cache == "fs"
    assert Settings(data_dir=tmp_path, database_url=pg).layer_cache == "postgres"
    assert Settings(data_dir=tmp_path, store_url=pg, cache="fs").layer_cache == "fs"
    assert Settings(data_dir=tmp_path, database_url=pg.replace("postgresql", "postgresql+psycopg")).shared_store_url
    store = layer_store(Settings(data_dir=tmp_path, database_url=pg))
    assert isinstance(store, PostgresLayerStore)
    store.close()
    with pytest.raises(OptionError, match="PostgreSQL"):
        layer_store(Settings(data_dir=tmp_path, cache="postgres"))


def test_the_command_line_scans_through_the_shared_cache_and_cleans_it(store_url: str, tmp_path: Path) -> None:
    layout = tmp_path / "img"
    write_oci_layout(layout, Image([Layer(BASE), Layer(APP_A)]))
    env = {"HULLSCAN_STORE_URL": store_url, "HULLSCAN_DATA_DIR": str(tmp_path / "data"),
           "HULLSCAN_CACHE_DIR": str(tmp_path / "cache"), "HULLSCAN_CONFIG": str(tmp_path / "none.toml")}
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["sbom", f"oci:{layout}:latest", "--format", "json", "--quiet"], env=env)
        assert result.exit_code == 0, result.output
        assert "requests" in result.stdout
    assert analyses(store_url) == {sha256(BASE): 1, sha256(APP_A): 1}  # the second run analysed nothing
    assert not (tmp_path / "cache").exists()
    result = runner.invoke(app, ["cache", "clean"], env=env)
    assert result.exit_code == 0 and "removed 2 cached layer entries from the shared store" in result.stdout
    assert analyses(store_url) == {}


def test_a_scan_goes_on_when_the_shared_store_is_down(tmp_path: Path) -> None:
    layout = tmp_path / "img"
    write_oci_layout(layout, Image([Layer(BASE)]))
    down = f"postgresql://hullscan:sekrit-pw@127.0.0.1:{free_port()}/none"  # nothing listens there
    warnings: list[str] = []

    class Warnings(NoProgress):
        def warning(self, message: str) -> None:
            warnings.append(message)

    with Engine(settings(tmp_path, down)) as engine:
        report = engine.scan(ScanRequest(f"oci:{layout}:latest", items=()), Warnings())
    assert sorted(p.name for p in report.facts.packages) == ["bash", "libc6"]
    assert warnings == ["layer 1 not cached: cannot reach the shared store (OperationalError)"]
    assert not any("sekrit-pw" in w for w in warnings)
