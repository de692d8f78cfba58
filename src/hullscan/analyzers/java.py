"""Java archives (jar, war, ear, Jenkins plug-ins, ...): Maven coordinates, with nested archives.

Every `META-INF/maven/<group>/<artifact>/pom.properties` is one package (a shaded "fat" jar holds
several). An archive without any falls back to its `META-INF/MANIFEST.MF` (Implementation-* and
Bundle-* headers) and then to its file name ("artifact-1.2.3.jar"). Archives inside the archive
(`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`, an ear's modules, ...) are opened too, to a bounded
depth and within a bounded number of decompressed bytes per top-level archive, so that a zip bomb
costs at most that budget. Nested packages are reported at "outer.war!WEB-INF/lib/inner.jar".
"""

from __future__ import annotations

import html
import posixpath
import re
import struct
import tempfile
import xml.etree.ElementTree as ET  # noqa: N817 - only for pom.xml, entities refused first
import zipfile
from dataclasses import dataclass, field
from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure, scratch_dir
from hullscan.licenses import normalize
from hullscan.model import FileEntry, FileFacts, Package

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi", ".par", ".sar")

_MIB = 1024 * 1024
_CHUNK = 256 * 1024
_POM_PROPERTIES = re.compile(r"^META-INF/maven/([^/]+)/([^/]+)/pom\.properties$")
_VERSION_START = re.compile(r"-(?=\d)")
# Bundle-License is often a URL; these are the ones worth recognising.
_LICENSE_URLS = {
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "opensource.org/licenses/mit": "MIT",
    "opensource.org/licenses/apache-2.0": "Apache-2.0",
    "opensource.org/licenses/bsd-3-clause": "BSD-3-Clause",
    "opensource.org/licenses/bsd-2-clause": "BSD-2-Clause",
    "eclipse.org/legal/epl-2.0": "EPL-2.0",
    "eclipse.org/legal/epl-v20": "EPL-2.0",
    "eclipse.org/legal/epl-v10": "EPL-1.0",
    "eclipse.org/org/documents/edl-v10": "BSD-3-Clause",
    "gnu.org/licenses/lgpl-2.1": "LGPL-2.1-only",
    "gnu.org/licenses/old-licenses/gpl-2.0": "GPL-2.0-only",
    "mozilla.org/mpl/2.0": "MPL-2.0",
}
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


class _BudgetExceeded(Exception):
    """The decompressed-bytes budget of the top-level archive is spent: stop reading anything."""


class _Skip(Exception):
    """One member or nested archive cannot be used; the rest of the archive still counts."""


@dataclass
class _Scan:
    """State shared by one top-level archive and everything nested in it."""

    remaining: int  # decompressed bytes we may still read
    max_depth: int
    max_in_memory: int
    max_entries: int
    archives_left: int  # nested archives we may still open (many tiny archives cost time, not bytes)
    entries_left: int  # directory entries, summed over every archive
    packages: list[Package] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)

    def note(self, code: str, message: str, path: str) -> None:
        if len(self.notes) < 100:
            self.notes.append({"code": code, "message": message, "path": path})

    def charge(self, n: int) -> None:
        self.remaining -= n
        if self.remaining < 0:
            raise _BudgetExceeded


