"""Heavy analyzers (secrets, malware) in worker processes, so a scan uses more than one core.

Threads cannot do this: the secret engine's regexes and yara-x's binding hold the GIL while they work
(measured: a YARA-X scan thread and a Python loop took as long together as one after the other). So
the walker keeps parsing the tar in the scanning process and hands each claimed file's bytes to a
worker, which runs the offloadable analyzers (`analyzers.base.offloadable`) on it.

- Workers are forked before the layer walk starts (no other thread exists yet), so they inherit the
  compiled rules instead of rebuilding them, and nothing but file bytes and results crosses the pipe.
- Files travel in batches (a task per file would cost more in queueing than the analysis) and at most
  `2 * workers + 1` batches are outstanding: when the workers fall behind, the walker waits, and memory
  stays bounded.
- A worker that dies costs nothing: its batches are analysed in the scanning process instead.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hullscan.analyzers.base import Analyzer, offloadable, scratch
from hullscan.model import FileEntry, FileFacts

BATCH_BYTES = 4 << 20
BATCH_FILES = 512
MAX_WORKERS = 4
# Forking and feeding a worker costs more than it saves on small images: below this many compressed
# bytes to walk, the scan stays in one process.
MIN_BYTES = 32 << 20

Item = tuple[str, FileEntry, bytes, tuple[int, ...]]  # path, entry, content, indices of the analyzers to run
# Per analyzer: its facts (or None), or the exception it raised, for the walker to handle as if in-process.
Outcome = list[tuple[int, FileFacts | BaseException | None]]

# The worker's analyzers and scratch directory, set by the pool's initializer in each forked worker (per-process
# state is how a process pool hands a worker its long-lived objects; the scanning process keeps none).
_WORKER: tuple[list[Analyzer], Path] | None = None


def _start_worker(analyzers: list[Analyzer], workdir: Path) -> None:
    global _WORKER
    _WORKER = (analyzers, workdir)


def _analyze_batch(items: list[Item]) -> list[Outcome]:
    assert _WORKER is not None, "worker not initialised"
    analyzers, workdir = _WORKER
    with scratch(workdir / f"worker-{os.getpid()}"):
        return [run_analyzers(analyzers, item) for item in items]


def run_analyzers(analyzers: list[Analyzer], item: Item) -> Outcome:
    path, entry, data, indices = item
    out: Outcome = []
    for i in indices:
        try:
            out.append((i, analyzers[i].analyze(path, entry, io.BytesIO(data))))
        except Exception as exc:  # noqa: BLE001 - handed back; the walker decides what stops the scan
            out.append((i, exc))
    return out


def _noop() -> None:
    return None


def _other_threads() -> bool:
    return threading.active_count() > 1


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(analyzers: list[Analyzer], walk_bytes: int) -> int:
    """Workers worth starting for a walk of `walk_bytes` compressed bytes with these analyzers (0: none)."""
    if walk_bytes < MIN_BYTES or not any(offloadable(a) for a in analyzers):
        return 0
    if _other_threads():
        return 0  # forking a process that runs other threads is unsafe; such callers scan in-process
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return max(0, min(MAX_WORKERS, available_cpus() - 1))


@dataclass
class _Batch:
    items: list[Item] = field(default_factory=list)
    size: int = 0
    future: Future[list[Outcome]] | None = None
    outcomes: list[Outcome] | None = None


class Ticket:
    """One file's outcome, once its batch is back."""

    def __init__(self, pool: AnalysisPool, batch: _Batch, slot: int) -> None:
        self._pool, self._batch, self._slot = pool, batch, slot

    def result(self) -> Outcome:
        return self._pool.outcomes(self._batch)[self._slot]


class AnalysisPool:
    def __init__(self, analyzers: list[Analyzer], workers: int, workdir: Path) -> None:
        self.analyzers = analyzers
        for a in analyzers:
            prepare = getattr(a, "prepare", None)
            if offloadable(a) and callable(prepare):
                prepare()
        self._max_in_flight = 2 * workers + 1
        self._open: _Batch | None = None
        self._in_flight: deque[_Batch] = deque()
        self._executor: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker,
            initargs=(analyzers, workdir))
        # Fork every worker now, while this is still the only thread (the executor forks them all on the
        # first task); the layer walk's prefetch thread starts later.
        self._executor.submit(_noop).result()

    def submit(self, path: str, entry: FileEntry, data: bytes, indices: tuple[int, ...]) -> Ticket:
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
        batch.items.append((path, entry, data, indices))
        batch.size += len(data)
        ticket = Ticket(self, batch, len(batch.items) - 1)
        if batch.size >= BATCH_BYTES or len(batch.items) >= BATCH_FILES:
            self._send(batch)
        return ticket

    def _send(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None
        while len(self._in_flight) >= self._max_in_flight:
            self.outcomes(self._in_flight[0])
        try:
            if self._executor is None:
                raise RuntimeError("pool closed")
            batch.future = self._executor.submit(_analyze_batch, batch.items)
        except RuntimeError:  # the pool broke (a worker died): analyse here
            self._here(batch)
            return
        self._in_flight.append(batch)

    def outcomes(self, batch: _Batch) -> list[Outcome]:
        if batch.outcomes is None:
            if batch.future is None:
                self._send(batch)
            if batch.future is not None and batch.outcomes is None:
                try:
                    batch.outcomes = batch.future.result()
                except Exception:  # noqa: BLE001 - the worker died or failed as a whole: the bytes are still here
                    self._here(batch)
            batch.items = []
            if batch in self._in_flight:
                self._in_flight.remove(batch)
        assert batch.outcomes is not None
        return batch.outcomes

    def _here(self, batch: _Batch) -> None:
        batch.outcomes = [run_analyzers(self.analyzers, item) for item in batch.items]
        batch.items = []

    def close(self) -> None:
        """Stop the workers (outstanding batches are dropped: the walker settles every file before this)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
