"""Local image sources: OCI layouts (directory and tar), docker-archive tars and root filesystems.

Every image is built by code (hullscan.imagebuild); manifests are edited by hand where a test needs
one no tool would write.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hullscan.analyzers import dpkg, osrelease, python
from hullscan.errors import HullscanError
from hullscan.imagebuild import (
    FileSpec,
    Image,
    Layer,
    layer_tar,
    sha256,
    tar_directory,
    write_docker_archive,
    write_oci_layout,
)
from hullscan.model import ImageFacts, Platform
from hullscan.oci import media
from hullscan.oci.local import DockerArchiveSource, OCILayoutSource
from hullscan.oci.source import Limits
from hullscan.scan import Scanner, ScanOptions

pytestmark = pytest.mark.timeout(60)

STATUS = "var/lib/dpkg/status"


def os_release(os_id: str, version: str) -> str:
    return f"ID={os_id}\nVERSION_ID={version}\nPRETTY_NAME=\"{os_id} {version}\"\n"


def status(*pkgs: tuple[str, str]) -> str:
    return "".join(f"Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: amd64\n\n"
                   for n, v in pkgs)


def image(os_id: str = "debian", version: str = "12", pkg: tuple[str, str] = ("bash", "5.2.15-2"),
          **kw: Any) -> Image:
    base = layer_tar([("etc/os-release", os_release(os_id, version)), (STATUS, status(pkg))])
    return Image([Layer(base), Layer(layer_tar([("app/main.py", "print('hi')\n")]))], **kw)


def scan(target: str, tmp_path: Path, *, limits: Limits | None = None,
         platform: Platform | None = None) -> ImageFacts:
    options = ScanOptions(platform=platform, limits=limits or Limits(), cache_dir=tmp_path / "cache",
                          workdir=tmp_path / "work",
                          analyzers=[*osrelease.ANALYZERS, *dpkg.ANALYZERS, *python.ANALYZERS])
    return Scanner(options).scan(target)


def fails(target: str, tmp_path: Path, code: str, **kw: Any) -> HullscanError:
    with pytest.raises(HullscanError) as err:
        scan(target, tmp_path, **kw)
    assert err.value.code == code, err.value
    assert err.value.render()
    return err.value


def summary(facts: ImageFacts) -> tuple[str, str, dict[str, str]]:
    assert facts.os is not None
    return facts.os.family, facts.os.version, {p.name: p.version for p in facts.packages}


def blob_file(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def write_blob(layout: Path, data: bytes) -> str:
    digest = sha256(data)
    path = blob_file(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def set_index(layout: Path, manifests: list[dict[str, Any]]) -> None:
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))


def index_entries(layout: Path) -> list[dict[str, Any]]:
    return list(json.loads((layout / "index.json").read_text())["manifests"])


def manifest_of(layout: Path, entry: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = entry or index_entries(layout)[0]
    return dict(json.loads(blob_file(layout, entry["digest"]).read_bytes()))


def replace_manifest(layout: Path, manifest: dict[str, Any], media_type: str = media.OCI_MANIFEST,
                     tag: str = "latest") -> str:
    data = json.dumps(manifest).encode()
    digest = write_blob(layout, data)
    set_index(layout, [{"mediaType": media_type, "digest": digest, "size": len(data),
                        "annotations": {"org.opencontainers.image.ref.name": tag}}])
    return digest


# -- audit: which files a scan opens ------------------------------------------------------------------

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if (_OPENED is not None and event in ("open", "os.scandir", "os.listdir") and args
            and isinstance(args[0], str | bytes | os.PathLike)):
        _OPENED.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_audit)


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


# -- OCI layouts ---------------------------------------------------------------------------------------


def test_oci_layout_directory(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image(), tag="1.0")
    expected = ("debian", "12", {"bash": "5.2.15-2"})
    assert summary(scan(f"oci:{layout}:1.0", tmp_path)) == expected
    assert summary(scan(f"oci:{layout}", tmp_path)) == expected  # one image: no tag needed
    facts = scan(str(layout), tmp_path)  # recognised without a prefix
    assert summary(facts) == expected
    assert facts.manifest_digest == index_entries(layout)[0]["digest"]
    assert facts.platform == Platform("linux", "amd64")
    assert [layer.created_by for layer in facts.layers] == ["layer 0", "layer 1"]


def test_oci_layout_tar(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image("alpine", "3.20"), tag="edge")
    archive = tar_directory(layout, tmp_path / "layout.tar")
    expected = ("alpine", "3.20", {"bash": "5.2.15-2"})
    assert summary(scan(f"oci-archive:{archive}:edge", tmp_path)) == expected
    assert summary(scan(f"oci-archive:{archive}", tmp_path)) == expected
    assert summary(scan(str(archive), tmp_path)) == expected  # sniffed


def test_oci_layout_tar_with_dot_slash_names(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image())
    archive = tmp_path / "dotted.tar"
    with tarfile.open(archive, "w") as tf:
        for p in sorted(layout.rglob("*")):
            tf.add(p, arcname="./" + str(p.relative_to(layout)), recursive=False)
    assert summary(scan(f"oci-archive:{archive}", tmp_path))[0] == "debian"


def _multi_image_layout(tmp_path: Path) -> Path:
    layout = tmp_path / "multi"
    entries = []
    for tag, os_id in (("v1", "debian"), ("v2", "ubuntu")):
        write_oci_layout(layout, image(os_id, "1"), tag=tag)
        entries += index_entries(layout)
    set_index(layout, entries)
    return layout


def test_multi_image_layout_needs_a_tag(tmp_path: Path) -> None:
    layout = _multi_image_layout(tmp_path)
    err = fails(f"oci:{layout}", tmp_path, "SOURCE_INVALID")
    assert "v1" in str(err) and "v2" in str(err) and "PATH:TAG" in str(err)
    assert summary(scan(f"oci:{layout}:v2", tmp_path))[0] == "ubuntu"
    assert summary(scan(f"oci:{layout}:v1", tmp_path))[0] == "debian"
    err = fails(f"oci:{layout}:v3", tmp_path, "NOT_FOUND")
    assert "v3" in str(err)


def test_multi_image_oci_archive_needs_a_tag(tmp_path: Path) -> None:
    archive = tar_directory(_multi_image_layout(tmp_path), tmp_path / "multi.tar")
    fails(f"oci-archive:{archive}", tmp_path, "SOURCE_INVALID")
    assert summary(scan(f"oci-archive:{archive}:v2", tmp_path))[0] == "ubuntu"


def _index_layout(tmp_path: Path, *platforms: tuple[str, str, str]) -> Path:
    images = [image(f"os-{arch}{variant}", "1", os=os_name, architecture=arch, variant=variant)
              for os_name, arch, variant in platforms]
    return write_oci_layout(tmp_path / "index", images, tag="multi")


def test_index_in_a_layout_with_a_platform_choice(tmp_path: Path) -> None:
    layout = _index_layout(tmp_path, ("linux", "arm64", "v8"), ("linux", "amd64", ""), ("linux", "arm", "v7"))
    assert summary(scan(f"oci:{layout}:multi", tmp_path))[0] == "os-amd64"  # the default platform
    facts = scan(f"oci:{layout}:multi", tmp_path, platform=Platform("linux", "arm64"))
    assert summary(facts)[0] == "os-arm64v8"
    assert facts.platform == Platform("linux", "arm64", "v8")
    assert summary(scan(f"oci:{layout}:multi", tmp_path, platform=Platform("linux", "arm", "v7")))[0] == "os-armv7"
    err = fails(f"oci:{layout}:multi", tmp_path, "PLATFORM_REQUIRED", platform=Platform("linux", "s390x"))
    for listed in ("linux/arm64/v8", "linux/amd64", "linux/arm/v7"):
        assert listed in str(err)
    fails(f"oci:{layout}:multi", tmp_path, "PLATFORM_REQUIRED", platform=Platform("linux", "arm", "v6"))


def test_index_without_the_default_platform_lists_what_it_has(tmp_path: Path) -> None:
    layout = _index_layout(tmp_path, ("linux", "arm64", "v8"), ("linux", "ppc64le", ""))
    err = fails(f"oci:{layout}:multi", tmp_path, "PLATFORM_REQUIRED")
    assert "linux/arm64/v8" in str(err) and "linux/ppc64le" in str(err) and "--platform" in str(err)


def test_one_platform_index_needs_no_choice(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "one", [image("solo", "1", architecture="arm64")], as_index=True)
    assert summary(scan(f"oci:{layout}", tmp_path))[0] == "solo"


def test_index_of_windows_images_only(tmp_path: Path) -> None:
    layout = _index_layout(tmp_path, ("windows", "amd64", ""))
    fails(f"oci:{layout}:multi", tmp_path, "UNSUPPORTED_PLATFORM")


# -- docker archives -----------------------------------------------------------------------------------


def test_docker_archive(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "saved.tar", image("debian", "12"), repo_tag="example/app:1.2")
    for target in (f"docker-archive:{archive}", str(archive)):
        facts = scan(target, tmp_path)
        assert summary(facts) == ("debian", "12", {"bash": "5.2.15-2"})
        assert facts.reference == "example/app:1.2"
        assert facts.config_digest == sha256(json.dumps(image().config(), sort_keys=True).encode())


def _multi_image_archive(path: Path) -> Path:
    members: list[tuple[str, bytes]] = []
    manifest = []
    for tag, os_id in (("example/one:latest", "debian"), ("example/two:1.0", "ubuntu")):
        img = image(os_id, "1")
        config = json.dumps(img.config(), sort_keys=True).encode()
        config_name = sha256(config).split(":")[1] + ".json"
        members.append((config_name, config))
        layers = []
        for layer in img.layers:
            name = sha256(layer.tar).split(":")[1] + "/layer.tar"
            if name not in {m[0] for m in members}:
                members.append((name, layer.tar))
            layers.append(name)
        manifest.append({"Config": config_name, "RepoTags": [tag], "Layers": layers})
    members.append(("manifest.json", json.dumps(manifest).encode()))
    path.write_bytes(layer_tar(members))
    return path


def test_multi_image_docker_archive(tmp_path: Path) -> None:
    archive = _multi_image_archive(tmp_path / "multi.tar")
    err = fails(f"docker-archive:{archive}", tmp_path, "SOURCE_INVALID")
    assert "example/one:latest" in str(err) and "example/two:1.0" in str(err)
    assert summary(scan(f"docker-archive:{archive}:example/one", tmp_path))[0] == "debian"  # :latest implied
    fails(f"docker-archive:{archive}:example/three", tmp_path, "NOT_FOUND")
    source = DockerArchiveSource(archive, "example/two:1.0")
    try:
        facts = Scanner(ScanOptions(cache_dir=tmp_path / "cache", workdir=tmp_path / "work",
                                    analyzers=list(osrelease.ANALYZERS))).scan_source(source)
    finally:
        source.close()
    assert facts.os is not None and facts.os.family == "ubuntu"
    assert facts.reference == "example/two:1.0"


def test_multi_image_docker_archive_by_full_repo_tag(tmp_path: Path) -> None:
    archive = _multi_image_archive(tmp_path / "multi.tar")
    assert summary(scan(f"docker-archive:{archive}:example/two:1.0", tmp_path))[0] == "ubuntu"


def test_docker_archive_with_symlinked_duplicate_layer(tmp_path: Path) -> None:
    """Older `docker save` wrote a layer shared by two entries once and symlinked the other."""
    img = image()
    config = json.dumps(img.config(), sort_keys=True).encode()
    first = "aaaa/layer.tar"
    archive = tmp_path / "linked.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))

        add("config.json", config)
        add(first, img.layers[0].tar)
        add("bbbb/real.tar", img.layers[1].tar)
        link = tarfile.TarInfo("bbbb/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "real.tar"
        tf.addfile(link)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["x:1"],
                                          "Layers": [first, "bbbb/layer.tar"]}]).encode())
    archive.write_bytes(buf.getvalue())
    facts = scan(f"docker-archive:{archive}", tmp_path)
    assert summary(facts)[0] == "debian"
    assert facts.layers[1].descriptor.size == len(img.layers[1].tar)


@pytest.mark.parametrize("bad", ["not json", "[]", "{}", '[{"Config": 1}]', '["x"]',
                                 '[{"Config": "c.json", "Layers": ["../../../etc/passwd"]}]',
                                 '[{"Config": "/etc/passwd", "Layers": []}]',
                                 '[{"Config": "c.json", "Layers": ["loop"], "RepoTags": "notalist"}]'])
def test_broken_docker_archive_manifests(tmp_path: Path, bad: str) -> None:
    archive = tmp_path / "bad.tar"
    loop = tarfile.TarInfo("loop")
    loop.type, loop.linkname = tarfile.SYMTYPE, "loop2"
    loop2 = tarfile.TarInfo("loop2")
    loop2.type, loop2.linkname = tarfile.SYMTYPE, "loop"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("manifest.json", bad.encode()), ("c.json", json.dumps(image().config()).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        tf.addfile(loop)
        tf.addfile(loop2)
    archive.write_bytes(buf.getvalue())
    with pytest.raises(HullscanError) as err:
        scan(f"docker-archive:{archive}", tmp_path)
    assert err.value.code in ("MANIFEST_INVALID", "SOURCE_INVALID", "NOT_FOUND")


# -- root filesystems ---------------------------------------------------------------------------------


def test_rootfs_directory(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release("debian", "12"))
    (root / STATUS).write_text(status(("bash", "5.2.15-2")))
    for target in (f"dir:{root}", f"rootfs:{root}", str(root)):
        assert summary(scan(target, tmp_path)) == ("debian", "12", {"bash": "5.2.15-2"})


@pytest.mark.parametrize("link", ["etc", "etc/os-release", "usr/lib/os-release", "var/lib/dpkg"])
def test_rootfs_symlinks_to_the_host_are_never_followed(tmp_path: Path, link: str) -> None:
    """A root filesystem is someone else's files: a link to /etc means the image's /etc, never the host's."""
    root = tmp_path / "rootfs"
    root.mkdir()
    host_targets = {"etc": "/etc", "etc/os-release": "/etc/os-release", "usr/lib/os-release": "/etc/os-release",
                    "var/lib/dpkg": "/var/lib/dpkg"}
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(host_targets[link])
    with recording_opens() as opened:
        facts = scan(f"dir:{root}", tmp_path)
    assert facts.os is None  # whatever the host runs, it is not what this root filesystem says
    assert facts.packages == []
    assert (link, "l") in {(e.path, e.type) for e, _ in facts.files}
    touched = [p for p in opened if p.startswith(("/etc", "/var/lib/dpkg", "/usr/lib/os-release"))]
    assert touched == [], f"the scan read host files: {touched}"


