from __future__ import annotations

import glob
import io
import json
import os
import shutil
import struct
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.gobinary import (
    ANALYZERS,
    ElfImage,
    GoBinaryAnalyzer,
    GoBuildInfo,
    GoModule,
    buildinfo_packages,
    parse_modinfo,
    read_buildinfo,
    stdlib_version,
)
from hullscan.model import FileEntry, FileFacts, Package

GO = shutil.which("go") or "/usr/bin/go"
needs_go = pytest.mark.skipif(not os.path.exists(GO), reason="needs the Go toolchain (apt-get install golang-go)")
needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")
DEBIAN_GO_BINARIES = [p for p in ("/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/umoci") if os.path.exists(p)]


def analyze_bytes(data: bytes, path: str = "usr/local/bin/app") -> FileFacts | None:
    a = GoBinaryAnalyzer()
    entry = FileEntry(path=path, type="f", size=len(data), mode=0o755)
    assert a.claims(path, entry)
    return a.analyze(path, entry, io.BytesIO(data))


def analyze_file(path: str | Path) -> FileFacts | None:
    with open(path, "rb") as f:
        return GoBinaryAnalyzer().analyze(str(path).lstrip("/"), FileEntry(str(path), "f", 0, 0o755), f)


def packages(facts: FileFacts | None) -> dict[str, Package]:
    assert facts is not None
    return {p.name: p for p in facts.packages}


# ---------------------------------------------------------------------------------------------------
# Reference: `go version -m`


@dataclass
class Reference:
    go_version: str
    lines: list[tuple[str, ...]]


def go_version_m(binary: str | Path) -> Reference:
    out = subprocess.run([GO, "version", "-m", str(binary)], capture_output=True, text=True, check=True, timeout=60)
    first, *rest = out.stdout.splitlines()
    lines = [tuple(line.strip("\t").split("\t")) for line in rest if line.strip()]
    return Reference(first.rsplit(": ", 1)[1].strip(), lines)


def assert_matches_reference(binary: str | Path) -> None:
    ref = go_version_m(binary)
    with open(binary, "rb") as f:
        found = read_buildinfo(ElfImage.open(f))
    assert found is not None
    info = parse_modinfo(*found)
    assert info.go_version == ref.go_version
    mine: list[tuple[str, ...]] = []
    if info.path:
        mine.append(("path", info.path))
    for kind, mod in ([("mod", info.main)] if info.main else []) + [("dep", d) for d in info.deps]:
        assert mod is not None
        mine.append(tuple(x for x in (kind, mod.path, mod.version, mod.sum) if x))
        if mod.replace:
            mine.append(tuple(x for x in ("=>", mod.replace.path, mod.replace.version, mod.replace.sum) if x))
    for key, value in info.settings.items():
        mine.append(("build", f"{key}={value}"))

    def canon(line: tuple[str, ...]) -> tuple[str, ...]:
        if line[0] == "build":  # go prints values quoted when they hold spaces: -ldflags="-s -w"
            key, _, value = line[1].partition("=")
            if value.startswith('"'):
                value = json.loads(value)
            return ("build", f"{key}={value}")
        return tuple(x for x in line if x)

    assert [canon(x) for x in ref.lines] == [canon(x) for x in mine]


# ---------------------------------------------------------------------------------------------------
# Real Go binaries, built once per session


@dataclass
class GoBuilds:
    plain: Path  # (devel) main module, version control info, replaced local dep, proxied deps
    stripped: Path  # -ldflags "-s -w -X main.version=1.4.2"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _publish(proxy: Path, module: str, version: str, files: dict[str, str]) -> None:
    """A module in GOPROXY=file:// layout: list, .info, .mod and the module zip."""
    base = proxy / module / "@v"
    base.mkdir(parents=True, exist_ok=True)
    with (base / "list").open("a") as f:
        f.write(version + "\n")
    (base / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2023-01-02T03:04:05Z"}))
    (base / f"{version}.mod").write_text(files["go.mod"])
    with zipfile.ZipFile(base / f"{version}.zip", "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{module}@{version}/{name}", text)


@pytest.fixture(scope="session")
def go_builds(tmp_path_factory: pytest.TempPathFactory) -> GoBuilds:
    if not os.path.exists(GO):
        pytest.skip("needs the Go toolchain")
    root = tmp_path_factory.mktemp("gobuild")
    proxy = root / "proxy"
    _publish(
        proxy,
        "example.com/plain",
        "v0.3.1",
        {
            "go.mod": "module example.com/plain\n\ngo 1.19\n",
            "plain.go": 'package plain\n\nfunc Name() string { return "plain" }\n',
        },
    )
    # a fork published under its own path, still declaring the path it replaces
    _publish(
        proxy,
        "example.com/fork",
        "v1.5.0",
        {
            "go.mod": "module example.com/lib\n\ngo 1.19\n",
            "lib.go": 'package lib\n\nfunc Name() string { return "forked lib" }\n',
        },
    )
    _write(root / "dep" / "go.mod", "module example.com/dep\n\ngo 1.19\n")
    _write(root / "dep" / "dep.go", 'package dep\n\nfunc Name() string { return "dep" }\n')
    app = root / "app"
    _write(
        app / "go.mod",
        (
            "module example.com/app\n\ngo 1.19\n\n"
            "require (\n\texample.com/dep v1.2.3\n\texample.com/lib v1.0.0\n\texample.com/plain v0.3.1\n)\n\n"
            "replace example.com/dep v1.2.3 => ../dep\n\n"
            "replace example.com/lib => example.com/fork v1.5.0\n"
        ),
    )
    _write(
        app / "main.go",
        (
            'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/dep"\n\t"example.com/lib"\n'
            '\t"example.com/plain"\n)\n\nvar version = "dev"\n\n'
            "func main() { fmt.Println(version, dep.Name(), lib.Name(), plain.Name()) }\n"
        ),
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "GOPATH": str(root / "gopath"),
        "GOCACHE": str(root / "gocache"),
        "GOMODCACHE": str(root / "gopath" / "pkg" / "mod"),
        "GOPROXY": f"file://{proxy}",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_DATE": "2023-05-06T07:08:09Z",
        "GIT_COMMITTER_DATE": "2023-05-06T07:08:09Z",
    }
    if shutil.which("git"):  # gives the build vcs.* settings
        for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x"]):
            subprocess.run(["git", *cmd], cwd=app, env=env, check=True, timeout=60)
    builds = GoBuilds(plain=root / "app-plain", stripped=root / "app-stripped")
    subprocess.run([GO, "build", "-o", str(builds.plain), "."], cwd=app, env=env, check=True, timeout=300)
    subprocess.run(
        [GO, "build", "-ldflags=-s -w -X main.version=1.4.2", "-o", str(builds.stripped), "."],
        cwd=app,
        env=env,
        check=True,
        timeout=300,
    )
    return builds


def test_registered_and_claims_are_cheap() -> None:
    assert any(isinstance(a, GoBinaryAnalyzer) for a in ANALYZERS)
    a = GoBinaryAnalyzer()
    assert a.claims("usr/bin/app", FileEntry("usr/bin/app", "f", 10_000, 0o755))
    assert not a.claims("usr/bin/app", FileEntry("usr/bin/app", "f", 10_000, 0o644))
    assert not a.claims("usr/bin/app", FileEntry("usr/bin/app", "l", 0, 0o777, linkname="x"))
    assert not a.claims("usr/bin/huge", FileEntry("usr/bin/huge", "f", 600 * 1024 * 1024, 0o755))
    assert not a.claims("usr/bin/run.sh", FileEntry("usr/bin/run.sh", "f", 1000, 0o755))


@needs_go
def test_built_binary_modules_and_stdlib(go_builds: GoBuilds) -> None:
    pkgs = packages(analyze_file(go_builds.plain))
    app = pkgs["example.com/app"]
    assert app.ecosystem == "golang"
    assert app.metadata["recordedVersion"] == "(devel)"
    assert app.metadata["mainModule"] == "true"
    assert app.metadata["build:CGO_ENABLED"] == "0"
    if shutil.which("git"):
        assert app.metadata["build:vcs"] == "git"
        revision = app.metadata["build:vcs.revision"]
        assert app.version == f"v0.0.0-20230506070809-{revision[:12]}"
        assert app.metadata["versionSource"] == "vcs"
    # local replacement: the module identity and required version stay, the directory is recorded
    dep = pkgs["example.com/dep"]
    assert (dep.version, dep.metadata["replacementPath"]) == ("v1.2.3", "../dep")
    assert dep.purl == "pkg:golang/example.com/dep@v1.2.3"
    # module replacement: the fork and its version are what was built
    assert "example.com/lib" not in pkgs
    fork = pkgs["example.com/fork"]
    assert fork.version == "v1.5.0"
    assert fork.metadata["replaces"] == "example.com/lib@v1.0.0"
    assert fork.metadata["sum"].startswith("h1:")
    assert pkgs["example.com/plain"].version == "v0.3.1"
    assert pkgs["example.com/plain"].purl == "pkg:golang/example.com/plain@v0.3.1"
    go_version = subprocess.run([GO, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    std = pkgs["stdlib"]
    assert std.version == stdlib_version(go_version)
    assert std.version.startswith("v1.")
    assert std.purl == f"pkg:golang/stdlib@{std.version}"
    assert all(p.path == str(go_builds.plain).lstrip("/") for p in pkgs.values())


@needs_go
def test_stripped_binary_and_ldflags_version(go_builds: GoBuilds) -> None:
    pkgs = packages(analyze_file(go_builds.stripped))
    app = pkgs["example.com/app"]
    assert (app.version, app.metadata["versionSource"]) == ("v1.4.2", "ldflags")
    assert app.purl == "pkg:golang/example.com/app@v1.4.2"
    assert app.metadata["build:-ldflags"] == "-s -w -X main.version=1.4.2"
    assert {"example.com/dep", "example.com/fork", "example.com/plain", "stdlib"} <= set(pkgs)


@needs_go
def test_built_binaries_match_go_version_m(go_builds: GoBuilds) -> None:
    assert_matches_reference(go_builds.plain)
    assert_matches_reference(go_builds.stripped)


@needs_go
@pytest.mark.skipif(not DEBIAN_GO_BINARIES, reason="no Debian-built Go binaries here")
@pytest.mark.parametrize("binary", DEBIAN_GO_BINARIES)
def test_debian_binaries_match_go_version_m(binary: str) -> None:
    assert_matches_reference(binary)
    pkgs = packages(analyze_file(binary))
    ref = go_version_m(binary)
    assert pkgs["stdlib"].version == stdlib_version(ref.go_version)
    path = next(line[1] for line in ref.lines if line[0] == "path")
    assert pkgs["stdlib"].metadata["mainPath"] == path


@needs_go
def test_found_without_the_section_name(go_builds: GoBuilds, tmp_path: Path) -> None:
    # objcopy: the section is renamed, so only the segment scan can find the header
    renamed = tmp_path / "renamed"
    if shutil.which("objcopy"):
        subprocess.run(
            ["objcopy", "--rename-section", ".go.buildinfo=.data.other", str(go_builds.stripped), str(renamed)],
            check=True,
            timeout=60,
        )
        with renamed.open("rb") as f:
            assert ElfImage.open(f).section(".go.buildinfo") is None
        assert packages(analyze_file(renamed))["example.com/app"].version == "v1.4.2"
    # no section headers at all (e_shoff = e_shnum = e_shstrndx = 0)
    data = bytearray(go_builds.stripped.read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<HHH", data, 0x3C, 0, 0, 0)
    assert packages(analyze_bytes(bytes(data)))["example.com/app"].version == "v1.4.2"


@pytest.mark.parametrize("binary", ["/bin/ls", *sorted(glob.glob("/usr/lib/*/libc.so.6"))[:1]])
def test_section_lookup_agrees_with_the_section_table(binary: str) -> None:
    # section() first rules names out by the section-name table's bytes; linkers share the tails of names there
    # (".rela.plt" holds ".plt"), so every real name, and a tail that is no section's name, must come out as a
    # search of the whole table says.
    with open(binary, "rb") as f:
        elf = ElfImage.open(f)
        names = [s.name for s in elf.sections]
        assert ".text" in names and elf.has_named_sections()
        for name in [*names, "text", ".go.buildinfo", ".dep-v0"]:
            assert elf.section(name) == next((s for s in elf.sections if s.name == name), None), name


def test_non_go_files() -> None:
    assert analyze_file("/bin/ls") is None
    assert analyze_bytes(b"#!/bin/sh\necho hello\n" + b"\n" * 100) is None
    assert analyze_bytes(b"\0" * 200) is None


@needs_go
def test_truncated_and_corrupt_go_binaries(go_builds: GoBuilds) -> None:
    data = go_builds.stripped.read_bytes()
    with pytest.raises(AnalyzerFailure):
        analyze_bytes(data[: len(data) // 2])  # section headers live at the end
    with pytest.raises(AnalyzerFailure):
        analyze_bytes(data[:100])
    broken = bytearray(data)
    struct.pack_into("<H", broken, 0x3C, 0xFFFF)  # e_shnum far beyond the file
    with pytest.raises(AnalyzerFailure):
        analyze_bytes(bytes(broken))
    with open(go_builds.stripped, "rb") as f:
        elf = ElfImage.open(f)
        section = elf.section(".go.buildinfo")
    assert section is not None
    broken = bytearray(data)
    broken[section.offset + 32 : section.offset + 42] = b"\xff" * 10  # version length varint runs away
    with pytest.raises(AnalyzerFailure):
        analyze_bytes(bytes(broken))
    broken = bytearray(data)
    varint_end = section.offset + 33 + broken[section.offset + 32]
    broken[varint_end : varint_end + 4] = b"\xff\xff\xff\x7f"  # modinfo of 256 MiB claimed
    with pytest.raises(AnalyzerFailure, match="module information"):
        analyze_bytes(bytes(broken))


# ---------------------------------------------------------------------------------------------------
# Go 1.13-1.17 pointer format, in a real ELF built with gcc


def _c_bytes(data: bytes) -> str:
    return "".join(f'"\\x{b:02x}"' for b in data)


OLD_MODINFO = (
    "path\texample.com/old/cmd/old\n"
    "mod\texample.com/old\tv0.9.1\th1:abc=\n"
    "dep\tgolang.org/x/text\tv0.3.7\th1:def=\n"
    "dep\tgithub.com/pkg/errors\tv0.8.0\n"
    "=>\tgithub.com/pkg/errors\tv0.9.1\th1:jkl=\n"
)


def build_old_format(tmp_path: Path, *, in_section: bool) -> bytes:
    sentinel_start = bytes(range(0x30, 0x40))
    sentinel_end = bytes(range(0xF0, 0x100))
    modinfo = sentinel_start + OLD_MODINFO.encode() + sentinel_end
    magic = _c_bytes(b"\xff Go buildinf:")
    if in_section:
        placement = '__attribute__((section(".go.buildinfo"), aligned(16), used))'
    else:  # in .data, with a Go build id note telling this is a Go binary
        placement = (
            '__attribute__((section(".note.go.buildid"), used)) static const char buildid[] = "x";\n'
            "__attribute__((aligned(16), used))"
        )
    source = f"""
#include <stdio.h>
struct gostring {{ const char *p; unsigned long n; }};
static const char ver[] = "go1.16.15";
static const char mod[] = {_c_bytes(modinfo)};
struct gostring vs = {{ver, sizeof(ver) - 1}};
struct gostring ms = {{mod, sizeof(mod) - 1}};
struct bi {{ char magic[14]; unsigned char ptrsize; unsigned char flags; void *v; void *m; }};
{placement} struct bi buildinfo = {{{magic}, 8, 0, &vs, &ms}};
int main(void) {{ printf("%p\\n", (void *)&buildinfo); return 0; }}
"""
    (tmp_path / "old.c").write_text(source)
    out = tmp_path / "old"
    subprocess.run(["gcc", "-O0", "-no-pie", "-o", str(out), str(tmp_path / "old.c")], check=True, timeout=120)
    return out.read_bytes()


@needs_gcc
@pytest.mark.parametrize("in_section", [True, False])
def test_old_pointer_format(tmp_path: Path, in_section: bool) -> None:
    data = build_old_format(tmp_path, in_section=in_section)
    with (tmp_path / "old").open("rb") as f:
        assert (ElfImage.open(f).section(".go.buildinfo") is not None) is in_section
    pkgs = packages(analyze_bytes(data))
    assert {n: p.version for n, p in pkgs.items()} == {
        "example.com/old": "v0.9.1",
        "golang.org/x/text": "v0.3.7",
        "github.com/pkg/errors": "v0.9.1",
        "stdlib": "v1.16.15",
    }
    assert pkgs["github.com/pkg/errors"].metadata["replaces"] == "github.com/pkg/errors@v0.8.0"
    assert pkgs["github.com/pkg/errors"].purl == "pkg:golang/github.com/pkg/errors@v0.9.1"
    assert pkgs["example.com/old"].metadata["mainPath"] == "example.com/old/cmd/old"
    if shutil.which("go") and in_section:
        assert_matches_reference(tmp_path / "old")


@needs_gcc
def test_old_format_dangling_pointer(tmp_path: Path) -> None:
    data = bytearray(build_old_format(tmp_path, in_section=True))
    with (tmp_path / "old").open("rb") as f:
        section = ElfImage.open(f).section(".go.buildinfo")
    assert section is not None
    struct.pack_into("<Q", data, section.offset + 16, 0xDEAD0000)
    with pytest.raises(AnalyzerFailure, match="not in the file"):
        analyze_bytes(bytes(data))


@pytest.fixture(scope="module")
def small_elf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    return build_old_format(tmp_path_factory.mktemp("oldelf"), in_section=True)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_elf_never_crashes(small_elf: bytes, data: st.DataObject) -> None:
    buf = bytearray(small_elf)
    # mutate mostly the headers, where the parser makes decisions
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.one_of(st.integers(0, 64), st.integers(0, len(buf) - 1)))
        buf[pos] = data.draw(st.integers(0, 255))
    try:
        facts = analyze_bytes(bytes(buf))
    except AnalyzerFailure:
        return
    assert facts is None or isinstance(facts, FileFacts)


# ---------------------------------------------------------------------------------------------------
# Units


@pytest.mark.parametrize(
    ("go", "expected"),
    [
        ("go1.19.8", "v1.19.8"),
        ("go1.20", "v1.20.0"),
        ("go1.21rc2", "v1.21.0-rc.2"),
        ("go1.9beta1", "v1.9.0-beta.1"),
        ("go1.22.1 X:boringcrypto", "v1.22.1"),
        ("devel go1.23-abcdef Tue Jan 1 00:00:00 2024", ""),
        ("", ""),
    ],
)
def test_stdlib_version(go: str, expected: str) -> None:
    assert stdlib_version(go) == expected


def test_modinfo_parsing_quoted_settings_and_unknown_main_version() -> None:
    text = (
        "path\texample.com/x\nmod\texample.com/x\t(devel)\t\n"
        "dep\tgolang.org/x/sys\tv0.1.0\th1:s=\n=>\t./sys\t\t\n"
        "dep\t\tv1\n"  # empty path: skipped
        "build\t-ldflags=\"-X 'main.Version=v2.0.0-rc.1' -s\"\n"
        'build\t"weird key"="a b"\n'
        "build\tCGO_ENABLED=1\nbuild\tvcs.revision=nothex\nbogus line\n"
    )
    info = parse_modinfo("go1.20.3", text)
    assert info.settings == {"-ldflags": "-X 'main.Version=v2.0.0-rc.1' -s", "weird key": "a b", "CGO_ENABLED": "1"} | {
        "vcs.revision": "nothex"
    }
    assert info.deps == [GoModule("golang.org/x/sys", "v0.1.0", "h1:s=", GoModule("./sys", "", ""))]
    pkgs = {p.name: p for p in buildinfo_packages(info, "bin/x")}
    assert pkgs["example.com/x"].version == "v2.0.0-rc.1"
    assert pkgs["golang.org/x/sys"].version == "v0.1.0"
    assert pkgs["stdlib"].version == "v1.20.3"

    bare = GoBuildInfo("go1.20.3", main=GoModule("example.com/x", "(devel)"))
    [main, _std] = buildinfo_packages(bare, "bin/x")
    assert (main.version, main.metadata["recordedVersion"], main.purl) == ("", "(devel)", "pkg:golang/example.com/x")
    gopath_mode = GoBuildInfo("go1.20.3", path="example.com/x/cmd", settings={"CGO_ENABLED": "0"})
    [std] = buildinfo_packages(gopath_mode, "bin/x")
    assert std.metadata["build:CGO_ENABLED"] == "0"
