"""Binaries installed without a package manager, identified by their own version strings and ELF notes.

The binaries are Debian's, copied out of their packages to where a Dockerfile that downloads or builds a runtime
puts it (/usr/local/bin, /opt): there no package database owns them, so only their contents can tell what they
are. The expected version is the upstream version the Debian package says it holds; nothing is hard-coded.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from tests.analyzers.debs import Debs, copy_file, scan_root

from hullscan.analyzers.binaries import BinaryAnalyzer
from hullscan.analyzers.binsigs import SIGNATURES, may_identify
from hullscan.model import FileEntry, FileFacts, ImageFacts, OSInfo, Package
from hullscan.vulndb.matcher import match_image
from hullscan.vulndb.store import Store, build_from_paths

pytestmark = pytest.mark.slow
ANALYZER = BinaryAnalyzer()
FIXTURES = Path(__file__).parent.parent / "fixtures" / "inventory"

# (Debian package, file inside it, product reported). One row per runtime or server; several files per product
# where the program also ships as a library (libnode, libpython, libcrypto, libcurl).
CASES = [
    ("libnode108", "usr/lib/x86_64-linux-gnu/libnode.so.108", "node"),
    ("python3.11-minimal", "usr/bin/python3.11", "python"),
    ("libpython3.11", "usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "python"),
    ("redis-tools", "usr/bin/redis-check-rdb", "redis"),
    ("postgresql-15", "usr/lib/postgresql/15/bin/postgres", "postgresql"),
    ("nginx", "usr/sbin/nginx", "nginx"),
    ("apache2-bin", "usr/sbin/apache2", "httpd"),
    ("busybox-static", "bin/busybox", "busybox"),
    ("openssl", "usr/bin/openssl", "openssl"),
    ("libssl3", "usr/lib/x86_64-linux-gnu/libcrypto.so.3", "openssl"),
    ("openjdk-17-jre-headless", "usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", "openjdk"),
    ("php8.2-cli", "usr/bin/php8.2", "php"),
    ("php8.2-fpm", "usr/sbin/php-fpm8.2", "php"),
    ("libruby3.1", "usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2", "ruby"),
    ("perl-base", "usr/bin/perl", "perl"),
    ("curl", "usr/bin/curl", "curl"),
    ("libcurl4", "usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0", "curl"),
    ("haproxy", "usr/sbin/haproxy", "haproxy"),
    ("memcached", "usr/bin/memcached", "memcached"),
    ("mariadb-server-core", "usr/sbin/mariadbd", "mariadb"),
    ("bash", "bin/bash", "bash"),
    ("git", "usr/bin/git", "git"),
    ("libsqlite3-0", "usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6", "sqlite"),
    ("lighttpd", "usr/sbin/lighttpd", "lighttpd"),
    ("varnish", "usr/sbin/varnishd", "varnish"),
    ("squid", "usr/sbin/squid", "squid"),
    ("xz-utils", "usr/bin/xz", "xz"),
    ("zstd", "usr/bin/zstd", "zstd"),
    ("openssh-server", "usr/sbin/sshd", "openssh"),
    ("openssh-client", "usr/bin/ssh", "openssh"),
    ("exim4-daemon-light", "usr/sbin/exim4", "exim"),
]


def analyze(path: str, src: Path) -> FileFacts | None:
    data = src.read_bytes()
    entry = FileEntry(path, "f", len(data), 0o755 if "/lib" not in path else 0o644)
    assert ANALYZER.claims(path, entry), path
    return ANALYZER.analyze(path, entry, io.BytesIO(data))


@pytest.mark.parametrize(("deb", "inside", "product"), CASES, ids=[c[1].rsplit("/", 1)[-1] for c in CASES])
def test_identifies_the_binary_outside_any_package_database(debs: Debs, deb: str, inside: str,
                                                            product: str) -> None:
    src = debs.unpack(deb) / inside
    where = "opt/runtime/lib/" + src.name if src.name.startswith("lib") else "usr/local/bin/" + src.name
    facts = analyze(where, src)
    assert facts is not None
    (pkg,) = facts.packages
    assert (pkg.name, pkg.version) == (product, debs.upstream_version(deb))
    assert pkg.method == "binary-signature" and pkg.path == where and pkg.ecosystem == "binary"
    assert pkg.purl == f"pkg:generic/{product}@{pkg.version}"
    assert pkg.cpe.startswith("cpe:2.3:a:") and f":{pkg.version}:" in pkg.cpe
    assert pkg.metadata["signature"]  # the text the version was read from, for the user to judge


def test_at_least_25_runtimes_and_servers_are_covered() -> None:
    tested = {product for _deb, _inside, product in CASES}
    assert len({s.product for s in SIGNATURES}) >= 25
    assert {s.product for s in SIGNATURES} <= tested  # every signature is proven on a real binary above


def test_a_jdk_release_file_names_the_runtime(debs: Debs) -> None:
    home = debs.unpack("openjdk-17-jre-headless") / "usr/lib/jvm/java-17-openjdk-amd64"
    facts = analyze("opt/java/openjdk/release", home / "release")
    assert facts is not None
    (pkg,) = facts.packages
    assert (pkg.name, pkg.version, pkg.method) == ("openjdk", debs.upstream_version("openjdk-17-jre-headless"),
                                                   "release-file")


def test_an_elf_package_note_names_its_package(debs: Debs) -> None:
    lib = next((debs.unpack("libsystemd0") / "usr/lib/x86_64-linux-gnu").glob("libsystemd.so.0.*"))
    facts = analyze("opt/app/lib/" + lib.name, lib)
    assert facts is not None
    (pkg,) = facts.packages
    assert (pkg.name, pkg.version, pkg.ecosystem, pkg.method) == ("systemd", debs.version("libsystemd0"), "deb",
                                                                  "elf-note")
    assert pkg.purl.startswith("pkg:deb/debian/systemd@")


def test_go_programs_built_without_modules_are_named_by_their_ldflags(debs: Debs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_file(debs.unpack("kubernetes-client") / "usr/bin/kubectl", root, "usr/local/bin/kubectl")
    facts = scan_root(root, tmp_path / "work")
    main = next(p for p in facts.packages if p.metadata.get("mainModule") == "true")
    assert (main.name, main.version) == ("k8s.io/kubernetes", "v" + debs.upstream_version("kubernetes-client"))
    assert main.metadata["versionSource"] == "ldflags" and main.method == "build-info"


def test_claims_look_at_names_and_modes_only() -> None:
    def claims(path: str, mode: int = 0o755, size: int = 4096) -> bool:
        return ANALYZER.claims(path, FileEntry(path, "f", size, mode))

    assert claims("usr/local/bin/anything")  # any executable: it may carry an ELF package note
    assert claims("usr/lib/libfoo.so.1", 0o644)  # a shared library small enough to stay in memory
    assert not claims("usr/lib/libfoo.so.1", 0o644, 64 << 20)  # a big one only when a signature names it
    assert claims("opt/node/lib/libnode.so.108", 0o644, 64 << 20)
    assert claims("opt/java/openjdk/release", 0o644)
    assert not claims("etc/release", 0o644)
    assert not claims("usr/share/doc/redis/README", 0o644)
    assert may_identify("usr/bin/redis-server") and not may_identify("usr/bin/ls")


def test_a_named_binary_without_a_version_string_is_a_note(debs: Debs) -> None:
    src = debs.unpack("xz-utils") / "usr/bin/xz"
    facts = analyze("usr/local/bin/redis-server", src)  # an xz binary under redis's name
    assert facts is not None and facts.packages == []
    assert [n["code"] for n in facts.hints["notes"]] == ["BINARY_UNIDENTIFIED"]


# -- ownership: nothing reported twice ------------------------------------------------------------------------


def test_files_a_package_database_owns_are_not_reported_again(debs: Debs, tmp_path: Path) -> None:
    """dpkg installs redis, busybox, sqlite and systemd's library; the same redis is also copied to
    /usr/local/bin. Only the copy is a binary package; the rest are reported once, by dpkg."""
    root = tmp_path / "root"
    debs.install(root, ["redis-tools", "busybox-static", "libsqlite3-0", "libsystemd0"])
    copy_file(root / "usr/bin/redis-check-rdb", root, "usr/local/bin/redis-server")
    facts = scan_root(root, tmp_path / "work")
    deb = {p.name for p in facts.packages if p.ecosystem == "deb"}
    assert {"redis-tools", "busybox-static", "libsqlite3-0", "libsystemd0"} <= deb
    binaries = [(p.name, p.path) for p in facts.packages if p.method in ("binary-signature", "elf-note")]
    assert binaries == [("redis", "usr/local/bin/redis-server")]
    assert all(p.method == "package-database" for p in facts.packages if p.ecosystem == "deb")


def test_a_distroless_status_d_entry_owns_its_files(debs: Debs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "dpkg/distroless", root)
    lib = debs.unpack("libsqlite3-0") / "usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6"
    # where the entry's md5sums say the library is (the fixture is an arm64 image's)
    copy_file(lib, root, "usr/lib/aarch64-linux-gnu/libsqlite3.so.0.8.6")
    copy_file(lib, root, "usr/local/lib/libsqlite3.so.0.8.6")  # and a copy no database owns
    facts = scan_root(root, tmp_path / "work")
    assert [(p.name, p.ecosystem) for p in facts.packages if p.name.startswith("libsqlite")] == [("libsqlite3-0",
                                                                                                 "deb")]
    assert [p.path for p in facts.packages if p.ecosystem == "binary"] == ["usr/local/lib/libsqlite3.so.0.8.6"]


# -- vulnerability matching -----------------------------------------------------------------------------------


def test_a_binary_is_matched_against_its_products_advisories(debs: Debs, tmp_path: Path) -> None:
    src = debs.unpack("redis-tools") / "usr/bin/redis-check-rdb"
    facts = analyze("usr/local/bin/redis-server", src)
    assert facts is not None
    (redis,) = facts.packages
    busybox = Package("busybox", "1.35.0", "binary", method="binary-signature")  # a product OSV has no data for
    db = tmp_path / "db.sqlite"
    build_from_paths(db, [FIXTURES / "bitnami"])
    with Store.open(db) as store:
        result = match_image(ImageFacts("img", os=OSInfo("debian", "12"), packages=[redis, busybox]), store)
    # BIT-redis-2024-31449 (fixed in 7.0.16 and later branches) applies to 7.0.15; BIT-redis-2026-25589 is 8.x only
    assert redis.version == debs.upstream_version("redis-tools") == "7.0.15", "the fixture records assume 7.0.15"
    assert {(f.id, f.package.name) for f in result.findings} == {("CVE-2024-31449", "redis")}
    assert result.checked == {"Bitnami": 1}
    assert any("busybox" in n.message for n in result.notes)


def test_an_rpm_database_owns_its_files(debs: Debs, tmp_path: Path) -> None:
    """A CBL-Mariner rpm database (tests/fixtures/rpmdb) lists /usr/bin/openssl: an openssl binary there is the
    rpm's; the same binary in /usr/local/bin is not."""
    root = tmp_path / "root"
    copy_file(FIXTURES.parent / "rpmdb/sqlite-cbl-mariner-2.0/rpmdb.sqlite", root, "var/lib/rpm/rpmdb.sqlite")
    openssl = debs.unpack("openssl") / "usr/bin/openssl"
    copy_file(openssl, root, "usr/bin/openssl")
    copy_file(openssl, root, "usr/local/bin/openssl")
    facts = scan_root(root, tmp_path / "work")
    assert "openssl" in {p.name for p in facts.packages if p.ecosystem == "rpm"}
    assert [p.path for p in facts.packages if p.ecosystem == "binary"] == ["usr/local/bin/openssl"]
