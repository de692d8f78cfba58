"""Walk one layer once, as a stream: normalise each member, record whiteouts, feed analyzers.

Nothing is extracted: the tar is read member by member and only files that an analyzer claims are
buffered (in memory when small, else spooled into the work directory), so hostile names can never
write anywhere and memory stays bounded whatever the layer holds.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import stat
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from hullscan.analyzers.base import Analyzer, AnalyzerFailure, analyzers_key, offloadable, release_thread, scratch
from hullscan.cancel import CancelToken
from hullscan.errors import DigestMismatch, HullscanError, LayerError
from hullscan.layers.memory import release_large_buffers
from hullscan.layers.merge import HARD_LINK_OF, moved_facts
from hullscan.layers.paths import OPAQUE_MARKER, WHITEOUT_PREFIX, PathEscape, normalize
from hullscan.layers.pool import PoolSession, Ticket, WorkerPool
from hullscan.layers.streams import LayerStream
from hullscan.layers.tarstream import Readable, TarFormatError, TarMember, TarReader, TarTruncated
from hullscan.model import FileEntry, FileFacts, LayerFacts, Note
from hullscan.oci.source import BlobStream, Limits

IN_MEMORY_MAX = 8 << 20
CHECK_EVERY = 256  # tar members between two looks at the scan's cancel token
_TAR_TYPES = {b"0": "f", b"\0": "f", b"7": "f", b"5": "d", b"2": "l", b"1": "h", b"3": "c", b"4": "b", b"6": "p"}

Opener = Callable[[], Readable]


class LayerWalker:
    def __init__(self, analyzers: Sequence[Analyzer], limits: Limits, workdir: Path) -> None:
        release_large_buffers()  # claimed files of a few MB, freed from several threads (layers/memory.py)
        # Offloadable analyzers last (stable): their results come after the others' for a file, whether
        # they ran here or in a worker, so reports do not depend on the machine.
        self.analyzers = sorted(analyzers, key=offloadable)
        self._offload = [offloadable(a) for a in self.analyzers]
        self._claims = list(enumerate(a.claims for a in self.analyzers))  # asked of every file: bound once
        self.key = analyzers_key(self.analyzers)
        self.limits = limits
        self.workdir = workdir
        self.pool: WorkerPool | None = None  # set by the scanner when heavy analyzers pay (see layers/pool.py)
        self.cancel = CancelToken()  # the scan's, set by the scanner: stop requests and the deadline
        self.worker_pids: set[int] = set()  # processes that analysed files for this walker (tests, diagnostics)

    # -- sources of members -------------------------------------------------------------------------

    def walk_tar(self, raw: BlobStream, diff_id: str, index: int,
                 on_progress: Callable[[int], None] | None = None) -> LayerFacts:
        """Walk a layer blob (gzip, zstd or plain tar), checking its diff_id when one is given."""
        facts = LayerFacts(diff_id=diff_id, analyzers_key=self.key)
        stream = LayerStream(raw, diff_id, self.limits, cancel=self.cancel)
        reader = TarReader(stream)
        interrupted = False
        try:
            with scratch(self.workdir):
                self._process(self._tar_members(reader, facts, index, on_progress, stream), facts, index)
            stream.finish()
        except (HullscanError, DigestMismatch):
            raise
        except TarFormatError as exc:
            if exc.offset == 0 and not isinstance(exc, TarTruncated):
                raise LayerError(f"layer {index} is not a tar archive: {exc}") from None
            raise LayerError(f"layer {index} is truncated or corrupt: {exc}") from None
        except (EOFError, OSError) as exc:
            raise LayerError(f"layer {index} is truncated or corrupt: {exc}") from None
        except (KeyboardInterrupt, SystemExit):
            interrupted = True  # the process is ending: do not wait on a read from a stalled source
            raise
        finally:
            stream.close(interrupted=interrupted)
        facts.uncompressed_size = stream.size
        return facts

    def walk_dir(self, root: Path) -> LayerFacts:
        """Walk a plain root filesystem as if it were one layer. Symlinks are recorded, never followed."""
        facts = LayerFacts(diff_id="", analyzers_key=self.key)
        with scratch(self.workdir):
            self._process(self._dir_members(root, facts), facts, 0)
        return facts

    def _tar_members(self, reader: TarReader, facts: LayerFacts, index: int,
                     on_progress: Callable[[int], None] | None,
                     stream: LayerStream) -> Iterator[tuple[FileEntry, Opener | None]]:
        count = 0
        opener: Opener = lambda: reader  # noqa: E731 - the member's bytes, until the next member is read
        for member in reader:
            count += 1
            if count > self.limits.max_entries:
                raise LayerError(f"layer {index} has more than {self.limits.max_entries:,} entries")
            if count % CHECK_EVERY == 0:
                self.cancel.check()
                if on_progress is not None:
                    on_progress(stream.compressed.count)
            name = self._decode_name(member.name, facts, index)
            if name is None:
                continue
            entry = self._classify(name, member, facts, index)
            if entry is None:
                continue
            yield entry, opener if entry.type == "f" else None
        if on_progress is not None:
            on_progress(stream.compressed.count)

    def _decode_name(self, raw: str, facts: LayerFacts, index: int) -> str | None:
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            shown = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            facts.notes.append(Note("INVALID_NAME", "file name is not valid UTF-8; kept with escapes",
                                    shown, index))
            raw = shown
        if "\0" in raw:
            facts.notes.append(Note("INVALID_NAME", "file name contains a NUL byte; skipped", raw, index))
            return None
        try:
            path = normalize(raw)
        except PathEscape:
            facts.notes.append(Note("PATH_TRAVERSAL", "entry climbs out of the image root; skipped", raw, index))
            return None
        if raw.startswith("/"):
            facts.notes.append(Note("ABSOLUTE_PATH", "absolute entry name taken relative to the image root",
                                    raw, index))
        return path

    def _classify(self, path: str, member: TarMember, facts: LayerFacts, index: int) -> FileEntry | None:
        base = path.rsplit("/", 1)[-1]
        if base.startswith(WHITEOUT_PREFIX):
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            if base == OPAQUE_MARKER:
                facts.opaque_dirs.append(parent)
            else:
                target = base[len(WHITEOUT_PREFIX):]
                if target in ("", ".", ".."):
                    facts.notes.append(Note("INVALID_NAME", "whiteout names no file; ignored", path, index))
                    return None
                facts.whiteouts.append(f"{parent}/{target}" if parent else target)
            return None
        if not path:
            return None  # the root directory itself
        kind = _TAR_TYPES.get(member.type)
        if member.sparse:
            facts.notes.append(Note("UNKNOWN_MEMBER", "sparse file (GNU sparse format) not supported; skipped",
                                    path, index))
            return None
        if kind is None:
            facts.notes.append(Note("UNKNOWN_MEMBER", f"unsupported tar member type {member.type!r}",
                                    path, index))
            return None
        link = ""
        if kind in ("l", "h"):
            link = member.linkname
            try:
                link.encode("utf-8")
            except UnicodeEncodeError:  # kept with escapes, like names: reports must stay valid text
                link = link.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                facts.notes.append(Note("INVALID_NAME", "link target is not valid UTF-8; kept with escapes",
                                        path, index))
            if kind == "h":
                try:
                    link = normalize(link)
                except PathEscape:
                    facts.notes.append(Note("LINK_ESCAPE", "hard link points outside the image; skipped",
                                            path, index))
                    return None
        if member.size < 0:
            raise LayerError(f"member {path} has a negative size")
        if member.size > self.limits.max_layer_uncompressed:
            raise LayerError(f"member {path} claims {member.size:,} bytes, more than a layer may hold "
                             f"({self.limits.max_layer_uncompressed:,})")
        return FileEntry(path, kind, member.size if kind == "f" else 0, member.mode, member.uid, member.gid, link)

    def _dir_members(self, root: Path, facts: LayerFacts) -> Iterator[tuple[FileEntry, Opener | None]]:
        count = 0
        stack = [(root, "")]
        names: dict[tuple[int, int], str] = {}  # (device, inode) -> first path, for files with several names
        while stack:
            directory, rel = stack.pop()
            try:
                items = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                facts.notes.append(Note("UNREADABLE", f"directory not readable: {exc.strerror}", rel))
                continue
            for item in items:
                count += 1
                if count > self.limits.max_entries:
                    raise LayerError(f"the filesystem has more than {self.limits.max_entries:,} entries")
                if count % CHECK_EVERY == 0:
                    self.cancel.check()
                name = os.fsdecode(item.name)
                path = f"{rel}/{name}" if rel else name
                checked = self._decode_name(path, facts, 0)
                if checked is None:
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                entry, opener = _dir_entry(checked, item.path, st)
                if entry is None:
                    continue
                if entry.type == "f" and st.st_nlink > 1:
                    # The same bytes under another name: a hard link, as a tar would record it (read once).
                    first = names.setdefault((st.st_dev, st.st_ino), checked)
                    if first != checked:
                        entry, opener = dataclasses.replace(entry, type="h", size=0, linkname=first), None
                if entry.type == "d":
                    stack.append((Path(item.path), path))
                yield entry, opener

    # -- analysis --------------------------------------------------------------------------------

    def _process(self, members: Iterator[tuple[FileEntry, Opener | None]], facts: LayerFacts, index: int) -> None:
        try:
            self._analyse(members, facts, index)
        finally:
            release_thread(self.analyzers)  # what they keep for this thread, freed on it (see release_thread)

    def _analyse(self, members: Iterator[tuple[FileEntry, Opener | None]], facts: LayerFacts, index: int) -> None:
        produced: dict[str, FileFacts] = {}
        pending: dict[str, Ticket] = {}  # path -> analyses running in a worker
        session = PoolSession(self.pool, self.analyzers) if self.pool is not None else None
        links = _HardLinks()
        for entry, opener in members:
            facts.entries.append(entry)
            # A later member with the same name replaces the earlier one.
            links.replaced(entry.path, produced)
            pending.pop(entry.path, None)
            claimed = [i for i, claims in self._claims if claims(entry.path, entry)] if entry.type in ("f", "h") else []
            if not claimed:
                continue
            if entry.type == "h":
                self._settle(entry.linkname, pending, produced, facts, index)
                if not links.add(entry.path, entry.linkname, produced):
                    facts.notes.append(Note("HARDLINK_SKIPPED", f"hard link to {entry.linkname} was not analysed",
                                            entry.path, index))
                continue
            readable = []
            for i in claimed:
                a = self.analyzers[i]
                if entry.size > a.max_size:
                    facts.notes.append(Note("FILE_TOO_LARGE", f"{entry.size:,} bytes is over the {a.name} "
                                            f"analyzer's limit of {a.max_size:,}; not analysed", entry.path, index))
                else:
                    readable.append(i)
            if not readable or opener is None:
                continue
            with self._buffer(opener, entry) as content:
                merged = FileFacts()
                remote: list[int] = []
                for i in readable:
                    a = self.analyzers[i]
                    if session is not None and self._offload[i] and isinstance(content, io.BytesIO):
                        remote.append(i)
                        continue
                    content.seek(0)
                    result = _guarded(a.name, entry.path, index, facts.notes, a.analyze, entry.path, entry, content)
                    if result is not None:
                        _collect_notes(a.name, result, entry.path, index, facts.notes)
                        _absorb(merged, result)
                if not merged.empty():
                    produced[entry.path] = merged
                if remote:
                    assert session is not None and isinstance(content, io.BytesIO)
                    pending[entry.path] = session.submit(entry.path, entry, content.getvalue(), tuple(remote))
        for path in list(pending):
            self._settle(path, pending, produced, facts, index)
        if session is not None:
            self.worker_pids |= session.worker_pids
        links.record(produced)
        facts.files = produced

    def _settle(self, path: str, pending: dict[str, Ticket], produced: dict[str, FileFacts], facts: LayerFacts,
                index: int) -> None:
        """Merge in what workers found for `path` (waiting for them if need be)."""
        ticket = pending.pop(path, None)
        if ticket is None:
            return
        for i, outcome in ticket.result():
            name = self.analyzers[i].name
            result = _guarded(name, path, index, facts.notes, _reraise, outcome) \
                if isinstance(outcome, BaseException) else outcome
            if result is not None:
                _collect_notes(name, result, path, index, facts.notes)
                merged = produced.setdefault(path, FileFacts())
                _absorb(merged, result)
                if merged.empty():
                    del produced[path]

    def _buffer(self, opener: Opener, entry: FileEntry) -> IO[bytes]:
        src = opener()
        if entry.size <= IN_MEMORY_MAX:
            data = _read_exact(src, entry.size)
            return io.BytesIO(data)
        self.workdir.mkdir(parents=True, exist_ok=True)
        spool = tempfile.NamedTemporaryFile(dir=self.workdir, prefix="claimed-", delete=True)  # noqa: SIM115
        try:
            remaining = entry.size
            while remaining > 0:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    raise LayerError(f"layer is truncated inside {entry.path}")
                spool.write(chunk)
                remaining -= len(chunk)
            spool.flush()
            spool.seek(0)
        except BaseException:
            # Closed (and removed) now: left to the garbage collector, it would outlive the work directory
            # and print "Exception ignored ... FileNotFoundError" after the scan has ended.
            spool.close()
            raise
        return spool


class _LinkGroup:
    """Names in one layer for the same analysed bytes: the holder has their facts, the others link to it."""

    __slots__ = ("holder", "origin", "heirs")

    def __init__(self, path: str) -> None:
        self.holder = path
        self.origin = path  # where the bytes were read: the path their facts name
        self.heirs: deque[str] = deque()  # the links, oldest first (replaced ones are skipped when met)


class _HardLinks:
    """Hard links of one layer to files already analysed.

    The same bytes under several names are one set of facts: a link records which path holds them
    (HARD_LINK_OF) instead of a copy of its packages and detections, so a thousand links to a 20,000-package
    database cost a thousand small records, not twenty million packages. When a later member replaces the
    holder, the facts move once to its oldest surviving link.
    """

    def __init__(self) -> None:
        self._groups: dict[str, _LinkGroup] = {}  # every name of a linked file -> its group

    def add(self, path: str, target: str, produced: dict[str, FileFacts]) -> bool:
        """Link `path` to `target`; False when nothing is known of the target's bytes."""
        group = self._groups.get(target)
        if group is None:
            if target not in produced:
                return False
            group = self._groups[target] = _LinkGroup(target)
        group.heirs.append(path)
        self._groups[path] = group
        return True

    def replaced(self, path: str, produced: dict[str, FileFacts]) -> None:
        """A new member named `path`: the earlier one's facts go, unless links still name its bytes."""
        kept = produced.pop(path, None)
        group = self._groups.pop(path, None)
        if group is None or group.holder != path or kept is None:
            return
        while group.heirs:
            heir = group.heirs.popleft()
            if self._groups.get(heir) is group:
                group.holder = heir
                produced[heir] = kept
                return

    def record(self, produced: dict[str, FileFacts]) -> None:
        """Write the links into the layer's facts: a marker for each link, the facts at each holder."""
        for path, group in self._groups.items():
            if path != group.holder:
                produced[path] = FileFacts(hints={HARD_LINK_OF: group.holder})
            elif group.origin != path:
                produced[path] = moved_facts(produced[path], group.origin, path)


