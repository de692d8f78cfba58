"""Installed rpm packages, from the rpm database in any of its three formats.

The format is recognised from the file's content, not its name: SQLite (`rpmdb.sqlite`), Berkeley DB
hash (`Packages`) or NDB (`Packages.db`). Each record is an rpm header blob, from which one Package is
built; the gpg-pubkey pseudo-packages that hold imported signing keys are skipped.

A record that cannot be parsed is skipped and reported in `FileFacts.hints["warnings"]`; a database
from which nothing readable comes out raises AnalyzerFailure. The purl is left to the merge step,
which knows the distribution.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Generator
from typing import IO

from hullscan import licenses
from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.binsigs import may_identify
from hullscan.analyzers.ownership import owned_hint
from hullscan.analyzers.rpmdb import Problems, read_at, stream_size
from hullscan.analyzers.rpmdb import header as h
from hullscan.analyzers.rpmdb.bdb import is_bdb, read_bdb
from hullscan.analyzers.rpmdb.header import Header, HeaderError
from hullscan.analyzers.rpmdb.ndb import is_ndb, read_ndb
from hullscan.analyzers.rpmdb.sqlite import is_sqlite, read_sqlite
from hullscan.model import FileEntry, FileFacts, Package

DB_DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm", "usr/share/rpm")
DB_FILES = ("Packages", "Packages.db", "rpmdb.sqlite")
CLAIMED_PATHS = frozenset(f"{d}/{f}" for d in DB_DIRS for f in DB_FILES)

PSEUDO_PACKAGES = frozenset({"gpg-pubkey"})

Reader = Callable[[IO[bytes], int, Problems], Generator[tuple[int, bytes], None, None]]
_FORMATS: tuple[tuple[str, Callable[[bytes], bool], Reader], ...] = (
    ("rpm SQLite", is_sqlite, read_sqlite),
    ("rpm NDB", is_ndb, read_ndb),
    ("Berkeley DB", is_bdb, read_bdb),
)

# Extra header values kept in Package.metadata: (metadata key, tag, kind).
_METADATA_TAGS = (
    ("summary", h.TAG_SUMMARY, "s"),
    ("url", h.TAG_URL, "s"),
    ("packager", h.TAG_PACKAGER, "s"),
    ("distribution", h.TAG_DISTRIBUTION, "s"),
    ("modularitylabel", h.TAG_MODULARITYLABEL, "s"),
    ("sha256header", h.TAG_SHA256HEADER, "s"),
    ("sha1header", h.TAG_SHA1HEADER, "s"),
    ("buildtime", h.TAG_BUILDTIME, "i"),
    ("installtime", h.TAG_INSTALLTIME, "i"),
)


def split_source_rpm(filename: str) -> tuple[str, str]:
    """("util-linux", "2.32.1-42.el8_8") from "util-linux-2.32.1-42.el8_8.src.rpm"; ("", "") if odd."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if filename.endswith(suffix):
            base = filename[: -len(suffix)]
            break
    else:
        return "", ""
    parts = base.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return "", ""
    return parts[0], f"{parts[1]}-{parts[2]}"


def package_from_header(header: Header, path: str) -> Package | None:
    """The Package a header describes, None for pseudo-packages; HeaderError if it names none."""
    name = header.string(h.TAG_NAME)
    if not name:
        raise HeaderError("header has no package name")
    if name in PSEUDO_PACKAGES:
        return None
    version = header.string(h.TAG_VERSION)
    if not version:
        raise HeaderError(f"package {name!r} has no version")
    license_raw = (header.string(h.TAG_LICENSE) or "").strip()
    sourcerpm = header.string(h.TAG_SOURCERPM) or ""
    source_name, source_version = split_source_rpm(sourcerpm)
    metadata: dict[str, str] = {}
    if sourcerpm:
        metadata["sourcerpm"] = sourcerpm
    if license_raw:
        metadata["license_raw"] = license_raw
    for key, tag, kind in _METADATA_TAGS:
        value = header.string(tag) if kind == "s" else header.integer(tag)
        if value is not None and value != "":
            metadata[key] = str(value)
    size = header.integer(h.TAG_LONGSIZE)
    if size is None:
        size = header.integer(h.TAG_SIZE)
    if size is not None:
        metadata["size"] = str(size)
    normalized = licenses.normalize(license_raw) if license_raw else ""
    return Package(
        name=name,
        version=version,
        ecosystem="rpm",
        path=path,
        licenses=[normalized] if normalized else [],
        source_name=source_name,
        source_version=source_version,
        arch=header.string(h.TAG_ARCH) or "",
        epoch=header.integer(h.TAG_EPOCH),
        release=header.string(h.TAG_RELEASE) or "",
        vendor=header.string(h.TAG_VENDOR) or "",
        metadata=metadata,
        method="package-database",
    )


def header_files(header: Header) -> list[str]:
    """The files a header installs (DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]), relative to the image root."""
    dirs = header.strings(h.TAG_DIRNAMES)
    names = header.strings(h.TAG_BASENAMES)
    indexes = header.integers(h.TAG_DIRINDEXES)
    if len(indexes) != len(names):
        return []
    return [(dirs[i] + name).lstrip("/") for i, name in zip(indexes, names, strict=True) if 0 <= i < len(dirs)]


def read_rpmdb(path: str, content: IO[bytes]) -> FileFacts:
    """Every package of the rpm database in `content` (a seekable stream); `path` names it."""
    size = stream_size(content)
    if size == 0:
        raise AnalyzerFailure("rpm database is an empty file")
    prefix = read_at(content, 0, 64)
    found = [(fmt, reader) for fmt, recognise, reader in _FORMATS if recognise(prefix)]
    if not found:
        raise AnalyzerFailure("not an rpm database: neither SQLite, Berkeley DB hash nor NDB")
    fmt, reader = found[0]

    problems = Problems()
    packages: list[Package] = []
    owned: list[str] = []
    try:
        with contextlib.closing(reader(content, size, problems)) as records:
            try:
                for key, blob in records:
                    try:
                        package = package_from_header(Header(blob), path)
                    except HeaderError as exc:
                        problems.add(f"{fmt}: record {key}: {exc}")
                        continue
                    if package is not None:
                        packages.append(package)
                        owned.extend(p for p in header_files(Header(blob)) if may_identify(p))
            except AnalyzerFailure as exc:
                if not packages:
                    raise
                problems.add(f"stopped early: {exc}")
    except (struct.error, ValueError, IndexError, KeyError, OverflowError) as exc:
        # Safety net: the readers validate before they index, so this means a gap in that validation.
        raise AnalyzerFailure(f"{fmt}: malformed database ({type(exc).__name__}: {exc})") from exc

    if problems and not packages:
        details = "; ".join(problems.summary()[:3])
        raise AnalyzerFailure(f"{fmt}: no readable package in the database: {details}")
    facts = FileFacts(packages=packages, hints=owned_hint(owned))
    if problems:
        facts.hints["warnings"] = problems.summary()
    return facts


class RpmAnalyzer:
    name = "rpm"
    version = 2
    max_size = 512 * 1024 * 1024

    def claims(self, path: str, entry: FileEntry) -> bool:
        return entry.is_file and path in CLAIMED_PATHS

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        return read_rpmdb(path, content)


ANALYZERS = [RpmAnalyzer()]
