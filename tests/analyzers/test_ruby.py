"""Ruby gemspec analyzer: real installed specifications checked against Ruby itself.

Ruby is only ever run here, as the oracle; the analyzer reads gemspecs as text.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.support.budget import python_lines

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.ruby import RubyGemspecAnalyzer, string_literals
from hullscan.licenses import normalize_all
from hullscan.model import FileEntry, Package

ANALYZER = RubyGemspecAnalyzer()

needs_ruby = pytest.mark.skipif(
    shutil.which("ruby") is None or shutil.which("gem") is None,
    reason="ruby is not installed (Debian: apt-get install -y ruby)",
)

# Prints every installed gem as Ruby sees it, one JSON object a line.
DUMP_INSTALLED = """
require "json"
Gem::Specification.each do |s|
  puts JSON.dump({"name" => s.name, "version" => s.version.to_s, "platform" => s.platform.to_s,
                  "licenses" => s.licenses, "file" => s.loaded_from, "default" => s.default_gem?})
end
"""
# Loads each gemspec file named on the command line.
DUMP_FILES = """
require "json"
ARGV.each do |f|
  s = Gem::Specification.load(f)
  puts JSON.dump({"file" => f, "name" => s.name, "version" => s.version.to_s,
                  "platform" => s.platform.to_s, "licenses" => s.licenses})
end
"""


def ruby(script: str, *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(["ruby", "-e", script, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def entry(path: str, size: int = 0) -> FileEntry:
    return FileEntry(path=path, type="f", size=size)


def analyze_file(path: Path) -> Package:
    rel = path.as_posix().lstrip("/")
    e = entry(rel, path.stat().st_size)
    assert ANALYZER.claims(rel, e), rel
    with path.open("rb") as fh:
        facts = ANALYZER.analyze(rel, e, fh)
    assert facts is not None
    (pkg,) = facts.packages
    return pkg


def analyze_text(text: str, path: str = "usr/lib/ruby/gems/3.1.0/specifications/x-1.0.gemspec") -> Package:
    data = text.encode()
    facts = ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))
    assert facts is not None
    (pkg,) = facts.packages
    return pkg


# ---- real data -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def installed_gems() -> list[dict[str, Any]]:
    gems = [g for g in ruby(DUMP_INSTALLED) if g["file"] and "/specifications/" in g["file"]]
    if not gems:
        pytest.skip("no installed gem specifications on this machine")
    return gems


@needs_ruby
def test_installed_gemspecs_match_ruby(installed_gems: list[dict[str, Any]]) -> None:
    for gem in installed_gems:
        pkg = analyze_file(Path(gem["file"]))
        assert (pkg.name, pkg.version) == (gem["name"], gem["version"]), gem["file"]
        assert pkg.licenses == normalize_all(gem["licenses"]), gem["file"]
        assert pkg.metadata.get("platform", "ruby") == gem["platform"]
        assert (pkg.metadata.get("default_gem") == "true") == gem["default"], gem["file"]
        assert pkg.ecosystem == "gem"
        assert pkg.purl == f"pkg:gem/{gem['name']}@{gem['version']}"
        assert pkg.path == gem["file"].lstrip("/")


@needs_ruby
def test_installed_gems_match_gem_list(installed_gems: list[dict[str, Any]]) -> None:
    """Every gem `gem list --local` shows is found from the specification directories of GEM_PATH."""
    listing = subprocess.run(["gem", "list", "--local"], capture_output=True, text=True, timeout=300).stdout
    expected = set()
    for line in listing.splitlines():
        name, _, versions = line.partition(" (")
        for version in versions.rstrip(")").split(","):
            expected.add((name.strip(), version.replace("default:", "").strip()))
    gem_path = subprocess.run(["gem", "env", "gempath"], capture_output=True, text=True, timeout=300).stdout
    found = set()
    for base in gem_path.strip().split(":"):
        for spec in sorted(Path(base).glob("specifications/*.gemspec")) + sorted(
            Path(base).glob("specifications/default/*.gemspec")
        ):
            pkg = analyze_file(spec)
            found.add((pkg.name, pkg.version))
    assert expected and found == expected


def test_debian_style_gemspec() -> None:
    """As RubyGems' to_ruby writes it (copied from Debian's ruby3.1 net-telnet specification)."""
    text = """\