def test_rootfs_symlink_resolved_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/lib/os-release").write_text(os_release("fedora", "40"))
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "loop").symlink_to("loop")
    assert scan(f"dir:{root}", tmp_path).os.family == "fedora"  # type: ignore[union-attr]


def test_rootfs_with_unreadable_directory_is_a_note(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    root = tmp_path / "rootfs"
    (root / "secret").mkdir(parents=True)
    (root / "secret").chmod(0)
    try:
        facts = scan(f"dir:{root}", tmp_path)
    finally:
        (root / "secret").chmod(0o755)
    assert [n.code for n in facts.notes] == ["UNREADABLE"]


# -- what is refused before any layer is read ----------------------------------------------------------


def _drop_layer_blobs(layout: Path) -> None:
    for layer in manifest_of(layout)["layers"]:
        blob_file(layout, layer["digest"]).unlink()


def test_schema_v1_manifest_in_a_layout(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "v1", image())
    v1 = {"schemaVersion": 1, "name": "library/busybox", "tag": "latest", "architecture": "amd64",
          "fsLayers": [{"blobSum": "sha256:" + "a" * 64}], "history": [{"v1Compatibility": "{}"}]}
    for mt in (media.DOCKER_SCHEMA1_SIGNED, media.DOCKER_SCHEMA1, ""):
        replace_manifest(layout, v1, mt)
        err = fails(f"oci:{layout}", tmp_path, "SCHEMA_V1")
        assert "schema v1" in str(err)
        assert "skopeo" in err.render()


def test_helm_chart_is_not_an_image(tmp_path: Path) -> None:
    layout = tmp_path / "chart"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    chart = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
             # neither blob exists: refusing the artifact must not need them
             "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:" + "c" * 64,
                        "size": 120},
             "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                         "digest": "sha256:" + "d" * 64, "size": 4096}]}
    replace_manifest(layout, chart)
    err = fails(f"oci:{layout}", tmp_path, "NOT_AN_IMAGE")
    assert "Helm chart" in str(err)


