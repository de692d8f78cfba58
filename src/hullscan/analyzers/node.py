"""Node.js packages.

Primary source: the ``package.json`` of every package installed under a ``node_modules`` directory
(``node_modules/x/package.json``, ``node_modules/@scope/x/package.json``, nested ``node_modules`` and
pnpm's ``node_modules/.pnpm/<id>/node_modules/x`` included). A ``package.json`` deeper inside a package
(test fixtures, templates) and the application's own manifest are not packages installed in the image.

Secondary source: lock files (``package-lock.json`` v1-v3, classic ``yarn.lock`` v1 and Berry,
``pnpm-lock.yaml`` v5-v9) outside ``node_modules``. They describe what an install *would* put there, so
their packages carry ``metadata["source"] = "lockfile"`` and the merge prefers installed packages.
Development-only dependencies are marked ``metadata["dev"] = "true"`` where the lock file says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.licenses import normalize_all
from hullscan.model import FileEntry, FileFacts, Package

if TYPE_CHECKING:
    import yaml

_LOCKFILES = frozenset({"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"})
_MAX_NAME = 512  # npm allows 214; anything much longer is junk
# Upper bound on graph steps when working out pnpm dev dependencies (hostile YAML can alias one huge
# mapping into every entry); past it the dev marks are left out rather than spending unbounded time.
_MAX_STEPS = 5_000_000


def _read(content: IO[bytes], limit: int) -> bytes:
    data = content.read(limit + 1)
    if len(data) > limit:
        raise AnalyzerFailure(f"file larger than {limit} bytes")
    return data


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise AnalyzerFailure(f"invalid JSON: {exc}") from None


_YAML_MAX_DEPTH = 200
_YAML_TRUE = frozenset({"true", "True", "TRUE"})
_YAML_FALSE = frozenset({"false", "False", "FALSE"})
_YAML_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_NO_KEY = object()
_BAD_KEY = object()


def _yaml_scalar(event: yaml.ScalarEvent) -> Any:
    if not event.style and event.implicit[0]:  # plain: true/false/null resolve, the rest stays text
        if event.value in _YAML_TRUE:
            return True
        if event.value in _YAML_FALSE:
            return False
        if event.value in _YAML_NULL:
            return None
    return event.value


def _load_yaml(text: str) -> Any:
    """The first YAML document (see `_load_yaml_documents`)."""
    docs = _load_yaml_documents(text)
    return docs[0] if docs else None


def _load_yaml_documents(text: str) -> list[Any]:
    """Build every YAML document of the stream from parser events, without recursion and without aliases.

    PyYAML's loaders compose nodes recursively (the C one can overflow the C stack on deep nesting)
    and construct Python objects slowly; lock files need only mappings, lists, strings, booleans and
    nulls. Aliases (which lock file writers never emit) become None, so an alias bomb costs nothing.
    Tags are ignored: nothing is ever constructed from them.
    """
    import yaml  # only for a pnpm lock file: every scan imports the analyzers

    parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs: list[Any] = []
    root: Any = None
    stack: list[list[Any]] = []  # [container, pending key]

    def add(value: Any) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        frame = stack[-1]
        container = frame[0]
        if isinstance(container, list):
            container.append(value)
        elif frame[1] is _NO_KEY:
            frame[1] = value if isinstance(value, str | int | float | bool) or value is None else _BAD_KEY
        else:
            if frame[1] is not _BAD_KEY:
                container[frame[1]] = value
            frame[1] = _NO_KEY

    try:
        for event in yaml.parse(text, Loader=parser):
            if isinstance(event, yaml.ScalarEvent):
                add(_yaml_scalar(event))
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if len(stack) >= _YAML_MAX_DEPTH:
                    raise AnalyzerFailure(f"YAML nested deeper than {_YAML_MAX_DEPTH} levels")
                stack.append([{} if isinstance(event, yaml.MappingStartEvent) else [], _NO_KEY])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                container = stack.pop()[0] if stack else None
                add(container)
            elif isinstance(event, yaml.AliasEvent):
                add(None)
            elif isinstance(event, yaml.DocumentEndEvent):
                docs.append(root)
                root, stack = None, []
    except yaml.YAMLError as exc:
        raise AnalyzerFailure(f"invalid YAML: {exc}"[:500]) from None
    return docs


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= _MAX_NAME and name[0] != "/" and name[-1] != "/" and not any(c in name for c in "\n\r\x00")


def _valid_version(version: str) -> bool:
    # Registry versions only: git URLs, file: and link: specifiers are no version to match on.
    return (
        0 < len(version) <= 256 and ":" not in version and "/" not in version and not any(c.isspace() for c in version)
    )


def npm_purl(name: str, version: str) -> str:
    """``pkg:npm/%40scope/name@version``; "" when the name cannot form a purl."""
    namespace, _, short = name.rpartition("/")
    try:
        return PackageURL(type="npm", namespace=namespace or None, name=short, version=version).to_string()
    except ValueError:
        return ""


def _make(
    name: str, version: str, path: str, licenses: list[str], metadata: dict[str, str] | None = None,
    method: str = "installed-metadata",
) -> Package | None:
    purl = npm_purl(name, version)
    if not purl:
        return None
    return Package(
        name=name,
        version=version,
        ecosystem="npm",
        path=path,
        purl=purl,
        licenses=licenses,
        metadata=metadata or {},
        method=method,
    )


def package_licenses(doc: dict[str, Any]) -> list[str]:
    """``license`` as a string, an object ``{type}`` or (wrongly) a list; else legacy ``licenses``."""
    raws: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, str):
            raws.append(value)
        elif isinstance(value, dict):
            raws.append(_str(value.get("type")) or _str(value.get("name")))

    lic = doc.get("license")
    if isinstance(lic, list):
        for item in lic[:50]:
            add(item)
    else:
        add(lic)
    if not any(raws):
        legacy = doc.get("licenses")
        if isinstance(legacy, list):
            for item in legacy[:50]:
                add(item)
        else:
            add(legacy)
    return normalize_all([r for r in raws if r.strip()])


def is_installed_manifest(path: str) -> bool:
    """True for ``.../node_modules/<pkg>/package.json`` and ``.../node_modules/@scope/<pkg>/package.json``."""
    parts = path.split("/")
    if len(parts) < 3:
        return False
    pkg = parts[-2]
    if not pkg or pkg[0] == ".":
        return False
    if parts[-3] == "node_modules":
        return pkg[0] != "@"
    return len(parts) >= 4 and parts[-4] == "node_modules" and len(parts[-3]) > 1 and parts[-3][0] == "@"


class NodePackageAnalyzer:
    name = "node"
    version = 2
    max_size = 4 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return (
            path.endswith("/package.json")
            and entry.type == "f"
            and "node_modules/" in path
            and is_installed_manifest(path)
        )

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        doc = _load_json(_read(content, self.max_size))
        if not isinstance(doc, dict):
            raise AnalyzerFailure("package.json is not a JSON object")
        name = _str(doc.get("name"))
        version = _str(doc.get("version"))
        if not _valid_name(name) or not version or len(version) > 256:
            # an installed package whose manifest names no package: a broken install, or a directory a
            # build tool left in node_modules
            raise AnalyzerFailure("package.json under node_modules without a usable name and version: not reported")
        package = _make(name, version, path, package_licenses(doc))
        if package is None:
            raise AnalyzerFailure(f"package name {name!r} cannot form a purl: not reported")
        return FileFacts(packages=[package])


class _Collector:
    """Deduplicates lock file entries; a package is dev only if every occurrence is dev."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.found: dict[tuple[str, str], Package] = {}
        self.skipped: list[str] = []  # entries not reported: git, file:, link: and other non-registry sources

    def add(self, name: str, version: str, *, dev: bool | None = None, licenses: list[str] | None = None) -> None:
        name = name.strip()
        version = version.strip()
        if not _valid_name(name) or not _valid_version(version):
            self.skipped.append(f"{name[:80]}@{version[:80]}")
            return
        key = (name, version)
        known = self.found.get(key)
        if known is None:
            meta = {"source": "lockfile"}
            if dev:
                meta["dev"] = "true"
            package = _make(name, version, self.path, licenses or [], meta, "lock-file")
            if package is not None:
                self.found[key] = package
            else:
                self.skipped.append(f"{name[:80]}@{version[:80]}")
            return
        if not dev:
            known.metadata.pop("dev", None)
        if licenses and not known.licenses:
            known.licenses = licenses

    def facts(self) -> FileFacts | None:
        facts = FileFacts(packages=sorted(self.found.values(), key=lambda p: (p.name, p.version)))
        if self.skipped:
            unique = sorted(set(self.skipped))
            shown = ", ".join(unique[:5]) + (f" and {len(unique) - 5} more" if len(unique) > 5 else "")
            facts.hints["notes"] = [{"code": "LOCKFILE_ENTRY_SKIPPED", "message": f"{len(unique)} entr"
                                     f"{'y' if len(unique) == 1 else 'ies'} without a registry name and version "
                                     f"(git, file:, link:, workspace sources) not reported: {shown}"}]
        return None if facts.empty() else facts


