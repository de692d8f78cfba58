"""Helpers for the layer tests: images built by code, scans confined to a temporary directory.

Every image here is made on the fly (hullscan.imagebuild, or raw tar bytes where a test needs a
member no well-behaved tool would write), so no blob is checked in.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan.analyzers import dpkg, node, osrelease, python
from hullscan.analyzers.base import Analyzer
from hullscan.errors import HullscanError
from hullscan.imagebuild import FileSpec, compress, sha256
from hullscan.layers.walker import LayerWalker
from hullscan.model import ImageFacts, LayerFacts, Package
from hullscan.oci import media
from hullscan.oci.source import Limits
from hullscan.scan import Scanner, ScanOptions

SITE = "usr/local/lib/python3.12/site-packages"
STATUS = "var/lib/dpkg/status"


def analyzers() -> list[Analyzer]:
    """The analyzers the core tests rely on (explicit, so unrelated analyzers cannot interfere)."""
    return [*osrelease.ANALYZERS, *dpkg.ANALYZERS, *python.ANALYZERS, *node.ANALYZERS]


# -- file contents ----------------------------------------------------------------------------------


def os_release(os_id: str, version: str = "1") -> str:
    return f'NAME="{os_id}"\nID={os_id}\nVERSION_ID="{version}"\nPRETTY_NAME="{os_id} {version}"\n'


def dpkg_status(*packages: tuple[str, str]) -> str:
    return "".join(
        f"Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n"
        f"Maintainer: Someone <someone@example.org>\n\n"
        for name, version in packages
    )


def metadata(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test package\n"


def dist_info(name: str, version: str, site: str = SITE) -> tuple[str, str]:
    return (f"{site}/{name}-{version}.dist-info/METADATA", metadata(name, version))


def dirs(*paths: str) -> list[FileSpec]:
    return [FileSpec(p, type="d") for p in paths]


# -- raw tar members --------------------------------------------------------------------------------


def member(name: str, data: bytes | str = b"", *, type: bytes = tarfile.REGTYPE, linkname: str = "",
           size: int | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    if isinstance(data, str):
        data = data.encode()
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime, ti.mode = type, linkname, 1_700_000_000, 0o644
    if type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        ti.size = len(data) if size is None else size
        return ti, data
    return ti, None


def raw_tar(members: Iterable[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT,
            encoding: str = "utf-8") -> bytes:
    """A tar of exactly the members given: no name checks, no implied directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding=encoding, errors="surrogateescape") as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# -- OCI layouts from raw blobs ---------------------------------------------------------------------


@dataclass
class RawLayer:
    """A layer blob exactly as stored, with the diff_id the config will claim for it."""

    blob: bytes
    diff_id: str
    media_type: str = media.OCI_LAYER_GZIP

    @classmethod
    def of(cls, tar: bytes, compression: str = "gzip") -> RawLayer:
        mt = {"gzip": media.OCI_LAYER_GZIP, "zstd": media.OCI_LAYER_ZSTD, "none": media.OCI_LAYER}[compression]
        return cls(compress(tar, compression), sha256(tar), mt)


@dataclass
class RawImage:
    layers: list[RawLayer]
    config_extra: dict[str, Any] = field(default_factory=dict)
    config_media_type: str = media.OCI_CONFIG

    def config(self) -> bytes:
        cfg: dict[str, Any] = {
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in self.layers]},
            "history": [{"created_by": f"RUN step {i}"} for i in range(len(self.layers))],
        }
        cfg.update(self.config_extra)
        return json.dumps(cfg).encode()


def write_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def write_raw_layout(root: Path, image: RawImage, tag: str = "latest") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    config = image.config()
    manifest = {
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": image.config_media_type, "digest": write_blob(root, config), "size": len(config)},
        "layers": [{"mediaType": lay.media_type, "digest": write_blob(root, lay.blob), "size": len(lay.blob)}
                   for lay in image.layers],
    }
    data = json.dumps(manifest).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": media.OCI_MANIFEST, "digest": write_blob(root, data), "size": len(data),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (root / "index.json").write_text(json.dumps(index))
    return root


# -- running the pipeline ---------------------------------------------------------------------------


def options(tmp_path: Path, limits: Limits | None = None, **kw: Any) -> ScanOptions:
    return ScanOptions(cache_dir=tmp_path / "cache", workdir=tmp_path / "work", limits=limits or Limits(),
                       analyzers=kw.pop("analyzers", None) or analyzers(), **kw)


def scan(target: str, tmp_path: Path, limits: Limits | None = None, **kw: Any) -> ImageFacts:
    return Scanner(options(tmp_path, limits, **kw)).scan(target)


