"""Go executables: the module build information the Go toolchain embeds in every binary.

Since Go 1.13 the linker writes a 32-byte header starting with "\\xff Go buildinf:" at the start of
the `.go.buildinfo` section (in the first writable data segment when section headers are gone):
byte 14 is the pointer size, byte 15 flags (bit 0 big-endian, bit 1 "strings inline").

- Go 1.18+ (inline): after the header come two strings, each a uvarint length and the bytes: the
  Go version ("go1.19.8") and the module information text.
- Go 1.13-1.17 (pointers): at offset 16 and 16+ptrsize are the addresses of two Go string headers
  (data pointer, length) for the same two strings, to be resolved through the program headers.

The module information text is framed by 16 sentinel bytes each side and holds tab-separated lines:
`path <main package>`, `mod <path> <version> <sum>`, `dep <path> <version> <sum>`, `=> <path>
<version> <sum>` (replaces the line before) and `build <key>=<value>` (Go 1.18+).

The ELF reader here is deliberately small and strict (every count and offset is checked against the
file size) so hostile binaries fail fast; rust.py uses it too.
"""

from __future__ import annotations

import json
import re
import shlex
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure, read_within
from hullscan.model import FileEntry, FileFacts, Package

_MIB = 1024 * 1024
BUILDINFO_MAGIC = b"\xff Go buildinf:"
_BUILDINFO_HEADER = 32
_MAX_MODINFO = 16 * _MIB
_MAX_VERSION = 1024
_SCAN_LIMIT = 32 * _MIB
_GO_SECTIONS = frozenset(
    {".go.buildinfo", ".note.go.buildid", ".gopclntab", ".gosymtab", ".go.fuzzcntrs"}
)  # how much of the data segment to search when there are no section headers
_SCRIPT_SUFFIXES = (".sh", ".bash", ".py", ".pl", ".rb", ".js", ".php", ".txt", ".conf", ".cfg", ".json")


# ---------------------------------------------------------------------------------------------------
# A minimal ELF reader


class ElfError(Exception):
    """The file starts like an ELF image but its headers do not hold together."""


@dataclass(frozen=True)
class ElfSection:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True)
class ElfSegment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


SHT_NOBITS = 8
PT_LOAD = 1
PF_X, PF_W = 1, 2
_MAX_SECTIONS = 65536 * 2
_MAX_SEGMENTS = 65535
# Program header layouts (without the byte order) and where ElfSegment's fields sit in them.
_PH64 = ("IIQQQQQQ", (0, 1, 2, 3, 5))  # type flags offset vaddr paddr filesz memsz align
_PH32 = ("IIIIIIII", (0, 6, 1, 2, 4))  # type offset vaddr paddr filesz memsz flags align


def is_elf(fp: IO[bytes]) -> bool:
    fp.seek(0)
    return fp.read(4) == b"\x7fELF"


