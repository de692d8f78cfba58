"""Binaries installed without a package manager: runtimes and servers a Dockerfile downloaded or built.

Three kinds of evidence, each recorded as the package's `method`:

- ``binary-signature``: the program's own version string (see binsigs.py), for files named like the program.
- ``elf-note``: the ``.note.package`` ELF note (systemd's package metadata spec: owner "FDO", type 0xcafe1a7e, a
  JSON object with type, name, version, architecture, os, osVersion) that Fedora, Azure Linux, Debian's systemd
  and others write into their binaries.
- ``release-file``: a JDK's or JRE's ``release`` file (``JAVA_VERSION="17.0.9"``, ``IMPLEMENTOR=...``).

A file a package database owns is reported by that database, not here: the merge drops these packages when a
database lists their file (hint "owned", see ownership.py), or lists the same package (ELF notes).
"""

from __future__ import annotations

import json
import mmap
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from packageurl import PackageURL

from hullscan.analyzers.base import read_within
from hullscan.analyzers.binsigs import MAX_ANCHORS, WINDOW, Signature, is_java_release, signatures_for
from hullscan.analyzers.gobinary import ElfError, is_elf
from hullscan.model import FileEntry, FileFacts, Package

_MIB = 1024 * 1024
# Shared libraries are claimed for their ELF note only while the walker keeps them in memory (8 MiB): a
# Debian image holds hundreds of them and spooling each to disk would cost more than the note is worth.
_NOTE_LIBRARY_MAX = 8 * _MIB
_NOTE_TYPE = 0xCAFE1A7E
PT_NOTE = 4
_MAX_PROGRAM_HEADERS = 512
_MAX_NOTES_BYTES = 64 * 1024
_ELF_NOTE_TYPES = {"deb": "deb", "rpm": "rpm", "apk": "apk"}
_RELEASE_LINE = re.compile(r'^([A-Z_]+)="?([^"\n]*)"?\s*$', re.MULTILINE)


def _is_shared_library(base: str) -> bool:
    return base.startswith("lib") and (base.endswith(".so") or ".so." in base)


@contextmanager
def _bytes_of(content: IO[bytes]) -> Iterator[Any]:
    """The file's bytes for find/regex: mapped when it was spooled to disk, else read (it is in memory)."""
    try:
        fd = content.fileno()
    except (OSError, AttributeError, ValueError):
        fd = -1
    if fd >= 0:
        content.seek(0, 2)
        if content.tell() > 0:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
                yield view
            return
    content.seek(0)
    yield content.read()


def find_version(sig: Signature, data: Any, base: str) -> tuple[str, str] | None:
    """(version, the matched text) from the first pattern that matches near one of its anchors."""
    prefix = sig.version_prefix(base)
    for anchor, pattern in sig.patterns:
        pos, tries = data.find(anchor), 0
        while pos >= 0 and tries < MAX_ANCHORS:
            tries += 1
            for m in pattern.finditer(data, max(0, pos - WINDOW), pos + len(anchor) + WINDOW):
                if m.start() <= pos + len(anchor) and m.end() >= pos:  # the match uses this anchor
                    version = m.group(1).decode("ascii", "replace")
                    if not prefix or version.startswith(prefix):
                        return version, bytes(m.group(0)).strip(b"\x00").decode("ascii", "replace")[:120]
            pos = data.find(anchor, pos + 1)
    return None


def signature_package(sig: Signature, version: str, path: str, evidence: str) -> Package:
    vendor, product = sig.cpe.split(":", 1)
    metadata = {"signature": evidence}
    if sig.advisory:
        metadata["advisory_name"] = sig.advisory
    return Package(name=sig.product, version=version, ecosystem="binary", path=path,
                   purl=PackageURL(type="generic", name=sig.product, version=version).to_string(),
                   cpe=f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*", metadata=metadata,
                   method="binary-signature")


# -- ELF package notes --------------------------------------------------------------------------------


def _notes(blob: bytes, endian: str) -> Iterator[tuple[str, int, bytes]]:
    pos = 0
    while pos + 12 <= len(blob):
        namesz, descsz, kind = struct.unpack_from(endian + "III", blob, pos)
        pos += 12
        name_end = pos + namesz
        desc_start = pos + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if desc_end > len(blob):
            return
        yield blob[pos:name_end].rstrip(b"\x00").decode("ascii", "replace"), kind, blob[desc_start:desc_end]
        pos = desc_start + ((descsz + 3) & ~3)