def _read_exact(src: Readable, size: int) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise LayerError(f"layer is truncated: expected {size} bytes, got {len(data)}")
    return data


def _dir_entry(path: str, real: str, st: os.stat_result) -> tuple[FileEntry | None, Opener | None]:
    mode = st.st_mode
    perm = stat.S_IMODE(mode)
    if stat.S_ISDIR(mode):
        return FileEntry(path, "d", 0, perm, st.st_uid, st.st_gid), None
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(real)
        except OSError:
            target = ""
        return FileEntry(path, "l", 0, perm, st.st_uid, st.st_gid, target), None
    if stat.S_ISREG(mode):
        def opener() -> Readable:
            # O_NOFOLLOW: a file swapped for a symlink after the scandir must not lead outside the root;
            # O_NONBLOCK and the fstat: nor may one swapped for a FIFO or a device block or be read.
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise LayerError(f"{path} changed to a special file while it was being read")
            return os.fdopen(fd, "rb")
        return FileEntry(path, "f", st.st_size, perm, st.st_uid, st.st_gid), opener
    kind = "c" if stat.S_ISCHR(mode) else "b" if stat.S_ISBLK(mode) else "p" if stat.S_ISFIFO(mode) else None
    if kind is None:
        return None, None
    return FileEntry(path, kind, 0, perm, st.st_uid, st.st_gid), None