def _split_spec(spec: str) -> tuple[str, str]:
    """``name@range`` (name may start with ``@``) -> (name, range); an npm alias resolves to its target."""
    at = spec.find("@", 1)
    if at < 0:
        return spec, ""
    name, rng = spec[:at], spec[at + 1 :]
    if rng.startswith("npm:"):
        target = rng[4:]
        at = target.find("@", 1)
        return (target[:at], target[at + 1 :]) if at > 0 else (target, "")
    return name, rng


# ---- package-lock.json / npm-shrinkwrap.json -------------------------------------------------------


def _package_lock(doc: dict[str, Any], out: _Collector) -> None:
    packages = doc.get("packages")
    if isinstance(packages, dict) and packages:
        for key, info in packages.items():
            if not isinstance(key, str) or not isinstance(info, dict):
                continue
            idx = key.rfind("node_modules/")
            if idx < 0 or info.get("link") is True:
                continue  # the root project, workspace sources, or a symlink to one
            name = _str(info.get("name")) or key[idx + len("node_modules/") :]
            out.add(name, _str(info.get("version")), dev=info.get("dev") is True, licenses=package_licenses(info))
        return
    deps = doc.get("dependencies")
    stack: list[Any] = [deps]
    while stack:
        level = stack.pop()
        if not isinstance(level, dict):
            continue
        for name, info in level.items():
            if not isinstance(name, str) or not isinstance(info, dict):
                continue
            version = _str(info.get("version"))
            if version.startswith("npm:"):  # alias: "npm:real-name@1.2.3"
                name, version = _split_spec(version[4:])
            out.add(name, version, dev=info.get("dev") is True)
            stack.append(info.get("dependencies"))


# ---- yarn.lock -------------------------------------------------------------------------------------


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text


def _yarn_classic(text: str, out: _Collector) -> None:
    name = ""
    for line in text.splitlines():
        if not line or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            name = ""
            if line.rstrip().endswith(":"):
                first = line.rstrip()[:-1].split(",", 1)[0]
                name, _ = _split_spec(_unquote(first))
            continue
        if name and line.startswith("  ") and not line.startswith("   "):
            key, _, value = line.strip().partition(" ")
            if _unquote(key) == "version":
                out.add(name, _unquote(value))


def _yarn_berry(doc: dict[str, Any], out: _Collector) -> None:
    for key, info in doc.items():
        if key == "__metadata" or not isinstance(info, dict):
            continue
        resolution = _str(info.get("resolution"))
        at = resolution.find("@", 1)
        if at < 0 or not resolution.startswith("npm:", at + 1):
            continue  # workspace:, patch:, link:, portal:, git and file sources
        version = _str(info.get("version")) or resolution[at + 5 :]
        out.add(resolution[:at], version)


# ---- pnpm-lock.yaml --------------------------------------------------------------------------------


def _lockfile_version(doc: dict[str, Any]) -> float:
    """``lockfileVersion`` is a number (5.4) in old files and a string ('6.0', '9.0') in newer ones."""
    text = str(doc.get("lockfileVersion", "")).strip()[:20]
    number = ""
    for ch in text:
        if ch.isdecimal() or (ch == "." and "." not in number):
            number += ch
        else:
            break
    try:
        return float(number)
    except ValueError:
        return 0.0


def _pnpm_key(key: str, major: float) -> tuple[str, str]:
    """Package key -> (name, version); peer suffixes ``(peer@1)`` / ``_peer@1`` dropped."""
    key = key.split("(", 1)[0]
    if key.startswith("/"):
        key = key[1:]
    if major < 6:
        # v5: "/name/1.0.0", "/@scope/name/1.0.0_peer@2.0.0"
        name, _, version = key.rpartition("/")
        return name, version.split("_", 1)[0]
    at = key.find("@", 1)
    if at < 0:
        return key, ""
    return key[:at], key[at + 1 :]


def _is_env_document(doc: dict[str, Any]) -> bool:
    """pnpm 11+ writes an "env" document first: the package manager's own pinned version and config
    dependencies (importers with only packageManagerDependencies / configDependencies)."""
    importers = doc.get("importers")
    if not isinstance(importers, dict) or not importers:
        return False
    env_keys = {"packageManagerDependencies", "configDependencies"}
    return all(isinstance(i, dict) and set(i) <= env_keys for i in importers.values())


def _pnpm(doc: dict[str, Any], out: _Collector, all_dev: bool = False) -> None:
    major = _lockfile_version(doc)
    packages = doc.get("packages")
    if not isinstance(packages, dict):
        return
    dev_ids = _pnpm_dev_ids(doc, major) if major >= 9 else None
    for key, info in packages.items():
        if not isinstance(key, str):
            continue
        info = info if isinstance(info, dict) else {}
        explicit = _str(info.get("name"))
        if explicit:
            # Tarball, git and directory entries ("github.com/u/r/sha", "file:...") name themselves.
            name, version = explicit, _str(info.get("version"))
        elif major < 9 and not key.startswith("/"):
            continue  # a non-registry entry without a recorded name
        else:
            name, version = _pnpm_key(key, major)
        dev = all_dev or (key in dev_ids if dev_ids is not None else info.get("dev") is True)
        out.add(name, version, dev=dev)


def _dep_versions(value: object) -> Iterator[tuple[str, str]]:
    if not isinstance(value, dict):
        return
    for name, ref in value.items():
        if isinstance(ref, dict):  # importers: {specifier, version}
            ref = ref.get("version")
        if isinstance(name, str) and isinstance(ref, str | int | float):
            yield name, str(ref)


def _pnpm_dev_ids(doc: dict[str, Any], major: float) -> set[str] | None:
    """v9 lock files drop the per-package ``dev`` flag: walk the graph from the importers instead.

    A package is dev when it is reachable from some importer's devDependencies and from no
    importer's dependencies / optionalDependencies. Returns the ids of dev packages (keys of
    ``packages``), or None when the graph cannot be followed (no importers, too large).
    """
    importers = doc.get("importers")
    snapshots = doc.get("snapshots")
    if not isinstance(importers, dict) or not importers:
        return None
    if not isinstance(snapshots, dict):
        snapshots = {}
    steps = 0

    def ref_id(name: str, ref: str) -> str:
        if ref.startswith(("link:", "file:")):
            return ""
        if ref.startswith("npm:") or (ref and not ref[0].isdecimal() and "@" in ref[1:]):
            return ref[4:] if ref.startswith("npm:") else ref  # alias: "other@1.0.0"
        return f"{name}@{ref}"

    def walk(roots: Iterable[tuple[str, str]]) -> set[str] | None:
        nonlocal steps
        seen: set[str] = set()
        stack = [ref_id(n, r) for n, r in roots]
        while stack:
            steps += 1
            if steps > _MAX_STEPS:
                return None
            snap_id = stack.pop()
            if not snap_id or snap_id in seen:
                continue
            seen.add(snap_id)
            snap = snapshots.get(snap_id)
            if isinstance(snap, dict):
                for field in ("dependencies", "optionalDependencies"):
                    for n, r in _dep_versions(snap.get(field)):
                        steps += 1
                        if steps > _MAX_STEPS:
                            return None
                        stack.append(ref_id(n, r))
        return seen

    prod_roots: list[tuple[str, str]] = []
    dev_roots: list[tuple[str, str]] = []
    for importer in importers.values():
        if not isinstance(importer, dict):
            continue
        prod_roots.extend(_dep_versions(importer.get("dependencies")))
        prod_roots.extend(_dep_versions(importer.get("optionalDependencies")))
        dev_roots.extend(_dep_versions(importer.get("devDependencies")))
    prod = walk(prod_roots)
    dev = walk(dev_roots)
    if prod is None or dev is None:
        return None
    # Snapshot ids carry peer suffixes; `packages` keys do not.
    prod_pkgs = {s.split("(", 1)[0] for s in prod}
    return {s.split("(", 1)[0] for s in dev} - prod_pkgs


class NodeLockfileAnalyzer:
    name = "node-lockfile"
    version = 2
    max_size = 64 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        if entry.type != "f" or not path.endswith((".json", ".lock", ".yaml")):
            return False
        base = path.rpartition("/")[2]
        # Lock files shipped inside installed packages describe their authors' machines, not the image.
        return base in _LOCKFILES and "node_modules/" not in path

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = _read(content, self.max_size)
        base = path.rpartition("/")[2]
        out = _Collector(path)
        if base.endswith(".json"):
            doc = _load_json(data)
            if not isinstance(doc, dict):
                raise AnalyzerFailure(f"{base} is not a JSON object")
            _package_lock(doc, out)
        elif base == "yarn.lock":
            text = data.decode("utf-8-sig", errors="replace")
            if "\n__metadata:" in text or text.startswith("__metadata:"):
                doc = _load_yaml(text)
                if not isinstance(doc, dict):
                    raise AnalyzerFailure("yarn.lock (Berry) is not a YAML mapping")
                _yarn_berry(doc, out)
            else:
                _yarn_classic(text, out)
        else:
            # pnpm 11+ may write several documents (the package manager's own "env" document first): read all;
            # the env document's packages are the tool's, so they count as development dependencies.
            docs = [d for d in _load_yaml_documents(data.decode("utf-8-sig", errors="replace")) if d is not None]
            if not docs or not all(isinstance(d, dict) for d in docs):
                raise AnalyzerFailure("pnpm-lock.yaml is not a YAML mapping")
            for doc in docs:
                _pnpm(doc, out, all_dev=_is_env_document(doc))
        return out.facts()


ANALYZERS = [NodePackageAnalyzer(), NodeLockfileAnalyzer()]
