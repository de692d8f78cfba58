"""The system's crypt(3) through libxcrypt, by ctypes.

Python's `crypt` module is deprecated (PEP 594, gone in 3.13) and wraps the non-reentrant crypt(3).
libxcrypt (libcrypt.so.1 on Debian, Ubuntu, Fedora, Alpine's libxcrypt package) offers `crypt_rn`, which
takes the caller's scratch area: with one area per thread it is reentrant, and ctypes releases the GIL
for the duration of every foreign call, so threads hash in parallel.

libxcrypt hashes every method a Linux shadow file uses: yescrypt ($y$), gost-yescrypt ($gy$), scrypt
($7$), bcrypt ($2b$ $2a$ $2y$), sha512crypt ($6$), sha256crypt ($5$), md5crypt ($1$), sha1crypt ($sha1$),
Sun MD5 ($md5), BSDi extended DES (_) and traditional DES (13 characters).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hmac
import re
import threading
from functools import lru_cache

# sizeof(struct crypt_data) in libxcrypt is 32768; glibc's old libcrypt used 131232. The larger area
# serves both (crypt_r only reads `initialized`, which a zeroed area sets to 0).
_LIBXCRYPT_DATA_SIZE = 32768
_CRYPT_R_DATA_SIZE = 131232 + 4096
_GENSALT_OUTPUT = 192  # CRYPT_GENSALT_OUTPUT_SIZE

# crypt_checksalt results
CRYPT_SALT_OK = 0
CRYPT_SALT_INVALID = 1
CRYPT_SALT_METHOD_DISABLED = 2
CRYPT_SALT_METHOD_LEGACY = 3
CRYPT_SALT_TOO_CHEAP = 4

_DES_CHARS = re.compile(r"^[./0-9A-Za-z]{13}$")

# prefix -> (name used in reports, strength); strength is "weak" for methods a modern system must not use.
_METHODS: tuple[tuple[str, str, str], ...] = (
    ("$y$", "yescrypt", "strong"),
    ("$gy$", "gost-yescrypt", "strong"),
    ("$7$", "scrypt", "strong"),
    ("$2b$", "bcrypt", "strong"),
    ("$2y$", "bcrypt", "strong"),
    ("$2a$", "bcrypt", "strong"),
    ("$2x$", "bcrypt", "weak"),  # the buggy pre-2011 variant
    ("$6$", "sha512crypt", "acceptable"),
    ("$5$", "sha256crypt", "acceptable"),
    ("$sha1$", "sha1crypt", "weak"),
    ("$md5", "sunmd5", "weak"),
    ("$1$", "md5crypt", "weak"),
    ("$3$", "nthash", "weak"),
    ("_", "bsdicrypt", "weak"),
)


# What stands for a hash in account-file text that is kept (the layer cache): the method's prefix stays, so the
# checks still see the algorithm; the rest (salt, cost, digest) is gone. Neither marker can be a crypt string.
REDACTED = "<redacted>"
DES_REDACTED = "<redacted-descrypt>"


class CryptUnavailable(RuntimeError):
    """No usable libcrypt on this system."""


def algorithm_of(hashed: str) -> str:
    """The hashing method of a crypt string (or of its redacted form): yescrypt, sha512crypt, md5crypt, descrypt...
    or 'unknown'."""
    for prefix, name, _ in _METHODS:
        if hashed.startswith(prefix):
            return name
    if _DES_CHARS.match(hashed) or hashed == DES_REDACTED:
        return "descrypt"
    return "unknown"


def redacted(hashed: str) -> str:
    """The hash with everything but its method prefix replaced: algorithm_of and is_weak_algorithm answer for the
    result as they do for `hashed`."""
    for prefix, _, _ in _METHODS:
        if hashed.startswith(prefix):
            return prefix + REDACTED
    return DES_REDACTED if _DES_CHARS.match(hashed) else REDACTED


def is_redacted(hashed: str) -> bool:
    return hashed.endswith(REDACTED) or hashed == DES_REDACTED


def is_weak_algorithm(hashed: str) -> bool:
    """DES, extended DES, MD5 and other methods that GPUs test by the billion per second."""
    name = algorithm_of(hashed)
    if name == "descrypt":
        return True
    return any(n == name and s == "weak" for p, n, s in _METHODS if hashed.startswith(p))


_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# One crypt call cannot be interrupted: a hostile image could set a cost that takes hours per guess.
MAX_MEMORY = 128 << 20  # yescrypt/scrypt: 128 * r * N bytes (libxcrypt's default yescrypt uses 16 MiB)
MAX_BCRYPT_COST = 14  # 2^14 rounds, about a second
MAX_ROUNDS = 1_000_000  # sha*crypt rounds=, sha1crypt and sunmd5 iterations, bsdicrypt count


def _b64(ch: str) -> int:
    return _ITOA64.find(ch)


def _b64_le(text: str) -> int:
    value = 0
    for i, ch in enumerate(text):
        d = _b64(ch)
        if d < 0:
            return -1
        value |= d << (6 * i)
    return value


def excessive_cost(hashed: str) -> str | None:
    """Why hashing this setting would take too long to guess against, or None when its cost is sane."""
    name = algorithm_of(hashed)
    if name in ("yescrypt", "gost-yescrypt"):
        params = hashed.split("$")[2] if hashed.count("$") >= 3 else ""
        if len(params) != 3 or min(_b64(c) for c in params) < 0:
            return f"unusual {name} parameters {params!r}"
        n_log2, r = _b64(params[1]) + 1, _b64(params[2]) + 1
        if _b64(params[1]) >= 48 or _b64(params[2]) >= 48 or 128 * r * (1 << n_log2) > MAX_MEMORY:
            return f"{name} parameters {params!r} need more than {MAX_MEMORY >> 20} MiB per guess"
        return None
    if name == "scrypt":
        if len(hashed) < 14:
            return "malformed scrypt setting"
        n_log2, r, p = _b64(hashed[3]), _b64_le(hashed[4:9]), _b64_le(hashed[9:14])
        if n_log2 < 0 or r <= 0 or p <= 0 or n_log2 > 40 or 128 * r * p * (1 << n_log2) > MAX_MEMORY:
            return f"scrypt parameters need more than {MAX_MEMORY >> 20} MiB per guess"
        return None
    if name == "bcrypt":
        cost = hashed[4:6]
        if not cost.isdecimal() or int(cost) > MAX_BCRYPT_COST:
            return f"bcrypt cost {cost} is over {MAX_BCRYPT_COST}"
        return None
    rounds = -1
    if name in ("sha512crypt", "sha256crypt") and hashed[3:10] == "rounds=":
        text = hashed[10:].split("$", 1)[0]
        rounds = int(text) if text.isdecimal() and len(text) < 12 else MAX_ROUNDS + 1
    elif name == "sha1crypt":
        text = hashed[6:].split("$", 1)[0]
        rounds = int(text) if text.isdecimal() and len(text) < 12 else MAX_ROUNDS + 1
    elif name == "sunmd5" and hashed.startswith("$md5,rounds="):
        text = hashed[12:].split("$", 1)[0]
        rounds = int(text) if text.isdecimal() and len(text) < 12 else MAX_ROUNDS + 1
    elif name == "bsdicrypt":
        rounds = _b64_le(hashed[1:5]) if len(hashed) >= 5 else MAX_ROUNDS + 1
    if rounds > MAX_ROUNDS:
        return f"{name} with more than {MAX_ROUNDS:,} rounds"
    return None


class Crypt:
    """One loaded libcrypt. Thread-safe: each thread gets its own scratch area.

    `calls` counts the hashes computed (a warm re-scan must compute none: the tests read it)."""

    def __init__(self, library: str | None = None) -> None:
        self.library = library or _find_library()
        self._count_lock = threading.Lock()
        self.calls = 0
        try:
            self._lib = ctypes.CDLL(self.library)  # CDLL releases the GIL during calls
        except OSError as exc:
            raise CryptUnavailable(f"cannot load {self.library}: {exc}") from None
        self._local = threading.local()
        self._rn = getattr(self._lib, "crypt_rn", None)
        if self._rn is not None:
            self._rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
            self._rn.restype = ctypes.c_char_p
            self._size = _LIBXCRYPT_DATA_SIZE
        else:
            r = getattr(self._lib, "crypt_r", None)
            if r is None:
                raise CryptUnavailable(f"{self.library} has neither crypt_rn nor crypt_r")
            r.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
            r.restype = ctypes.c_char_p
            self._r = r
            self._size = _CRYPT_R_DATA_SIZE
        self._checksalt = getattr(self._lib, "crypt_checksalt", None)
        if self._checksalt is not None:
            self._checksalt.argtypes = [ctypes.c_char_p]
            self._checksalt.restype = ctypes.c_int
        self._gensalt = getattr(self._lib, "crypt_gensalt_rn", None)
        if self._gensalt is not None:
            self._gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int,
                                      ctypes.c_char_p, ctypes.c_int]
            self._gensalt.restype = ctypes.c_char_p

    @property
    def is_libxcrypt(self) -> bool:
        return self._rn is not None and self._checksalt is not None

    def _area(self) -> ctypes.Array[ctypes.c_char]:
        area: ctypes.Array[ctypes.c_char] | None = getattr(self._local, "area", None)
        if area is None:
            area = ctypes.create_string_buffer(self._size)
            self._local.area = area
        return area

    def hash(self, phrase: str | bytes, setting: str) -> str | None:
        """crypt(phrase, setting); None when the method is unknown, disabled or the setting malformed."""
        raw = phrase.encode("utf-8") if isinstance(phrase, str) else phrase
        if b"\0" in raw:
            return None
        with self._count_lock:
            self.calls += 1
        area = self._area()
        out: bytes | None
        if self._rn is not None:
            out = self._rn(raw, setting.encode("ascii", "replace"), area, self._size)
        else:
            ctypes.memset(area, 0, 4096)  # reset `initialized` and the output of a previous call
            out = self._r(raw, setting.encode("ascii", "replace"), area)
        # libxcrypt signals failure with NULL (crypt_rn) or a string starting with '*' (crypt_r's "*0"/"*1").
        if not out or out.startswith(b"*"):
            return None
        return out.decode("ascii", "replace")

    def verify(self, phrase: str | bytes, hashed: str) -> bool:
        result = self.hash(phrase, hashed)
        return result is not None and hmac.compare_digest(result.encode(), hashed.encode())

    def supports(self, hashed: str) -> bool:
        """Whether this libcrypt can compute hashes of this method (checksalt, else a trial hash)."""
        if not hashed or hashed[0] in "!*":
            return False
        if self._checksalt is not None:
            status = int(self._checksalt(hashed.encode("ascii", "replace")))
            return status not in (CRYPT_SALT_INVALID, CRYPT_SALT_METHOD_DISABLED)
        return self.hash(b"", hashed) is not None

    def gensalt(self, prefix: str, count: int = 0) -> str:
        """A fresh setting for `prefix` ("$y$", "$6$", "$1$", "$2b$", "_"...) with a random salt; `count` is the
        method's cost (0: libxcrypt's default). Traditional DES has no prefix: its setting is two salt characters."""
        if self._gensalt is None:
            raise CryptUnavailable(f"{self.library} has no crypt_gensalt_rn")
        out = ctypes.create_string_buffer(_GENSALT_OUTPUT)
        result: bytes | None = self._gensalt(prefix.encode("ascii") if prefix else None, count, None, 0, out,
                                             _GENSALT_OUTPUT)
        if not result or result.startswith(b"*"):
            raise ValueError(f"libcrypt cannot make a salt for {prefix!r}")
        return result.decode("ascii")

    def make(self, phrase: str, prefix: str, count: int = 0) -> str:
        """Hash `phrase` with a fresh salt of method `prefix`: what passwd(1) would write to /etc/shadow."""
        out = self.hash(phrase, self.gensalt(prefix, count))
        if out is None:
            raise ValueError(f"libcrypt cannot hash with {prefix!r}")
        return out


def _find_library() -> str:
    for name in ("libcrypt.so.1", "libcrypt.so.2"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    found = ctypes.util.find_library("crypt")
    if found is None:
        raise CryptUnavailable("libcrypt (libxcrypt) is not installed; on Debian: apt-get install libcrypt1")
    return found


@lru_cache(maxsize=1)
def system_crypt() -> Crypt:
    """The process-wide libcrypt; raises CryptUnavailable when there is none."""
    return Crypt()
