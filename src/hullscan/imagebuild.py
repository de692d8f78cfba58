"""Build OCI images by code: layers from file dicts, OCI layouts, docker-archive tars.

Used by `make demo`, the tests and the benchmarks, so no image blob is ever checked in.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from hullscan.oci import media


@dataclass
class FileSpec:
    """One tar member to put in a layer."""

    path: str
    data: bytes = b""
    type: str = "f"  # f, d, l (symlink), h (hard link)
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0


def _member(spec: FileSpec) -> tuple[tarfile.TarInfo, bytes | None]:
    ti = tarfile.TarInfo(spec.path)
    ti.mode, ti.uid, ti.gid, ti.mtime = spec.mode, spec.uid, spec.gid, 1_700_000_000
    if spec.type == "d":
        ti.type = tarfile.DIRTYPE
        ti.mode = spec.mode if spec.mode != 0o644 else 0o755
        return ti, None
    if spec.type == "l":
        ti.type, ti.linkname = tarfile.SYMTYPE, spec.linkname
        return ti, None
    if spec.type == "h":
        ti.type, ti.linkname = tarfile.LNKTYPE, spec.linkname
        return ti, None
    ti.size = len(spec.data)
    return ti, spec.data


def layer_tar(files: Iterable[FileSpec | tuple[str, bytes | str]], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed layer tar. Tuples are plain files; parent directories are not implied."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for f in files:
            spec = f if isinstance(f, FileSpec) else FileSpec(f[0], f[1].encode() if isinstance(f[1], str) else f[1])
            ti, data = _member(spec)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layer:
    tar: bytes
    created_by: str = ""
    compression: str = "gzip"  # gzip, zstd, none

    @property
    def blob(self) -> bytes:
        return compress(self.tar, self.compression)

    @property
    def media_type(self) -> str:
        return {"gzip": media.OCI_LAYER_GZIP, "zstd": media.OCI_LAYER_ZSTD, "none": media.OCI_LAYER}[
            self.compression]


@dataclass
class Image:
    layers: list[Layer]
    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""
    config_extra: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    docker_media_types: bool = False

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer.tar) for layer in self.layers]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": layer.created_by or f"layer {i}"}
                        for i, layer in enumerate(self.layers)],
        }
        if self.variant:
            cfg["variant"] = self.variant
        cfg.update(self.config_extra)
        return cfg

    def blobs(self) -> tuple[bytes, bytes, dict[str, bytes]]:
        """(manifest bytes, config bytes, every blob by digest)."""
        config = json.dumps(self.config(), sort_keys=True).encode()
        blobs = {sha256(config): config}
        layer_descs = []
        for layer in self.layers:
            blob = layer.blob
            blobs[sha256(blob)] = blob
            mt = layer.media_type
            if self.docker_media_types:
                if layer.compression != "gzip":
                    raise ValueError("Docker v2 schema 2 layers are gzip")
                mt = media.DOCKER_LAYER
            layer_descs.append({"mediaType": mt, "digest": sha256(blob), "size": len(blob)})
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media.DOCKER_MANIFEST if self.docker_media_types else media.OCI_MANIFEST,
            "config": {"mediaType": media.DOCKER_CONFIG if self.docker_media_types else media.OCI_CONFIG,
                       "digest": sha256(config), "size": len(config)},
            "layers": layer_descs,
        }
        if self.annotations:
            manifest["annotations"] = self.annotations
        return json.dumps(manifest, sort_keys=True).encode(), config, blobs


def _write_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    p = root / "blobs" / "sha256" / digest.split(":")[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return digest


def write_oci_layout(root: Path, images: list[Image] | Image, tag: str = "latest", *,
                     as_index: bool = False) -> Path:
    """Write an OCI layout. Several images (or as_index) become one multi-platform index under `tag`."""
    imgs = images if isinstance(images, list) else [images]
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descs = []
    for img in imgs:
        manifest, _config, blobs = img.blobs()
        for data in blobs.values():
            _write_blob(root, data)
        digest = _write_blob(root, manifest)
        plat = {"os": img.os, "architecture": img.architecture}
        if img.variant:
            plat["variant"] = img.variant
        mt = media.DOCKER_MANIFEST if img.docker_media_types else media.OCI_MANIFEST
        descs.append({"mediaType": mt, "digest": digest, "size": len(manifest), "platform": plat})
    ann = {"org.opencontainers.image.ref.name": tag}
    if len(descs) > 1 or as_index:
        index = json.dumps({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": descs}).encode()
        idx_digest = _write_blob(root, index)
        top = [{"mediaType": media.OCI_INDEX, "digest": idx_digest, "size": len(index), "annotations": ann}]
    else:
        d = dict(descs[0])
        d.pop("platform")
        top = [{**d, "annotations": ann}]
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": top}))
    return root


def write_docker_archive(path: Path, image: Image, repo_tag: str = "hullscan/sample:latest") -> Path:
    """A `docker save` style tar: manifest.json, <config>.json and <id>/layer.tar (uncompressed)."""
    config = json.dumps(image.config(), sort_keys=True).encode()
    config_name = sha256(config).split(":")[1] + ".json"
    members: list[tuple[str, bytes]] = [(config_name, config)]
    layer_paths = []
    for layer in image.layers:
        name = sha256(layer.tar).split(":")[1] + "/layer.tar"
        members.append((name, layer.tar))
        layer_paths.append(name)
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_paths}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    path.write_bytes(layer_tar(members))
    return path


def tar_directory(src: Path, dest: Path) -> Path:
    """Pack an OCI layout directory into a tar (the `oci-archive` form)."""
    with tarfile.open(dest, "w") as tf:
        for p in sorted(src.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(src)), recursive=False)
    return dest