def _note_regions(fp: IO[bytes], size: int) -> list[tuple[int, int, str]]:
    """(offset, size, byte order) of the PT_NOTE segments, from the ELF and program headers alone.

    Only a few dozen bytes are read: every executable and small shared library of an image comes here, and the
    note sits in a loaded PT_NOTE segment, so the section headers (costly to walk in Python) are not needed."""
    head = read_within(fp, size, 0, 64) if size >= 64 else b""
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        raise ElfError("not a readable ELF header")
    is64, endian = head[4] == 2, "<" if head[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", head, 0x20)
        entsize, count = struct.unpack_from(endian + "HH", head, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", head, 0x1C)
        entsize, count = struct.unpack_from(endian + "HH", head, 0x2A)
    if count > _MAX_PROGRAM_HEADERS or entsize < (56 if is64 else 32):
        raise ElfError("implausible program headers")
    table = read_within(fp, size, phoff, entsize * count)
    regions = []
    for i in range(count):
        if is64:
            kind, _flags, offset, _va, _pa, filesz = struct.unpack_from(endian + "IIQQQQ", table, i * entsize)
        else:
            kind, offset, _va, _pa, filesz = struct.unpack_from(endian + "IIIII", table, i * entsize)
        if kind == PT_NOTE:
            regions.append((offset, filesz, endian))
    return regions


def package_note(fp: IO[bytes]) -> dict[str, Any] | None:
    """The JSON object of the FDO package note, if the ELF file carries one."""
    fp.seek(0, 2)
    size = fp.tell()
    try:
        regions = _note_regions(fp, size)
        for offset, length, endian in regions:
            if length <= 0 or length > _MAX_NOTES_BYTES:
                continue
            for owner, kind, desc in _notes(read_within(fp, size, offset, length), endian):
                if owner == "FDO" and kind == _NOTE_TYPE:
                    doc = json.loads(desc.rstrip(b"\x00").decode("utf-8"))
                    return doc if isinstance(doc, dict) else None
    except (ValueError, struct.error):  # a lying header, or a note that is not JSON
        return None
    return None


def note_package(doc: dict[str, Any], path: str) -> Package | None:
    def text(key: str) -> str:
        value = doc.get(key)
        return value.strip()[:256] if isinstance(value, str) else ""

    name, version = text("name"), text("version")
    if not name:
        return None
    kind = text("type").lower()
    ecosystem = _ELF_NOTE_TYPES.get(kind, "binary")
    os_name = text("os").lower()
    qualifiers: dict[str, str] = {}
    if text("architecture"):
        qualifiers["arch"] = text("architecture")
    if os_name:
        qualifiers["distro"] = f"{os_name}-{text('osVersion')}" if text("osVersion") else os_name
    purl_type = ecosystem if ecosystem != "binary" else "generic"
    purl = PackageURL(type=purl_type, namespace=os_name or None, name=name, version=version or None,
                      qualifiers=qualifiers or None).to_string()
    metadata = {k: text(k) for k in ("type", "os", "osVersion", "osCpe", "debugInfoUrl") if text(k)}
    return Package(name=name, version=version, ecosystem=ecosystem, path=path, purl=purl,
                   arch=text("architecture"), source_name=name, source_version=version, metadata=metadata,
                   method="elf-note")


# -- JDK release files ---------------------------------------------------------------------------------


def release_package(text: str, path: str) -> Package | None:
    fields = dict(_RELEASE_LINE.findall(text))
    version = fields.get("JAVA_VERSION", "").strip()
    if not version:
        return None
    implementor = fields.get("IMPLEMENTOR", "")
    oracle = implementor.startswith("Oracle") and "openjdk" not in fields.get("JAVA_RUNTIME_VERSION", "").lower()
    product = "jdk" if oracle else "openjdk"
    metadata = {"advisory_name": "java", "implementor": implementor[:200]}
    if fields.get("JAVA_RUNTIME_VERSION"):
        metadata["runtime_version"] = fields["JAVA_RUNTIME_VERSION"][:200]
    return Package(name=product, version=version, ecosystem="binary", path=path, vendor=implementor[:200],
                   purl=PackageURL(type="generic", name=product, version=version).to_string(),
                   cpe=f"cpe:2.3:a:oracle:{product}:{version}:*:*:*:*:*:*:*", metadata=metadata,
                   method="release-file")


def _java_homes(libjvm: str) -> list[str]:
    """Where the `release` file of the JDK holding this libjvm.so is: <home>/lib/server/libjvm.so (9+),
    <home>/jre/lib/<arch>/server/libjvm.so (8)."""
    parts = libjvm.split("/")
    homes = []
    if len(parts) > 3:
        homes.append("/".join(parts[:-3]))
    if len(parts) > 5 and parts[-5] == "jre":
        homes.append("/".join(parts[:-5]))
    return [f"{h}/release" for h in homes if h]


class BinaryAnalyzer:
    name = "binary"
    version = 1
    max_size = 512 * _MIB

    def claims(self, path: str, entry: FileEntry) -> bool:
        # Called for every file of every layer: only the name, the size and the mode are looked at.
        if not entry.is_file or entry.size < 64:
            return False
        base = path.rsplit("/", 1)[-1]
        if entry.executable:
            return True  # a signature, or an ELF note (the Go and Rust analyzers already buffer executables)
        if _is_shared_library(base):
            return entry.size <= _NOTE_LIBRARY_MAX or bool(signatures_for(path))
        return entry.size <= 64 * 1024 and is_java_release(path)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        if is_java_release(path):
            package = release_package(content.read(64 * 1024).decode("utf-8", "replace"), path)
            return FileFacts(packages=[package]) if package else None
        if not is_elf(content):
            return None
        packages: list[Package] = []
        hints: dict[str, Any] = {}
        note = package_note(content)
        if note is not None:
            pkg = note_package(note, path)
            if pkg is not None:
                packages.append(pkg)
        sigs = signatures_for(path)
        if sigs and not packages:
            base = path.rsplit("/", 1)[-1]
            with _bytes_of(content) as data:
                for sig in sigs:
                    found = find_version(sig, data, base)
                    if found is not None:
                        packages.append(signature_package(sig, found[0], path, found[1]))
                        if base == "libjvm.so":
                            hints["superseded_by"] = _java_homes(path)
                        break
                else:
                    hints["notes"] = [{"code": "BINARY_UNIDENTIFIED", "message": f"named like "
                                       f"{sigs[0].product} but no version string was recognised; not reported "
                                       "(a shared library it loads, such as libpython, may carry it)"}]
        if not packages and not hints:
            return None
        return FileFacts(packages=packages, hints=hints)


ANALYZERS = [BinaryAnalyzer()]