def _zip_entry_count(fp: IO[bytes]) -> tuple[int, int]:
    """(entries, central directory size) from the end records, without building the directory.

    zipfile materialises one ZipInfo per entry, so a hostile directory with millions of entries
    is refused before it is parsed.
    """
    fp.seek(0, 2)
    size = fp.tell()
    tail_len = min(size, 22 + 65535 + 20)
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    pos = tail.rfind(_EOCD)
    if pos < 0 or len(tail) - pos < 22:
        raise _Skip("not a zip archive (no end of central directory record)")
    _sig, _disk, _cd_disk, _n_disk, entries, cd_size, _cd_off, _clen = struct.unpack_from("<4sHHHHIIH", tail, pos)
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and pos >= 20 and tail[pos - 20 : pos - 16] == (_ZIP64_LOCATOR):
        _lsig, _ldisk, z64_off, _ltotal = struct.unpack_from("<4sIQI", tail, pos - 20)
        # The record normally sits right before the locator; the recorded offset is relative to the
        # start of the zip data, which may be preceded by a launch script.
        for where in (size - tail_len + pos - 20 - 56, z64_off):
            if 0 <= where <= size - 56:
                fp.seek(where)
                rec = fp.read(56)
                if rec[:4] == _ZIP64_EOCD:
                    entries = struct.unpack_from("<Q", rec, 32)[0]
                    cd_size = struct.unpack_from("<Q", rec, 40)[0]
                    break
        else:
            raise _Skip("zip64 archive whose end records cannot be read")
    return entries, cd_size


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, scan: _Scan) -> bytes:
    """Read a small member (metadata file) completely, or raise _Skip when it is over `cap`."""
    if info.file_size > cap:
        raise _Skip(f"{info.filename} is larger than {cap} bytes")
    out = bytearray()
    try:
        with zf.open(info) as member:
            while True:
                chunk = member.read(min(_CHUNK, cap + 1 - len(out)))
                if not chunk:
                    break
                scan.charge(len(chunk))
                out += chunk
                if len(out) > cap:
                    raise _Skip(f"{info.filename} is larger than {cap} bytes")
    except (_Skip, _BudgetExceeded):
        raise
    except Exception as exc:  # zipfile raises many unrelated types on corrupt members
        raise _Skip(f"cannot read {info.filename}: {exc}") from exc
    return bytes(out)


def _parse_properties(text: str) -> dict[str, str]:
    """java.util.Properties text format: comments, `key=value`/`key: value`/`key value`, escapes."""
    props: dict[str, str] = {}
    logical: list[str] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f")
        if not pending and (not line or line[0] in "#!"):
            continue
        # An odd number of trailing backslashes continues the line.
        stripped = line.rstrip("\\")
        if (len(line) - len(stripped)) % 2 == 1:
            pending.append(line[:-1])
            continue
        logical.append("".join(pending) + line)
        pending = []
    if pending:
        logical.append("".join(pending))
    for line in logical:
        key_chars: list[str] = []
        i = 0
        while i < len(line):
            c = line[i]
            if c == "\\" and i + 1 < len(line):
                key_chars.append(line[i : i + 2])
                i += 2
                continue
            if c in "=: \t\f":
                break
            key_chars.append(c)
            i += 1
        rest = line[i:].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        key = _unescape_properties("".join(key_chars))
        if key and len(props) < 1000:
            props[key] = _unescape_properties(rest).strip()
    return props


