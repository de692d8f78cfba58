"""The analyzer plug-in interface.

An analyzer looks at one file at a time: the walker asks `claims` with only the path and tar header
(cheap, called for every member), and reads the content only for claimed files, handing it over as a
seekable binary stream (spooled to the work directory when large). Analyzers must never execute
image content and must treat every byte as hostile: bad input yields a Note, never an exception.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Protocol

from hullscan.model import FileEntry, FileFacts


class Analyzer(Protocol):
    name: str
    version: int
    # Files larger than this are not read (a Note says so); keeps memory and time bounded.
    max_size: int

    def claims(self, path: str, entry: FileEntry) -> bool: ...

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None: ...


def release_thread(analyzers: Sequence[Analyzer]) -> None:
    """Let each analyzer free what it keeps for the calling thread, on that thread: the walker calls this when a
    walk ends. An analyzer opts in with a `release()` method; YARA-X scanners, for one, must be freed on the thread
    that made them (elsewhere they leak, with an "unsendable" error)."""
    for analyzer in analyzers:
        release = getattr(analyzer, "release", None)
        if release is not None:
            release()


def offloadable(analyzer: Analyzer) -> bool:
    """Whether the walker may run this analyzer in a worker process (see layers/pool.py).

    An analyzer opts in with a class attribute `offload = True` when its work is heavy and a pure function of
    the file's path, entry and bytes: it runs in a forked copy of the scanning process, so it must not rely
    on state it changes while scanning, and its results and errors must pickle. Its `prepare()`, if it has
    one, is called before the fork, so costly set-up (compiling rules) is done once and inherited.
    """
    return bool(getattr(analyzer, "offload", False))


class AnalyzerFailure(Exception):
    """Raised by an analyzer for content it cannot parse; the walker turns it into a Note."""


def analyzers_key(analyzers: Sequence[Analyzer]) -> str:
    """Cache key part: changes whenever the set of analyzers or any of their versions changes."""
    text = ",".join(sorted(f"{a.name}:{a.version}" for a in analyzers))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The scan's private work directory. Analyzers that need scratch files (sqlite copies, nested archives)
# put them here, so a scan never writes outside its work directory. A context variable rather than a
# parameter keeps the analyzer interface tiny; the walker sets it for the duration of a layer.
_SCRATCH: ContextVar[Path | None] = ContextVar("hullscan_scratch", default=None)


def scratch_dir() -> str:
    d = _SCRATCH.get()
    return str(d) if d is not None else tempfile.gettempdir()


@contextmanager
def scratch(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    token = _SCRATCH.set(directory)
    try:
        yield
    finally:
        _SCRATCH.reset(token)


def skipped_note(code: str, what: str, examples: list[str], limit: int = 5) -> dict[str, str]:
    """A note (for `FileFacts.hints["notes"]`) about records an analyzer saw and did not report: nothing is
    dropped in silence. `what` says how many of what and why ("2 entries without a version")."""
    shown = ", ".join(examples[:limit]) + (f" and {len(examples) - limit} more" if len(examples) > limit else "")
    return {"code": code, "message": f"{what}: {shown}" if shown else what}


def read_within(fp: IO[bytes], file_size: int, offset: int, size: int) -> bytes:
    """Exactly `size` bytes at `offset` of a binary whose headers may lie; ValueError when they are not all
    there. The binary readers (ELF, PE) turn that into their own malformed-file error."""
    if offset < 0 or size < 0 or offset + size > file_size:
        raise ValueError(f"read of {size} bytes at {offset} is outside the file ({file_size} bytes)")
    fp.seek(offset)
    data = fp.read(size)
    if len(data) != size:
        raise ValueError("short read")
    return data