@dataclass
class ElfImage:
    """Section and program headers of an ELF file, read from a seekable stream without mapping it.

    The headers are read and checked when the image is opened; the section and segment lists are built when first
    asked for. The Go and Rust analyzers open every executable of an image and most are C programs, which the
    section-name table alone rules out (building both lists was most of their time on a Debian image)."""

    fp: IO[bytes]
    size: int = 0
    endian: str = "<"
    is64: bool = True
    _raw_sections: list[tuple[int, ...]] = field(default_factory=list)
    _names: bytes = b"\0"  # the section-name table, NUL-terminated (so its last name is found without its NUL)
    _segment_table: bytes = b""
    _segment_entry: int = 0
    _sections: list[ElfSection] | None = None
    _segments: list[ElfSegment] | None = None

    @classmethod
    def open(cls, fp: IO[bytes]) -> ElfImage:
        fp.seek(0, 2)
        image = cls(fp=fp, size=fp.tell())
        image._parse()
        return image

    def read(self, offset: int, size: int) -> bytes:
        try:
            return read_within(self.fp, self.size, offset, size)
        except ValueError as exc:
            raise ElfError(str(exc)) from None

    @property
    def sections(self) -> list[ElfSection]:
        if self._sections is None:
            self._sections = [ElfSection(self._name(s[0]), s[1], s[2], s[3], s[4], s[5]) for s in self._raw_sections]
        return self._sections

    @property
    def segments(self) -> list[ElfSegment]:
        if self._segments is None:
            layout, order = _PH64 if self.is64 else _PH32
            fmt = self.endian + layout
            rows = (struct.unpack_from(fmt, self._segment_table, i)
                    for i in range(0, len(self._segment_table), self._segment_entry or 1))
            self._segments = [ElfSegment(*(p[j] for j in order)) for p in rows]
        return self._segments

    def may_have_section(self, name: str) -> bool:
        """False when no section can be called `name`: its bytes are nowhere in the section-name table."""
        return name.encode("latin-1") + b"\0" in self._names

    def has_named_sections(self) -> bool:
        return any(off < len(self._names) and self._names[off] for off, *_ in self._raw_sections)

    def section(self, name: str) -> ElfSection | None:
        if not self.may_have_section(name):
            return None
        return next((s for s in self.sections if s.name == name), None)

    def section_data(self, section: ElfSection, limit: int) -> bytes:
        if section.type == SHT_NOBITS:
            return b""
        if section.size > limit:
            raise ElfError(f"section {section.name} is {section.size} bytes (limit {limit})")
        return self.read(section.offset, section.size)

    def vaddr_to_offset(self, addr: int, size: int) -> int | None:
        """File offset of `size` bytes at virtual address `addr`, when a loaded segment holds them."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= addr and addr + size <= seg.vaddr + seg.filesz:
                return seg.offset + (addr - seg.vaddr)
        for sec in self.sections:  # objects without program headers
            if sec.type != SHT_NOBITS and sec.addr and sec.addr <= addr and addr + size <= sec.addr + sec.size:
                return sec.offset + (addr - sec.addr)
        return None

    def _name(self, offset: int) -> str:
        names = self._names
        if offset >= len(names):
            return ""
        return names[offset : names.index(b"\0", offset)].decode("latin-1")

    def _parse(self) -> None:
        ident = self.read(0, 16) if self.size >= 16 else b""
        if ident[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfError(f"unknown ELF class {ident[4]} or data encoding {ident[5]}")
        self.is64 = ident[4] == 2
        self.endian = "<" if ident[5] == 1 else ">"
        e = self.endian
        if self.is64:
            fields = struct.unpack(e + "HHIQQQIHHHHHH", self.read(16, 48))
        else:
            fields = struct.unpack(e + "HHIIIIIHHHHHH", self.read(16, 36))
        _type, _machine, _version, _entry, phoff, shoff, _flags, _ehsize = fields[:8]
        phentsize, phnum, shentsize, shnum, shstrndx = fields[8:]

        sh_fmt = e + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        sh_size = struct.calcsize(sh_fmt)
        if shoff:
            if shentsize < sh_size:
                raise ElfError(f"section header entries of {shentsize} bytes")
            first = struct.unpack(sh_fmt, self.read(shoff, sh_size))
            if shnum == 0:  # extended numbering: the count lives in section 0
                shnum = first[5]
            if shstrndx == 0xFFFF:
                shstrndx = first[6]
            if phnum == 0xFFFF:
                phnum = first[7]
            if shnum > _MAX_SECTIONS or shoff + shnum * shentsize > self.size:
                raise ElfError(f"{shnum} section headers do not fit in the file")
            table = self.read(shoff, shnum * shentsize)
            self._raw_sections = [struct.unpack_from(sh_fmt, table, i * shentsize) for i in range(shnum)]

        if 0 < shstrndx < len(self._raw_sections):
            strtab = self._raw_sections[shstrndx]
            str_off, str_size = strtab[4], strtab[5]
            if strtab[1] != SHT_NOBITS:
                if str_size > 16 * _MIB:
                    raise ElfError(f"section name table of {str_size} bytes")
                self._names = self.read(str_off, str_size) + b"\0"  # raises when the file is truncated

        if phoff:
            ph_size = struct.calcsize(e + (_PH64 if self.is64 else _PH32)[0])
            if phentsize < ph_size or phnum > _MAX_SEGMENTS or phoff + phnum * phentsize > self.size:
                raise ElfError(f"{phnum} program headers of {phentsize} bytes do not fit in the file")
            self._segment_table = self.read(phoff, phnum * phentsize)
            self._segment_entry = phentsize


# ---------------------------------------------------------------------------------------------------
# Build information


@dataclass
class GoModule:
    path: str
    version: str
    sum: str = ""
    replace: GoModule | None = None


@dataclass
class GoBuildInfo:
    go_version: str
    path: str = ""
    main: GoModule | None = None
    deps: list[GoModule] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(len(data), pos + 10)):
        b = data[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i + 1
        shift += 7
    raise AnalyzerFailure("bad varint in Go build information")


def _find_buildinfo(elf: ElfImage) -> int | None:
    """File offset of the build information header, or None when the binary has none."""
    section = elf.section(".go.buildinfo")
    if (
        section is not None
        and section.type != SHT_NOBITS
        and section.size >= _BUILDINFO_HEADER
        and elf.read(section.offset, len(BUILDINFO_MAGIC)) == BUILDINFO_MAGIC
    ):
        return section.offset
    # No usable section: search the first writable segment, the way the Go toolchain does (the
    # header is 16-byte aligned in memory) -- but only when the section headers are gone or name
    # other Go sections, so that every C binary in an image does not cost a scan of its data.
    if elf.has_named_sections() and not any(elf.may_have_section(name) for name in _GO_SECTIONS):
        return None
    for seg in elf.segments:
        if seg.type != PT_LOAD or seg.flags & (PF_X | PF_W) != PF_W:
            continue
        if seg.offset + seg.filesz > elf.size:
            raise ElfError("the data segment lies beyond the end of the file (truncated?)")
        end = min(seg.offset + seg.filesz, seg.offset + _SCAN_LIMIT)
        skew = seg.vaddr % 16  # file offsets of 16-byte aligned addresses
        pos = seg.offset
        chunk = 4 * _MIB
        while pos < end:
            data = elf.read(pos, min(chunk + _BUILDINFO_HEADER, end - pos))
            at = data.find(BUILDINFO_MAGIC)
            while at >= 0:
                if (pos + at - seg.offset + skew) % 16 == 0 and len(data) - at >= _BUILDINFO_HEADER:
                    return pos + at
                at = data.find(BUILDINFO_MAGIC, at + 1)
            pos += chunk
        break
    return None


def read_buildinfo(elf: ElfImage) -> tuple[str, str] | None:
    """(Go version, module information text) of a Go binary, None for other ELF files."""
    offset = _find_buildinfo(elf)
    if offset is None:
        return None
    header = elf.read(offset, _BUILDINFO_HEADER)
    ptr_size, flags = header[14], header[15]
    if flags & 2:  # Go 1.18+: both strings inline after the header
        head = elf.read(offset, min(elf.size - offset, _BUILDINFO_HEADER + 20 + _MAX_VERSION))
        vlen, pos = _uvarint(head, _BUILDINFO_HEADER)
        if vlen > _MAX_VERSION or pos + vlen > len(head):
            raise AnalyzerFailure(f"Go version string of {vlen} bytes")
        version = head[pos : pos + vlen]
        mlen, pos = _uvarint(head, pos + vlen)
        if mlen > _MAX_MODINFO or offset + pos + mlen > elf.size:
            raise AnalyzerFailure(f"Go module information of {mlen} bytes")
        modinfo = elf.read(offset + pos, mlen)
    else:  # Go 1.13-1.17: pointers to string headers
        if ptr_size not in (4, 8):
            raise AnalyzerFailure(f"Go build information with pointer size {ptr_size}")
        fmt = ("<" if flags == 0 else ">") + ("I" if ptr_size == 4 else "Q")

        def read_string(addr: int, limit: int) -> bytes:
            hdr_off = elf.vaddr_to_offset(addr, 2 * ptr_size)
            if hdr_off is None:
                raise AnalyzerFailure(f"Go string header at {addr:#x} is not in the file")
            hdr = elf.read(hdr_off, 2 * ptr_size)
            data_addr = struct.unpack_from(fmt, hdr, 0)[0]
            length = struct.unpack_from(fmt, hdr, ptr_size)[0]
            if length > limit:
                raise AnalyzerFailure(f"Go string of {length} bytes")
            if length == 0:
                return b""
            data_off = elf.vaddr_to_offset(data_addr, length)
            if data_off is None:
                raise AnalyzerFailure(f"Go string data at {data_addr:#x} is not in the file")
            return elf.read(data_off, length)

        version = read_string(struct.unpack_from(fmt, header, 16)[0], _MAX_VERSION)
        modinfo = read_string(struct.unpack_from(fmt, header, 16 + ptr_size)[0], _MAX_MODINFO)
    if not version:
        return None  # the Go toolchain says: not a Go executable
    # Strip the sentinels framing the module information.
    if len(modinfo) >= 33 and modinfo[-17] == 0x0A:
        modinfo = modinfo[16:-16]
    return version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace")


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text[1:-1]
        return value if isinstance(value, str) else text[1:-1]
    return text


def _split_setting(text: str) -> tuple[str, str]:
    """`key=value` where key or value may be Go-quoted (`"-ldflags"="-s -w"` style)."""
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                break
            i += 1
        key, rest = _unquote(text[: i + 1]), text[i + 1 :]
        return key, _unquote(rest[1:] if rest.startswith("=") else rest)
    key, _sep, value = text.partition("=")
    return key, _unquote(value)


def parse_modinfo(go_version: str, text: str) -> GoBuildInfo:
    info = GoBuildInfo(go_version=go_version)
    last: GoModule | None = None
    for count, line in enumerate(text.split("\n")):
        if count > 200_000:
            break
        kind, _tab, rest = line.partition("\t")
        cols = rest.split("\t")
        if kind == "path":
            info.path = rest
        elif kind in ("mod", "dep"):
            mod = GoModule(cols[0], cols[1] if len(cols) > 1 else "", cols[2] if len(cols) > 2 else "")
            last = None
            if not mod.path:
                continue
            if kind == "mod":
                info.main = mod
            else:
                info.deps.append(mod)
            last = mod
        elif kind == "=>":
            if last is not None and cols[0]:
                last.replace = GoModule(cols[0], cols[1] if len(cols) > 1 else "", cols[2] if len(cols) > 2 else "")
            last = None
        elif kind == "build":
            key, value = _split_setting(rest)
            if key and len(info.settings) < 1000:
                info.settings[key] = value
    return info


# ---------------------------------------------------------------------------------------------------
# Versions and packages

_GO_VERSION = re.compile(r"^go(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(rc|beta|alpha)(\d+))?$")
_SEMVER = re.compile(r"^v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)$")
_VERSION_VARS = re.compile(r"(?i)^(?:.*[._])?(?:version|gitversion|buildversion|appversion|releaseversion)$")


def stdlib_version(go_version: str) -> str:
    """ "go1.19.8" -> "v1.19.8", "go1.20" -> "v1.20.0", "go1.21rc2" -> "v1.21.0-rc.2"; else ""."""
    token = go_version.strip().split(" ", 1)[0]  # "go1.22.1 X:boringcrypto"
    match = _GO_VERSION.match(token)
    if not match:
        return ""
    major, minor, patch, pre, pre_n = match.groups()
    version = f"v{major}.{minor or 0}.{patch or 0}"
    return f"{version}-{pre}.{pre_n}" if pre else version


def _ldflags_version(ldflags: str, main_path: str) -> str:
    """A release version set with `-X main.version=1.2.3` (or in a package of the main module)."""
    try:
        tokens = shlex.split(ldflags)
    except ValueError:
        tokens = ldflags.split()
    for i, tok in enumerate(tokens):
        if tok == "-X" and i + 1 < len(tokens):
            assignment = tokens[i + 1]
        elif tok.startswith(("-X=", "--X=")):
            assignment = tok.split("=", 1)[1]
        else:
            continue
        symbol, _sep, value = assignment.partition("=")
        pkg, _dot, var = symbol.rpartition(".")
        if not (pkg == "main" or (main_path and (pkg == main_path or pkg.startswith(main_path + "/")))):
            continue
        match = _SEMVER.match(value.strip())
        if _VERSION_VARS.match(var) and match:
            return "v" + match.group(1)
    return ""


_HOSTS = ("github.com/", "gitlab.com/", "bitbucket.org/")


def _gopath_main(ldflags: str, main_path: str) -> tuple[str, str]:
    """(module, version) for a binary built without modules (GOPATH mode, as Debian builds Go programs):
    no `mod` line, only the main package's path. A release version set with `-X <pkg>.Version=1.2.3` in a
    package of the same repository ("k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion" for
    "k8s.io/kubernetes/cmd/kubectl") names the repository's module and its version."""
    try:
        tokens = shlex.split(ldflags)
    except ValueError:
        tokens = ldflags.split()
    main_parts = main_path.split("/")
    for i, tok in enumerate(tokens):
        assignment = tokens[i + 1] if tok == "-X" and i + 1 < len(tokens) else ""
        symbol, _sep, value = assignment.partition("=")
        pkg, _dot, var = symbol.rpartition(".")
        match = _SEMVER.match(value.strip())
        if not match or not _VERSION_VARS.match(var):
            continue
        common: list[str] = []
        for a, b in zip(pkg.split("/"), main_parts, strict=False):
            if a != b:
                break
            common.append(a)
        needed = 3 if main_path.startswith(_HOSTS) else 2
        if len(common) >= needed and "." in common[0]:
            return "/".join(common[:needed] if main_path.startswith(_HOSTS) else common), "v" + match.group(1)
    return "", ""


