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
from hullscan.layers.pool import MIN_BYTES, AnalysisPool, worker_count
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
          tar: bytes | None = None) -> LayerFacts:
    walker = LayerWalker(analyzers or _analyzers(), Limits(), tmp_path / "work")
    if workers:
        walker.pool = AnalysisPool(walker.analyzers, workers, tmp_path / "work")
    try:
        return walker.walk_tar(io.BytesIO(tar if tar is not None else _layer()), "", 0)
    finally:
        if walker.pool is not None:
            walker.pool.close()


def _found(facts: LayerFacts) -> dict[str, list[tuple[str, str, int]]]:
    return {path: [(d.kind, d.rule_id, d.line) for d in f.detections]
            for path, f in sorted(facts.files.items()) if f.detections}


def test_workers_find_what_one_process_finds_in_the_same_order(tmp_path: Path) -> None:
    here = _found(_walk(tmp_path / "a", 0))
    assert set(here) == {"srv/www/shell.php", "opt/x/config.json", "srv/app/.env", "srv/app/.env-copy", "tmp/eicar.com",
                         "usr/local/bin/kworker", "srv/app/lib/mod0003.py"}
    assert _found(_walk(tmp_path / "b", 1)) == here
    assert _found(_walk(tmp_path / "c", 2)) == here


def test_a_dead_worker_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = _found(_walk(tmp_path / "a", 0))
    killed: list[int] = []
    original = AnalysisPool._send

    def send_then_kill(self: AnalysisPool, batch: object) -> None:
        original(self, batch)  # type: ignore[arg-type]
        processes = getattr(self._executor, "_processes", None) or {}
        if not killed and processes:
            pid = next(iter(processes))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    monkeypatch.setattr(pool_module, "BATCH_FILES", 64)  # several batches, so some are in flight at the kill
    monkeypatch.setattr(AnalysisPool, "_send", send_then_kill)
    assert _found(_walk(tmp_path / "b", 1)) == here
    assert killed


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
            raise ValueError("analyzer bug")
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
    stop = layer_tar([("srv/a", b"fine"), ("srv/b", b"STOP")])
    for workers in (0, 1):
        with pytest.raises(LayerError, match="must stop the scan"):
            _walk(tmp_path / f"stop{workers}", workers, [_Touchy()], stop)  # type: ignore[list-item]


def test_workers_only_for_big_walks_and_offloadable_analyzers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 4)
    # other tests may leave server threads running: pretend this is the only one, then start one for real
    monkeypatch.setattr(pool_module, "_other_threads", lambda: False)
    heavy = _analyzers()
    assert worker_count(heavy, MIN_BYTES) == 3
    assert worker_count(heavy, MIN_BYTES - 1) == 0  # forking costs more than it saves
    assert worker_count(package_analyzers(), 10 * MIN_BYTES) == 0  # nothing to offload
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 1)
    assert worker_count(heavy, 10 * MIN_BYTES) == 0
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 4)
    monkeypatch.undo()
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 4)
    gate = threading.Event()
    other = threading.Thread(target=gate.wait)
    other.start()
    try:
        assert worker_count(heavy, 10 * MIN_BYTES) == 0  # never fork a process that runs other threads
    finally:
        gate.set()
        other.join()


def test_a_warm_rescan_starts_no_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only layers left to walk count towards the size that pays for workers: cached ones cost nothing."""
    from hullscan.imagebuild import Image, Layer, write_oci_layout
    from hullscan.scan import Scanner, ScanOptions
    from hullscan.scan import worker_count as scan_worker_count

    layout = write_oci_layout(tmp_path / "img", Image([Layer(_layer())]))
    asked: list[int] = []

    def counting(analyzers: list[Analyzer], walk_bytes: int) -> int:
        asked.append(walk_bytes)
        return scan_worker_count(analyzers, walk_bytes)

    monkeypatch.setattr("hullscan.scan.worker_count", counting)
    monkeypatch.setattr(pool_module, "MIN_BYTES", 1)
    monkeypatch.setattr(pool_module, "_other_threads", lambda: False)
    monkeypatch.setattr(pool_module, "available_cpus", lambda: 2)
    started: list[int] = []
    original = AnalysisPool.__init__

    def spy(self: AnalysisPool, analyzers: list[Analyzer], workers: int, workdir: Path) -> None:
        started.append(workers)
        original(self, analyzers, workers, workdir)

    monkeypatch.setattr(AnalysisPool, "__init__", spy)
    options = ScanOptions(cache_dir=tmp_path / "cache", workdir=tmp_path / "work", analyzers=_analyzers())
    cold = Scanner(options).scan(f"oci:{layout}:latest")
    warm = Scanner(options).scan(f"oci:{layout}:latest")
    assert started == [1] and asked[0] > 0 and asked[1] == 0
    assert [d.rule_id for d in warm.detections] == [d.rule_id for d in cold.detections] != []