def _unescape_properties(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    simple = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
            out.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
            continue
        out.append(simple.get(nxt, nxt))
        i += 2
    return "".join(out)


def _parse_manifest(text: str) -> dict[str, str]:
    """Main section of a MANIFEST.MF, header names lower-cased; continuation lines start with a space."""
    headers: dict[str, list[str]] = {}
    last = ""
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if headers:
                break  # end of the main section
            continue
        if line.startswith(" ") and last:
            headers[last].append(line[1:])
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        last = name.strip().lower()
        if last and len(headers) < 1000:
            headers[last] = [value.lstrip()]
        else:
            last = ""
    return {k: "".join(v).strip() for k, v in headers.items()}


def _pom_licenses(pom_xml: str) -> list[str]:
    """Names in <licenses><license><name>; plain string scanning, linear even on hostile text."""
    start = pom_xml.find("<licenses")
    if start < 0:
        return []
    end = pom_xml.find("</licenses", start)
    block = pom_xml[start : end if end >= 0 else len(pom_xml)]
    found: list[str] = []
    for piece in block.split("<license")[1:]:
        if piece[:1] not in (">", " ", "\t", "\r", "\n"):
            continue  # "<licenses>" itself
        open_tag = piece.find("<name")
        gt = piece.find(">", open_tag) if open_tag >= 0 else -1
        close = piece.find("</name", gt) if gt >= 0 else -1
        if close < 0 or close - gt > 1000:
            continue
        name = piece[gt + 1 : close].strip()
        if name.startswith("<![CDATA[") and name.endswith("]]>"):
            name = name[9:-3]
        norm = normalize(html.unescape(name).strip()) if name else ""
        if norm and norm not in found:
            found.append(norm)
        if len(found) >= 20:
            break
    return found


def _bundle_licenses(value: str) -> list[str]:
    found: list[str] = []
    # "Apache-2.0;link=https://...", "https://www.apache.org/licenses/LICENSE-2.0.txt", "MIT, EPL-2.0"
    parts = [value] if "://" not in value and ";" not in value else value.split(",")
    for part in parts[:20]:
        text = part.split(";", 1)[0].strip().strip('"')
        if not text:
            continue
        if "://" in text:
            low = text.lower().split("://", 1)[1].removeprefix("www.")
            low = re.sub(r"(\.txt|\.html?|\.php|/)$", "", low)
            text = _LICENSE_URLS.get(low, "")
            if not text:
                continue
        norm = normalize(text)
        if norm and norm not in found:
            found.append(norm)
    return found


def _maven_package(
    group: str, artifact: str, version: str, path: str, source: str, licenses: list[str], vendor: str = ""
) -> Package:
    purl = PackageURL(type="maven", namespace=group or None, name=artifact, version=version or None)
    return Package(
        name=f"{group}:{artifact}" if group else artifact,
        version=version,
        ecosystem="maven",
        path=path,
        purl=purl.to_string(),
        licenses=licenses,
        vendor=vendor,
        metadata={"groupId": group, "artifactId": artifact, "source": source},
        method=source,
    )


def _split_file_name(file_name: str) -> tuple[str, str]:
    stem = posixpath.basename(file_name)
    low = stem.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if low.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    # "commons-lang3-3.12.0", "guava-31.1-jre", "log4j-1.2-api-2.17.1", "foo-2-SNAPSHOT": the version
    # starts at a "-digit"; prefer the last such place whose first part looks dotted ("2.17.1").
    starts = [m.start() for m in _VERSION_START.finditer(stem) if m.start() > 0]
    if not starts:
        return stem, ""
    chosen = starts[0]
    for start in reversed(starts):
        if "." in stem[start + 1 :].split("-", 1)[0]:
            chosen = start
            break
    return stem[:chosen], stem[chosen + 1 :]


def instrumented_library(manifest: dict[str, str]) -> str:
    """What an APM agent's instrumentation module instruments ("" when the archive is no such module).

    New Relic's weaver modules carry Weave-* headers and an Implementation-Title naming the library they
    instrument ("com.newrelic.instrumentation.spring-4.3.0"); reporting them as that library would be wrong."""
    title = manifest.get("implementation-title", "")
    if "weave-classes" in manifest or "weave-violation-filter" in manifest or \
            title.startswith("com.newrelic.instrumentation."):
        return title.removeprefix("com.newrelic.instrumentation.") or "another library"
    return ""


def _jenkins_package(manifest: dict[str, str], display: str) -> Package | None:
    """A Jenkins plug-in (.hpi/.jpi): Short-Name, Plugin-Version and Group-Id are its Maven coordinates."""
    short, version = manifest.get("short-name", ""), manifest.get("plugin-version", "")
    if not short or not version:
        return None
    group = manifest.get("group-id", "")
    version = version.split(" ", 1)[0]  # snapshots append " (private-<sha>-<user>)"
    licenses = _bundle_licenses(manifest.get("bundle-license", ""))
    pkg = _maven_package(group, short, version, display, "jenkins-manifest", licenses,
                         manifest.get("implementation-vendor", ""))
    if manifest.get("long-name"):
        pkg.metadata["longName"] = manifest["long-name"][:200]
    return pkg


def _manifest_package(manifest: dict[str, str], display: str, file_name: str) -> Package | None:
    """An archive without Maven metadata: a Jenkins plug-in's manifest, else the OSGi bundle headers, else the
    file name ("artifact-1.2.3.jar"), else the Implementation-* headers; `metadata["source"]` says which."""
    jenkins = _jenkins_package(manifest, display)
    if jenkins is not None:
        return jenkins
    file_artifact, file_version = _split_file_name(file_name)
    group = manifest.get("implementation-vendor-id", "")
    vendor = manifest.get("implementation-vendor") or manifest.get("bundle-vendor") or ""
    licenses = _bundle_licenses(manifest.get("bundle-license", ""))
    symbolic = manifest.get("bundle-symbolicname", "").split(";", 1)[0].strip()
    bundle_version = manifest.get("bundle-version", "").strip()
    if symbolic and bundle_version:
        # "com.fasterxml.jackson.core.jackson-core" under group "com.fasterxml.jackson.core" is "jackson-core"
        artifact = symbolic[len(group) + 1:] if group and symbolic.startswith(group + ".") else symbolic
        return _maven_package(group, artifact, bundle_version, display, "osgi-manifest", licenses, vendor)
    if file_artifact and file_version:
        return _maven_package(group, file_artifact, file_version, display, "file-name", licenses, vendor)
    title = manifest.get("implementation-title", "")
    # Implementation-Title is often a display name ("Apache Commons Lang"): only an identifier-like one counts.
    artifact = next((c for c in (title if title and not re.search(r"\s", title) else "", file_artifact) if c), "")
    version = manifest.get("implementation-version") or manifest.get("specification-version") or ""
    if not artifact or not version:
        return None
    return _maven_package(group, artifact, version, display, "archive-manifest", licenses, vendor)


# -- pom.xml ------------------------------------------------------------------------------------------

_POM_XML = re.compile(r"^META-INF/maven/([^/]+)/([^/]+)/pom\.xml$")
_PROPERTY = re.compile(r"\$\{([^}]{1,200})\}")


def _pom_text(root: ET.Element, *path: str) -> str:
    node: ET.Element | None = root
    for part in path:
        node = next((c for c in node if c.tag.rsplit("}", 1)[-1] == part), None) if node is not None else None
    return (node.text or "").strip() if node is not None else ""


def pom_coordinates(text: str) -> tuple[str, str, str] | None:
    """(groupId, artifactId, version) of a pom.xml, the group and version inherited from <parent> when the
    project does not set them, and ${...} properties resolved from the pom's own <properties>."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None  # no pom declares entities; refusing them keeps entity expansion out entirely
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    group = _pom_text(root, "groupId") or _pom_text(root, "parent", "groupId")
    artifact = _pom_text(root, "artifactId")
    version = _pom_text(root, "version") or _pom_text(root, "parent", "version")
    props = {"project.groupId": group, "project.artifactId": artifact, "project.version": version,
             "pom.version": version, "version": version, "project.parent.version": _pom_text(root, "parent", "version"),
             "project.parent.groupId": _pom_text(root, "parent", "groupId")}
    holder = next((c for c in root if c.tag.rsplit("}", 1)[-1] == "properties"), None)
    if holder is not None:
        for child in list(holder)[:500]:
            props.setdefault(child.tag.rsplit("}", 1)[-1], (child.text or "").strip())

    def resolve(value: str) -> str:
        for _ in range(5):  # properties naming properties, a few levels deep
            value = _PROPERTY.sub(lambda m: props.get(m.group(1), m.group(0)), value)
        return "" if "${" in value else value

    group, artifact, version = resolve(group), resolve(artifact), resolve(version)
    return (group, artifact, version) if artifact and version else None


class JavaArchiveAnalyzer:
    name = "java-archive"
    version = 2
    max_size = 1024 * _MIB

    def __init__(
        self,
        *,
        max_depth: int = 4,
        max_total_bytes: int = 512 * _MIB,
        max_in_memory: int = 64 * _MIB,
        max_entries: int = 200_000,
        max_archives: int = 5_000,
    ) -> None:
        self.max_depth = max_depth
        self.max_total_bytes = max_total_bytes
        self.max_in_memory = max_in_memory
        self.max_entries = max_entries
        self.max_archives = max_archives

    def claims(self, path: str, entry: FileEntry) -> bool:
        return entry.is_file and path.lower().endswith(ARCHIVE_SUFFIXES)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        scan = _Scan(
            remaining=self.max_total_bytes,
            max_depth=self.max_depth,
            max_in_memory=self.max_in_memory,
            max_entries=self.max_entries,
            archives_left=self.max_archives,
            entries_left=4 * self.max_entries,
        )
        try:
            self._scan_archive(content, path, path, 0, scan)
        except _Skip as exc:
            raise AnalyzerFailure(f"{path}: {exc}") from exc
        except _BudgetExceeded:
            scan.note(
                "java-budget-exceeded",
                f"stopped at the limit of {self.max_total_bytes} decompressed bytes, {self.max_archives} nested"
                f" archives or {4 * self.max_entries} entries (zip bomb?); results are partial",
                path,
            )
        except Exception as exc:  # a parser bug must not take the layer down with it
            raise AnalyzerFailure(f"{path}: unexpected error: {exc!r}") from exc
        facts = FileFacts(packages=scan.packages)
        if scan.notes:
            facts.hints["notes"] = scan.notes
        return None if facts.empty() else facts

    def _scan_archive(self, fp: IO[bytes], display: str, file_name: str, depth: int, scan: _Scan) -> None:
        try:
            entries, cd_size = _zip_entry_count(fp)
        except _Skip:
            raise
        except Exception as exc:
            raise _Skip(f"cannot read the zip end records: {exc}") from exc
        if entries > scan.max_entries or cd_size > scan.max_entries * 512:
            raise _Skip(f"zip archive claims {entries} entries (limit {scan.max_entries})")
        scan.entries_left -= entries
        if scan.entries_left < 0:
            raise _BudgetExceeded
        try:
            fp.seek(0)
            zf = zipfile.ZipFile(fp)
            infos = zf.infolist()
        except Exception as exc:
            raise _Skip(f"not a readable zip archive: {exc}") from exc
        with zf:
            self._scan_members(zf, infos, display, file_name, depth, scan)

    def _scan_members(
        self,
        zf: zipfile.ZipFile,
        infos: list[zipfile.ZipInfo],
        display: str,
        file_name: str,
        depth: int,
        scan: _Scan,
    ) -> None:
        manifest_info = next((i for i in infos if i.filename.upper() == "META-INF/MANIFEST.MF"), None)
        manifest: dict[str, str] = {}
        if manifest_info is not None:
            try:
                raw = _read_member(zf, manifest_info, 1 * _MIB, scan)
                manifest = _parse_manifest(raw.decode("utf-8", "replace"))
            except _Skip as exc:
                scan.note("java-bad-member", str(exc), display)

        found: list[Package] = []
        try:
            self._pom_packages(zf, infos, display, scan, found)
        except _BudgetExceeded:
            scan.packages.extend(found)  # keep what was read before the budget ran out
            raise

        if len(found) == 1 and manifest:
            # The manifest describes the archive itself, i.e. its only Maven artifact.
            pkg = found[0]
            pkg.vendor = manifest.get("implementation-vendor") or manifest.get("bundle-vendor") or ""
            if not pkg.licenses:
                pkg.licenses = _bundle_licenses(manifest.get("bundle-license", ""))
        instrumented = instrumented_library(manifest)
        if instrumented:
            scan.note("java-instrumentation", f"an APM agent's instrumentation module for {instrumented}, "
                      "not that library: not reported", display)
        elif not found:
            fallback = _manifest_package(manifest, display, file_name)
            if fallback is not None:
                found.append(fallback)
            elif manifest:
                # Metadata that names no version is worth a word; an archive without any (an application's own
                # war of JSPs, a container of other archives) is just not a package.
                scan.note("java-unidentified", "no pom.properties, pom.xml, manifest version or versioned file "
                          "name: not reported", display)
        scan.packages.extend(found)

        for info in infos:
            if info.is_dir() or not info.filename.lower().endswith(ARCHIVE_SUFFIXES):
                continue
            inner_display = f"{display}!{info.filename}"
            if depth + 1 > scan.max_depth:
                scan.note("java-too-deep", f"not opened: nested deeper than {scan.max_depth} archives", inner_display)
                continue
            scan.archives_left -= 1
            if scan.archives_left < 0:
                raise _BudgetExceeded
            self._scan_nested(zf, info, inner_display, depth + 1, scan)

    def _pom_packages(
        self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], display: str, scan: _Scan, found: list[Package]
    ) -> None:
        """One package per META-INF/maven/<g>/<a>/pom.properties, licences from the pom.xml beside it."""
        by_name = {info.filename: info for info in infos}
        seen: set[tuple[str, str, str]] = set()
        for info in infos:
            match = _POM_PROPERTIES.match(info.filename)
            if not match or info.is_dir():
                continue
            try:
                props = _parse_properties(_read_member(zf, info, 64 * 1024, scan).decode("utf-8", "replace"))
            except _Skip as exc:
                scan.note("java-bad-member", str(exc), display)
                continue
            group = props.get("groupId", "") or match.group(1)
            artifact = props.get("artifactId", "") or match.group(2)
            version = props.get("version", "")
            if (group, artifact, version) in seen:
                continue
            seen.add((group, artifact, version))
            licenses: list[str] = []
            pom_xml = by_name.get(info.filename[: -len("pom.properties")] + "pom.xml")
            if pom_xml is not None:
                try:
                    licenses = _pom_licenses(_read_member(zf, pom_xml, 1 * _MIB, scan).decode("utf-8", "replace"))
                except _Skip as exc:
                    scan.note("java-bad-member", str(exc), display)
            found.append(_maven_package(group, artifact, version, display, "pom-properties", licenses))
        # A pom.xml without a pom.properties beside it (Gradle-built jars, bundles) still names the artifact.
        described = {info.filename[: -len("pom.properties")] for info in infos if _POM_PROPERTIES.match(info.filename)}
        for info in infos:
            if info.is_dir() or not _POM_XML.match(info.filename) or info.filename[: -len("pom.xml")] in described:
                continue
            try:
                text = _read_member(zf, info, 1 * _MIB, scan).decode("utf-8", "replace")
            except _Skip as exc:
                scan.note("java-bad-member", str(exc), display)
                continue
            coordinates = pom_coordinates(text)
            if coordinates is None or coordinates in seen:
                if coordinates is None:
                    scan.note("java-bad-member", f"{info.filename}: no artifactId and version that can be "
                              "resolved", display)
                continue
            seen.add(coordinates)
            found.append(_maven_package(*coordinates, display, "pom-xml", _pom_licenses(text)))

    def _scan_nested(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, display: str, depth: int, scan: _Scan) -> None:
        with tempfile.SpooledTemporaryFile(max_size=scan.max_in_memory, dir=scratch_dir()) as spool:
            try:
                with zf.open(info) as member:
                    while True:
                        chunk = member.read(_CHUNK)
                        if not chunk:
                            break
                        scan.charge(len(chunk))
                        spool.write(chunk)
            except _BudgetExceeded:
                raise
            except Exception as exc:  # corrupt member, unsupported compression, encryption, bad CRC
                scan.note("java-bad-member", f"cannot read nested archive: {exc}", display)
                return
            spool.seek(0)
            try:
                self._scan_archive(spool, display, info.filename, depth, scan)
            except _Skip as exc:
                scan.note("java-bad-archive", str(exc), display)


ANALYZERS = [JavaArchiveAnalyzer()]
