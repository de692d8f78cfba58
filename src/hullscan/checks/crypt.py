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


class CryptUnavailable(RuntimeError):
    """No usable libcrypt on this system."""


def algorithm_of(hashed: str) -> str:
    """The hashing method of a crypt string: yescrypt, sha512crypt, md5crypt, descrypt... or 'unknown'."""
    for prefix, name, _ in _METHODS:
        if hashed.startswith(prefix):
            return name
    if _DES_CHARS.match(hashed):
        return "descrypt"
    return "unknown"


def is_weak_algorithm(hashed: str) -> bool:
    """DES, extended DES, MD5 and other methods that GPUs test by the billion per second."""
    name = algorithm_of(hashed)
    if name == "descrypt":
        return True
    return any(n == name and s == "weak" for p, n, s in _METHODS if hashed.startswith(p))


class Crypt:
    """One loaded libcrypt. Thread-safe: each thread gets its own scratch area."""

    def __init__(self, library: str | None = None) -> None:
        self.library = library or _find_library()
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
        area = self._area()
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
            if status in (CRYPT_SALT_INVALID, CRYPT_SALT_METHOD_DISABLED):
                return False
        return self.hash(b"", hashed) is not None

    def gensalt(self, prefix: str, count: int = 0) -> str:
        """A fresh setting string for `prefix` ("$y$", "$6$", "$1$", "$2b$", "" for DES...), with a random salt."""
        if self._gensalt is None:
            raise CryptUnavailable(f"{self.library} has no crypt_gensalt_rn")
        out = ctypes.create_string_buffer(_GENSALT_OUTPUT)
        result = self._gensalt(prefix.encode("ascii") if prefix else None, count, None, 0, out, _GENSALT_OUTPUT)
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
