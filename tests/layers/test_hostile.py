"""Hostile layers: every one ends in a catalogue error or a Note, never another exception, never a hang,
and never a byte written (or a host file read) outside the scan's own work and cache directories."""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from hullscan.analyzers.base import analyzers_key
from hullscan.errors import HullscanError, LayerError
from hullscan.imagebuild import FileSpec, layer_tar, sha256
from hullscan.layers.cache import LayerCache
from hullscan.layers.merge import HARD_LINK_OF, FileTree, merge
from hullscan.layers.streams import CHUNK, LayerStream
from hullscan.layers.walker import IN_MEMORY_MAX
from hullscan.model import Descriptor, Detection, FileEntry, FileFacts, ImageFacts, LayerFacts, LayerInfo
from hullscan.oci import media
from hullscan.oci.source import Limits

from ._support import (
    STATUS,
    RawImage,
    RawLayer,
    analyzers,
    confined,
    dist_info,
    dpkg_status,
    member,
    note_codes,
    os_release,
    outcome,
    packages,
    raw_tar,
    scan,
    scan_tars,
    versions,
    walk,
    write_raw_layout,
)

pytestmark = pytest.mark.timeout(60)

GOOD_STATUS = (STATUS, dpkg_status(("bash", "5.2.15-2")))


def hostile_scan(tmp_path: Path, *layers: RawLayer, limits: Limits | None = None) -> ImageFacts | HullscanError:
    """Scan an OCI layout of these layers, confined: returns the facts or the catalogue error."""
    layout = write_raw_layout(tmp_path / "image", RawImage(list(layers)))
    with confined(tmp_path, layout):
        return outcome(scan, f"oci:{layout}:latest", tmp_path, limits)


def hostile_tars(tmp_path: Path, *tars: bytes, compression: str = "gzip",
                 limits: Limits | None = None) -> ImageFacts | HullscanError:
    return hostile_scan(tmp_path, *(RawLayer.of(t, compression) for t in tars), limits=limits)


def facts_of(result: ImageFacts | HullscanError) -> ImageFacts:
    assert isinstance(result, ImageFacts), f"expected a result, got {result!r}"
    return result


def error_of(result: ImageFacts | HullscanError, code: str) -> HullscanError:
    assert isinstance(result, HullscanError), f"expected {code}, got a result"
    assert result.code == code, result
    return result


# -- names that climb or start at / -----------------------------------------------------------------


