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

MAX_LINK_HOPS = 40

# Where the OS is described, best first; a symlinked os-release is resolved inside the image.
OS_FILES = ("etc/os-release", "usr/lib/os-release")


class FileTree:
    """The merged filesystem: path -> (entry, layer index).

    A child index (which also knows directories that no tar member declared) makes removing a subtree
    cost the size of that subtree, so no sequence of whiteouts and replacements can go quadratic.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[FileEntry, int]] = {}
        self._children: dict[str, set[str]] = {}  # parent path ('' is the root) -> child paths

    def add(self, entry: FileEntry, layer: int) -> None:
        self.nodes[entry.path] = (entry, layer)
        path = entry.path
        while path:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            kids = self._children.setdefault(parent, set())
            if path in kids:
                break
            kids.add(path)
            path = parent

    def has_children(self, path: str) -> bool:
        return bool(self._children.get(path))

    def remove_tree(self, roots: set[str], keep_roots: bool) -> list[str]:
        removed = []
        for root in roots:
            stack = list(self._children.pop(root, ()))
            while stack:
                p = stack.pop()
                stack.extend(self._children.pop(p, ()))
                if self.nodes.pop(p, None) is not None:
                    removed.append(p)
            if not keep_roots and root:
                if self.nodes.pop(root, None) is not None:
                    removed.append(root)
                parent = root.rsplit("/", 1)[0] if "/" in root else ""
                self._children.get(parent, set()).discard(root)
        return removed

    def resolve(self, path: str) -> str | None:
        """Follow symlinks (in any path component) inside the image; None on a loop or a dangling link."""
        hops = 0
        parts = path.split("/")
        done: list[str] = []
        while parts:
            part = parts.pop(0)
            current = "/".join([*done, part])
            node = self.nodes.get(current)
            if node is not None and node[0].type == "l":
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                target = resolve_link(current, node[0].linkname)
                parts = [p for p in target.split("/") if p] + parts
                done = []
                continue
            done.append(part)
        return "/".join(done)


def merge(reference: str, layers: Sequence[LayerInfo], facts: Sequence[LayerFacts]) -> ImageFacts:
    tree = FileTree()
    found: dict[str, tuple[FileFacts, int]] = {}
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
        for path, ff in lf.files.items():
            if path in tree.nodes:
                found[path] = (_attribute(ff, found.get(path), info), i)
        notes.extend(_with_layer(n, i) for n in lf.notes)

    image = ImageFacts(reference=reference, layers=list(layers), notes=notes)
    image.os = _pick_os(tree, found)
    image.packages = _packages(found, image.os, _owned(tree, found), _superseded(found))
    image.files = sorted(tree.nodes.values(), key=lambda n: n[0].path)
    for d in detections:
        node = tree.nodes.get(d.path.split("!", 1)[0])  # "outer.jar!inner" lives in outer.jar
        d.in_final_image = node is not None and node[1] == d.layer_index
    image.detections = detections
    image.config_files = {path: str(ff.hints["config_file"]) for path, (ff, _) in sorted(found.items())
                          if "config_file" in ff.hints}
    image.config_digests = {path: str(ff.hints["config_sha256"]) for path, (ff, _) in sorted(found.items())
                            if "config_sha256" in ff.hints}
    image.private = {path: dict(ff.private) for path, (ff, _) in sorted(found.items()) if ff.private}
    image.file_hashes = {path: str(ff.hints["sha256"]) for path, (ff, _) in sorted(found.items())
                         if "sha256" in ff.hints}
    return image


def _with_layer(n: Note, index: int) -> Note:
    return n if n.layer_index == index else dataclasses.replace(n, layer_index=index)


def _attribute(ff: FileFacts, previous: tuple[FileFacts, int] | None, info: LayerInfo) -> FileFacts:
    earlier: dict[tuple[str, ...], Package] = {}
    if previous is not None:
        earlier = {p.key: p for p in previous[0].packages}
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


def _pick_os(tree: FileTree, found: dict[str, tuple[FileFacts, int]]) -> OSInfo | None:
    for path in OS_FILES:
        real = tree.resolve(path)
        if real is not None and real in found and found[real][0].os is not None:
            return found[real][0].os
    # Distribution-specific release files (alpine-release, redhat-release, ...) by their priority.
    candidates = [ff.os for ff, _ in found.values() if ff.os is not None]
    return max(candidates, key=lambda o: o.priority) if candidates else None


def _owned(tree: FileTree, found: dict[str, tuple[FileFacts, int]]) -> set[str]:
    """Files a package database owns (analyzers' hint "owned"), by their listed path and the path their
    symlinks lead to (dpkg lists /bin/bash, a merged-/usr image stores usr/bin/bash)."""
    owned: set[str] = set()
    for ff, _ in found.values():
        for path in ff.hints.get("owned", ()):
            owned.add(path)
            real = tree.resolve(path)
            if real:
                owned.add(real)
    return owned


def _superseded(found: dict[str, tuple[FileFacts, int]]) -> set[str]:
    """Files whose packages a stronger source describes (hint "superseded_by": paths, or globs in the file's
    directory): a wheel's RECORD when its METADATA is there, assemblies when the app's deps.json is."""
    out: set[str] = set()
    described: dict[str, list[str]] = {}  # directory -> files in it that produced packages
    for path, (ff, _) in found.items():
        if ff.packages:
            described.setdefault(path.rsplit("/", 1)[0] if "/" in path else "", []).append(path)
    for path, (ff, _) in found.items():
        for pattern in ff.hints.get("superseded_by", ()):
            folder = pattern.rsplit("/", 1)[0] if "/" in pattern else ""
            if any(p != path and fnmatch.fnmatchcase(p, pattern) for p in described.get(folder, ())):
                out.add(path)
                break
    return out


def _packages(found: dict[str, tuple[FileFacts, int]], os_info: OSInfo | None, owned: set[str],
              superseded: set[str]) -> list[Package]:
    dpkg_licenses: dict[str, list[str]] = {}
    for ff, _ in found.values():
        for name, lic in ff.hints.get("dpkg_licenses", {}).items():
            dpkg_licenses[name] = list(lic)
    out: list[Package] = []
    installed: set[tuple[str, str, str]] = set()
    lock: list[Package] = []
    noted: list[Package] = []  # from ELF package notes: reported unless a database lists that same package
    for path in sorted(found):
        if path in superseded:
            continue
        for p in found[path][0].packages:
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