def scan_tars(tmp_path: Path, *tars: bytes, compression: str = "gzip", limits: Limits | None = None,
              **kw: Any) -> ImageFacts:
    """Scan an OCI layout made of these layer tars."""
    layout = write_raw_layout(tmp_path / "image", RawImage([RawLayer.of(t, compression) for t in tars]))
    return scan(f"oci:{layout}:latest", tmp_path, limits, **kw)


def walk(data: bytes, workdir: Path, diff_id: str = "", limits: Limits | None = None) -> LayerFacts:
    walker = LayerWalker(analyzers(), limits or Limits(), workdir)
    return walker.walk_tar(io.BytesIO(data), diff_id, 0)


def packages(facts: ImageFacts, ecosystem: str | None = None) -> dict[str, Package]:
    """Packages by name; fails if one name is reported twice."""
    out: dict[str, Package] = {}
    for p in facts.packages:
        if ecosystem is None or p.ecosystem == ecosystem:
            assert p.name not in out, f"{p.name} reported twice: {out[p.name]} and {p}"
            out[p.name] = p
    return out


def versions(facts: ImageFacts, ecosystem: str | None = None) -> dict[str, str]:
    return {name: p.version for name, p in packages(facts, ecosystem).items()}


def note_codes(notes: Iterable[Any]) -> list[str]:
    return [n.code for n in notes]


# -- proving a scan stays inside its directories -----------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_MUTATING_EVENTS = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.symlink", "os.link",
                    "os.chmod", "os.chown", "os.utime", "os.truncate", "os.mkfifo", "os.mknod"}


@dataclass
class _Recorder:
    active: bool = False
    writes: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = args
            if not isinstance(path, str | bytes | os.PathLike):
                return  # an fd
            full = os.path.abspath(os.fsdecode(path))
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            (self.writes if writing else self.reads).append(full)
        elif event in ("os.scandir", "os.listdir") and args and isinstance(args[0], str | bytes | os.PathLike):
            self.reads.append(os.path.abspath(os.fsdecode(args[0])))
        elif event in _MUTATING_EVENTS:
            for a in args[:2]:
                if isinstance(a, str | bytes | os.PathLike):
                    self.writes.append(os.path.abspath(os.fsdecode(a)))


_RECORDER = _Recorder()
sys.addaudithook(_RECORDER.hook)


def _inside(path: str, roots: Iterable[Path]) -> bool:
    return any(path == str(r) or path.startswith(str(r) + os.sep) for r in roots)


@dataclass
class Confinement:
    """What one confined scan touched."""

    root: Path
    writes: list[str]
    reads: list[str]


@contextlib.contextmanager
def confined(tmp_path: Path, *readable: Path) -> Iterator[Confinement]:
    """Run the body from deep inside tmp_path, recording every file it writes and reads.

    On exit it proves that writes went only to tmp_path/work and tmp_path/cache, that nothing appeared
    anywhere else under tmp_path (relative `../` escapes would land there), and that no file outside
    tmp_path and the Python installation was opened (a symlink followed to the host would be).
    """
    cwd = tmp_path / "cwd" / "a" / "b" / "c"
    cwd.mkdir(parents=True, exist_ok=True)
    before = {p for p in tmp_path.rglob("*")}
    old = os.getcwd()
    os.chdir(cwd)
    _RECORDER.writes.clear()
    _RECORDER.reads.clear()
    _RECORDER.active = True
    result = Confinement(tmp_path, [], [])
    try:
        yield result
    finally:
        _RECORDER.active = False
        os.chdir(old)
        result.writes = list(_RECORDER.writes)
        result.reads = list(_RECORDER.reads)
    allowed = [tmp_path / "work", tmp_path / "cache"]
    stray = [w for w in result.writes if not _inside(w, allowed)]
    assert not stray, f"the scan wrote outside its work and cache dirs: {stray}"
    after = {p for p in tmp_path.rglob("*")}
    new = sorted(str(p.relative_to(tmp_path)) for p in after - before if not _inside(str(p), allowed))
    assert not new, f"files appeared outside the work and cache dirs: {new}"
    assert not any("escaped" in p.name for p in after)
    python_dirs = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    python_dirs |= {Path(p).resolve() for p in sys.path if p}
    foreign = [r for r in result.reads
               if not _inside(r, [tmp_path, *readable]) and not _inside(os.path.realpath(r), python_dirs)]
    assert not foreign, f"the scan read files outside the image: {foreign}"


def outcome(fn: Any, *args: Any, **kw: Any) -> ImageFacts | HullscanError:
    """The scan's result or its catalogue error; any other exception fails the test."""
    try:
        return fn(*args, **kw)  # type: ignore[no-any-return]
    except HullscanError as exc:
        assert exc.code, exc
        assert exc.render()  # every code is in the catalogue, with a solution
        return exc
