"""Heavy analyzers in worker processes: the same facts, in the same order, as in one process; failures
handled as if in-process; nothing lost when a worker dies."""

from __future__ import annotations

import io
import os
import signal
import threading
from pathlib import Path

import pytest

from hullscan.analyzers.base import Analyzer
from hullscan.errors import LayerError
from hullscan.imagebuild import FileSpec, layer_tar
from hullscan.layers import pool as pool_module
from hullscan.layers.merge import HARD_LINK_OF
from hullscan.layers.pool import MIN_BYTES, PoolSession, WorkerPool, default_workers, worth_a_pool
from hullscan.layers.walker import LayerWalker
from hullscan.malware import MalwareOptions, malware_analyzer
from hullscan.model import Detection, FileEntry, FileFacts, LayerFacts
from hullscan.oci.source import Limits
from hullscan.secrets import secret_analyzer
from tests.malware import samples as s

from ._support import analyzers as package_analyzers

pytestmark = pytest.mark.timeout(120)
GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # shaped like a GitHub token, made up


def _layer() -> bytes:
    files: list[FileSpec | tuple[str, bytes | str]] = [
        (f"srv/app/lib/mod{i:04d}.py", s.BENIGN_PYTHON + b"# %d\n" % i) for i in range(1200)]
    files[100:100] = [("srv/www/shell.php", s.PHP_SHELLS["eval-post"][0]), ("opt/x/config.json", s.XMRIG_CONFIG),
                      ("srv/app/.env", f"GITHUB_TOKEN={GHP}\n")]
    files[700:700] = [("tmp/eicar.com", s.EICAR), ("usr/local/bin/kworker", s.MINER_ELF),
                      ("srv/app/lib/mod0003.py", s.REVERSE_SHELLS["bash-dev-tcp"][0])]  # replaces an earlier one
    files.append(FileSpec("srv/app/.env-copy", type="h", linkname="srv/app/.env"))
    return layer_tar(files)


def _analyzers() -> list[Analyzer]:
    return [malware_analyzer(MalwareOptions()), *package_analyzers(), secret_analyzer(None)]


def _walk(tmp_path: Path, workers: int, analyzers: list[Analyzer] | None = None,
          tar: bytes | None = None, pool: WorkerPool | None = None) -> LayerFacts:
    walker = LayerWalker(analyzers or _analyzers(), Limits(), tmp_path / "work")
    own = pool is None and workers > 0
    walker.pool = WorkerPool(workers, parent_dir=tmp_path) if own else pool
    try:
        return walker.walk_tar(io.BytesIO(tar if tar is not None else _layer()), "", 0)
    finally:
        if own and walker.pool is not None:
            walker.pool.close()


def _found(facts: LayerFacts) -> dict[str, list[tuple[str, str, int]]]:
    found = {path: [(d.kind, d.rule_id, d.line) for d in f.detections]
             for path, f in sorted(facts.files.items()) if f.detections}
    # The hard link shares what its target's analysis found (settled first when it ran in a worker).
    assert facts.files["srv/app/.env-copy"].hints == {HARD_LINK_OF: "srv/app/.env"}
    return found


def test_workers_find_what_one_process_finds_in_the_same_order(tmp_path: Path) -> None:
    here = _found(_walk(tmp_path / "a", 0))
    assert set(here) == {"srv/www/shell.php", "opt/x/config.json", "srv/app/.env", "tmp/eicar.com",
                         "usr/local/bin/kworker", "srv/app/lib/mod0003.py"}
    assert _found(_walk(tmp_path / "b", 1)) == here
    assert _found(_walk(tmp_path / "c", 2)) == here