def test_windows_image_config(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "win", image(os="windows"))
    _drop_layer_blobs(layout)
    err = fails(f"oci:{layout}", tmp_path, "UNSUPPORTED_PLATFORM")
    assert "windows" in str(err)
    archive = write_docker_archive(tmp_path / "win.tar", image(os="windows"))
    fails(f"docker-archive:{archive}", tmp_path, "UNSUPPORTED_PLATFORM")


@pytest.mark.parametrize(("limits", "code"), [
    (Limits(max_layers=2), "TOO_MANY_LAYERS"),
    (Limits(max_layer_size=2000), "LAYER_TOO_LARGE"),
    (Limits(max_image_size=2500), "IMAGE_TOO_LARGE"),
])
def test_limits_from_the_manifest_before_any_layer_is_read(tmp_path: Path, limits: Limits, code: str) -> None:
    img = image()
    img.layers.append(Layer(layer_tar([("x", os.urandom(3000))])))  # incompressible: over 2000 bytes however stored
    layout = write_oci_layout(tmp_path / "big", img)
    _drop_layer_blobs(layout)  # reading any layer would now fail with NOT_FOUND
    fails(f"oci:{layout}", tmp_path, code, limits=limits)
    archive = write_docker_archive(tmp_path / "big.tar", img)
    fails(f"docker-archive:{archive}", tmp_path, code, limits=limits)


