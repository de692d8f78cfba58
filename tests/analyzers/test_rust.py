from __future__ import annotations

import io
import json
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.gobinary import ElfImage
from hullscan.analyzers.rust import ANALYZERS, CargoAuditableAnalyzer, audit_packages, decode_dep_section
from hullscan.model import FileEntry, FileFacts, Package

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("objcopy")), reason="needs gcc and binutils")

AUDIT = {
    "packages": [
        {"name": "myapp", "version": "0.1.0", "source": "local", "dependencies": [1, 2, 4], "root": True},
        {"name": "serde", "version": "1.0.152", "source": "crates.io", "dependencies": [3]},
        {"name": "regex", "version": "1.7.1", "source": "crates.io", "kind": "runtime"},
        {"name": "serde_derive", "version": "1.0.152", "source": "crates.io", "kind": "build"},
        {"name": "forked", "version": "0.2.0", "source": "git"},
    ]
}


@pytest.fixture(scope="module")
def c_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rustbin")
    (root / "hello.c").write_text('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
    out = root / "hello"
    subprocess.run(["gcc", "-O0", "-o", str(out), str(root / "hello.c")], check=True, timeout=120)
    return out


def with_section(binary: Path, tmp_path: Path, payload: bytes, name: str = ".dep-v0") -> bytes:
    blob = tmp_path / "section.bin"
    blob.write_bytes(payload)
    out = tmp_path / "audited"
    subprocess.run(
        [
            "objcopy",
            "--add-section",
            f"{name}={blob}",
            "--set-section-flags",
            f"{name}=noload,readonly",
            str(binary),
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def analyze(data: bytes, path: str = "usr/local/bin/myapp") -> FileFacts | None:
    a = CargoAuditableAnalyzer()
    entry = FileEntry(path=path, type="f", size=len(data), mode=0o755)
    assert a.claims(path, entry)
    return a.analyze(path, entry, io.BytesIO(data))


def by_name(facts: FileFacts | None) -> dict[str, Package]:
    assert facts is not None
    return {p.name: p for p in facts.packages}


def test_registered_and_claims() -> None:
    assert any(isinstance(a, CargoAuditableAnalyzer) for a in ANALYZERS)
    a = CargoAuditableAnalyzer()
    assert a.claims("usr/bin/x", FileEntry("usr/bin/x", "f", 5000, 0o755))
    assert not a.claims("usr/bin/x", FileEntry("usr/bin/x", "f", 5000, 0o644))
    assert not a.claims("usr/bin/x.py", FileEntry("usr/bin/x.py", "f", 5000, 0o755))


def test_real_elf_with_dep_section(c_binary: Path, tmp_path: Path) -> None:
    data = with_section(c_binary, tmp_path, zlib.compress(json.dumps(AUDIT).encode(), 9))
    with (tmp_path / "audited").open("rb") as f:
        assert ElfImage.open(f).section(".dep-v0") is not None
    pkgs = by_name(analyze(data))
    assert {n: p.version for n, p in pkgs.items()} == {
        "myapp": "0.1.0",
        "serde": "1.0.152",
        "regex": "1.7.1",
        "forked": "0.2.0",
    }  # serde_derive is a build dependency: not in the binary
    serde = pkgs["serde"]
    assert (serde.ecosystem, serde.purl, serde.path) == ("cargo", "pkg:cargo/serde@1.0.152", "usr/local/bin/myapp")
    assert serde.metadata["source"] == "crates.io"
    assert serde.metadata["dependencies"] == "serde_derive@1.0.152"
    assert pkgs["myapp"].metadata["root"] == "true"
    assert pkgs["myapp"].metadata["dependencies"] == "serde@1.0.152,regex@1.7.1,forked@0.2.0"
    assert pkgs["forked"].metadata["source"] == "git"


def test_plain_elf_and_non_elf(c_binary: Path) -> None:
    assert analyze(c_binary.read_bytes()) is None
    assert analyze(b"#!/bin/sh\n" + b"x" * 100) is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x01not zlib at all", "not zlib"),
        (zlib.compress(b'{"packages": [')[:-6], "truncated|not zlib"),
        (zlib.compress(b'{"packages": [}'), "not valid JSON"),
        (zlib.compress(b"\xff\xfe\x00garbage"), "not valid JSON"),
        (zlib.compress(b'{"pkgs": []}'), "packages"),
        (zlib.compress(b"[1, 2, 3]"), "packages"),
        (zlib.compress(b'{"packages": [{"name": 1}, {"version": "1"}]}'), "no names"),
        (zlib.compress(b"[" * 100_000 + b"]" * 100_000), "not valid JSON|packages"),
    ],
)
def test_corrupt_section_is_a_failure(c_binary: Path, tmp_path: Path, payload: bytes, message: str) -> None:
    data = with_section(c_binary, tmp_path, payload)
    with pytest.raises(AnalyzerFailure, match=message):
        analyze(data)


def test_decompression_bomb_is_capped() -> None:
    bomb = zlib.compress(b'{"packages": [' + b" " * (64 * 1024 * 1024) + b"]}", 9)
    assert len(bomb) < 128 * 1024
    with pytest.raises(AnalyzerFailure, match="inflates beyond"):
        decode_dep_section(bomb)


def test_truncated_elf_is_a_failure(c_binary: Path, tmp_path: Path) -> None:
    data = with_section(c_binary, tmp_path, zlib.compress(json.dumps(AUDIT).encode()))
    with pytest.raises(AnalyzerFailure):
        analyze(data[: len(data) - 200])  # section header table is at the end for gcc/objcopy output


def test_odd_but_valid_documents() -> None:
    doc: dict[str, Any] = {
        "format": 1,
        "packages": [
            {"name": "a", "version": "1.0.0", "source": "crates.io", "dependencies": [1, 99, -1, True, "x", 1]},
            {"name": "b", "version": "2.0.0", "source": {"weird": 1}},
            "not a package",
            {"name": "a", "version": "1.0.0", "source": "crates.io"},  # duplicate
        ],
    }
    pkgs = {p.name: p for p in audit_packages(doc, "bin/a")}
    assert pkgs["a"].metadata["dependencies"] == "b@2.0.0"
    assert pkgs["b"].metadata["source"] == ""
    assert len(pkgs) == 2
    assert audit_packages({"packages": []}, "bin/a") == []