def test_a_dead_worker_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = _found(_walk(tmp_path / "a", 0))
    killed: list[int] = []
    original = PoolSession._send

    def send_then_kill(self: PoolSession, batch: object) -> None:
        original(self, batch)  # type: ignore[arg-type]
        processes = getattr(self.pool._executor, "_processes", None) or {}
        if not killed and processes:
            pid = next(iter(processes))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    monkeypatch.setattr(pool_module, "BATCH_FILES", 64)  # several batches, so some are in flight at the kill
    monkeypatch.setattr(PoolSession, "_send", send_then_kill)
    with WorkerPool(1, parent_dir=tmp_path) as pool:
        assert _found(_walk(tmp_path / "b", 1, pool=pool)) == here
        assert killed
        # the pool replaced its workers: the next walk runs in a live process again
        monkeypatch.undo()
        walker = LayerWalker(_analyzers(), Limits(), tmp_path / "c")
        walker.pool = pool
        assert _found(walker.walk_tar(io.BytesIO(_layer()), "", 0)) == here
        assert walker.worker_pids and killed[0] not in walker.worker_pids


def _spooled(pool: WorkerPool) -> list[Path]:
    return sorted(pool.workdir.glob("batch-*"))


def test_batches_travel_through_spool_files_that_do_not_outlive_them(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    here = _found(_walk(tmp_path / "a", 0))
    monkeypatch.setattr(pool_module, "BATCH_FILES", 64)
    seen: list[str] = []
    original = WorkerPool._spool

    def spool(self: WorkerPool, contents: list[bytes]) -> str:
        path = original(self, contents)
        assert Path(path).parent == self.workdir and Path(path).stat().st_size == sum(map(len, contents))
        seen.append(path)
        return path

    monkeypatch.setattr(WorkerPool, "_spool", spool)
    with WorkerPool(1, parent_dir=tmp_path) as pool:
        assert _found(_walk(tmp_path / "b", 1, pool=pool)) == here
        assert len(seen) > 5
        assert _spooled(pool) == []  # each removed once its batch was analysed


def test_a_batch_that_cannot_be_spooled_is_analysed_in_process(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    here = _found(_walk(tmp_path / "a", 0))

    def full_disk(fd: int, buffers: list[memoryview]) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pool_module.os, "writev", full_disk)
    with WorkerPool(1, parent_dir=tmp_path) as pool:
        walker = LayerWalker(_analyzers(), Limits(), tmp_path / "b")
        walker.pool = pool
        assert _found(walker.walk_tar(io.BytesIO(_layer()), "", 0)) == here
        assert not walker.worker_pids  # nothing reached a worker
        assert _spooled(pool) == []  # the half-written spools are gone too


def test_spool_writes_survive_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """writev may write less than asked (a signal, a pipe, a nearly full disk): the rest follows, in order."""
    real = os.writev

    def stingy(fd: int, buffers: list[memoryview]) -> int:
        return real(fd, [bytes(buffers[0])[:3]]) if len(buffers[0]) > 3 else real(fd, buffers[:2])

    monkeypatch.setattr(pool_module.os, "writev", stingy)
    monkeypatch.setattr(pool_module, "_IOV_MAX", 3)
    contents = [b"alpha", b"", b"be", b"gamma-delta", b"e" * 10, b"z"]
    target = tmp_path / "spool"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        pool_module._write_all(fd, contents)
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(contents)


class _Touchy:
    """An offloadable analyzer that fails on some files: a bug (a note) or a stop-the-scan error."""

    name = "touchy"
    version = 1
    max_size = 1 << 20
    offload = True

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path.startswith("srv/")

    def analyze(self, path: str, entry: FileEntry, content: io.BytesIO) -> FileFacts | None:
        data = content.read()
        if b"BUG" in data:
            # as parsers do: quote what they choked on (here a line of the file)
            raise ValueError(f"analyzer bug at {data.decode()!r}")
        if b"STOP" in data:
            raise LayerError("must stop the scan")
        return FileFacts(detections=[Detection(kind="test", rule_id="seen", title="seen", severity="LOW",
                                               path=path)])


def test_worker_failures_are_handled_as_in_process(tmp_path: Path) -> None:
    tar = layer_tar([("srv/a", b"fine"), ("srv/b", b"BUG here"), ("srv/c", b"fine too")])
    for workers in (0, 1):
        facts = _walk(tmp_path / str(workers), workers, [_Touchy()], tar)  # type: ignore[list-item]
        assert sorted(facts.files) == ["srv/a", "srv/c"]
        assert [(n.code, n.path) for n in facts.notes] == [("ANALYZER_ERROR", "srv/b")]
        # the note says what failed, never what the file holds (notes are cached and reported)
        assert "analyzer bug at" in facts.notes[0].message and "here" not in facts.notes[0].message
    stop = layer_tar([("srv/a", b"fine"), ("srv/b", b"STOP")])
    for workers in (0, 1):
        with pytest.raises(LayerError, match="must stop the scan"):
            _walk(tmp_path / f"stop{workers}", workers, [_Touchy()], stop)  # type: ignore[list-item]


def test_workers_only_for_big_walks_and_offloadable_analyzers(monkeypatch: pytest.MonkeyPatch) -> None:
    heavy = _analyzers()
    assert worth_a_pool(heavy, MIN_BYTES)
    assert not worth_a_pool(heavy, MIN_BYTES - 1)  # starting workers costs more than it saves
    assert not worth_a_pool(package_analyzers(), 10 * MIN_BYTES)  # nothing to offload
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 4)
    assert default_workers() == 3
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 1)
    assert default_workers() == 0