def test_layer_larger_than_its_manifest_says_is_cut_while_streaming(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "liar", image())
    manifest = manifest_of(layout)
    real = [layer["size"] for layer in manifest["layers"]]
    assert real[0] > 101 and real[1] < real[0]
    manifest["layers"][0]["size"] = 100  # the blob is bigger than that
    replace_manifest(layout, manifest)
    fails(f"oci:{layout}", tmp_path, "LAYER_TOO_LARGE", limits=Limits(max_layer_size=real[0] - 1))
    fails(f"oci:{layout}", tmp_path, "DIGEST_MISMATCH")  # under the limit: the size still has to match


# -- layouts that try to reach outside themselves --------------------------------------------------------


def test_blob_symlink_out_of_a_layout_is_refused(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image())
    outside = tmp_path / "outside"
    config_digest = manifest_of(layout)["config"]["digest"]
    config = blob_file(layout, config_digest)
    outside.write_bytes(config.read_bytes())
    config.unlink()
    config.symlink_to(outside)
    err = fails(f"oci:{layout}", tmp_path, "SOURCE_INVALID")
    assert "outside" in str(err)


def test_blob_symlink_loop_in_a_layout_is_refused(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image())
    config = blob_file(layout, manifest_of(layout)["config"]["digest"])
    config.unlink()
    config.symlink_to(config.name)
    fails(f"oci:{layout}", tmp_path, "SOURCE_INVALID")


