"""Installed Ruby gems: ``specifications/*.gemspec`` and ``specifications/default/*.gemspec``.

RubyGems writes these with ``Gem::Specification#to_ruby``: plain assignments such as
``s.name = "rake".freeze``, ``s.version = "13.0.6"`` (older writers: ``%q{rake}``,
``Gem::Version.new("1.2")``) and ``s.licenses = ["MIT".freeze]``. We read those assignments as text and
never evaluate Ruby. When the version is not a literal we fall back to the ``# stub:`` header line and
then to the file name (``<name>-<version>[-<platform>].gemspec``).
"""

from __future__ import annotations

from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.licenses import normalize_all
from hullscan.model import FileEntry, FileFacts, Package

_ATTRS = frozenset({"name", "version", "platform", "license", "licenses"})
_CLOSERS = {"{": "}", "(": ")", "[": "]", "<": ">"}
_ESCAPES = {"n": "\n", "t": "\t", "s": " ", "e": "\x1b", "0": "\x00", "r": "\r"}
_MAX_CONTINUATION = 50  # lines an array literal may span
_MAX_LITERALS = 100


def _double_quoted(text: str, i: int, close: str, opener: str = "") -> tuple[str | None, int]:
    """Read a literal whose body starts at text[i]; returns (value or None if interpolated, end)."""
    out: list[str] = []
    depth = 0
    interpolated = False
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if opener and c == opener:
            depth += 1
        elif c == close:
            if depth == 0:
                return (None if interpolated else "".join(out)), i + 1
            depth -= 1
        elif c == "#" and i + 1 < n and text[i + 1] in "{@$":
            interpolated = True
        out.append(c)
        i += 1
    return None, n  # unterminated


def _single_quoted(text: str, i: int, close: str, opener: str = "") -> tuple[str | None, int]:
    out: list[str] = []
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in ("\\", close):
            out.append(text[i + 1])
            i += 2
            continue
        if opener and c == opener:
            depth += 1
        elif c == close:
            if depth == 0:
                return "".join(out), i + 1
            depth -= 1
        out.append(c)
        i += 1
    return None, n


def string_literals(text: str) -> list[str | None]:
    """The string literals of a Ruby expression, in order (None for an interpolated one).

    Knows ``"..."``, ``'...'``, ``%q``/``%Q``/``%`` literals with any delimiter and ``%w``/``%W`` word
    arrays; stops at a comment. Linear in the length of `text`.
    """
    found: list[str | None] = []
    i = 0
    n = len(text)
    while i < n and len(found) < _MAX_LITERALS:
        c = text[i]
        if c == "#":
            break
        if c == '"':
            value, i = _double_quoted(text, i + 1, '"')
            found.append(value)
            continue
        if c == "'":
            value, i = _single_quoted(text, i + 1, "'")
            found.append(value)
            continue
        if c == "%" and i + 1 < n:
            kind = text[i + 1]
            start = i + 2
            if kind.isalnum():
                if kind not in "qQwW" or start >= n:
                    i += 1
                    continue
            else:
                kind, start = "Q", i + 1
            delim = text[start] if start < n else ""
            if not delim or delim.isalnum() or delim.isspace():
                i += 1
                continue
            close = _CLOSERS.get(delim, delim)
            opener = delim if close != delim else ""
            if kind in "qw":
                value, i = _single_quoted(text, start + 1, close, opener)
            else:
                value, i = _double_quoted(text, start + 1, close, opener)
            if kind in "wW":
                if value is not None:
                    found.extend(value.split())
            else:
                found.append(value)
            continue
        i += 1
    return found


def _assignment(line: str) -> tuple[str, str] | None:
    """``<var>.<attr> = <value>`` for the attributes we want -> (attr, value)."""
    dot = line.find(".")
    if dot <= 0 or not line[:dot].isidentifier():
        return None
    attr, sep, value = line[dot + 1 :].partition("=")
    attr = attr.strip()
    if not sep or attr not in _ATTRS or value.startswith(("=", "~")):
        return None
    return attr, value


def _clean(value: str | None) -> str:
    if value is None:
        return ""
    value = value.strip()
    if not value or len(value) > 256 or any(c.isspace() or c == "\x00" for c in value):
        return ""
    return value


def parse_gemspec(text: str) -> dict[str, object]:
    """Name, version, platform and licences as written in a generated gemspec (missing keys: unknown)."""
    found: dict[str, object] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line[0] == "#":
            if line.startswith("# stub:") and "stub" not in found:
                found["stub"] = line[len("# stub:") :].split()
            continue
        hit = _assignment(line)
        if hit is None:
            continue
        attr, value = hit
        if attr in found:
            continue
        if attr == "licenses" and "[" in value and "]" not in value:
            for extra in lines[i : i + _MAX_CONTINUATION]:
                value += " " + extra.strip()
                i += 1
                if "]" in extra:
                    break
        literals = string_literals(value)
        if attr in ("license", "licenses"):
            found["licenses"] = [v for v in literals if v]
        elif literals:
            found[attr] = _clean(literals[0])
        else:
            found[attr] = ""  # assigned, but not from a literal (e.g. Foo::VERSION)
    return found


class RubyGemspecAnalyzer:
    name = "ruby"
    version = 2
    max_size = 4 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        if not path.endswith(".gemspec") or entry.type != "f":
            return False
        parts = path.rsplit("/", 3)
        if len(parts) < 2:
            return False
        if parts[-2] == "specifications":
            return True
        return parts[-2] == "default" and len(parts) >= 3 and parts[-3] == "specifications"

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)
        if len(data) > self.max_size:
            raise AnalyzerFailure(f"gemspec larger than {self.max_size} bytes")
        # No NUL check: RubyGems itself writes NUL-separated extension lists into the "# stub:" lines.
        spec = parse_gemspec(data.decode("utf-8", errors="replace"))
        stub = spec.get("stub")
        stub_words = [w for w in stub if isinstance(w, str)] if isinstance(stub, list) else []

        name = str(spec.get("name") or "")
        version = str(spec.get("version") or "")
        platform = str(spec.get("platform") or "")
        if stub_words and len(stub_words) >= 2 and (not name or stub_words[0] == name):
            name = name or _clean(stub_words[0])
            version = version or _clean(stub_words[1])
            if not platform and len(stub_words) >= 3:
                platform = _clean(stub_words[2])
        if name and not version:
            version = _version_from_filename(path, name, platform)
        if not name or not version:
            raise AnalyzerFailure("gemspec without a literal name and version")

        metadata: dict[str, str] = {}
        if platform and platform != "ruby":
            metadata["platform"] = platform
        parts = path.rsplit("/", 2)
        if len(parts) >= 2 and parts[-2] == "default":
            metadata["default_gem"] = "true"
        raw_licenses = spec.get("licenses")
        licenses = normalize_all([str(x) for x in raw_licenses]) if isinstance(raw_licenses, list) else []
        package = Package(
            name=name,
            version=version,
            ecosystem="gem",
            path=path,
            purl=PackageURL(type="gem", name=name, version=version).to_string(),
            licenses=licenses,
            metadata=metadata,
            method="installed-metadata",
        )
        return FileFacts(packages=[package])


def _version_from_filename(path: str, name: str, platform: str) -> str:
    stem = path.rpartition("/")[2][: -len(".gemspec")]
    if not stem.startswith(name + "-"):
        return ""
    rest = stem[len(name) + 1 :]
    if platform and platform != "ruby" and rest.endswith("-" + platform):
        rest = rest[: -len(platform) - 1]
    return _clean(rest)


ANALYZERS = [RubyGemspecAnalyzer()]
