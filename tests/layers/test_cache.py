"""The per-layer facts cache: hits skip the walker entirely, damage is a miss, keys follow analyzers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import pytest
import zstandard
from typer.testing import CliRunner

from hullscan.analyzers.base import analyzers_key
from hullscan.cli import app
from hullscan.errors import HullscanError
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, sha256, write_docker_archive, write_oci_layout
from hullscan.layers.cache import LayerCache
from hullscan.layers.walker import LayerWalker
from hullscan.model import FileEntry, FileFacts, LayerFacts, Note, OSInfo, Package
from hullscan.scan import Scanner

from ._support import (
    STATUS,
    RawImage,
    RawLayer,
    analyzers,
    dist_info,
    dpkg_status,
    options,
    os_release,
    scan,
    write_raw_layout,
)

pytestmark = pytest.mark.timeout(60)

BASE = layer_tar([
    FileSpec("etc", type="d"), ("etc/os-release", os_release("debian", "12")),
    (STATUS, dpkg_status(("bash", "5.2.15-2"), ("libc6", "2.36-9"))),
    ("usr/share/doc/bash/copyright", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                                     "\nFiles: *\nLicense: GPL-3+\n"),
    ("/absolute-name", b"a note for the cache to keep"),
])
APP = layer_tar([dist_info("requests", "2.31.0"), FileSpec("usr/bin/python", type="l", linkname="python3.12")])


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "layers").rglob("*") if p.is_file()) if (root / "layers").exists() else []


class WalkerSpy:
    """Counts real layer walks; can forbid them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walked: list[str] = []
        self.forbidden = False
        real = LayerWalker.walk_tar

        def walk_tar(walker: LayerWalker, raw: Any, diff_id: str, index: int, *a: Any, **kw: Any) -> LayerFacts:
            if self.forbidden:
                raise AssertionError(f"layer {diff_id} was walked although it is cached")
            self.walked.append(diff_id)
            return real(walker, raw, diff_id, index, *a, **kw)

        monkeypatch.setattr(LayerWalker, "walk_tar", walk_tar)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> WalkerSpy:
    return WalkerSpy(monkeypatch)


def test_second_scan_is_served_from_the_cache_with_identical_results(tmp_path: Path, spy: WalkerSpy) -> None:
    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE), Layer(APP, compression="zstd")]))
    first = scan(f"oci:{layout}:latest", tmp_path)
    assert spy.walked == [sha256(BASE), sha256(APP)]
    assert len(cache_files(tmp_path / "cache")) == 2

    spy.forbidden = True
    second = scan(f"oci:{layout}:latest", tmp_path)
    assert second == first
    assert {p.name for p in second.packages} == {"bash", "libc6", "requests"}
    assert [p.licenses for p in second.packages if p.name == "bash"] == [["GPL-3.0-or-later"]]
    assert [n.code for n in second.notes] == ["ABSOLUTE_PATH"]
    assert ("usr/bin/python", "l") in {(e.path, e.type) for e, _ in second.files}


def test_a_layer_shared_by_images_from_different_sources_is_analysed_once(tmp_path: Path, spy: WalkerSpy) -> None:
    write_oci_layout(tmp_path / "one", Image([Layer(BASE)]))
    scan(f"oci:{tmp_path / 'one'}:latest", tmp_path)
    other = LayerCache(tmp_path / "cache").get(sha256(BASE), analyzers_key(analyzers()))
    assert other is not None

    archive = write_docker_archive(tmp_path / "two.tar", Image([Layer(BASE), Layer(APP)]))
    image = scan(f"docker-archive:{archive}", tmp_path)
    assert spy.walked == [sha256(BASE), sha256(APP)]  # BASE once, for the first image only
    assert [p.layer_index for p in image.packages if p.name == "requests"] == [1]
    assert [n.layer_index for n in image.notes] == [0]


def test_cached_notes_and_attribution_follow_the_layer_position_in_each_image(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "a", Image([Layer(APP), Layer(BASE)]))
    write_oci_layout(tmp_path / "b", Image([Layer(BASE)]))
    scan(f"oci:{tmp_path / 'a'}:latest", tmp_path)
    image = scan(f"oci:{tmp_path / 'b'}:latest", tmp_path)
    assert [n.layer_index for n in image.notes] == [0]
    assert {p.layer_index for p in image.packages} == {0}


