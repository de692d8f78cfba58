"""The layer walker: every compression, tar dialect and member kind an image layer can hold."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from hullscan.errors import DigestMismatch, HullscanError, LayerError
from hullscan.imagebuild import FileSpec, Image, Layer, compress, layer_tar, sha256, write_oci_layout
from hullscan.layers.merge import HARD_LINK_OF
from hullscan.layers.streams import LayerStream
from hullscan.model import FileEntry, FileFacts
from hullscan.oci import media
from hullscan.oci.source import Limits

from ._support import (
    SITE,
    STATUS,
    RawImage,
    RawLayer,
    dist_info,
    dpkg_status,
    member,
    os_release,
    raw_tar,
    scan,
    scan_tars,
    versions,
    walk,
    write_raw_layout,
)

pytestmark = pytest.mark.timeout(60)

BASE_FILES: list[FileSpec | tuple[str, bytes | str]] = [
    FileSpec("etc", type="d"),
    ("etc/os-release", os_release("debian", "12")),
    FileSpec("var/lib/dpkg", type="d"),
    (STATUS, dpkg_status(("bash", "5.2.15-2"), ("coreutils", "9.1-1"))),
    dist_info("requests", "2.31.0"),
    ("usr/share/doc/readme.txt", "x" * 70_000),  # several tar blocks and several compressed chunks
]


def base_tar() -> bytes:
    return layer_tar(BASE_FILES)


def entry(facts_entries: list[FileEntry], path: str) -> FileEntry:
    matches = [e for e in facts_entries if e.path == path]
    assert len(matches) == 1, f"{path}: {matches}"
    return matches[0]


def assert_base_facts(facts_files: dict[str, object]) -> None:
    status = facts_files[STATUS]
    assert {(p.name, p.version) for p in status.packages} == {("bash", "5.2.15-2"), ("coreutils", "9.1-1")}  # type: ignore[attr-defined]
    assert facts_files["etc/os-release"].os.family == "debian"  # type: ignore[attr-defined]
    pkg = facts_files[f"{SITE}/requests-2.31.0.dist-info/METADATA"].packages[0]  # type: ignore[attr-defined]
    assert (pkg.name, pkg.version, pkg.ecosystem) == ("requests", "2.31.0", "pypi")


# -- compression -------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_each_compression_is_walked_and_its_diff_id_checked(tmp_path: Path, compression: str) -> None:
    tar = base_tar()
    facts = walk(compress(tar, compression), tmp_path, diff_id=sha256(tar))
    assert_base_facts(facts.files)  # type: ignore[arg-type]
    assert facts.uncompressed_size == len(tar)
    assert facts.diff_id == sha256(tar)
    assert entry(facts.entries, "etc").type == "d"
    assert entry(facts.entries, "usr/share/doc/readme.txt").size == 70_000


def _pieces(data: bytes, n: int) -> list[bytes]:
    step = len(data) // n + 1
    return [data[i:i + step] for i in range(0, len(data), step)]


def test_multi_member_gzip(tmp_path: Path) -> None:
    tar = base_tar()
    parts = _pieces(tar, 4)
    assert len(parts) == 4
    blob = b"".join(gzip.compress(p, mtime=0) for p in parts)
    facts = walk(blob, tmp_path, diff_id=sha256(tar))
    assert_base_facts(facts.files)  # type: ignore[arg-type]
    assert facts.uncompressed_size == len(tar)


def test_gzip_followed_by_zero_padding_is_accepted(tmp_path: Path) -> None:
    tar = base_tar()
    facts = walk(gzip.compress(tar) + b"\0" * 3000, tmp_path, diff_id=sha256(tar))
    assert_base_facts(facts.files)  # type: ignore[arg-type]


def test_multi_frame_zstd(tmp_path: Path) -> None:
    tar = base_tar()
    cctx = zstandard.ZstdCompressor(level=3)
    blob = b"".join(cctx.compress(p) for p in _pieces(tar, 5))
    facts = walk(blob, tmp_path, diff_id=sha256(tar))
    assert_base_facts(facts.files)  # type: ignore[arg-type]
    assert facts.uncompressed_size == len(tar)


def test_streamed_zstd_without_content_size(tmp_path: Path) -> None:
    tar = base_tar()
    out = io.BytesIO()
    with zstandard.ZstdCompressor(write_content_size=False).stream_writer(out, closefd=False) as w:
        for p in _pieces(tar, 7):
            w.write(p)
    facts = walk(out.getvalue(), tmp_path, diff_id=sha256(tar))
    assert_base_facts(facts.files)  # type: ignore[arg-type]


@pytest.mark.parametrize(("stored", "declared"), [
    ("none", media.OCI_LAYER_GZIP),  # says gzip, is a plain tar
    ("zstd", media.OCI_LAYER),  # says tar, is zstd
    ("gzip", media.OCI_LAYER_ZSTD),  # says zstd, is gzip
    ("none", media.DOCKER_LAYER),
])
def test_the_bytes_decide_the_compression_not_the_media_type(tmp_path: Path, stored: str, declared: str) -> None:
    tar = base_tar()
    layout = write_raw_layout(tmp_path / "img", RawImage([RawLayer(compress(tar, stored), sha256(tar), declared)]))
    image = scan(f"oci:{layout}:latest", tmp_path)
    assert versions(image, "deb") == {"bash": "5.2.15-2", "coreutils": "9.1-1"}
    assert image.os is not None and image.os.family == "debian"


def test_layer_stream_sniffs_compression() -> None:
    tar = base_tar()
    for compression, expected in (("gzip", "gzip"), ("zstd", "zstd"), ("none", "none")):
        stream = LayerStream(io.BytesIO(compress(tar, compression)), sha256(tar), Limits(), compression="gzip")
        assert stream.compression == expected
        data = b"".join(iter(lambda s=stream: s.read(4096), b""))
        assert data == tar
        stream.finish()


def test_reading_past_the_end_of_a_layer_is_refused() -> None:
    tar = base_tar()
    stream = LayerStream(io.BytesIO(gzip.compress(tar)), sha256(tar), Limits())
    while stream.read(10240):
        pass
    # a tar reader skipping the data of a member that claims more than the layer holds lands here
    with pytest.raises(LayerError, match="truncated"):
        stream.read(10240)
    stream.finish()  # the end itself is fine, and the diff_id matches


@pytest.mark.parametrize("prefetch", [True, False])
def test_prefetching_and_inline_streams_read_the_same_bytes(prefetch: bool) -> None:
    tar = base_tar() * 40  # several prefetch chunks
    stream = LayerStream(io.BytesIO(gzip.compress(tar)), "", Limits(), prefetch=prefetch)
    assert b"".join(iter(lambda: stream.read(7000), b"")) == tar
    stream.finish()
    assert stream.size == len(tar)


def test_an_aborted_walk_stops_the_prefetch_thread(tmp_path: Path) -> None:
    """The walker failing mid-layer must not leave a thread reading the blob (the caller drains it next)."""
    import threading

    files = [(f"srv/f{i:05d}", b"x") for i in range(3000)]
    tar = layer_tar(files)
    layout = write_raw_layout(tmp_path / "img", RawImage([RawLayer(gzip.compress(tar), sha256(tar))]))
    with pytest.raises(HullscanError, match="more than 100 entries"):
        scan(f"oci:{layout}:latest", tmp_path, limits=Limits(max_entries=100))
    assert not [t for t in threading.enumerate() if t.name == "layer-prefetch"]


def test_errors_in_the_prefetch_thread_reach_the_reader() -> None:
    tar = base_tar() * 40
    blob = gzip.compress(tar)
    stream = LayerStream(io.BytesIO(blob[: len(blob) // 2]), sha256(tar), Limits())
    with pytest.raises(LayerError, match="truncated"):
        while stream.read(65536):
            pass
    stream.close()


# -- empty layers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("blob_kind", ["zero bytes", "end-of-archive only", "gzip of empty tar", "gzip of nothing",
                                       "zstd of nothing"])
def test_empty_layers(tmp_path: Path, blob_kind: str) -> None:
    empty_tar = layer_tar([])
    content, blob = {
        "zero bytes": (b"", b""),
        "end-of-archive only": (empty_tar, empty_tar),
        "gzip of empty tar": (empty_tar, gzip.compress(empty_tar)),
        "gzip of nothing": (b"", gzip.compress(b"")),
        "zstd of nothing": (b"", zstandard.ZstdCompressor().compress(b"")),
    }[blob_kind]
    facts = walk(blob, tmp_path, diff_id=sha256(content))
    assert facts.entries == [] and facts.files == {} and facts.notes == []
    assert facts.uncompressed_size == len(content)


def test_empty_layer_in_an_image(tmp_path: Path) -> None:
    image = scan_tars(tmp_path, base_tar(), layer_tar([]), b"")
    assert versions(image, "deb") == {"bash": "5.2.15-2", "coreutils": "9.1-1"}
    assert len(image.layers) == 3


def test_empty_layer_with_wrong_diff_id(tmp_path: Path) -> None:
    with pytest.raises(DigestMismatch):
        walk(b"", tmp_path, diff_id=sha256(b"something else"))


# -- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_names(tmp_path: Path, fmt: int) -> None:
    deep_site = "opt/" + "/".join(["very-long-directory-name-" + str(i) for i in range(6)]) + "/site-packages"
    meta_path, meta = dist_info("a-package-with-a-long-name", "1.0.0", site=deep_site)
    long_link_target = "../" * 3 + "x" * 150
    assert len(meta_path) > 200
    tar = layer_tar([(meta_path, meta), FileSpec("opt/link", type="l", linkname=long_link_target),
                     FileSpec("etc/os-release", type="l", linkname="../" + "u" * 120 + "/os-release")], fmt=fmt)
    facts = walk(tar, tmp_path, diff_id=sha256(tar))
    assert [p.name for p in facts.files[meta_path].packages] == ["a-package-with-a-long-name"]
    assert entry(facts.entries, "opt/link").linkname == long_link_target
    assert entry(facts.entries, "etc/os-release").type == "l"


def test_names_are_normalised(tmp_path: Path) -> None:
    tar = raw_tar([member("./etc/os-release", os_release("alpine", "3.20").encode()),
                   member("usr//lib/./x", b"1"), member("./", type=tarfile.DIRTYPE),
                   member("a/b/../c", b"2")])
    facts = walk(tar, tmp_path)
    assert [e.path for e in facts.entries] == ["etc/os-release", "usr/lib/x", "a/c"]
    assert facts.files["etc/os-release"].os.family == "alpine"  # type: ignore[union-attr]
    assert facts.notes == []


# -- whiteouts ---------------------------------------------------------------------------------------


def test_whiteouts_and_opaque_whiteouts_are_recorded_not_listed(tmp_path: Path) -> None:
    tar = layer_tar([
        (".wh.top-level-file", b""),
        FileSpec(f"{SITE}", type="d"),
        (f"{SITE}/.wh.requests-2.0.0.dist-info", b""),
        ("var/cache/apt/.wh..wh..opq", b""),
        ("var/cache/apt/new", b"kept"),
        ("a/b/.wh.c", b""),
    ])
    facts = walk(tar, tmp_path)
    assert facts.whiteouts == ["top-level-file", f"{SITE}/requests-2.0.0.dist-info", "a/b/c"]
    assert facts.opaque_dirs == ["var/cache/apt"]
    assert [e.path for e in facts.entries] == [SITE, "var/cache/apt/new"]


def test_whiteout_naming_nothing_is_ignored(tmp_path: Path) -> None:
    tar = layer_tar([(".wh.", b""), ("a/.wh..", b""), ("b/.wh..", b"")])
    facts = walk(tar, tmp_path)
    assert facts.whiteouts == [] and facts.opaque_dirs == []
    assert facts.notes and {n.code for n in facts.notes} == {"INVALID_NAME"}


# -- links and special members -------------------------------------------------------------------------


def test_hard_link_to_an_analysed_file_shares_its_facts(tmp_path: Path) -> None:
    tar = layer_tar([
        ("usr/lib/os-release", os_release("debian", "12")),
        FileSpec("etc/os-release", type="h", linkname="usr/lib/os-release"),
        ("var/lib/dpkg/status.d/base", dpkg_status(("base-files", "12.4"), ("tzdata", "2024a-0"))),
        FileSpec(STATUS, type="h", linkname="var/lib/dpkg/status.d/base"),
        FileSpec("usr/bin/unclaimed-link", type="h", linkname="usr/lib/os-release"),
    ])
    facts = walk(tar, tmp_path, diff_id=sha256(tar))
    # a link names the path holding the facts of its bytes: no copy of them
    assert facts.files["etc/os-release"] == FileFacts(hints={HARD_LINK_OF: "usr/lib/os-release"})
    assert facts.files[STATUS] == FileFacts(hints={HARD_LINK_OF: "var/lib/dpkg/status.d/base"})
    assert {p.path for p in facts.files["var/lib/dpkg/status.d/base"].packages} == {"var/lib/dpkg/status.d/base"}
    link = entry(facts.entries, STATUS)
    assert (link.type, link.linkname, link.size) == ("h", "var/lib/dpkg/status.d/base", 0)
    assert "usr/bin/unclaimed-link" not in facts.files
    assert facts.notes == []

    # In the image the OS is found through the link, and each package is reported once, where it was read.
    image = scan_tars(tmp_path, tar)
    assert image.os is not None and (image.os.family, image.os.version) == ("debian", "12")
    assert sorted((p.name, p.path) for p in image.packages) == [
        ("base-files", "var/lib/dpkg/status.d/base"), ("tzdata", "var/lib/dpkg/status.d/base")]


def test_dpkg_status_hard_link_reported_in_the_image(tmp_path: Path) -> None:
    tar = layer_tar([
        ("etc/os-release", os_release("debian", "12")),
        ("var/lib/dpkg/status-new", dpkg_status(("bash", "5.2.15-2"))),
        FileSpec(STATUS, type="h", linkname="/var/lib/dpkg/status-new"),  # absolute link names are image-rooted
    ])
    # status-new is not a database, so the link's target was never read: the walker says so.
    facts = walk(tar, tmp_path)
    assert [n.code for n in facts.notes] == ["HARDLINK_SKIPPED"]
    assert facts.notes[0].path == STATUS

    tar = layer_tar([
        ("etc/os-release", os_release("debian", "12")),
        (STATUS, dpkg_status(("bash", "5.2.15-2"))),
        FileSpec("var/lib/dpkg/status.d/bash", type="h", linkname=STATUS),
    ])
    image = scan_tars(tmp_path / "both", tar)
    # One file under two names: one package, at the name it was read at.
    assert [(p.name, p.path, p.layer_index) for p in image.packages] == [("bash", STATUS, 0)]
    assert image.packages[0].purl.startswith("pkg:deb/debian/bash@5.2.15-2")

    # Once that name is deleted the package is still in the image, under the link's name.
    image = scan_tars(tmp_path / "deleted", tar, layer_tar([("var/lib/dpkg/.wh.status", b"")]))
    assert [(p.name, p.path, p.layer_index) for p in image.packages] == [("bash", "var/lib/dpkg/status.d/bash", 0)]


def test_hard_links_in_a_root_filesystem_are_one_file_read_once(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    status_d = rootfs / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    (rootfs / "etc").mkdir()
    (rootfs / "etc/os-release").write_text(os_release("debian", "12"))
    (status_d / "base").write_text(dpkg_status(("bash", "5.2.15-2")))
    for name in ("copy1", "copy2"):
        os.link(status_d / "base", status_d / name)
    image = scan(f"dir:{rootfs}", tmp_path)
    base = "var/lib/dpkg/status.d/base"
    assert [(p.name, p.path) for p in image.packages] == [("bash", base)]
    assert {e.path: (e.type, e.linkname) for e, _ in image.files if "status.d/" in e.path} == {
        base: ("f", ""), "var/lib/dpkg/status.d/copy1": ("h", base), "var/lib/dpkg/status.d/copy2": ("h", base)}


def test_symlinks_devices_and_fifos_are_recorded_never_read(tmp_path: Path) -> None:
    tar = raw_tar([
        member("dev/null", type=tarfile.CHRTYPE),
        member("dev/sda", type=tarfile.BLKTYPE),
        member("run/fifo", type=tarfile.FIFOTYPE),
        member("etc/os-release", type=tarfile.FIFOTYPE),  # a claimed path that is no file
        member(STATUS, type=tarfile.CHRTYPE),
        member("usr/bin/sh", type=tarfile.SYMTYPE, linkname="bash"),
    ])
    facts = walk(tar, tmp_path, diff_id=sha256(tar))
    assert [(e.path, e.type) for e in facts.entries] == [
        ("dev/null", "c"), ("dev/sda", "b"), ("run/fifo", "p"), ("etc/os-release", "p"), (STATUS, "c"),
        ("usr/bin/sh", "l")]
    assert facts.files == {}
    assert entry(facts.entries, "usr/bin/sh").linkname == "bash"


def test_same_path_twice_in_a_layer_the_last_one_wins(tmp_path: Path) -> None:
    tar = raw_tar([
        member(STATUS, dpkg_status(("bash", "5.1")).encode()),
        member(STATUS, dpkg_status(("bash", "5.2")).encode()),
        member("etc/os-release", os_release("evil").encode()),
        member("etc/os-release", type=tarfile.SYMTYPE, linkname="../usr/lib/os-release"),
    ])
    facts = walk(tar, tmp_path)
    assert [p.version for p in facts.files[STATUS].packages] == ["5.2"]
    assert "etc/os-release" not in facts.files
    image = scan_tars(tmp_path, tar + b"")
    assert image.os is None
    assert versions(image) == {"bash": "5.2"}


def test_unknown_member_type_is_a_note(tmp_path: Path) -> None:
    tar = raw_tar([member("weird", type=b"Q"), member("ok", b"1")])
    facts = walk(tar, tmp_path)
    assert [e.path for e in facts.entries] == ["ok"]
    assert [(n.code, n.path) for n in facts.notes] == [("UNKNOWN_MEMBER", "weird")]


def test_large_claimed_file_is_spooled_in_the_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from hullscan.layers import walker

    monkeypatch.setattr(walker, "IN_MEMORY_MAX", 4096)
    spools: list[str] = []
    real = tempfile.NamedTemporaryFile

    def recording(*args: object, **kw: object) -> object:
        spools.append(str(kw.get("dir")))
        return real(*args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(walker.tempfile, "NamedTemporaryFile", recording)
    big = dpkg_status(*[(f"pkg{i:05d}", f"1.{i}") for i in range(500)])
    assert len(big) > 4096
    tar = layer_tar([(STATUS, big), ("etc/os-release", os_release("debian"))])
    facts = walk(gzip.compress(tar), tmp_path / "work", diff_id=sha256(tar))
    assert len(facts.files[STATUS].packages) == 500
    assert facts.files["etc/os-release"].os is not None
    assert spools == [str(tmp_path / "work")]  # only the big file, and only in the workdir
    assert list((tmp_path / "work").iterdir()) == []  # the spool is gone


def test_file_over_an_analyzer_limit_is_a_note(tmp_path: Path) -> None:
    tar = layer_tar([("etc/os-release", "ID=debian\n" + "#" * (70 << 10))])
    facts = walk(tar, tmp_path)
    assert [(n.code, n.path) for n in facts.notes] == [("FILE_TOO_LARGE", "etc/os-release")]
    assert facts.files == {}


# -- digests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_wrong_diff_id_is_a_digest_mismatch(tmp_path: Path, compression: str) -> None:
    tar = base_tar()
    with pytest.raises(DigestMismatch) as err:
        walk(compress(tar, compression), tmp_path, diff_id=sha256(tar + b"x"))
    assert err.value.code == "DIGEST_MISMATCH"
    assert sha256(tar) in str(err.value)


def test_wrong_diff_id_in_the_config_fails_the_scan_and_caches_nothing(tmp_path: Path) -> None:
    tar = base_tar()
    image = Image([Layer(tar)], config_extra={"rootfs": {"type": "layers", "diff_ids": [sha256(b"other")]}})
    layout = write_oci_layout(tmp_path / "img", image)
    with pytest.raises(DigestMismatch) as err:
        scan(f"oci:{layout}:latest", tmp_path)
    assert err.value.code == "DIGEST_MISMATCH"
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


@pytest.mark.parametrize("tamper", ["recompressed", "appended", "truncated", "same size"])
def test_tampered_blob_in_an_oci_layout(tmp_path: Path, tamper: str) -> None:
    tar = base_tar()
    layout = write_oci_layout(tmp_path / "img", Image([Layer(tar)]))
    blob_digest = sha256(Layer(tar).blob)
    blob_file = layout / "blobs" / "sha256" / blob_digest.split(":")[1]
    original = blob_file.read_bytes()
    blob_file.write_bytes({
        # same tar, other gzip bytes: the diff_id still matches, only the blob digest can tell
        "recompressed": gzip.compress(tar, compresslevel=1, mtime=12345),
        "appended": original + b"\0" * 512,
        "truncated": original[:-8],
        "same size": original[:20] + bytes([original[20] ^ 0xFF]) + original[21:],
    }[tamper])
    with pytest.raises(HullscanError) as err:
        scan(f"oci:{layout}:latest", tmp_path)
    # Bytes that still decompress reach the digest check; bytes that do not are refused as a bad layer.
    expected = {"recompressed": "DIGEST_MISMATCH", "appended": "DIGEST_MISMATCH"}.get(tamper)
    if expected:
        assert err.value.code == expected
        assert blob_digest in str(err.value)
    else:
        assert err.value.code in ("DIGEST_MISMATCH", "LAYER_INVALID")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_layout_config_that_does_not_match_its_digest(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "img", Image([Layer(base_tar())]))
    index = json.loads((layout / "index.json").read_text())
    manifest_file = layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    config_digest = json.loads(manifest_file.read_text())["config"]["digest"]
    config_file = layout / "blobs" / "sha256" / config_digest.split(":")[1]
    config_file.write_bytes(config_file.read_bytes().replace(b'"amd64"', b'"arm64"'))
    with pytest.raises(DigestMismatch):
        scan(f"oci:{layout}:latest", tmp_path)


# -- limits ------------------------------------------------------------------------------------------


def test_entries_limit(tmp_path: Path) -> None:
    tar = layer_tar([(f"f{i}", b"") for i in range(11)])
    assert len(walk(tar, tmp_path, limits=Limits(max_entries=11)).entries) == 11
    with pytest.raises(LayerError) as err:
        walk(tar, tmp_path, limits=Limits(max_entries=10))
    assert err.value.code == "LAYER_INVALID"
    assert "10" in str(err.value)


def test_uncompressed_size_limit(tmp_path: Path) -> None:
    tar = layer_tar([("big", b"\0" * 300_000)])
    for compression in ("gzip", "none"):
        with pytest.raises(LayerError) as err:
            walk(compress(tar, compression), tmp_path, limits=Limits(max_layer_uncompressed=100_000))
        assert err.value.code == "LAYER_INVALID"


def test_progress_is_reported_in_compressed_bytes(tmp_path: Path) -> None:
    from hullscan.layers.walker import LayerWalker

    from ._support import analyzers

    tar = layer_tar([(f"d/f{i}", b"x" * 100) for i in range(2000)])
    blob = gzip.compress(tar)
    seen: list[int] = []
    LayerWalker(analyzers(), Limits(), tmp_path).walk_tar(io.BytesIO(blob), sha256(tar), 0, seen.append)
    assert seen and seen == sorted(seen)
    assert seen[-1] == len(blob)