def _reraise(exc: BaseException) -> FileFacts | None:
    raise exc


def _guarded(analyzer: str, path: str, index: int, notes: list[Note],
             work: Callable[..., FileFacts | None], *args: Any) -> FileFacts | None:
    """Run an analyzer's work; its failures become notes, except the ones that must stop the scan."""
    try:
        return work(*args)
    except AnalyzerFailure as exc:
        notes.append(Note("ANALYZER_FAILED", f"{analyzer}: {exc}", path, index))
    except (HullscanError, MemoryError):
        raise
    except Exception as exc:  # an analyzer bug must not lose the whole scan
        notes.append(Note("ANALYZER_ERROR", f"{analyzer}: {type(exc).__name__}: {_without_content(str(exc))}", path,
                          index))
    return None


_QUOTED = re.compile(r"b?'[^']*'|b?\"[^\"]*\"")


def _without_content(message: str) -> str:
    """An exception's text without what it quotes: parsers quote the bytes they choked on, and a note is cached and
    reported, so it must not carry a fragment of, say, a key file."""
    message = _QUOTED.sub("'…'", message)
    return message if len(message) <= 200 else message[:199] + "…"


def _collect_notes(analyzer: str, result: FileFacts, path: str, index: int, notes: list[Note]) -> None:
    """Analyzers report partial results as hints: plain warnings, or notes with a code and a path."""
    for warning in result.hints.pop("warnings", []):
        notes.append(Note("ANALYZER_WARNING", f"{analyzer}: {warning}", path, index))
    for n in result.hints.pop("notes", []):
        notes.append(Note(str(n.get("code", "ANALYZER_WARNING")), f"{analyzer}: {n.get('message', '')}",
                          str(n.get("path") or path), index))


def _absorb(into: FileFacts, result: FileFacts) -> None:
    into.packages.extend(result.packages)
    if result.os is not None and (into.os is None or result.os.priority > into.os.priority):
        into.os = result.os
    into.hints.update(result.hints)
    into.detections.extend(result.detections)
    into.private.update(result.private)