def test_path_traversal_entries_are_skipped_with_notes(tmp_path: Path) -> None:
    tar = raw_tar([
        member("../../escaped", b"owned"),
        member("a/../../escaped-too", b"owned"),
        member("./../../../../../../../../tmp/escaped-" + uuid.uuid4().hex, b"owned"),
        member("x/../../etc/os-release", os_release("evil").encode()),
        member("../etc/os-release", os_release("evil").encode()),
        member("a/../etc/os-release", os_release("debian", "12").encode()),  # climbs, but stays inside
        member(*GOOD_STATUS),
        member("../../escaped-link", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        member("..", type=tarfile.DIRTYPE),
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is not None and image.os.family == "debian"
    assert versions(image) == {"bash": "5.2.15-2"}
    traversal = [n for n in image.notes if n.code == "PATH_TRAVERSAL"]
    assert len(traversal) == 7
    assert {n.path for n in traversal} >= {"../../escaped", "a/../../escaped-too", "../etc/os-release"}
    assert all(n.layer_index == 0 for n in traversal)
    assert {e.path for e, _ in image.files} == {"etc/os-release", STATUS}


def test_absolute_names_are_taken_relative_to_the_image_root(tmp_path: Path) -> None:
    marker = f"/tmp/hullscan-escape-{uuid.uuid4().hex}"
    tar = raw_tar([
        member("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        member("/etc/os-release", os_release("alpine", "3.20").encode()),
        member(marker, b"owned"),
        member("//var/lib/dpkg/status", GOOD_STATUS[1].encode()),
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert not os.path.exists(marker)
    paths = {e.path for e, _ in image.files}
    assert {"etc/passwd", "etc/os-release", marker.lstrip("/"), STATUS} == paths
    absolute = [n for n in image.notes if n.code == "ABSOLUTE_PATH"]
    assert {n.path for n in absolute} == {"/etc/passwd", "/etc/os-release", marker, "//var/lib/dpkg/status"}
    assert image.os is not None and image.os.family == "alpine"  # the image's, not the host's
    assert versions(image) == {"bash": "5.2.15-2"}


# -- symlinks ----------------------------------------------------------------------------------------


def test_os_release_symlink_climbing_out_resolves_inside_the_image(tmp_path: Path) -> None:
    tar = layer_tar([
        FileSpec("etc/os-release", type="l", linkname="../../../../../usr/lib/os-release"),
        ("usr/lib/os-release", os_release("inside-os", "7")),
        ("etc/debian_version", "12.5"),
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is not None and (image.os.family, image.os.source) == ("inside-os", "usr/lib/os-release")


def test_os_release_symlink_to_a_host_path_is_never_followed_to_the_host(tmp_path: Path) -> None:
    tar = layer_tar([
        FileSpec("etc/os-release", type="l", linkname="../../../../../host/os-release"),
        FileSpec("usr/lib/os-release", type="l", linkname="/etc/os-release"),
        ("etc/debian_version", "12.5"),
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    # Nothing in the image says more than debian_version; the host's os-release was never read.
    assert image.os is not None and (image.os.family, image.os.version) == ("debian", "12.5")
    tree = FileTree()
    for e, i in image.files:
        tree.add(e, i)
    assert tree.resolve("etc/os-release") == "host/os-release"
    assert tree.resolve("usr/lib/os-release") == "host/os-release"


def test_symlink_to_the_root(tmp_path: Path) -> None:
    tar = layer_tar([
        FileSpec("etc", type="l", linkname="/"),
        FileSpec("usr/lib/os-release", type="l", linkname="../../../.."),
        ("os-release", os_release("root-level")),
        GOOD_STATUS,
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is None  # /os-release is no release file, and nothing was read from the host
    assert versions(image) == {"bash": "5.2.15-2"}


def test_os_release_through_a_symlinked_directory(tmp_path: Path) -> None:
    tar = layer_tar([
        FileSpec("usr/lib", type="d"),
        FileSpec("lib", type="l", linkname="usr/lib"),
        FileSpec("etc", type="d"),
        FileSpec("etc/os-release", type="l", linkname="../lib/os-release"),
        ("usr/lib/os-release", os_release("merged-usr", "1")),
        ("etc/lsb-release", "DISTRIB_ID=Other\nDISTRIB_RELEASE=9\n"),
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is not None and image.os.family == "merged-usr"


@pytest.mark.timeout(20)
def test_symlink_loops_do_not_hang(tmp_path: Path) -> None:
    tar = layer_tar([
        FileSpec("a", type="l", linkname="b"),
        FileSpec("b", type="l", linkname="a"),
        FileSpec("etc/os-release", type="l", linkname="os-release.d/x"),
        FileSpec("etc/os-release.d", type="l", linkname="../etc/os-release"),
        FileSpec("usr/lib/os-release", type="l", linkname="/a/os-release"),
        FileSpec("self", type="l", linkname="self/self/self"),
        GOOD_STATUS,
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is None
    assert versions(image) == {"bash": "5.2.15-2"}
    tree = FileTree()
    for e, i in image.files:
        tree.add(e, i)
    assert tree.resolve("etc/os-release") is None
    assert tree.resolve("self/x") is None
    assert tree.resolve("a") is None


def test_symlink_loop_with_a_directory_self_reference() -> None:
    tree = FileTree()
    tree.add(FileEntry("etc", "l", linkname="etc"), 0)
    tree.add(FileEntry("x", "l", linkname="./x/../x"), 0)
    tree.add(FileEntry("etc/os-release", "f"), 0)  # a tar can hold this; the link hides it
    assert tree.resolve("etc/os-release") is None
    assert tree.resolve("x") is None


def test_hard_links_pointing_outside(tmp_path: Path) -> None:
    tar = raw_tar([
        member("usr/bin/passwd-copy", type=tarfile.LNKTYPE, linkname="../../etc/passwd"),
        member(STATUS, type=tarfile.LNKTYPE, linkname="../../../../host/var/lib/dpkg/status"),
        member("etc/os-release", type=tarfile.LNKTYPE, linkname="/etc/os-release"),  # itself, image-rooted
        member("etc/shadow-copy", type=tarfile.LNKTYPE, linkname="/etc/shadow"),  # not in the image
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    escapes = [n for n in image.notes if n.code == "LINK_ESCAPE"]
    assert {n.path for n in escapes} == {"usr/bin/passwd-copy", STATUS}
    assert [n.path for n in image.notes if n.code == "HARDLINK_SKIPPED"] == ["etc/os-release"]
    assert image.os is None and image.packages == []
    assert {e.path for e, _ in image.files} == {"etc/os-release", "etc/shadow-copy"}


# -- deep paths, long link targets, many hard links ---------------------------------------------------


def _deep(depth: int, leaf: str = "file") -> str:
    return "/".join(["ab"] * depth + [leaf])


def _pax_member(path: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes | None]:
    """A member whose name is only in its PAX record (so no length limit applies), as a hostile tar would do."""
    ti, content = member("placeholder", data)
    ti.pax_headers = {"path": path}
    return ti, content


def _peak(fn: Callable[[], object]) -> tuple[object, int]:
    """What fn returns and the peak of memory Python allocated while it ran (every thread)."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_a_deep_path_costs_memory_linear_in_its_depth() -> None:
    """The merged tree keeps each directory once, under its parent, by name. Keeping every ancestor's full
    path as a string of its own costs depth^2 bytes: 150 MB at this depth, 2.4 GB at 50,000."""
    depth = 10_000
    path = _deep(depth)

    def build() -> FileTree:
        tree = FileTree()
        tree.add(FileEntry(path, "f"), 0)
        tree.add(FileEntry("etc/os-release", "l", linkname="/" + path), 0)
        return tree

    tree, peak = _peak(build)
    assert isinstance(tree, FileTree)
    assert peak < 1024 * depth, f"{peak:,} bytes for {depth:,} levels"
    parent = path.rsplit("/", 1)[0]
    assert tree.has_children(parent) and tree.has_children("ab") and not tree.has_children(path)
    assert tree.resolve("etc/os-release") == path
    assert tree.remove_tree({parent.rsplit("/", 1)[0]}, keep_roots=True) == [path]
    assert not tree.has_children("ab")  # the emptied directories went too
    assert sorted(tree.nodes) == ["etc/os-release"]


def test_a_layer_with_one_very_deep_path_is_scanned_in_bounded_memory(tmp_path: Path) -> None:
    depth = 20_000
    tar = raw_tar([_pax_member(_deep(depth)), member(*GOOD_STATUS)])
    assert len(gzip.compress(tar)) < 2048  # a layer of a kilobyte or two
    result, peak = _peak(lambda: hostile_tars(tmp_path, tar))
    image = facts_of(result)  # type: ignore[arg-type]
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB"  # depth^2 bytes of ancestor paths would be 1.2 GB
    assert versions(image) == {"bash": "5.2.15-2"}
    assert {e.path for e, _ in image.files} == {_deep(depth), STATUS}

    # A later layer deleting the top directory takes the whole depth with it.
    image = facts_of(hostile_tars(tmp_path / "deleted", tar, raw_tar([member(".wh.ab", b"")])))
    assert {e.path for e, _ in image.files} == {STATUS}


class _CountingNodes(dict[str, tuple[FileEntry, int]]):
    """FileTree.nodes that counts the characters of every path looked up in it."""

    looked_up = 0

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.looked_up += len(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> tuple[FileEntry, int]:
        self.looked_up += len(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.looked_up += len(key) if isinstance(key, str) else 0
        return super().__contains__(key)


def test_resolving_a_symlink_with_a_huge_target_is_linear() -> None:
    """Each component is looked up once in its directory's node, not by joining the path so far again (the sum
    of every prefix of a 50,000-component target is 5 billion characters: 88 s at 100,000 components)."""
    target = "/".join(f"d{i % 10}" for i in range(50_000))
    tree = FileTree()
    tree.nodes = _CountingNodes()
    tree.add(FileEntry("etc/os-release", "l", linkname="/" + target), 0)
    tree.add(FileEntry("lib", "l", linkname="usr/lib"), 0)
    tree.add(FileEntry("usr/lib/os-release", "l", linkname="../../" + target), 0)
    assert tree.resolve("etc/os-release") == target
    assert tree.resolve("lib/os-release") == target  # two hops, the second through a symlinked directory
    assert tree.nodes.looked_up < 1000  # the links' own paths, once a hop

    # Linux follows at most 40 links of at most 4,096 bytes: a target no kernel could resolve is not walked.
    tree.add(FileEntry("etc/os-release", "l", linkname="/".join(["d"] * 100_000)), 0)
    assert tree.resolve("etc/os-release") is None
    deep = "/".join(["d"] * 3000)

    def chain(hops: int) -> FileTree:
        tree = FileTree()
        tree.add(FileEntry("l1", "l", linkname=f"/{deep}/l2"), 0)
        for i in range(2, hops + 1):
            tree.add(FileEntry(f"{deep}/l{i}", "l", linkname=f"/{deep}/l{i + 1}"), 0)
        return tree

    assert chain(20).resolve("l1") == f"{deep}/l21"
    assert chain(39).resolve("l1") is None  # fewer than 40 links, but 117,000 components: more than Linux walks


def test_os_release_symlink_with_a_huge_target_in_a_scan(tmp_path: Path) -> None:
    """The case that cost minutes of CPU: a 400 kB layer whose os-release points 200,000 directories deep."""
    link, _ = member("etc/os-release", type=tarfile.SYMTYPE, linkname="x")
    link.pax_headers = {"linkpath": "/".join(["d"] * 200_000)}
    tar = raw_tar([(link, None), member("etc/debian_version", b"12.5\n"), member(*GOOD_STATUS)])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is not None and (image.os.family, image.os.version) == ("debian", "12.5")
    assert versions(image) == {"bash": "5.2.15-2"}


def _status_and_links(packages: int, links: int) -> bytes:
    status = dpkg_status(*((f"pkg{i}", f"1.{i}") for i in range(packages)))
    base = "var/lib/dpkg/status.d/base"
    return raw_tar([member("etc/os-release", os_release("debian", "12")), member(base, status),
                    *(member(f"var/lib/dpkg/status.d/copy{i:03d}", type=tarfile.LNKTYPE, linkname=base)
                      for i in range(links))])


def test_hard_links_to_a_package_database_are_one_record(tmp_path: Path) -> None:
    """100 links to a 1,000-package database: 1,000 packages in the walk, the cache and the image, not 101,000."""
    tar = _status_and_links(1000, 100)
    facts = walk(tar, tmp_path / "walk")
    assert sum(len(ff.packages) for ff in facts.files.values()) == 1000
    assert sum(1 for ff in facts.files.values() if HARD_LINK_OF in ff.hints) == 100
    assert facts.notes == []

    image = facts_of(hostile_tars(tmp_path, tar))
    assert len(packages(image)) == 1000  # (fails on a name reported twice)
    assert {p.path for p in image.packages} == {"var/lib/dpkg/status.d/base"}
    cached = [LayerCache(tmp_path / "cache").get(layer.diff_id, analyzers_key(analyzers())) for layer in image.layers]
    assert cached[0] is not None and sum(len(ff.packages) for ff in cached[0].files.values()) == 1000
    assert len({e.path for e, _ in image.files if "status.d" in e.path}) == 101  # every name is still listed


def test_a_hard_link_keeps_the_record_when_its_first_name_goes(tmp_path: Path) -> None:
    tar = _status_and_links(3, 2)
    gone = raw_tar([member("var/lib/dpkg/status.d/.wh.base", b"")])
    image = facts_of(hostile_tars(tmp_path, tar, gone))
    # reported once, at the first surviving name, still attributed to the layer that wrote the bytes
    assert sorted((p.name, p.path, p.layer_index) for p in image.packages) == [
        (f"pkg{i}", "var/lib/dpkg/status.d/copy000", 0) for i in range(3)]

    replaced = raw_tar([member("var/lib/dpkg/status.d/base", dpkg_status(("other", "2")))])
    image = facts_of(hostile_tars(tmp_path / "replaced", tar, replaced))
    assert sorted((p.name, p.path, p.layer_index) for p in image.packages) == [
        ("other", "var/lib/dpkg/status.d/base", 1),
        *((f"pkg{i}", "var/lib/dpkg/status.d/copy000", 0) for i in range(3))]


def test_a_hard_link_keeps_the_bytes_it_names_when_the_target_is_rewritten_in_the_same_layer(
        tmp_path: Path) -> None:
    d = "var/lib/dpkg/status.d"
    tar = raw_tar([
        member(f"{d}/a", dpkg_status(("old", "1"))),
        member(f"{d}/b", type=tarfile.LNKTYPE, linkname=f"{d}/a"),
        member(f"{d}/c", type=tarfile.LNKTYPE, linkname=f"{d}/a"),
        member(f"{d}/a", dpkg_status(("new", "2"))),  # the same name again: b and c still hold the old bytes
        member(f"{d}/e", type=tarfile.LNKTYPE, linkname=f"{d}/a"),
        member(f"{d}/b", b"not a database"),  # and now only c does
    ])
    facts = walk(tar, tmp_path)
    assert facts.files[f"{d}/c"].hints == {} and [p.path for p in facts.files[f"{d}/c"].packages] == [f"{d}/c"]
    assert facts.files[f"{d}/e"].hints == {HARD_LINK_OF: f"{d}/a"}
    image = scan_tars(tmp_path, tar)
    assert sorted((p.name, p.path) for p in image.packages) == [("new", f"{d}/a"), ("old", f"{d}/c")]


def test_a_detection_in_hard_linked_bytes_is_reported_once_where_it_still_is() -> None:
    def layer(i: int, **kw: object) -> LayerFacts:
        return LayerFacts(f"sha256:{i:064x}", "k", **kw)  # type: ignore[arg-type]

    def info(i: int) -> LayerInfo:
        return LayerInfo(i, Descriptor(media.OCI_LAYER, f"sha256:{i:064x}", 0), f"sha256:{i:064x}")

    secret = Detection("secret", "github-pat", "GitHub token", "HIGH", path="srv/app/.env", line=3)
    base = layer(0, entries=[FileEntry("srv/app/.env", "f", 10), FileEntry("srv/app/.env-copy", "h",
                                                                          linkname="srv/app/.env")],
                 files={"srv/app/.env": FileFacts(detections=[secret]),
                        "srv/app/.env-copy": FileFacts(hints={HARD_LINK_OF: "srv/app/.env"})})
    image = merge("ref", [info(0)], [base])
    assert [(d.path, d.line, d.in_final_image) for d in image.detections] == [("srv/app/.env", 3, True)]

    image = merge("ref", [info(0), info(1)], [base, layer(1, whiteouts=["srv/app/.env"])])
    assert [(d.path, d.layer_index, d.in_final_image) for d in image.detections] == [("srv/app/.env-copy", 0, True)]

    image = merge("ref", [info(0), info(1)], [base, layer(1, whiteouts=["srv/app"])])
    assert [(d.path, d.in_final_image) for d in image.detections] == [("srv/app/.env", False)]


# -- decompression bombs and lying sizes ------------------------------------------------------------

GiB = 1 << 30
MiB = 1 << 20


def _bomb_tar_header(size: int, name: str = STATUS) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti.tobuf(tarfile.PAX_FORMAT)


ZEROS_KINDS = ("gzip", "gzip-multi-member", "zstd")


def zeros_blob(kind: str, head: bytes, zeros: int, tail: bytes = b"") -> bytes:
    """A layer blob of `head`, `zeros` zero bytes (whole MiB) and `tail`, compressed, built in about a second.

    gzip: deflate output after a full flush does not depend on what came before, so one compressed MiB of zeros
    is repeated, and the trailer gets the true CRC and size: valid gzip. The others need no trick.
    """
    assert zeros % MiB == 0
    chunk, count = b"\0" * MiB, zeros // MiB
    if kind == "gzip":
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
        block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
        end = (c.compress(tail) + c.flush())[:-8]
        crc = zlib.crc32(head)
        for _ in range(count):
            crc = zlib.crc32(chunk, crc)
        crc = zlib.crc32(tail, crc)
        return start + block * count + end + struct.pack("<II", crc, (len(head) + zeros + len(tail)) & 0xFFFFFFFF)
    if kind == "gzip-multi-member":
        return gzip.compress(head, mtime=0) + gzip.compress(chunk, mtime=0) * count + gzip.compress(tail, mtime=0)
    z = zstandard.ZstdCompressor(level=3).compressobj()
    parts = [z.compress(head), *(z.compress(chunk) for _ in range(count)), z.compress(tail), z.flush()]
    return b"".join(parts)


def zeros_diff_id(head: bytes, zeros: int, tail: bytes = b"") -> str:
    h = hashlib.sha256(head)
    chunk = b"\0" * MiB
    for _ in range(zeros // MiB):
        h.update(chunk)
    h.update(tail)
    return "sha256:" + h.hexdigest()


@pytest.mark.parametrize("kind", ZEROS_KINDS)
def test_zeros_blob_builder_is_valid(kind: str) -> None:
    head, tail = _bomb_tar_header(3 * MiB), b"tail"
    blob = zeros_blob(kind, head, 3 * MiB, tail)
    data = zstandard.ZstdDecompressor().decompressobj().decompress(blob) if kind == "zstd" else gzip.decompress(blob)
    assert data == head + b"\0" * (3 * MiB) + tail
    assert sha256(data) == zeros_diff_id(head, 3 * MiB, tail)


@pytest.mark.parametrize(("kind", "size"), [("gzip", GiB), ("gzip-multi-member", 320 * MiB), ("zstd", 320 * MiB)])
def test_a_huge_file_of_zeros_is_streamed_past_in_bounded_memory(tmp_path: Path, kind: str, size: int) -> None:
    """A database's preallocated pages or a swap file: a layer of about a MiB that inflates a thousandfold is
    ordinary content. It is read as a stream (the oversized file skipped with a note, never buffered) and the
    rest of the layer is analysed."""
    head = _bomb_tar_header(size)  # the dpkg status path: claimed, and over the analyzer's size limit
    tail = raw_tar([member("var/lib/dpkg/status.d/bash", dpkg_status(("bash", "5.2.15-2"))),
                    member("etc/os-release", os_release("debian", "12"))])
    blob = zeros_blob(kind, head, size, tail)
    assert len(blob) < 2 * MiB
    layer = RawLayer(blob, zeros_diff_id(head, size, tail), media.OCI_LAYER_ZSTD if kind == "zstd" else
                     media.OCI_LAYER_GZIP)
    result, peak = _peak(lambda: hostile_scan(tmp_path, layer))
    image = facts_of(result)  # type: ignore[arg-type]
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB"
    assert versions(image) == {"bash": "5.2.15-2"} and image.os is not None
    assert [(n.code, n.path) for n in image.notes] == [("FILE_TOO_LARGE", STATUS)]
    assert {(e.path, e.size) for e, _ in image.files if e.path == STATUS} == {(STATUS, size)}
    assert image.layers[0].diff_id == layer.diff_id  # every byte was read and hashed


@pytest.mark.parametrize("kind", ZEROS_KINDS)
def test_a_layer_inflating_past_the_layer_limit_stops_at_the_limit(tmp_path: Path, kind: str) -> None:
    """The decompressed size is the bound on a layer's work: a bomb ends at the limit, not after inflating."""
    head = _bomb_tar_header(MiB)  # one small member, then zero blocks (the archive's end) for 256 MiB
    blob = zeros_blob(kind, head, 256 * MiB)
    limits = Limits(max_layer_uncompressed=64 * MiB)
    stream = LayerStream(io.BytesIO(blob), "", limits, prefetch=False)  # type: ignore[arg-type]
    with pytest.raises(LayerError, match="67,108,864"):
        while stream.read(CHUNK):
            pass
    assert stream.size <= limits.max_layer_uncompressed + CHUNK  # stopped at the limit, not at the end
    mt = media.OCI_LAYER_ZSTD if kind == "zstd" else media.OCI_LAYER_GZIP
    err = error_of(hostile_scan(tmp_path, RawLayer(blob, "sha256:" + "0" * 64, mt), limits=limits), "LAYER_INVALID")
    assert "67,108,864" in str(err)


def test_highly_compressible_small_layer_is_not_a_bomb(tmp_path: Path) -> None:
    tar = layer_tar([("zeros.bin", b"\0" * (20 * MiB)), GOOD_STATUS])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert versions(image) == {"bash": "5.2.15-2"}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("claimed", [100 * 10**9, 39 * 10**9])
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_member_claiming_a_huge_size_in_a_small_truncated_stream(tmp_path: Path, claimed: int,
                                                                 compression: str) -> None:
    ti = tarfile.TarInfo("var/lib/dpkg/status")
    ti.size = claimed
    tar = ti.tobuf(tarfile.PAX_FORMAT) + b"Package: x\n" * 500
    # (skipping 39 GB of nothing block by block would run into the timeout above; this takes milliseconds)
    err = error_of(hostile_tars(tmp_path, tar, compression=compression), "LAYER_INVALID")
    assert "truncated" in str(err) or "claims" in str(err)


def test_member_claiming_more_than_the_layer_limit(tmp_path: Path) -> None:
    ti = tarfile.TarInfo("big")
    ti.size = 10 * MiB
    tar = ti.tobuf(tarfile.PAX_FORMAT) + b"\0" * (10 * MiB) + b"\0" * 1024
    err = error_of(hostile_tars(tmp_path, tar, limits=Limits(max_layer_uncompressed=MiB)), "LAYER_INVALID")
    assert "10,485,760" in str(err)


# -- big layers --------------------------------------------------------------------------------------


_MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from hullscan.analyzers import dpkg, osrelease, python
    from hullscan.oci.source import Limits
    from hullscan.scan import Scanner, ScanOptions

    layout, tmp = sys.argv[1], Path(sys.argv[2])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    options = ScanOptions(cache_dir=tmp / "cache", workdir=tmp / "work", limits=Limits(),
                          analyzers=[*osrelease.ANALYZERS, *dpkg.ANALYZERS, *python.ANALYZERS])
    image = Scanner(options).scan(f"oci:{layout}:latest")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"files": len(image.files), "packages": [p.name for p in image.packages],
                      "rss_delta_kib": after - before}))
""")


def _many_files_blob(path: Path, count: int) -> tuple[str, int]:
    """A gzip layer of `count` empty files plus a dpkg status, streamed to disk header by header."""
    template = bytearray(tarfile.TarInfo("").tobuf(tarfile.USTAR_FORMAT))
    base = sum(template) - sum(template[148:156]) + 8 * 32
    hasher = hashlib.sha256()
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    size = 0
    with path.open("wb") as out:
        def emit(data: bytes) -> None:
            nonlocal size
            hasher.update(data)
            size += len(data)
            out.write(comp.compress(data))

        emit(_status_members())
        batch = bytearray()
        for i in range(count):
            name = b"usr/share/many/d%03d/file-%07d.txt" % (i // 1000, i)
            h = bytearray(template)
            h[: len(name)] = name
            h[148:156] = b"%06o\0 " % (base + sum(name))
            batch += h
            if len(batch) >= MiB:
                emit(bytes(batch))
                batch.clear()
        emit(bytes(batch) + b"\0" * 1024)
        out.write(comp.flush())
    return "sha256:" + hasher.hexdigest(), size


def _status_members() -> bytes:
    tar = raw_tar([member(*GOOD_STATUS)], fmt=tarfile.USTAR_FORMAT)
    # drop the end-of-archive blocks (and record padding): more members follow
    header_and_data = 512 + ((len(GOOD_STATUS[1]) + 511) // 512) * 512
    return tar[:header_and_data]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_layer_of_200k_files_completes_in_bounded_memory(tmp_path: Path) -> None:
    count = 200_000
    blob_file = tmp_path / "layer.tar.gz"
    diff_id, _ = _many_files_blob(blob_file, count)
    layout = write_raw_layout(tmp_path / "image", RawImage([RawLayer(blob_file.read_bytes(), diff_id)]))
    blob_file.unlink()
    proc = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(layout), str(tmp_path)],
                          capture_output=True, text=True, timeout=550, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["files"] == count + 1
    assert result["packages"] == ["bash"]
    # ~60 MiB when written; tarfile keeping every member alone would add ~100 MiB
    assert result["rss_delta_kib"] < 256 * 1024, f"{result['rss_delta_kib'] / 1024:.0f} MiB"


def test_many_files_blob_builder_is_a_valid_layer(tmp_path: Path) -> None:
    blob_file = tmp_path / "layer.tar.gz"
    diff_id, size = _many_files_blob(blob_file, 1500)
    data = gzip.decompress(blob_file.read_bytes())
    assert sha256(data) == diff_id and len(data) == size
    facts = walk(blob_file.read_bytes(), tmp_path, diff_id=diff_id)
    assert len(facts.entries) == 1501
    assert [p.name for p in facts.files[STATUS].packages] == ["bash"]


def test_a_layer_failing_while_a_file_is_spooled_leaves_nothing_behind(tmp_path: Path) -> None:
    """The spool of a claimed file is closed before the work directory goes: nothing is left, and nothing prints
    "Exception ignored ... FileNotFoundError" when the error is later freed."""
    ti = tarfile.TarInfo(STATUS)
    ti.size = IN_MEMORY_MAX + 4 * MiB  # claimed, and spooled to the work directory
    tar = ti.tobuf(tarfile.PAX_FORMAT) + b"Package: x\n" * (IN_MEMORY_MAX // 11 + 1)  # cut inside it
    unraisable: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        err = error_of(hostile_tars(tmp_path, tar), "LAYER_INVALID")
        assert "truncated" in str(err)
        del err
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == []
    assert [p for p in (tmp_path / "work").rglob("*")] == []


# -- names that are not text -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_invalid_utf8_names_are_kept_escaped_with_a_note(tmp_path: Path, fmt: int) -> None:
    bad = b"usr/share/caf\xe9/\xff\xfe.txt".decode("utf-8", "surrogateescape")
    bad_doc = b"usr/share/doc/\xc3(/copyright".decode("utf-8", "surrogateescape")
    tar = raw_tar([member(bad, b"data"), member(bad_doc, b"License: MIT\n"), member(*GOOD_STATUS),
                   member("etc/os-release", os_release("debian", "12").encode())], fmt=fmt)
    image = facts_of(hostile_tars(tmp_path, tar))
    assert versions(image) == {"bash": "5.2.15-2"}
    assert image.os is not None and image.os.family == "debian"
    invalid = [n for n in image.notes if n.code == "INVALID_NAME"]
    assert {n.path for n in invalid} == {r"usr/share/caf\xe9/\xff\xfe.txt", r"usr/share/doc/\xc3(/copyright"}
    paths = {e.path for e, _ in image.files}
    assert r"usr/share/caf\xe9/\xff\xfe.txt" in paths
    for p in paths:
        p.encode("utf-8")  # every reported path is valid text


def test_nul_in_a_name_is_skipped_with_a_note(tmp_path: Path) -> None:
    ti, data = member("placeholder", os_release("evil").encode())
    ti.pax_headers = {"path": "etc/os-release\x00.evil"}
    tar = raw_tar([(ti, data), member(*GOOD_STATUS)])
    facts = walk(tar, tmp_path)
    assert [n.code for n in facts.notes] == ["INVALID_NAME"]
    image = facts_of(hostile_tars(tmp_path, tar))
    assert image.os is None
    assert versions(image) == {"bash": "5.2.15-2"}
    assert {e.path for e, _ in image.files} == {STATUS}


# -- broken streams ----------------------------------------------------------------------------------


def _good_tar() -> bytes:
    return layer_tar([("etc/os-release", os_release("debian", "12")), GOOD_STATUS,
                      ("usr/share/big.bin", os.urandom(50_000))])


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_gzip(tmp_path: Path, cut: float) -> None:
    tar = _good_tar()
    blob = gzip.compress(tar)
    err = error_of(hostile_scan(tmp_path, RawLayer(blob[: int(len(blob) * cut)], sha256(tar))), "LAYER_INVALID")
    assert "truncated" in str(err) or "corrupt" in str(err)


def test_truncated_zstd(tmp_path: Path) -> None:
    tar = _good_tar()
    blob = zstandard.ZstdCompressor().compress(tar)
    error_of(hostile_scan(tmp_path, RawLayer(blob[: len(blob) // 2], sha256(tar), media.OCI_LAYER_ZSTD)),
             "LAYER_INVALID")


@pytest.mark.parametrize("where", ["inside member data", "inside a header", "inside a pax header"])
def test_truncated_tar(tmp_path: Path, where: str) -> None:
    tar = _good_tar()
    offsets = {"inside member data": 3 * 512 + 20_000, "inside a header": 4 * 512 + 100,
               "inside a pax header": 512 + 100}
    assert tar[4 * 512 - 512: 4 * 512].strip(b"\0")  # there is a real header around there
    cut = tar[: offsets[where]]
    # the config's diff_id describes the truncated bytes: only the tar structure can tell
    err = error_of(hostile_scan(tmp_path, RawLayer(cut, sha256(cut), media.OCI_LAYER)), "LAYER_INVALID")
    assert "truncated" in str(err) or "corrupt" in str(err)


def test_tar_cut_at_a_member_boundary_without_end_marker_is_accepted(tmp_path: Path) -> None:
    tar = raw_tar([member("etc/os-release", os_release("debian", "12").encode()), member(*GOOD_STATUS)],
                  fmt=tarfile.USTAR_FORMAT)
    cut = tar[: 4 * 512]  # two members, no end-of-archive blocks (some writers omit them)
    image = facts_of(hostile_tars(tmp_path, cut))
    assert versions(image) == {"bash": "5.2.15-2"}


def test_corrupt_header_in_the_middle_is_refused_not_ignored(tmp_path: Path) -> None:
    tar = bytearray(raw_tar([member("etc/os-release", os_release("debian", "12").encode()),
                             member("hidden/after", b"x"), member(*GOOD_STATUS)],
                            fmt=tarfile.USTAR_FORMAT))
    tar[2 * 512 + 148: 2 * 512 + 156] = b"9999999\0"  # break the second header's checksum
    err = error_of(hostile_tars(tmp_path, bytes(tar)), "LAYER_INVALID")
    assert "offset" in str(err)


@pytest.mark.parametrize("garbage", [b"garbage after the stream", b"\x1f\x8b\x08garbage", b"\0" * 100 + b"x"])
def test_garbage_after_gzip(tmp_path: Path, garbage: bytes) -> None:
    tar = _good_tar()
    err = error_of(hostile_scan(tmp_path, RawLayer(gzip.compress(tar) + garbage, sha256(tar))), "LAYER_INVALID")
    assert "gzip" in str(err)


def test_garbage_instead_of_a_layer(tmp_path: Path) -> None:
    for blob in (os.urandom(5000), b"\x1f\x8b" + os.urandom(5000), b"\x28\xb5\x2f\xfd" + os.urandom(100)):
        error_of(hostile_scan(tmp_path, RawLayer(blob, sha256(blob), media.OCI_LAYER)), "LAYER_INVALID")


# -- special files -----------------------------------------------------------------------------------


def test_device_nodes_and_fifos_are_recorded_never_opened(tmp_path: Path) -> None:
    tar = raw_tar([
        member("dev/null", type=tarfile.CHRTYPE), member("dev/sda", type=tarfile.BLKTYPE),
        member("etc/os-release", type=tarfile.FIFOTYPE), member(STATUS, type=tarfile.CHRTYPE),
        member("usr/lib/os-release", type=tarfile.BLKTYPE),
    ])
    image = facts_of(hostile_tars(tmp_path, tar))
    assert {(e.path, e.type) for e, _ in image.files} == {
        ("dev/null", "c"), ("dev/sda", "b"), ("etc/os-release", "p"), (STATUS, "c"), ("usr/lib/os-release", "b")}
    assert image.os is None and image.packages == []


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_a_root_filesystem_is_never_opened(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "var/lib/dpkg").mkdir(parents=True)
    os.mkfifo(rootfs / "etc/os-release")  # opening it for reading would block forever
    (rootfs / STATUS).write_text(GOOD_STATUS[1])
    with confined(tmp_path, rootfs):
        image = scan(f"dir:{rootfs}", tmp_path)
    assert image.os is None
    assert versions(image) == {"bash": "5.2.15-2"}
    assert ("etc/os-release", "p") in {(e.path, e.type) for e, _ in image.files}


def test_entries_limit_in_a_scan(tmp_path: Path) -> None:
    tar = layer_tar([(f"f{i}", b"") for i in range(50)])
    err = error_of(hostile_tars(tmp_path, tar, limits=Limits(max_entries=20)), "LAYER_INVALID")
    assert "20" in str(err)


def test_whiteout_tricks_stay_inside_the_image(tmp_path: Path) -> None:
    base = layer_tar([("etc/os-release", os_release("debian", "12")), GOOD_STATUS, dist_info("requests", "2.0")])
    tricks = raw_tar([
        member("../.wh.etc", b""),  # climbs: skipped
        member("/.wh.var", b""),  # absolute: means the image's /var
        member(".wh.", b""), member("etc/.wh..", b""),  # names nothing
        member("usr/.wh..wh..opq/x", b""),  # a directory named like the marker is just a directory
    ])
    image = facts_of(hostile_tars(tmp_path, base, tricks))
    assert image.os is not None and image.os.family == "debian"
    assert versions(image) == {"requests": "2.0"}
    codes = note_codes(image.notes)
    assert "PATH_TRAVERSAL" in codes and "INVALID_NAME" in codes and "ABSOLUTE_PATH" in codes


def test_every_hostile_result_is_json_renderable(tmp_path: Path) -> None:
    """Notes carry only text: escaped names can go into any report format."""
    from dataclasses import asdict

    bad = b"bad-\xff".decode("utf-8", "surrogateescape")
    tar = raw_tar([member(bad, b""), member("../x", b""), member("/abs", b""),
                   member("link", type=tarfile.SYMTYPE, linkname=bad), member("hard", type=tarfile.LNKTYPE,
                                                                              linkname=bad)])
    image = scan_tars(tmp_path, tar)
    json.dumps([asdict(n) for n in image.notes], ensure_ascii=False).encode("utf-8")
    json.dumps([asdict(e) for e, _ in image.files], ensure_ascii=False).encode("utf-8")
    links = {e.path: e.linkname for e, _ in image.files if e.type in ("l", "h")}
    assert links == {"link": r"bad-\xff", "hard": r"bad-\xff"}
