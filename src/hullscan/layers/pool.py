"""Heavy analyzers (secrets, malware) in worker processes, so scans use more than one core.

Threads cannot do this: the secret engine's regexes and yara-x's binding hold the GIL while they work
(measured: a YARA-X scan thread and a Python loop took as long together as one after the other). So the
walker keeps parsing tar streams in the scanning process and hands each claimed file's bytes to a worker,
which runs the offloadable analyzers (`analyzers.base.offloadable`) on it.

- One `WorkerPool` per process, created once by its owner (the engine of a CLI run, a service, a job worker)
  and shared by every scan running there, from any thread. Its processes come from a `forkserver` (or are
  forked while the owner is still single-threaded, which is cheaper), so a server with many threads can use
  it safely.
- Scans differ in their analyzers (a user's secret rules, YARA rules, blocklists): each batch carries its
  analyzers pickled (a few hundred bytes: analyzers pickle as their options) and a worker builds each set
  once and keeps it by key.
- Per layer walk, a `PoolSession` groups files into batches (a task per file would cost more in queueing
  than the analysis) and keeps at most `2 * workers + 1` batches outstanding: when the workers fall behind,
  the walker waits, so memory stays bounded however many scans share the pool.
- A batch's file contents go through a spool file in the pool's directory (private, removed as soon as the
  worker has read it); only the paths, entries and sizes go through the executor's pipe.
- A worker that dies costs nothing: the batches it held are analysed in the scanning process, and the next
  batch gets a fresh set of processes.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from hullscan.analyzers.base import Analyzer, analyzers_key, offloadable, scratch
from hullscan.layers.memory import release_large_buffers
from hullscan.model import FileEntry, FileFacts

BATCH_BYTES = 4 << 20
BATCH_FILES = 512
# Bytes one walk keeps in batches sent but not yet settled (at least one batch goes whatever its size). Each is held
# twice meanwhile (the items and their pickled copy in the executor's queue) and several layers walk at once: a
# count of batches alone let a layer of 8 MB files hold over 100 MB.
IN_FLIGHT_BYTES = 3 * BATCH_BYTES
MAX_WORKERS = 4
# Starting and feeding workers costs more than it saves on small walks: a one-off scan (the CLI) below this
# many compressed bytes to walk stays in one process. A long-running owner keeps its pool for every scan.
MIN_BYTES = 32 << 20
_IOV_MAX = 1024  # buffers one writev may take (Linux's IOV_MAX)
_KEPT_SETS = 8  # analyzer sets a worker keeps built (one per distinct scan configuration)

Item = tuple[str, FileEntry, bytes, tuple[int, ...]]  # path, entry, content, indices of the analyzers to run
Head = tuple[str, FileEntry, int, tuple[int, ...]]  # an item as sent: its content's size instead of the content
# Per analyzer: its facts (or None), or the exception it raised, for the walker to handle as if in-process.
Outcome = list[tuple[int, FileFacts | BaseException | None]]

# Worker-process state, set by the pool's initializer: its scratch directory and the analyzer sets built so
# far. Per-process state is how a process pool hands workers their long-lived objects; the scanning process
# keeps none of it.
_WORKDIR: Path | None = None
_SETS: OrderedDict[str, list[Analyzer | None]] = OrderedDict()


def _start_worker(workdir: Path, preload: list[tuple[str, bytes]]) -> None:
    global _WORKDIR
    # Ctrl-C reaches the whole process group, and a service manager's SIGTERM often the whole control group: the
    # scanning process stops the scan and then closes the pool, so a worker ignores both (it would die mid-batch,
    # printing a KeyboardInterrupt traceback, or break the pool under the scan that is stopping).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    release_large_buffers()  # the batches' files, as in the scanning process
    _WORKDIR = workdir
    for key, spec in preload:
        _analyzers(key, spec)


def _analyzers(key: str, spec: bytes) -> list[Analyzer | None]:
    found = _SETS.get(key)
    if found is None:
        found = pickle.loads(spec)  # noqa: S301 - our own bytes, from the process that started this one
        for a in found:
            prepare = getattr(a, "prepare", None) if a is not None else None
            if callable(prepare):
                prepare()
        _SETS[key] = found
        while len(_SETS) > _KEPT_SETS:
            _SETS.popitem(last=False)
    _SETS.move_to_end(key)
    return found


def _analyze_batch(key: str, spec: bytes, heads: list[Head], spool: str) -> tuple[int, list[Outcome]]:
    assert _WORKDIR is not None, "worker not initialised"
    analyzers = _analyzers(key, spec)
    with open(spool, "rb") as f:
        contents = f.read()
    _remove(spool)
    out = []
    offset = 0
    with scratch(_WORKDIR / f"worker-{os.getpid()}"):
        for path, entry, size, indices in heads:
            out.append(run_analyzers(analyzers, (path, entry, contents[offset:offset + size], indices)))
            offset += size
    return os.getpid(), out


def run_analyzers(analyzers: list[Analyzer] | list[Analyzer | None], item: Item) -> Outcome:
    path, entry, data, indices = item
    out: Outcome = []
    for i in indices:
        analyzer = analyzers[i]
        assert analyzer is not None, "only offloadable analyzers are sent to workers"
        try:
            out.append((i, analyzer.analyze(path, entry, io.BytesIO(data))))
        except Exception as exc:  # noqa: BLE001 - handed back; the walker decides what stops the scan
            out.append((i, exc))
    return out


def _noop() -> int:
    return os.getpid()


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """One fewer than the CPUs (the scanning process parses tar streams meanwhile), at most MAX_WORKERS."""
    return max(0, min(MAX_WORKERS, available_cpus() - 1))


def worth_a_pool(analyzers: list[Analyzer], walk_bytes: int) -> bool:
    """Whether a one-off scan walking `walk_bytes` compressed bytes with these analyzers should start workers."""
    return walk_bytes >= MIN_BYTES and any(offloadable(a) for a in analyzers)


class WorkerPool:
    """Worker processes shared by every scan of this process; see the module docstring."""

    def __init__(self, workers: int, *, parent_dir: Path | None = None,
                 preload: list[Analyzer] | None = None) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.workers = workers
        if parent_dir is not None:
            parent_dir.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="hullscan-pool-", dir=parent_dir))
        self._preload = [] if preload is None else [_spec(preload)]
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self._start()

    def _start(self) -> None:
        # fork is cheaper (the workers inherit loaded modules) but only safe while no other thread runs.
        single = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if single else "forkserver")
        if not single:
            ctx.set_forkserver_preload(["hullscan.layers.pool", "hullscan.secrets.engine",
                                        "hullscan.malware.yara_engine"])
        self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_start_worker,
                                             initargs=(self.workdir, self._preload))
        # Start the processes now: with fork, before the caller starts any thread of its own.
        self._executor.submit(_noop).result()

    def submit(self, key: str, spec: bytes, items: list[Item]) -> Future[tuple[int, list[Outcome]]]:
        """Queue a batch; raises RuntimeError once the pool is closed, OSError when its spool cannot be written."""
        heads: list[Head] = [(path, entry, len(data), indices) for path, entry, data, indices in items]
        spool = self._spool([item[2] for item in items])
        try:
            future = self._submit(key, spec, heads, spool)
        except BaseException:
            _remove(spool)
            raise
        future.add_done_callback(lambda _: _remove(spool))  # the worker removes it; this covers a dead one
        return future

    def _submit(self, key: str, spec: bytes, heads: list[Head], spool: str) -> Future[tuple[int, list[Outcome]]]:
        with self._lock:
            if self._closed:
                raise RuntimeError("pool closed")
            if self._executor is None:
                self._start()
            assert self._executor is not None
            try:
                return self._executor.submit(_analyze_batch, key, spec, heads, spool)
            except BrokenProcessPool:
                # A worker died: the batches it held fail (their sessions analyse them in-process), and
                # this one goes to a fresh set of workers.
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._start()
                assert self._executor is not None
                return self._executor.submit(_analyze_batch, key, spec, heads, spool)

    def _spool(self, contents: list[bytes]) -> str:
        """The batch's file contents, one after the other, in a file of the pool's directory. Sent through the
        executor's pipe instead, they cost the scanning process a pickled copy and a write per 64 KiB under the
        GIL (measured: half the CPU the workers saved it); a writev is one copy, made with the GIL released."""
        fd, path = tempfile.mkstemp(prefix="batch-", dir=self.workdir)
        try:
            _write_all(fd, contents)
        except BaseException:
            os.close(fd)
            _remove(path)
            raise
        os.close(fd)
        return path

    def close(self) -> None:
        """Stop the workers and remove their scratch space (outstanding batches are dropped)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, contents: list[bytes]) -> None:
    views = [memoryview(c) for c in contents if c]
    while views:
        group = views[:_IOV_MAX]
        written = os.writev(fd, group)
        done = 0
        while done < len(group) and written >= len(group[done]):
            written -= len(group[done])
            done += 1
        views = views[done:]
        if written:
            views[0] = views[0][written:]


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _spec(analyzers: list[Analyzer]) -> tuple[str, bytes]:
    """A key and the pickled offloadable analyzers, at their walker positions (None elsewhere: never run there)."""
    remote = [a for a in analyzers if offloadable(a)]
    return analyzers_key(remote), pickle.dumps([a if offloadable(a) else None for a in analyzers])