def test_a_pool_started_beside_other_threads_works(tmp_path: Path) -> None:
    """A server always runs other threads: its pool comes from a forkserver, never from a fork of a threaded
    process, and finds what one process finds."""
    here = _found(_walk(tmp_path / "a", 0))
    gate = threading.Event()
    other = threading.Thread(target=gate.wait)
    other.start()
    try:
        with WorkerPool(1, parent_dir=tmp_path) as pool:
            ctx = pool._executor._mp_context  # type: ignore[union-attr]
            assert ctx.get_start_method() == "forkserver"
            walker = LayerWalker(_analyzers(), Limits(), tmp_path / "b")
            walker.pool = pool
            assert _found(walker.walk_tar(io.BytesIO(_layer()), "", 0)) == here
            assert walker.worker_pids and os.getpid() not in walker.worker_pids
    finally:
        gate.set()
        other.join()


def test_a_warm_rescan_starts_no_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only layers left to walk count towards the size that pays for workers: cached ones cost nothing."""
    from hullscan.imagebuild import Image, Layer, write_oci_layout
    from hullscan.pipeline import Engine, ScanRequest
    from hullscan.settings import Settings

    layout = write_oci_layout(tmp_path / "img", Image([Layer(_layer())]))
    monkeypatch.setattr(pool_module, "MIN_BYTES", 1)
    started: list[int] = []
    original = WorkerPool.__init__

    def spy(self: WorkerPool, workers: int, **kw: object) -> None:
        started.append(workers)
        original(self, workers, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(WorkerPool, "__init__", spy)
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", pool_workers=1)
    request = ScanRequest(f"oci:{layout}:latest", items=("secret", "malware"), remember=False)
    with Engine(settings) as engine:
        cold = engine.scan(request)
    with Engine(settings) as engine:
        warm = engine.scan(request)
        assert engine.pool is None
    assert started == [1]
    assert [c.id for c in warm.checks] == [c.id for c in cold.checks] != []


def test_a_walk_of_large_files_keeps_few_bytes_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-pressure counts bytes, not only batches: a layer of multi-megabyte files never has more than
    IN_FLIGHT_BYTES sent to the workers and not yet settled (three 6 MB batches before)."""
    most = [0]
    original = PoolSession._send

    def send(self: PoolSession, batch: object) -> None:
        original(self, batch)  # type: ignore[arg-type]
        most[0] = max(most[0], sum(b.size for b in self._in_flight))

    monkeypatch.setattr(PoolSession, "_send", send)
    big = 3 << 20  # two files a batch (BATCH_BYTES is 4 MB)
    tar = layer_tar([(f"srv/data/part{i:02d}.log", (b"log line %d\n" % i) * (big // 12)) for i in range(12)])
    facts = _walk(tmp_path, 1, [malware_analyzer(MalwareOptions())], tar)
    assert not facts.notes
    assert 0 < most[0] <= pool_module.IN_FLIGHT_BYTES, most[0]