def _frame_claiming(size: int, payload: bytes) -> bytes:
    """A zstd frame whose header says it holds `size` bytes, holding `payload` as one raw block."""
    header = bytes([0xC0 | 0x20]) + size.to_bytes(8, "little")  # 8-byte content size, single segment
    block = ((len(payload) << 3) | 1).to_bytes(3, "little")  # raw, last block
    return b"\x28\xb5\x2f\xfd" + header + block + payload


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated zstd", "not json", "wrong shape",
                                    "missing keys", "a directory", "64 GB frame header", "deeply nested"])
def test_damaged_cache_entry_is_a_miss_and_is_rewritten(tmp_path: Path, spy: WalkerSpy, damage: str) -> None:
    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE)]))
    first = scan(f"oci:{layout}:latest", tmp_path)
    [entry] = cache_files(tmp_path / "cache")
    good = entry.read_bytes()
    z = zstandard.ZstdCompressor()
    if damage == "a directory":
        entry.unlink()
        entry.mkdir()
    else:
        entry.write_bytes({
            "garbage": b"\x00not a cache entry",
            "empty": b"",
            "truncated zstd": good[: len(good) // 2],
            "not json": z.compress(b"{nope"),
            "wrong shape": z.compress(json.dumps({"diff_id": 1, "key": [], "files": [1, 2], "whiteouts": 3,
                                                  "opaque": None, "entries": "abc", "notes": {},
                                                  "size": "big"}).encode()),
            "missing keys": z.compress(json.dumps({"diff_id": sha256(BASE)}).encode()),
            "64 GB frame header": _frame_claiming(64 << 30, b"{}"),
            "deeply nested": z.compress(b"[" * 100_000 + b"]" * 100_000),
        }[damage])
    spy.walked.clear()
    if damage == "a directory":
        # not something the cache can replace: the layer is analysed again, the scan succeeds, and the
        # scanner says the layer was not kept
        scanner = Scanner(options(tmp_path))
        again = scanner.scan(f"oci:{layout}:latest")
        assert again == first and spy.walked == [sha256(BASE)]
        assert len(scanner.warnings) == 1 and "not cached" in scanner.warnings[0]
        return
    second = scan(f"oci:{layout}:latest", tmp_path)
    assert spy.walked == [sha256(BASE)]  # a miss: analysed again
    assert second == first
    assert entry.read_bytes() == good  # rewritten


def test_damaged_entries_through_the_cache_api(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    facts = LayerFacts(
        "sha256:" + "a" * 64, "0123456789abcdef",
        files={"etc/os-release": FileFacts(os=OSInfo("debian", "12", id_like=["x"], source="etc/os-release")),
               STATUS: FileFacts([Package("bash", "5.2", "deb", STATUS, metadata={"k": "v"}, licenses=["MIT"])],
                                 hints={"dpkg_licenses": {"bash": ["GPL-3.0"]}})},
        whiteouts=["a/b"], opaque_dirs=["c"], entries=[FileEntry("etc/os-release", "f", 10, 0o644, 1, 2)],
        notes=[Note("X", "y", "z", 3)], uncompressed_size=1234)
    cache.put(facts)
    assert cache.get(facts.diff_id, facts.analyzers_key) == facts
    assert cache.get(facts.diff_id, "fedcba9876543210") is None  # other analyzers, other entry
    assert cache.get("sha256:" + "b" * 64, facts.analyzers_key) is None


@pytest.mark.parametrize("diff_id", ["", "sha256:../../../../escaped", "sha256:" + "A" * 64, "md5:abcdef",
                                     "sha256:" + "a" * 63, "sha256:" + "a" * 64 + "/x", "sha256:" + "g" * 64])
def test_malformed_diff_ids_are_never_cached_nor_used_as_paths(tmp_path: Path, diff_id: str) -> None:
    cache = LayerCache(tmp_path / "cache")
    cache.put(LayerFacts(diff_id, "0123456789abcdef"))
    assert cache.get(diff_id, "0123456789abcdef") is None
    assert not (tmp_path / "cache").exists()
    assert not list(tmp_path.rglob("escaped*"))


def test_image_with_a_malformed_diff_id_is_refused_with_a_catalogue_error(tmp_path: Path) -> None:
    layout = write_raw_layout(tmp_path / "img", RawImage([RawLayer(BASE, "sha256:../../../escaped")]))
    with pytest.raises(HullscanError) as err:
        scan(f"oci:{layout}:latest", tmp_path)
    assert err.value.code == "DIGEST_MISMATCH"
    assert cache_files(tmp_path / "cache") == []


class _Versioned:
    """A do-nothing analyzer whose version we can change."""

    name = "test-versioned"
    max_size = 1 << 20

    def __init__(self, version: int) -> None:
        self.version = version

    def claims(self, path: str, entry: FileEntry) -> bool:
        return False

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        return None


def test_changing_an_analyzer_version_changes_the_key(tmp_path: Path, spy: WalkerSpy) -> None:
    v1, v2 = [*analyzers(), _Versioned(1)], [*analyzers(), _Versioned(2)]
    assert analyzers_key(v1) != analyzers_key(v2)
    assert analyzers_key(v1) == analyzers_key(list(reversed(v1)))  # order does not matter
    assert analyzers_key(v1) != analyzers_key(analyzers())  # nor does adding one go unnoticed

    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE)]))
    scan(f"oci:{layout}:latest", tmp_path, analyzers=v1)
    scan(f"oci:{layout}:latest", tmp_path, analyzers=v1)
    assert len(spy.walked) == 1
    scan(f"oci:{layout}:latest", tmp_path, analyzers=v2)
    assert len(spy.walked) == 2
    names = [p.name for p in cache_files(tmp_path / "cache")]
    assert len(names) == 2 and {n.split("-")[1] for n in names} == {analyzers_key(v1), analyzers_key(v2)}