@pytest.mark.parametrize("digest", ["sha256:../../../../etc/passwd", "sha256:" + "A" * 64, "md5:abc", "sha256:"])
def test_malformed_digests_are_never_used_as_paths(tmp_path: Path, digest: str) -> None:
    layout = write_oci_layout(tmp_path / "layout", image())
    set_index(layout, [{"mediaType": media.OCI_MANIFEST, "digest": digest, "size": 10}])
    with recording_opens() as opened, pytest.raises(HullscanError) as err:
        scan(f"oci:{layout}", tmp_path)
    assert err.value.code in ("DIGEST_MISMATCH", "MANIFEST_INVALID")
    assert not [p for p in opened if p.startswith("/etc")]


def test_oci_archive_member_links_stay_inside_the_archive(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image())
    archive = tmp_path / "linked.tar"
    with tarfile.open(archive, "w") as tf:
        for p in sorted(layout.rglob("*")):
            rel = str(p.relative_to(layout))
            if rel == "index.json":
                link = tarfile.TarInfo("index.json")
                link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(link)
            else:
                tf.add(p, arcname=rel, recursive=False)
    with recording_opens() as opened, pytest.raises(HullscanError) as err:
        scan(f"oci-archive:{archive}", tmp_path)
    assert err.value.code in ("NOT_FOUND", "SOURCE_INVALID")
    assert not [p for p in opened if p.startswith("/etc")]


