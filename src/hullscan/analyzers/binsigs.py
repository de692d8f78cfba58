"""Version signatures of runtimes and servers installed without a package manager.

Each signature names the files it applies to (base names, or base-name prefixes for versioned names and
libraries) and the version strings the program carries for its own `--version` output, HTTP `Server` header or
build identifier. They were written from the strings of the real binaries (Debian's packages, official builds)
the tests identify, in the manner of Syft's binary classifiers. A pattern is only tried around an occurrence of
its literal anchor (a `bytes.find`, fast even on a 100 MB binary), never over the whole file.

The package reported is generic (``pkg:generic/<product>@<version>``) with the product's CPE; `advisory` is the
product's name in OSV's "Bitnami" ecosystem, whose records give upstream version ranges for these products
(the vulnerability matcher queries it for ``binary`` packages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    product: str
    cpe: str  # vendor:product, as NVD names it
    names: frozenset[str] = frozenset()  # exact base names
    prefixes: tuple[str, ...] = ()  # base-name prefixes ("libpython", "php8.")
    # (anchor, pattern): the pattern is searched within `_WINDOW` bytes around each occurrence of the anchor.
    patterns: tuple[tuple[bytes, re.Pattern[bytes]], ...] = ()
    advisory: str = ""  # the product's name in OSV's Bitnami ecosystem, "" when it has none there
    # A version template from the file name ("python3.11" -> the version must start with "3.11.").
    name_version: re.Pattern[str] | None = None

    def version_prefix(self, base: str) -> str:
        """What the version must start with, from a versioned file name ("python3.11" -> "3.11.")."""
        m = self.name_version.search(base) if self.name_version else None
        return m.group(1) + "." if m else ""

    def applies(self, base: str) -> bool:
        return base in self.names or (bool(self.prefixes) and base.startswith(self.prefixes))


def _p(anchor: bytes, pattern: bytes) -> tuple[bytes, re.Pattern[bytes]]:
    return anchor, re.compile(pattern, re.DOTALL)


SIGNATURES: tuple[Signature, ...] = (
    Signature("node", "nodejs:node.js", frozenset({"node", "nodejs"}), ("libnode.so",),
              (_p(b"node.js/v", rb"node\.js/v(\d+\.\d+\.\d+)"),), advisory="node"),
    Signature("python", "python:python", frozenset({"python", "python2", "python3"}), ("python2.", "python3.",
              "libpython2.", "libpython3."),
              # PY_VERSION, NUL-delimited in the interpreter and in libpython ("\x003.11.2\x00")
              (_p(b"\x003.", rb"\x00(3\.\d{1,2}\.\d{1,2}(?:(?:a|b|rc)\d{1,2})?\+?)\x00"),
               _p(b"\x002.", rb"\x00(2\.\d\.\d{1,2}(?:(?:a|b|rc)\d{1,2})?\+?)\x00")),
              advisory="python", name_version=re.compile(r"python(\d+(?:\.\d+)?)")),
    Signature("redis", "redis:redis", frozenset({"redis-server", "redis-check-rdb", "redis-check-aof",
              "redis-sentinel"}), (),
              # REDIS_BUILD_ID: the version, the build host (buildkit's sandbox, a container id, or none), then
              # the build time in nanoseconds; "Redis version" in releases before 3.
              (_p(b"000000000\x00", rb"(?<![\d.])(\d+\.\d+\.\d+)(?:buildkitsandbox-|[0-9a-f]{12}-)?\d{19}\x00"),
               _p(b"Redis version ", rb"Redis version (\d+\.\d+\.\d+)")), advisory="redis"),
    Signature("postgresql", "postgresql:postgresql", frozenset({"postgres", "postmaster"}), (),
              (_p(b"PostgreSQL ", rb"[\x00?]PostgreSQL (\d+(?:\.\d+){0,2}(?:alpha\d|beta\d|rc\d)?)"),),
              advisory="postgresql"),
    Signature("nginx", "f5:nginx", frozenset({"nginx"}), (),
              (_p(b"nginx/", rb"nginx/(\d+\.\d+\.\d+)"),), advisory="nginx"),
    Signature("httpd", "apache:http_server", frozenset({"httpd", "apache2"}), (),
              (_p(b"Apache/", rb"\x00Apache/(\d+\.\d+\.\d+)\x00"),), advisory="apache"),
    Signature("busybox", "busybox:busybox", frozenset({"busybox"}), (),
              (_p(b"BusyBox v", rb"BusyBox v(\d+\.\d+\.\d+)"),)),
    Signature("openssl", "openssl:openssl", frozenset({"openssl"}), ("libcrypto.so",),
              (_p(b"OpenSSL ", rb"\x00OpenSSL (\d+\.\d+\.\d+[a-z]{0,2})[ \x00]"),)),
    Signature("openjdk", "oracle:openjdk", frozenset({"libjvm.so"}), (),
              # "OpenJDK 64-Bit Server VM (17.0.9+9-Debian-1deb12u1) for linux-amd64 JRE (17.0.9+9-...)"
              (_p(b"JRE (", rb"JRE \((1\.\d\.\d_\d+|\d+(?:\.\d+){0,3})[-+)_]"),), advisory="java"),
    Signature("php", "php:php", frozenset({"php", "php-fpm", "php-cgi"}), ("php5", "php7", "php8", "php-fpm",
              "php-cgi", "libphp"),
              (_p(b"X-Powered-By: PHP/", rb"X-Powered-By: PHP/(\d+\.\d+\.\d+(?:(?:alpha|beta|RC)\d+)?)"),),
              advisory="php"),
    Signature("ruby", "ruby-lang:ruby", frozenset({"ruby"}), ("ruby2.", "ruby3.", "libruby"),
              (_p(b"ruby ", rb"\x00ruby (\d+\.\d+\.\d+)(?:p\d+|preview\d*|rc\d*|dev)? \("),), advisory="ruby"),
    Signature("perl", "perl:perl", frozenset({"perl"}), ("perl5.",),
              (_p(b"\x00v5.", rb"\x00v(5\.\d+\.\d+)\x00"),
               _p(b"/lib/perl5/", rb"/lib/perl5/(5\.\d+\.\d+)"))),
    Signature("curl", "haxx:curl", frozenset({"curl"}), ("libcurl.so", "libcurl-gnutls.so"),
              (_p(b"curl/", rb"\x00(?:lib)?curl/(\d+\.\d+\.\d+)\x00"),)),
    Signature("haproxy", "haproxy:haproxy", frozenset({"haproxy"}), (),
              (_p(b", released 20", rb" version (\d+\.\d+(?:\.\d+|-dev\d+))[^\x00,]{0,40}, released 20"),
               _p(b"HA-Proxy version ", rb"HA-Proxy version (\d+\.\d+\.\d+)")), advisory="haproxy"),
    Signature("memcached", "memcached:memcached", frozenset({"memcached"}), (),
              (_p(b"memcached ", rb"\x00memcached (\d+\.\d+\.\d+)[\x00\n]"),), advisory="memcached"),
    Signature("mariadb", "mariadb:mariadb", frozenset({"mariadbd", "mysqld", "mariadb", "mysql"}), (),
              (_p(b"-MariaDB", rb"\x00(\d+\.\d+\.\d+)-MariaDB"),), advisory="mariadb"),
    Signature("bash", "gnu:bash", frozenset({"bash"}), (),
              (_p(b"Bash version ", rb"Bash version (\d+\.\d+(?:\.\d+)?)\("),)),
    Signature("git", "git-scm:git", frozenset({"git"}), (),
              (_p(b"git/", rb"git/(\d+\.\d+\.\d+)\x00"),), advisory="git"),
    Signature("sqlite", "sqlite:sqlite", frozenset(), ("libsqlite3.so",),
              # sqlite3_version[], NUL-delimited, next to the source id's date in the library's data
              (_p(b"\x003.", rb"\x00(3\.\d{1,2}\.\d{1,2})\x00"),), advisory="sqlite"),
    Signature("lighttpd", "lighttpd:lighttpd", frozenset({"lighttpd"}), (),
              (_p(b"lighttpd/", rb"\x00lighttpd/(\d+\.\d+\.\d+)\x00"),)),
    Signature("varnish", "varnish_cache_project:varnish_cache", frozenset({"varnishd"}), (),
              (_p(b"varnish-", rb"varnish-(\d+\.\d+\.\d+) revision"),), advisory="varnish"),
    Signature("squid", "squid-cache:squid", frozenset({"squid"}), (),
              (_p(b"squid/", rb"\x00squid/(\d+\.\d+(?:\.\d+)?)\x00"),)),
    Signature("xz", "tukaani:xz", frozenset({"xz"}), (),
              (_p(b"xz (XZ Utils) ", rb"xz \(XZ Utils\) (\d+\.\d+\.\d+)"),)),
    Signature("zstd", "facebook:zstandard", frozenset({"zstd"}), (),
              (_p(b"\x00v1.", rb"\x00v(1\.\d+\.\d+)\x00"),)),
    Signature("openssh", "openbsd:openssh", frozenset({"sshd", "ssh", "sshd-session"}), (),
              (_p(b"OpenSSH_", rb"\x00OpenSSH_(\d+\.\d+p\d+)[ \x00]"),)),
    Signature("exim", "exim:exim", frozenset({"exim", "exim4"}), (),
              (_p(b"<<eximversion>>", rb"\x00(\d+\.\d+(?:\.\d+)?)\x00<<eximversion>>"),)),
)

WINDOW = 512  # bytes either side of an anchor that a pattern may span
MAX_ANCHORS = 200  # occurrences of one anchor tried per file (a NUL anchor occurs everywhere)

# Where a JDK or JRE describes itself: <java home>/release ("JAVA_VERSION=...").
_JAVA_HOME_HINTS = ("jdk", "jre", "java", "openjdk", "zulu", "corretto", "graalvm", "temurin", "semeru")


_NAMES = frozenset(n for s in SIGNATURES for n in s.names)
_PREFIXES = tuple(p for s in SIGNATURES for p in s.prefixes)


def signatures_for(path: str) -> list[Signature]:
    base = path.rsplit("/", 1)[-1]
    if base not in _NAMES and not base.startswith(_PREFIXES):
        return []  # the common case, decided with one set look-up and one startswith
    return [s for s in SIGNATURES if s.applies(base)]


def is_java_release(path: str) -> bool:
    """A JDK's `release` file: `<java home>/release`, the home's name saying it is Java."""
    if not path.endswith("/release"):
        return False
    home = path[: -len("/release")].rsplit("/", 1)[-1].lower()
    return any(h in home for h in _JAVA_HOME_HINTS)


def may_identify(path: str) -> bool:
    """Whether a binary classifier may identify the file at `path` (by its name alone): a signature's file, a
    JDK's release file, or a .NET assembly (read for its version resource)."""
    return bool(signatures_for(path)) or is_java_release(path) or path.lower().endswith((".dll", ".exe"))