@dataclass
class _Batch:
    items: list[Item] = field(default_factory=list)
    size: int = 0
    future: Future[tuple[int, list[Outcome]]] | None = None
    outcomes: list[Outcome] | None = None


class Ticket:
    """One file's outcome, once its batch is back."""

    def __init__(self, session: PoolSession, batch: _Batch, slot: int) -> None:
        self._session, self._batch, self._slot = session, batch, slot

    def result(self) -> Outcome:
        return self._session.outcomes(self._batch)[self._slot]


class PoolSession:
    """One layer walk's use of a shared pool: batching, back-pressure and the in-process fallback."""

    def __init__(self, pool: WorkerPool, analyzers: list[Analyzer]) -> None:
        self.pool = pool
        self.analyzers = analyzers
        self.key, self.spec = _spec(analyzers)
        self._max_in_flight = 2 * pool.workers + 1
        self._open: _Batch | None = None
        self._in_flight: deque[_Batch] = deque()
        self.worker_pids: set[int] = set()  # the processes that analysed this walk's batches

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
        while self._in_flight and (len(self._in_flight) >= self._max_in_flight
                                   or sum(b.size for b in self._in_flight) + batch.size > IN_FLIGHT_BYTES):
            self.outcomes(self._in_flight[0])
        try:
            batch.future = self.pool.submit(self.key, self.spec, batch.items)
        except (RuntimeError, BrokenProcessPool, OSError):
            # The pool is closed, cannot start workers or cannot spool the batch (a full disk): analyse it here.
            self._here(batch)
            return
        self._in_flight.append(batch)

    def outcomes(self, batch: _Batch) -> list[Outcome]:
        if batch.outcomes is None:
            if batch.future is None:
                self._send(batch)
            if batch.future is not None and batch.outcomes is None:
                try:
                    pid, batch.outcomes = batch.future.result()
                    self.worker_pids.add(pid)
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
