"""Merging layers into the image's final view: deletions, upgrades, replacements and attribution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hullscan.imagebuild import FileSpec, layer_tar, sha256
from hullscan.layers.merge import FileTree, merge
from hullscan.model import Descriptor, FileEntry, FileFacts, LayerFacts, LayerInfo, Note, Package

from ._support import SITE, STATUS, dist_info, dpkg_status, os_release, packages, scan_tars, versions

pytestmark = pytest.mark.timeout(60)

OS = ("etc/os-release", os_release("debian", "12"))


def test_deleted_dist_info_is_not_reported(tmp_path: Path) -> None:
    base = layer_tar([OS, dist_info("requests", "2.31.0"), dist_info("urllib3", "2.2.1"), dist_info("idna", "3.7"),
                      dist_info("six", "1.16.0")])
    cleanup = layer_tar([
        (f"{SITE}/.wh.requests-2.31.0.dist-info", b""),  # the whole dist-info directory
        (f"{SITE}/idna-3.7.dist-info/.wh.METADATA", b""),  # only the metadata file
    ])
    image = scan_tars(tmp_path, base, cleanup)
    assert versions(image, "pypi") == {"urllib3": "2.2.1", "six": "1.16.0"}
    assert {e.path for e, _ in image.files if "requests" in e.path or "idna" in e.path} == set()


def test_whiteout_of_a_parent_directory_deletes_every_package_below(tmp_path: Path) -> None:
    base = layer_tar([OS, dist_info("requests", "2.31.0"), (STATUS, dpkg_status(("bash", "5.2.15-2")))])
    image = scan_tars(tmp_path, base, layer_tar([("usr/local/lib/.wh.python3.12", b""), ("var/lib/.wh.dpkg", b"")]))
    assert image.packages == []
    assert image.os is not None and image.os.family == "debian"


def test_upgraded_package_is_reported_once_at_its_final_version_and_attributed_to_the_upgrade(tmp_path: Path) -> None:
    layers = [
        layer_tar([OS, dist_info("requests", "2.28.0"), dist_info("certifi", "2024.2.2"),
                   (STATUS, dpkg_status(("bash", "5.2.15-2"), ("openssl", "3.0.11-1")))]),
        layer_tar([(f"{SITE}/.wh.requests-2.28.0.dist-info", b""), dist_info("requests", "2.32.3")]),
        layer_tar([(STATUS, dpkg_status(("bash", "5.2.15-2"), ("openssl", "3.0.13-1~deb12u1")))]),
    ]
    image = scan_tars(tmp_path, *layers)
    found = packages(image)  # fails on any name reported twice
    assert {n: p.version for n, p in found.items()} == {
        "requests": "2.32.3", "certifi": "2024.2.2", "bash": "5.2.15-2", "openssl": "3.0.13-1~deb12u1"}
    assert {n: p.layer_index for n, p in found.items()} == {"requests": 1, "certifi": 0, "bash": 0, "openssl": 2}
    assert found["requests"].layer_diff_id == sha256(layers[1])
    assert found["requests"].layer_created_by == "RUN step 1"
    assert found["openssl"].layer_diff_id == sha256(layers[2])
    assert found["bash"].layer_diff_id == sha256(layers[0])


def test_unchanged_packages_in_a_rewritten_dpkg_status_keep_their_original_layer(tmp_path: Path) -> None:
    layers = [
        layer_tar([OS, (STATUS, dpkg_status(("bash", "5.2.15-2"), ("coreutils", "9.1-1")))]),
        layer_tar([(STATUS, dpkg_status(("bash", "5.2.15-2"), ("coreutils", "9.1-1"), ("curl", "7.88.1-10")))]),
        layer_tar([(STATUS, dpkg_status(("bash", "5.2.15-2"), ("curl", "7.88.1-10")))]),  # coreutils removed
        layer_tar([(STATUS, dpkg_status(("bash", "5.2.15-2"), ("coreutils", "9.1-1"), ("curl", "7.88.1-10")))]),
    ]
    image = scan_tars(tmp_path, *layers)
    found = packages(image, "deb")
    # coreutils was removed in layer 2 and installed again in layer 3: layer 3 installed what is there now
    assert {n: p.layer_index for n, p in found.items()} == {"bash": 0, "curl": 1, "coreutils": 3}
    assert all(p.path == STATUS for p in found.values())


def test_deb_purls_use_the_os_of_any_layer(tmp_path: Path) -> None:
    image = scan_tars(tmp_path, layer_tar([(STATUS, dpkg_status(("bash", "5.2.15-2")))]),
                      layer_tar([("etc/os-release", os_release("ubuntu", "24.04"))]))
    assert packages(image)["bash"].purl == "pkg:deb/ubuntu/bash@5.2.15-2?arch=amd64&distro=ubuntu-24.04"


def test_opaque_whiteout_clears_site_packages(tmp_path: Path) -> None:
    base = layer_tar([OS, FileSpec(SITE, type="d"), dist_info("requests", "2.31.0"), dist_info("urllib3", "2.2.1"),
                      ("usr/local/lib/python3.12/other.py", b"")])
    reinstall = layer_tar([
        FileSpec(SITE, type="d"),
        dist_info("httpx", "0.27.0"),
        (f"{SITE}/.wh..wh..opq", b""),  # listed after this layer's own files: it still only hides lower layers
    ])
    image = scan_tars(tmp_path, base, reinstall)
    assert versions(image, "pypi") == {"httpx": "0.27.0"}
    paths = {e.path for e, _ in image.files}
    assert "usr/local/lib/python3.12/other.py" in paths  # outside the opaque directory
    assert SITE in paths


def test_opaque_whiteout_at_the_root_hides_every_lower_layer(tmp_path: Path) -> None:
    base = layer_tar([OS, dist_info("requests", "2.31.0")])
    image = scan_tars(tmp_path, base, layer_tar([(".wh..wh..opq", b""), dist_info("six", "1.16.0")]))
    assert versions(image) == {"six": "1.16.0"}
    assert image.os is None


@pytest.mark.parametrize("declared_dirs", [True, False])
@pytest.mark.parametrize("replacement", ["f", "l"])
def test_directory_replaced_by_a_file_hides_its_content(tmp_path: Path, declared_dirs: bool,
                                                        replacement: str) -> None:
    files: list[FileSpec | tuple[str, bytes | str]] = [OS, dist_info("requests", "2.31.0"),
                                                        dist_info("urllib3", "2.2.1")]
    if declared_dirs:  # some writers list every directory, others only the files
        files = [FileSpec(SITE, type="d"), FileSpec(f"{SITE}/requests-2.31.0.dist-info", type="d"), *files]
    spec = FileSpec(SITE, type=replacement, data=b"not a directory any more", linkname="/elsewhere")
    image = scan_tars(tmp_path, layer_tar(files), layer_tar([spec]))
    assert versions(image, "pypi") == {}
    assert [(e.path, e.type) for e, _ in image.files if e.path.startswith(SITE)] == [(SITE, replacement)]


def test_file_replaced_by_a_directory(tmp_path: Path) -> None:
    base = layer_tar([OS, ("opt/app", b"#!/bin/sh\n"), ("opt/tool", b"x")])
    image = scan_tars(tmp_path, base, layer_tar([FileSpec("opt/app", type="d"), dist_info("flask", "3.0.3",
                                                                                         site="opt/app/lib")]))
    assert versions(image, "pypi") == {"flask": "3.0.3"}
    kinds = {e.path: (e.type, layer) for e, layer in image.files}
    assert kinds["opt/app"] == ("d", 1)
    assert kinds["opt/tool"] == ("f", 0)


def test_replaced_package_file_keeps_no_stale_facts(tmp_path: Path) -> None:
    base = layer_tar([OS, (STATUS, dpkg_status(("bash", "5.2.15-2")))])
    image = scan_tars(tmp_path, base, layer_tar([FileSpec(STATUS, type="d")]))
    assert image.packages == []


def test_os_release_symlink_resolution_across_layers(tmp_path: Path) -> None:
    layers = [
        layer_tar([("etc/os-release", os_release("debian", "11")), ("etc/debian_version", "11.9")]),
        layer_tar([FileSpec("etc/os-release", type="l", linkname="../usr/lib/os-release"),
                   ("usr/lib/os-release", os_release("debian", "12"))]),
    ]
    image = scan_tars(tmp_path, *layers)
    assert image.os is not None and (image.os.version, image.os.source) == ("12", "usr/lib/os-release")

    deleted = layer_tar([("usr/lib/.wh.os-release", b"")])  # the symlink now dangles
    image = scan_tars(tmp_path / "dangling", *layers, deleted)
    assert image.os is not None and (image.os.family, image.os.version) == ("debian", "11.9")

    relinked = layer_tar([FileSpec("usr/lib/os-release", type="l", linkname="/etc/os-release")])  # a loop
    image = scan_tars(tmp_path / "loop", *layers, relinked)
    assert image.os is not None and image.os.source == "etc/debian_version"


def test_absolute_symlink_in_a_symlinked_directory() -> None:
    tree = FileTree()
    for e in [FileEntry("usr/lib/os-release", "f"), FileEntry("lib", "l", linkname="/usr/lib"),
              FileEntry("etc/os-release", "l", linkname="../lib/os-release"),
              FileEntry("a/b", "l", linkname="../../../../c"), FileEntry("c/d", "f")]:
        tree.add(e, 0)
    assert tree.resolve("etc/os-release") == "usr/lib/os-release"
    assert tree.resolve("lib/os-release") == "usr/lib/os-release"
    assert tree.resolve("a/b/d") == "c/d"
    assert tree.resolve("missing/file") == "missing/file"


def _lock(*deps: tuple[str, str]) -> str:
    return json.dumps({"name": "app", "lockfileVersion": 3, "packages": {
        "": {"name": "app"}, **{f"node_modules/{n}": {"version": v} for n, v in deps}}})


def _installed(name: str, version: str, root: str = "srv/app") -> tuple[str, str]:
    return (f"{root}/node_modules/{name}/package.json", json.dumps({"name": name, "version": version}))


def test_lock_file_packages_are_dropped_when_installed_for_real(tmp_path: Path) -> None:
    layers = [
        layer_tar([OS, ("srv/app/package-lock.json", _lock(("lodash", "4.17.21"), ("left-pad", "1.3.0"),
                                                             ("express", "4.19.2")))]),
        layer_tar([_installed("lodash", "4.17.21"), _installed("express", "4.19.2")]),
        layer_tar([("srv/other/package-lock.json", _lock(("left-pad", "1.3.0")))]),  # the same lock entry again
    ]
    image = scan_tars(tmp_path, *layers)
    found = packages(image, "npm")
    assert {n: p.version for n, p in found.items()} == {"lodash": "4.17.21", "left-pad": "1.3.0",
                                                        "express": "4.19.2"}
    assert found["lodash"].path == "srv/app/node_modules/lodash/package.json"
    assert found["lodash"].metadata.get("source") != "lockfile"
    assert found["lodash"].layer_index == 1
    assert found["left-pad"].metadata.get("source") == "lockfile"


def test_notes_keep_their_layer(tmp_path: Path) -> None:
    image = scan_tars(tmp_path, layer_tar([OS]), layer_tar([("/abs", b"")]), layer_tar([("/abs2", b"")]))
    assert [(n.code, n.layer_index) for n in image.notes] == [("ABSOLUTE_PATH", 1), ("ABSOLUTE_PATH", 2)]


# -- merge() directly --------------------------------------------------------------------------------


def _info(i: int) -> LayerInfo:
    return LayerInfo(i, Descriptor("application/vnd.oci.image.layer.v1.tar", f"sha256:{i:064x}", 0),
                     f"sha256:{i:064x}", f"step {i}")


@pytest.mark.timeout(120)  # a hang guard: the quadratic merge took hours on this input; it takes under a second
def test_merge_is_not_quadratic_in_replacements() -> None:
    """A hostile layer flipping a path between directory and file must not rescan the whole tree each time."""
    base = LayerFacts("sha256:" + "1" * 64, "k",
                      entries=[FileEntry(f"usr/share/d{i // 100}/f{i}", "f") for i in range(100_000)])
    flips: list[FileEntry] = []
    for _ in range(20_000):
        flips += [FileEntry("x", "d"), FileEntry("x/y", "f"), FileEntry("x", "f")]
    top = LayerFacts("sha256:" + "2" * 64, "k", entries=flips,
                     files={"x/y": FileFacts([Package("p", "1", "pypi")])})
    image = merge("ref", [_info(0), _info(1)], [base, top])
    assert len(image.files) == 100_001
    assert image.packages == []  # x/y was hidden by the file x that followed it


def test_merge_of_whiteouts_and_notes_directly() -> None:
    a = LayerFacts("sha256:" + "1" * 64, "k", entries=[FileEntry("a/b/c", "f"), FileEntry("a/d", "f")],
                   files={"a/b/c": FileFacts([Package("x", "1", "pypi")]),
                          "a/d": FileFacts([Package("y", "2", "pypi")])},
                   notes=[Note("SOMETHING", "m", "a/d")])
    b = LayerFacts("sha256:" + "2" * 64, "k", whiteouts=["a/b"])
    image = merge("ref", [_info(0), _info(1)], [a, b])
    assert [(p.name, p.layer_index, p.layer_created_by) for p in image.packages] == [("y", 0, "step 0")]
    assert [e.path for e, _ in image.files] == ["a/d"]
    assert image.notes == [Note("SOMETHING", "m", "a/d", 0)]