# -*- encoding: utf-8 -*-
# stub: net-telnet 0.2.0 ruby lib

Gem::Specification.new do |s|
  s.name = "net-telnet".freeze
  s.version = "0.2.0"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "name" => "not this one" } if s.respond_to? :metadata=
  s.require_paths = ["lib".freeze]
  s.authors = ["SHIBATA Hiroshi".freeze]
  s.licenses = ["ruby".freeze]
  s.rubygems_version = "3.3.15".freeze
  s.summary = "Provides telnet client functionality.".freeze

  if s.respond_to? :add_runtime_dependency then
    s.add_development_dependency(%q<bundler>.freeze, [">= 0"])
  end
end
"""
    pkg = analyze_text(text, "usr/share/rubygems-integration/all/specifications/net-telnet-0.2.0.gemspec")
    assert (pkg.name, pkg.version, pkg.licenses, pkg.metadata) == ("net-telnet", "0.2.0", ["Ruby"], {})
    assert pkg.purl == "pkg:gem/net-telnet@0.2.0"


# ---- other writers' styles, checked against Ruby loading the same file ------------------------------

STYLES: dict[str, str] = {
    # RubyGems 1.x wrote %q{} literals and Gem::Version objects.
    "old-1.0.0": """\
Gem::Specification.new do |s|
  s.name = %q{old}
  s.version = Gem::Version.new("1.0.0")
  s.license = %q{MIT}
end
""",
    "quotes-2.1.0.rc1": """\
Gem::Specification.new do |spec|
  spec.name    = 'quotes'
  spec.version = '2.1.0.rc1' # a prerelease
  spec.licenses = %w[MIT Apache-2.0]
end
""",
    "multi-0.3": """\
Gem::Specification.new do |s|
  s.name = %Q(multi)
  s.version = "0.3"
  s.licenses = [
    "BSD-2-Clause",
    "Ruby"
  ]
end
""",
    "nokogiri-1.13.10-x86_64-linux": """\
# stub: nokogiri 1.13.10 x86_64-linux lib
Gem::Specification.new do |s|
  s.name = "nokogiri".freeze
  s.version = "1.13.10"
  s.platform = "x86_64-linux".freeze
  s.licenses = ["MIT".freeze]
end
""",
    "esc-1.0": """\
Gem::Specification.new do |s|
  s.name = "esc".freeze
  s.version = "1.0"
  s.licenses = ["GPL-2.0-or-later".freeze, 'Nonstandard \\'quoted\\''.freeze, "Also \\"this\\"".freeze]
end
""",
}


@pytest.fixture(scope="session")
def style_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    spec_dir = tmp_path_factory.mktemp("gems") / "specifications"
    spec_dir.mkdir()
    files = {}
    for stem, text in STYLES.items():
        files[stem] = spec_dir / f"{stem}.gemspec"
        files[stem].write_text(text)
    return files


@needs_ruby
def test_other_styles_match_ruby(style_files: dict[str, Path]) -> None:
    oracle = {Path(g["file"]).stem: g for g in ruby(DUMP_FILES, *map(str, style_files.values()))}
    assert set(oracle) == set(STYLES)
    for stem, path in style_files.items():
        pkg = analyze_file(path)
        gem = oracle[stem]
        assert (pkg.name, pkg.version) == (gem["name"], gem["version"]), stem
        assert pkg.licenses == normalize_all(gem["licenses"]), stem
        assert pkg.metadata.get("platform", "ruby") == gem["platform"], stem


def test_version_from_stub_then_file_name() -> None:
    dynamic = """\
# stub: dyn 4.5.6 ruby lib
Gem::Specification.new do |s|
  s.name = "dyn"
  s.version = Dyn::VERSION
