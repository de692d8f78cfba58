"""libxcrypt through ctypes, cross-checked against openssl passwd and Debian's mkpasswd (whois)."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from hullscan.checks.crypt import (
    MAX_BCRYPT_COST,
    Crypt,
    algorithm_of,
    excessive_cost,
    is_weak_algorithm,
    system_crypt,
)

METHODS = [("$y$", "yescrypt"), ("$gy$", "gost-yescrypt"), ("$7$", "scrypt"), ("$2b$", "bcrypt"),
           ("$6$", "sha512crypt"), ("$5$", "sha256crypt"), ("$1$", "md5crypt"), ("_", "bsdicrypt"),
           ("$sha1$", "sha1crypt"), ("$md5", "sunmd5")]


@pytest.fixture(scope="module")
def c() -> Crypt:
    return system_crypt()


def test_is_libxcrypt(c: Crypt) -> None:
    assert c.is_libxcrypt


@pytest.mark.parametrize(("prefix", "name"), METHODS)
def test_roundtrip_every_method(c: Crypt, prefix: str, name: str) -> None:
    h = c.make("password123", prefix)
    assert algorithm_of(h) == name
    assert c.verify("password123", h)
    assert not c.verify("password124", h)
    assert c.supports(h)
    assert excessive_cost(h) is None


def test_descrypt(c: Crypt) -> None:
    h = c.hash("password", "ab")
    assert h is not None and len(h) == 13 and algorithm_of(h) == "descrypt" and is_weak_algorithm(h)
    assert c.verify("password", h)


def test_failure_is_none_not_garbage(c: Crypt) -> None:
    assert c.hash("x", "$9$nonsense") is None
    assert not c.supports("$9$nonsense")
    assert not c.supports("!")
    assert c.hash(b"a\0b", "$6$salt") is None


def test_weak_algorithms() -> None:
    assert is_weak_algorithm("$1$abc$def")
    assert is_weak_algorithm("_J9..abcd")
    assert not is_weak_algorithm("$6$abc$def")
    assert not is_weak_algorithm("$y$j9T$abc$def")
    assert not is_weak_algorithm("$2b$10$" + "a" * 53)


def test_excessive_costs_are_refused_before_hashing(c: Crypt) -> None:
    assert excessive_cost(c.gensalt("$y$", 11)) is not None  # 1 GiB per guess
    assert excessive_cost(c.gensalt("$y$", 5)) is None
    assert excessive_cost("$y$j9T.$salt") is not None  # unusual parameters
    assert excessive_cost(f"$2b${MAX_BCRYPT_COST + 1}$" + "a" * 22) is not None
    assert excessive_cost("$2b$31$" + "a" * 22) is not None
    assert excessive_cost("$6$rounds=999999999$salt") is not None
    assert excessive_cost("$6$rounds=5000$salt") is None
    assert excessive_cost("$5$rounds=99999999999999999999$salt") is not None
    assert excessive_cost("$sha1$999999999$salt$") is not None
    assert excessive_cost("_zzzzsalt") is not None  # bsdi count 2^24-1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize(("flag", "prefix"), [("-6", "$6$"), ("-5", "$5$"), ("-1", "$1$")])
def test_agrees_with_openssl_passwd(c: Crypt, flag: str, prefix: str) -> None:
    ours = c.make("Tr0ub4dor&3", prefix)
    salt = ours.split("$")[2]
    theirs = subprocess.run(["openssl", "passwd", flag, "-salt", salt, "Tr0ub4dor&3"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert theirs == ours
    fresh = subprocess.run(["openssl", "passwd", flag, "hunter2"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert c.verify("hunter2", fresh) and not c.verify("hunter3", fresh)


@pytest.mark.skipif(shutil.which("mkpasswd") is None, reason="mkpasswd (Debian's whois package) not installed")
@pytest.mark.parametrize("method", ["yescrypt", "bcrypt", "sha512crypt", "sha256crypt", "md5crypt", "descrypt"])
def test_agrees_with_mkpasswd(c: Crypt, method: str) -> None:
    out = subprocess.run(["mkpasswd", "-m", method, "s3cret-pass"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert algorithm_of(out) == method.replace("bcrypt-a", "bcrypt")
    assert c.verify("s3cret-pass"[:8] if method == "descrypt" else "s3cret-pass", out)
    assert not c.verify("x3cret-pass", out)  # (DES reads only 8 characters)


def test_threads_share_one_library_safely(c: Crypt) -> None:
    """Each thread has its own crypt_rn scratch area: concurrent results equal serial ones."""
    settings = [c.gensalt(p) for p in ("$6$", "$5$", "$1$", "$2b$")]
    expected = {(s, i): c.hash(f"pw{i}", s) for s in settings for i in range(40)}
    got: dict[tuple[str, int], str | None] = {}
    lock = threading.Lock()

    def work(offset: int) -> None:
        for s in settings:
            for i in range(offset, 40, 4):
                out = c.hash(f"pw{i}", s)
                with lock:
                    got[(s, i)] = out

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected
