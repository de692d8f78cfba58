"""Merge per-layer facts into the image's final view.

Layers apply in order: opaque whiteouts clear a directory, whiteouts delete a path and everything
under it, and a later file replaces an earlier one. A package is attributed to the earliest layer
from which its database file continuously listed that same package and version, which is the layer
that installed that version.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

from hullscan.layers.paths import resolve_link
from hullscan.model import (
    BINARY_METHODS,
    Detection,
    FileEntry,
    FileFacts,
    ImageFacts,
    LayerFacts,
    LayerInfo,
    Note,
    OSInfo,
    Package,
)
from hullscan.osid import finalize_os_package

MAX_LINK_HOPS = 40  # as Linux (ELOOP)
# Linux follows at most 40 links, and no path or link target exceeds PATH_MAX (4,096 bytes, so at most 2,048
# components): no resolvable path makes a walk visit more components than this. Anything longer is refused
# as unresolvable, so a hostile target of 100,000 components costs one pass, never 40 of them.
MAX_RESOLVE_COMPONENTS = (MAX_LINK_HOPS + 1) * 2048

# Where the OS is described, best first; a symlinked os-release is resolved inside the image.
OS_FILES = ("etc/os-release", "usr/lib/os-release")

# FileFacts.hints key set by the walker on a hard link whose bytes were analysed at another path of the
# same layer (the value): the merge keeps one record of those bytes, whichever of the names survives.
HARD_LINK_OF = "hard_link_of"


class _Dir:
    """One directory of the merged tree: its sub-directories by name, and the paths of the entries in it.

    Each directory is one node under its parent, named by its last component only, so a path of n
    components costs n small nodes however deep it is (storing every ancestor's full path would cost n^2).
    """

    __slots__ = ("dirs", "entries", "links")

    def __init__(self) -> None:
        self.dirs: dict[str, _Dir] = {}  # sub-directories that hold something (declared or implied)
        self.entries: set[str] = set()  # full paths (keys of FileTree.nodes) of the entries directly in it
        self.links: dict[str, str] = {}  # name -> full path, for the entries that are symlinks

    def empty(self) -> bool:
        return not self.dirs and not self.entries


class FileTree:
    """The merged filesystem: path -> (entry, layer index).

    A tree of directories (which also knows directories that no tar member declared) makes removing a
    subtree cost the size of that subtree, so no sequence of whiteouts and replacements can go quadratic;
    adding a path or resolving one costs its length, however deep it is.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[FileEntry, int]] = {}
        self._root = _Dir()
        self._last: tuple[str, _Dir] | None = None  # the directory of the last entry added: tars list by directory

    def add(self, entry: FileEntry, layer: int) -> None:
        path = entry.path
        self.nodes[path] = (entry, layer)
        parent, _, name = path.rpartition("/")
        last = self._last
        if last is not None and last[0] == parent:
            d = last[1]
        else:
            d = self._root
            for part in parent.split("/") if parent else ():
                sub = d.dirs.get(part)
                if sub is None:
                    sub = d.dirs[part] = _Dir()
                d = sub
            self._last = (parent, d)
        d.entries.add(path)
        if entry.type == "l":
            d.links[name] = path
        else:
            d.links.pop(name, None)

    def has_children(self, path: str) -> bool:
        parent, _, name = path.rpartition("/")
        last = self._last
        if last is not None and last[0] == parent:  # the usual case: merge() asks just before add()
            d = last[1].dirs.get(name)
        else:
            chain = self._chain(path)
            d = chain[-1][1] if chain is not None else None
        return d is not None and not d.empty()

    def _chain(self, path: str) -> list[tuple[str, _Dir]] | None:
        """The directories from the root down to `path` (each with its name), or None if it holds nothing."""
        d = self._root
        chain = [("", d)]
        for part in path.split("/") if path else ():
            sub = d.dirs.get(part)
            if sub is None:
                return None
            d = sub
            chain.append((part, d))
        return chain

    def remove_tree(self, roots: set[str], keep_roots: bool) -> list[str]:
        """Remove everything under each root (and the roots, unless keep_roots); the removed paths."""
        removed: list[str] = []
        self._last = None
        for root in roots:
            parent, _, name = root.rpartition("/")
            chain = self._chain(parent)
            if chain is None:
                continue  # nothing there, not even the root itself
            d = chain[-1][1]
            if not root:  # the image root: only its content can go
                sub: _Dir | None = self._root
                self._root = _Dir()
            else:
                sub = d.dirs.pop(name, None)
            stack = [sub] if sub is not None else []
            while stack:
                node = stack.pop()
                stack.extend(node.dirs.values())
                removed.extend(p for p in node.entries if self.nodes.pop(p, None) is not None)
            if root and not keep_roots and root in d.entries:
                d.entries.discard(root)
                d.links.pop(name, None)
                if self.nodes.pop(root, None) is not None:
                    removed.append(root)
            # Directories left empty go too, so has_children() says whether anything is still below.
            while len(chain) > 1 and chain[-1][1].empty():
                gone, _ = chain.pop()
                chain[-1][1].dirs.pop(gone, None)
        return removed

    def resolve(self, path: str) -> str | None:
        """Follow symlinks (in any path component) inside the image; None on a loop or a dangling link.

        One pass over the components, looking each up in its directory's node: linear in the path and the
        link targets met, with at most MAX_LINK_HOPS links and MAX_RESOLVE_COMPONENTS components in all.
        """
        hops = 0
        budget = MAX_RESOLVE_COMPONENTS
        todo = path.split("/")
        todo.reverse()  # popped from the end: O(1) a component
        done: list[str] = []
        d: _Dir | None = self._root
        while todo:
            part = todo.pop()
            if not part:
                continue
            budget -= 1
            if budget < 0:
                return None
            link = d.links.get(part) if d is not None else None
            if link is None:
                done.append(part)
                d = d.dirs.get(part) if d is not None else None
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                return None
            linkname = self.nodes[link][0].linkname
            if linkname.count("/") >= budget:
                return None
            target = resolve_link(link, linkname).split("/")
            target.reverse()
            todo.extend(target)
            done = []
            d = self._root
        return "/".join(done)


@dataclasses.dataclass(slots=True)
class _Held:
    """The facts of one file's bytes as the merge holds them; every hard link to those bytes shares it."""

    facts: FileFacts
    layer: int
    origin: str  # the path the analyzers read the bytes at: what its packages' and detections' paths say


def merge(reference: str, layers: Sequence[LayerInfo], facts: Sequence[LayerFacts]) -> ImageFacts:
    tree = FileTree()
    found: dict[str, _Held] = {}
    notes: list[Note] = []
    detections: list[Detection] = []
    for info, lf in zip(layers, facts, strict=True):
        i = info.index
        for ff in lf.files.values():
            detections.extend(dataclasses.replace(d, layer_index=i, layer_diff_id=info.diff_id,
                                                  layer_created_by=info.created_by) for d in ff.detections)
        removed = tree.remove_tree(set(lf.opaque_dirs), keep_roots=True)
        removed += tree.remove_tree(set(lf.whiteouts), keep_roots=False)
        for p in removed:
            found.pop(p, None)
        for w in lf.whiteouts:
            found.pop(w, None)
        for entry in lf.entries:
            if entry.type != "d" and tree.has_children(entry.path):
                # a file replacing a directory (declared or only implied by its content) hides all under it
                for p in tree.remove_tree({entry.path}, keep_roots=True):
                    found.pop(p, None)
            tree.add(entry, i)
            if entry.path not in lf.files:
                found.pop(entry.path, None)
        links: list[tuple[str, str]] = []
        for path, ff in lf.files.items():
            if path not in tree.nodes:
                continue
            holder = ff.hints.get(HARD_LINK_OF)
            if isinstance(holder, str):
                links.append((path, holder))
            else:
                previous = found.get(path)
                found[path] = _Held(_attribute(ff, previous.facts if previous else None, info), i, path)
        for path, holder in links:  # the same bytes under another name: the same record, not a copy
            held = found.get(holder)
            if held is not None and held.layer == i:
                found[path] = held
            else:
                found.pop(path, None)
        notes.extend(_with_layer(n, i) for n in lf.notes)

    image = ImageFacts(reference=reference, layers=list(layers), notes=notes)
    image.os = _pick_os(tree, found)
    reported = _reported_at(found)
    image.packages = _packages(reported, image.os, _owned(tree, reported), _superseded(reported))
    image.files = sorted(tree.nodes.values(), key=lambda n: n[0].path)
    moved = {(held.layer, held.origin): path for path, held in reported if path != held.origin}
    for d in detections:
        file, bang, inner = d.path.partition("!")  # "outer.jar!inner" lives in outer.jar
        node = tree.nodes.get(file)
        d.in_final_image = node is not None and node[1] == d.layer_index
        heir = moved.get((d.layer_index, file))
        if heir is not None:  # deleted or replaced at its first name, still in the image under a hard link
            d.path, d.in_final_image = heir + bang + inner, True
    image.detections = detections
    image.config_files = {path: str(held.facts.hints["config_file"]) for path, held in sorted(found.items())
                          if "config_file" in held.facts.hints}
    image.config_digests = {path: str(held.facts.hints["config_sha256"]) for path, held in sorted(found.items())
                            if "config_sha256" in held.facts.hints}
    image.private = {path: dict(held.facts.private) for path, held in sorted(found.items()) if held.facts.private}
    image.file_hashes = {path: str(held.facts.hints["sha256"]) for path, held in sorted(found.items())
                         if "sha256" in held.facts.hints}
    return image


def _reported_at(found: dict[str, _Held]) -> list[tuple[str, _Held]]:
    """Each analysed file's facts once, by path: at the path they were read at while it still holds those
    bytes, else at the first (by path) of its hard links still in the image."""
    where: dict[int, tuple[str, _Held]] = {}
    for path in sorted(found):
        held = found[path]
        if id(held) not in where or path == held.origin:
            where[id(held)] = (path, held)
    return sorted(where.values(), key=lambda r: r[0])


def moved_facts(ff: FileFacts, origin: str, path: str) -> FileFacts:
    """The facts of bytes read at `origin`, now found at `path` (a hard link to them): one copy, whatever the
    number of links. Paths inside the file ("app.jar!lib/x.jar") keep their inner part."""
    def rename(p: str) -> str:
        return path + p[len(origin):] if p == origin or p.startswith(origin + "!") else p

    return FileFacts([dataclasses.replace(p, path=rename(p.path)) for p in ff.packages], ff.os, ff.hints,
                     [dataclasses.replace(d, path=rename(d.path)) for d in ff.detections], ff.private)


def _with_layer(n: Note, index: int) -> Note:
    return n if n.layer_index == index else dataclasses.replace(n, layer_index=index)


def _attribute(ff: FileFacts, previous: FileFacts | None, info: LayerInfo) -> FileFacts:
    earlier: dict[tuple[str, ...], Package] = {}
    if previous is not None:
        earlier = {p.key: p for p in previous.packages}
    packages = []
    for p in ff.packages:
        before = earlier.get(p.key)
        if before is not None:
            packages.append(dataclasses.replace(p, layer_index=before.layer_index,
                                                layer_diff_id=before.layer_diff_id,
                                                layer_created_by=before.layer_created_by))
        else:
            packages.append(dataclasses.replace(p, layer_index=info.index, layer_diff_id=info.diff_id,
                                                layer_created_by=info.created_by))
    return FileFacts(packages, ff.os, ff.hints, ff.detections, ff.private)


def _pick_os(tree: FileTree, found: dict[str, _Held]) -> OSInfo | None:
    for path in OS_FILES:
        real = tree.resolve(path)
        held = found.get(real) if real is not None else None
        if held is not None and held.facts.os is not None:
            return held.facts.os
    # Distribution-specific release files (alpine-release, redhat-release, ...) by their priority.
    candidates = [held.facts.os for held in found.values() if held.facts.os is not None]
    return max(candidates, key=lambda o: o.priority) if candidates else None


def _owned(tree: FileTree, reported: list[tuple[str, _Held]]) -> set[str]:
    """Files a package database owns (analyzers' hint "owned"), by their listed path and the path their
    symlinks lead to (dpkg lists /bin/bash, a merged-/usr image stores usr/bin/bash). Each database once,
    however many hard links name it."""
    owned: set[str] = set()
    for _, held in reported:
        for path in held.facts.hints.get("owned", ()):
            owned.add(path)
            real = tree.resolve(path)
            if real:
                owned.add(real)
    return owned


def _superseded(reported: list[tuple[str, _Held]]) -> set[str]:
    """Files whose packages a stronger source describes (hint "superseded_by": paths, or globs in the file's
    directory): a wheel's RECORD when its METADATA is there, assemblies when the app's deps.json is."""
    out: set[str] = set()
    described: dict[str, list[str]] = {}  # directory -> files in it that produced packages
    for path, held in reported:
        if held.facts.packages:
            described.setdefault(path.rsplit("/", 1)[0] if "/" in path else "", []).append(path)
    for path, held in reported:
        for pattern in held.facts.hints.get("superseded_by", ()):
            folder = pattern.rsplit("/", 1)[0] if "/" in pattern else ""
            if any(p != path and fnmatch.fnmatchcase(p, pattern) for p in described.get(folder, ())):
                out.add(path)
                break
    return out


def _packages(reported: list[tuple[str, _Held]], os_info: OSInfo | None, owned: set[str],
              superseded: set[str]) -> list[Package]:
    dpkg_licenses: dict[str, list[str]] = {}
    for _, held in reported:
        for name, lic in held.facts.hints.get("dpkg_licenses", {}).items():
            dpkg_licenses[name] = list(lic)
    out: list[Package] = []
    installed: set[tuple[str, str, str]] = set()
    lock: list[Package] = []
    noted: list[Package] = []  # from ELF package notes: reported unless a database lists that same package
    for path, held in reported:
        if path in superseded:
            continue
        ff = held.facts if path == held.origin else moved_facts(held.facts, held.origin, path)
        for p in ff.packages:
            if p.method in BINARY_METHODS and p.path in owned:
                continue  # its package database reports it
            if p.method == "elf-note":
                noted.append(p)
                continue
            if p.metadata.get("source") == "lockfile":
                lock.append(p)
                continue
            if p.ecosystem == "deb" and not p.licenses:
                p = dataclasses.replace(p, licenses=dpkg_licenses.get(p.name, []))
            p = finalize_os_package(p, os_info)
            installed.add((p.ecosystem, p.name, p.version))
            if p.source_name:
                installed.add((p.ecosystem, p.source_name, p.source_version or p.version))
            out.append(p)
    # An ELF note names the source package (systemd, while dpkg lists libsystemd0 built from it).
    for p in noted:
        k = (p.ecosystem, p.name, p.version)
        if k not in installed:
            installed.add(k)
            out.append(finalize_os_package(p, os_info))
    # A project whose dependencies are installed is described by what is on disk: its lock file also
    # names optional packages for other platforms (fsevents on macOS) that were never installed.
    # Lock files count only for projects shipped without their installed tree.
    installed_roots = {p.path.split("node_modules/", 1)[0] for p in out if "node_modules/" in p.path}
    seen: set[tuple[str, str, str]] = set()
    for p in lock:
        k = (p.ecosystem, p.name, p.version)
        project = p.path.rsplit("/", 1)[0] + "/" if "/" in p.path else ""
        if project in installed_roots:
            continue
        if k not in installed and k not in seen:
            seen.add(k)
            out.append(p)
    return out
