"""Alpine (apk) versions, ordered as apk-tools 2 orders them (Wolfi and Chainguard use the same scheme).

Grammar (Gentoo's): ``digits{.digits}[letter]{_suffix[digits]}[-rdigits]`` with pre-release suffixes
``_alpha < _beta < _pre < _rc`` (before the bare version) and post-release ones
``_cvs < _svn < _git < _hg < _p`` (after it). apk reads a version as a stream of tokens, each with a
type (digit, dotted digit, letter, suffix, suffix number, revision, end) and a value. Two versions compare
token by token; when the values are equal but the next token types differ, a pre-release suffix is
smallest, then the end of the string, then (in this order) a revision, a suffix number, a post-release
suffix, a letter, and a further number, largest. A dotted component with leading zeros counts as minus
the number of zeros followed by the remaining digits (so ``1.01 < 1.1`` and ``1.0 > 1.00``).

The key lists ``(rank, value)`` per token, the rank being that order of the *type* of the token, which
makes tuple comparison equal to apk's. Strings apk-tools' ``apk_version_validate`` rejects raise
:class:`InvalidVersion`.
"""

from __future__ import annotations

from hullscan.vulndb.versioning._common import InvalidVersion

Token = tuple[int, int]
Key = tuple[Token, ...]

# token types as apk-tools numbers them (the order matters for which transitions are allowed)
_DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION, _END = 0, 1, 2, 3, 4, 5, 6
_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")  # values -4..-1
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")  # values 0..4
_PRE_RANK = -10  # a pre-release suffix sorts before everything, even the end


def _rank(t: int, value: int) -> int:
    if t == _SUFFIX and value < 0:
        return _PRE_RANK
    return -t


def _next_type(t: int, s: str, i: int) -> tuple[int, int]:
    """Type of the token starting at s[i] after a token of type t, and where its value starts."""
    n = len(s)
    if i >= n:
        return _END, i
    c = s[i]
    if t in (_DIGIT, _DIGIT_OR_ZERO) and "a" <= c <= "z":
        return _LETTER, i
    if t == _LETTER and "0" <= c <= "9":
        return _DIGIT, i
    if t == _SUFFIX and "0" <= c <= "9":
        return _SUFFIX_NO, i
    if c == ".":
        nt = _DIGIT_OR_ZERO
    elif c == "_":
        nt = _SUFFIX
    elif c == "-" and i + 1 < n and s[i + 1] == "r":
        return _check(t, _REVISION), i + 2
    else:
        return -1, i
    return _check(t, nt), i + 1


def _check(t: int, nt: int) -> int:
    if nt < t and not (
        (nt == _DIGIT_OR_ZERO and t == _DIGIT) or (nt == _SUFFIX and t == _SUFFIX_NO) or (nt == _DIGIT and t == _LETTER)
    ):
        return -1
    return nt


def _digits(s: str, i: int) -> tuple[int, int]:
    j = i
    n = len(s)
    while j < n and "0" <= s[j] <= "9":
        j += 1
    return (int(s[i:j]) if j > i else 0), j


def key(version: str) -> Key:
    s = version
    if not s or not s.isascii() or not ("0" <= s[0] <= "9"):
        raise InvalidVersion("apk", version, "must start with a digit")
    tokens: list[Token] = []
    t, i, n = _DIGIT, 0, len(s)
    while True:
        nt = -1
        if i >= n:
            # a separator ended the string: apk reads a zero-valued token of the announced type
            tokens.append((_rank(t, 0), 0))
            break
        if t == _DIGIT_OR_ZERO and s[i] == "0":
            j = i
            while j < n and s[j] == "0":
                j += 1
            value, i, nt = -(j - i), j, _DIGIT
        elif t in (_DIGIT, _DIGIT_OR_ZERO, _SUFFIX_NO, _REVISION):
            value, i = _digits(s, i)
        elif t == _LETTER:
            value, i = ord(s[i]), i + 1
        else:  # _SUFFIX
            for idx, name in enumerate(_PRE_SUFFIXES):
                if s.startswith(name, i):
                    value, i = idx - len(_PRE_SUFFIXES), i + len(name)
                    break
            else:
                for idx, name in enumerate(_POST_SUFFIXES):
                    if s.startswith(name, i):
                        value, i = idx, i + len(name)
                        break
                else:
                    raise InvalidVersion("apk", version, f"unknown suffix at {s[i - 1 :]!r}")
        tokens.append((_rank(t, value), value))
        if i >= n:
            break
        if nt != -1:
            t = nt
        else:
            t, i = _next_type(t, s, i)
            if t == -1:
                raise InvalidVersion("apk", version, f"unexpected {s[i:]!r}")
    tokens.append((-_END, 0))
    return tuple(tokens)