def test_no_cache_writes_nothing(tmp_path: Path, spy: WalkerSpy) -> None:
    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE)]))
    scan(f"oci:{layout}:latest", tmp_path, use_cache=False)
    scan(f"oci:{layout}:latest", tmp_path, use_cache=False)
    assert len(spy.walked) == 2
    assert cache_files(tmp_path / "cache") == []


def test_root_filesystems_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "rootfs/etc").mkdir(parents=True)
    (tmp_path / "rootfs/etc/os-release").write_text(os_release("alpine", "3.20"))
    image = scan(f"dir:{tmp_path / 'rootfs'}", tmp_path)
    assert image.os is not None and image.os.family == "alpine"
    assert cache_files(tmp_path / "cache") == []


def test_unwritable_cache_warns_and_keeps_the_scan(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the cache directory should be")
    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE)]))
    scanner = Scanner(options(tmp_path))
    image = scanner.scan(f"oci:{layout}:latest")
    assert {p.name for p in image.packages} == {"bash", "libc6"}
    assert len(scanner.warnings) == 1 and "cannot write to the layer cache" in scanner.warnings[0]

    # the command line prints the warning and the report, and exits 0
    result = CliRunner().invoke(app, ["sbom", f"oci:{layout}:latest", "-f", "json", "--cache-dir",
                                      str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "warning: layer 1 not cached" in result.stderr
    assert {p["name"] for p in json.loads(result.stdout)["packages"]} == {"bash", "libc6"}


def test_cache_clean_command(tmp_path: Path, spy: WalkerSpy) -> None:
    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE), Layer(APP)]))
    scan(f"oci:{layout}:latest", tmp_path)
    assert len(cache_files(tmp_path / "cache")) == 2

    runner = CliRunner()
    result = runner.invoke(app, ["cache", "clean", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "removed 2" in result.output
    assert cache_files(tmp_path / "cache") == []

    result = runner.invoke(app, ["cache", "clean", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0 and "removed 0" in result.output

    spy.walked.clear()
    scan(f"oci:{layout}:latest", tmp_path)
    assert len(spy.walked) == 2  # analysed afresh


def test_cache_clean_with_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = write_oci_layout(tmp_path / "img", Image([Layer(BASE)]))
    scan(f"oci:{layout}:latest", tmp_path)
    monkeypatch.setenv("HULLSCAN_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["cache", "clean"])
    assert result.exit_code == 0, result.output
    assert cache_files(tmp_path / "cache") == []
