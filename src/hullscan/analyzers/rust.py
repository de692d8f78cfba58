"""Rust executables built with cargo-auditable: the dependency tree in the `.dep-v0` ELF section.

The section holds zlib-compressed JSON: {"packages": [{"name", "version", "source", "kind",
"dependencies": [indices into packages], "root": bool}, ...]}. "kind" is "runtime" when absent;
"build" packages (build scripts, proc macros) are not linked into the binary and are left out, as
cargo-audit does for binaries. Decompression is capped, so a hostile section costs little.
"""

from __future__ import annotations

import json
import zlib
from typing import IO, Any

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.gobinary import ElfError, ElfImage, is_elf
from hullscan.model import FileEntry, FileFacts, Package

_MIB = 1024 * 1024
SECTION = ".dep-v0"
_MAX_COMPRESSED = 8 * _MIB
_MAX_JSON = 16 * _MIB
_MAX_PACKAGES = 100_000
_MAX_LISTED_DEPS = 200
_SCRIPT_SUFFIXES = (".sh", ".bash", ".py", ".pl", ".rb", ".js", ".php", ".txt", ".conf", ".cfg", ".json")


def decode_dep_section(data: bytes, max_json: int = _MAX_JSON) -> Any:
    """Decompress and parse the section; AnalyzerFailure for anything but complete, valid JSON."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, max_json)
    except zlib.error as exc:
        raise AnalyzerFailure(f"{SECTION} is not zlib data: {exc}") from exc
    if inflater.unconsumed_tail:
        raise AnalyzerFailure(f"{SECTION} inflates beyond {max_json} bytes")
    if not inflater.eof:
        raise AnalyzerFailure(f"{SECTION} zlib stream is truncated")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise AnalyzerFailure(f"{SECTION} is not valid JSON: {exc}") from exc


def audit_packages(doc: Any, where: str) -> list[Package]:
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), list):
        raise AnalyzerFailure(f'{SECTION} JSON has no "packages" list')
    entries: list[Any] = doc["packages"][:_MAX_PACKAGES]
    valid = [
        isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] and isinstance(e.get("version"), str)
        for e in entries
    ]
    if entries and not any(valid):
        raise AnalyzerFailure(f"{SECTION} packages have no names or versions")
    labels = [f"{e['name']}@{e['version']}" if ok else "" for e, ok in zip(entries, valid, strict=True)]

    packages: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for entry, ok in zip(entries, valid, strict=True):
        if not ok:
            continue
        kind = entry.get("kind", "runtime")
        if kind == "build":
            continue
        name, version = entry["name"], entry["version"]
        if (name, version) in seen:
            continue
        seen.add((name, version))
        source = entry.get("source")
        metadata = {"source": source if isinstance(source, str) else "", "kind": str(kind)}
        if entry.get("root") is True:
            metadata["root"] = "true"
        deps = entry.get("dependencies")
        if isinstance(deps, list):
            names = list(
                dict.fromkeys(
                    labels[i]
                    for i in deps[:_MAX_LISTED_DEPS]
                    if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(labels) and labels[i]
                )
            )
            if names:
                metadata["dependencies"] = ",".join(names)
        packages.append(
            Package(
                name=name,
                version=version,
                ecosystem="cargo",
                path=where,
                purl=PackageURL(type="cargo", name=name, version=version or None).to_string(),
                metadata=metadata,
                method="build-info",
            )
        )
    return packages


class CargoAuditableAnalyzer:
    name = "rust-cargo-auditable"
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
            section = elf.section(SECTION)
            if section is None:
                return None
            packages = audit_packages(decode_dep_section(elf.section_data(section, _MAX_COMPRESSED)), path)
        except AnalyzerFailure as exc:
            raise AnalyzerFailure(f"{path}: {exc}") from exc
        except ElfError as exc:
            raise AnalyzerFailure(f"{path}: malformed ELF: {exc}") from exc
        except Exception as exc:  # hostile bytes must never take the layer down
            raise AnalyzerFailure(f"{path}: cannot read {SECTION}: {exc!r}") from exc
        return FileFacts(packages=packages) if packages else None


ANALYZERS = [CargoAuditableAnalyzer()]