end
"""
    assert analyze_text(dynamic).version == "4.5.6"
    no_stub = dynamic.split("\n", 1)[1]
    path = "var/lib/gems/3.1.0/specifications/dyn-7.8.9-x86_64-linux.gemspec"
    assert (
        analyze_text(no_stub.replace('s.name = "dyn"', 's.name = "dyn"\n  s.platform = "x86_64-linux"'), path).version
        == "7.8.9"
    )
    assert analyze_text(no_stub, "var/lib/gems/3.1.0/specifications/dyn-7.8.9.gemspec").version == "7.8.9"
    interpolated = 'Gem::Specification.new do |s|\n  s.name = "dyn"\n  s.version = "#{V}"\nend\n'
    assert analyze_text(interpolated, "specifications/dyn-1.2.gemspec").version == "1.2"


# ---- claims ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", True),
        ("usr/share/rubygems-integration/all/specifications/webrick-1.8.1.gemspec", True),
        ("app/vendor/bundle/ruby/3.2.0/specifications/rails-7.0.0.gemspec", True),
        ("specifications/x-1.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/gems/rake-13.0.6/rake.gemspec", False),  # the gem's own source
        ("app/myapp.gemspec", False),
        ("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec.bak", False),
        ("usr/lib/ruby/gems/3.1.0/specifications/x/y.gemspec", False),
        ("usr/lib/ruby/gems/3.1.0/default/x.gemspec", False),
        ("x.gemspec", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert ANALYZER.claims(path, entry(path)) is claimed


def test_claims_regular_files_only_and_cheap() -> None:
    path = "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec"
    for kind in "dlhcbp":
        assert not ANALYZER.claims(path, FileEntry(path, kind))
    paths = [f"usr/lib/ruby/gems/3.1.0/gems/x{i}/lib/x{i}.rb" for i in range(2_000)]
    entries = [entry(p) for p in paths]
    claimed, lines = python_lines(lambda: [ANALYZER.claims(p, e) for p, e in zip(paths, entries, strict=True)])
    assert not any(claimed)
    assert lines <= 10 * len(paths)  # a few lines of Python per file, counted rather than timed (3 today)


# ---- literal reader and hostile input --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "literals"),
    [
        ('"a".freeze, "b"', ["a", "b"]),
        ("%q{a{b}c} %q<x> %q(y) %q[z] %q|w|", ["a{b}c", "x", "y", "z", "w"]),
        ("%w[MIT  Ruby] %W(a b)", ["MIT", "Ruby", "a", "b"]),
        ('"x" # "comment"', ["x"]),
        ('"a\\"b\\\\c\\n"', ['a"b\\c\n']),
        ("'it''s'", ["it", "s"]),
        ('"#{interp}" "ok"', [None, "ok"]),
        ('"unterminated', [None]),
        ("x % 2, %", []),
        ("%q", []),
    ],
)
def test_string_literals(text: str, literals: list[str | None]) -> None:
    assert string_literals(text) == literals


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Gem::Specification.new do |s|\nend\n",
        b'Gem::Specification.new do |s|\n  s.version = "1.0"\nend\n',  # no name anywhere
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 100,
        b"s.name = Foo::NAME\ns.version = Foo::VERSION\n",
        b's.name = "has space"\ns.version = "1.0"\n',
        b's.name = "' + b"a" * 1_000_000 + b'"\ns.version = "1"\n',
    ],
)
def test_malformed(data: bytes) -> None:
    path = "specifications/zzz.gemspec"
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))


@pytest.mark.timeout(120)  # a hang guard, not a speed test: each case takes milliseconds
def test_hostile_input_is_bounded() -> None:
    path = "specifications/evil-1.0.gemspec"
    cases = [
        b's.name = "evil"\ns.licenses = [' + b'"x", ' * 200_000 + b"]\n",
        b's.name = "evil"\ns.licenses = [\n' + b'"x",\n' * 200_000,  # unterminated multi-line array
        b's.name = "evil"\n' + b's.version = "' + b"\\" * 500_000 + b'"\n',
        b's.name = "evil"\n' + b"%q{" * 300_000,
        b's.name = "evil"\n' + b"s.name = x\n" * 300_000,
    ]
    for data in cases:
        facts = ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))
        assert facts is not None
        (pkg,) = facts.packages
        assert (pkg.name, pkg.version) == ("evil", "1.0")
        assert len(pkg.licenses) <= 100


def test_too_large() -> None:
    data = b" " * (ANALYZER.max_size + 1)
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze("specifications/x-1.gemspec", entry("x", len(data)), io.BytesIO(data))