def _vcs_pseudo_version(settings: dict[str, str]) -> str:
    revision = settings.get("vcs.revision", "")
    stamp = settings.get("vcs.time", "")
    if len(revision) < 12 or not re.fullmatch(r"[0-9a-fA-F]+", revision) or not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return ""
    return f"v0.0.0-{when:%Y%m%d%H%M%S}-{revision[:12].lower()}"


def _is_local_path(path: str) -> bool:
    return path.startswith(("./", "../", "/")) or path in (".", "..") or path[1:3] == ":\\"


def _golang_purl(path: str, version: str) -> str:
    namespace, _slash, name = path.rpartition("/")
    return PackageURL(type="golang", namespace=namespace or None, name=name, version=version or None).to_string()


def _package(name: str, version: str, where: str, metadata: dict[str, str]) -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem="golang",
        path=where,
        purl=_golang_purl(name, version),
        metadata=metadata,
        method="build-info",
    )


def buildinfo_packages(info: GoBuildInfo, where: str) -> list[Package]:
    common = {"goVersion": info.go_version}
    if info.path:
        common["mainPath"] = info.path
    settings = {f"build:{k}": v for k, v in info.settings.items()}
    packages: list[Package] = []

    if info.main is not None:
        recorded = info.main.version
        version, source = recorded, "buildinfo"
        if recorded in ("", "(devel)"):
            version, source = _ldflags_version(info.settings.get("-ldflags", ""), info.main.path), "ldflags"
            if not version:
                version, source = _vcs_pseudo_version(info.settings), "vcs"
            if not version:
                source = ""
        meta = {**common, "mainModule": "true", "recordedVersion": recorded, "versionSource": source, **settings}
        if info.main.sum:
            meta["sum"] = info.main.sum
        packages.append(_package(info.main.path, version, where, meta))

    seen: set[tuple[str, str]] = set()
    for dep in info.deps:
        name, version = dep.path, dep.version
        meta = dict(common)
        if dep.sum:
            meta["sum"] = dep.sum
        rep = dep.replace
        if rep is not None:
            meta["replacementPath"] = rep.path
            meta["replacementVersion"] = rep.version
            if rep.version and rep.version != "(devel)" and not _is_local_path(rep.path):
                # replaced by another module (a fork, or the same one pinned): that is what was built
                name, version = rep.path, rep.version
                meta["replaces"] = f"{dep.path}@{dep.version}"
                meta["sum"] = rep.sum
            # a local directory has no version of its own: keep the module identity it stands in for
        if (name, version) in seen:
            continue
        seen.add((name, version))
        packages.append(_package(name, version, where, meta))

    if info.main is None and info.path:
        module, version = _gopath_main(info.settings.get("-ldflags", ""), info.path)
        if module:
            packages.append(_package(module, version, where, {**common, "mainModule": "true",
                                                               "versionSource": "ldflags", **settings}))
    std = stdlib_version(info.go_version)
    if std:
        meta = dict(common)
        if info.main is None:
            meta.update(settings)
        packages.append(_package("stdlib", std, where, meta))
    return packages


class GoBinaryAnalyzer:
    name = "go-binary"
    version = 2
    max_size = 512 * _MIB

    def claims(self, path: str, entry: FileEntry) -> bool:
        # Called for every executable in an image: path and mode only.
        return entry.executable and 64 <= entry.size <= self.max_size and not path.lower().endswith(_SCRIPT_SUFFIXES)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        try:
            if not is_elf(content):
                return None
            elf = ElfImage.open(content)
            found = read_buildinfo(elf)
            if found is None:
                return None
            info = parse_modinfo(*found)
            packages = buildinfo_packages(info, path)
        except AnalyzerFailure as exc:
            raise AnalyzerFailure(f"{path}: {exc}") from exc
        except ElfError as exc:
            raise AnalyzerFailure(f"{path}: malformed ELF: {exc}") from exc
        except Exception as exc:  # hostile bytes must never take the layer down
            raise AnalyzerFailure(f"{path}: cannot read Go build information: {exc!r}") from exc
        return FileFacts(packages=packages) if packages else None


ANALYZERS = [GoBinaryAnalyzer()]