def test_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.tar").write_bytes(b"\0" * 10)
    fails(f"oci:{tmp_path / 'empty'}", tmp_path, "SOURCE_INVALID")
    fails(f"oci:{tmp_path / 'missing'}", tmp_path, "SOURCE_INVALID")
    fails(f"docker-archive:{tmp_path / 'junk.tar'}", tmp_path, "SOURCE_INVALID")
    layout = write_oci_layout(tmp_path / "layout", image())
    (layout / "index.json").write_text("{not json")
    fails(f"oci:{layout}", tmp_path, "MANIFEST_INVALID")
    set_index(layout, [])
    fails(f"oci:{layout}", tmp_path, "MANIFEST_INVALID")


def test_layout_source_api_directly(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", image(), tag="t")
    source = OCILayoutSource(layout, "t")
    try:
        resolved = source.resolve(None)
        assert [layer.diff_id for layer in resolved.layers] == [sha256(layer.tar) for layer in image().layers]
        stream = source.open_layer(resolved.layers[0])
        data = b"".join(iter(lambda: stream.read(65536), b""))
        assert sha256(data) == resolved.layers[0].descriptor.digest
    finally:
        source.close()


@pytest.mark.parametrize("kind", ["docker", "oci"])
def test_docker_media_types_in_a_layout(tmp_path: Path, kind: str) -> None:
    layout = write_oci_layout(tmp_path / "layout", image(docker_media_types=kind == "docker"))
    assert summary(scan(f"oci:{layout}", tmp_path))[0] == "debian"


def test_layer_files_listed_in_rootfs_entries(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "dev").mkdir(parents=True)
    os.mkfifo(root / "dev/fifo")
    (root / "bin").mkdir()
    (root / "bin/sh").write_bytes(b"\x7fELF")
    (root / "bin/sh").chmod(0o755)
    facts = scan(f"dir:{root}", tmp_path)
    kinds = {e.path: (e.type, e.executable) for e, _ in facts.files}
    assert kinds["dev/fifo"] == ("p", False)
    assert kinds["bin/sh"] == ("f", True)


def test_docker_archive_image_file_spec(tmp_path: Path) -> None:
    """FileSpec symlinks and directories survive a docker-archive round trip."""
    img = Image([Layer(layer_tar([FileSpec("etc", type="d"), ("usr/lib/os-release", os_release("debian", "12")),
                                  FileSpec("etc/os-release", type="l", linkname="../usr/lib/os-release")]))])
    archive = write_docker_archive(tmp_path / "a.tar", img)
    facts = scan(str(archive), tmp_path)
    assert facts.os is not None and facts.os.source == "usr/lib/os-release"
