"""The weak-password verdict cache: what the search concluded per account, by account file content and list.

A verdict (user, algorithm, weak or not, by which test, how many candidates tried, under which budget) holds no
password and no hash, so it can sit next to the layer cache and be shared the same way. The key is the account
file's sha256 (which the config-files analyzer keeps in the layer facts, so a warm scan knows it without the
hashes) and the candidate list's version: a re-scan, or another image with the same /etc/shadow, pays nothing.

`VerdictStore` is the interface; `VerdictCache` keeps one small JSON document per key under
`<cache_dir>/passwords/` (a fleet backend keeps them in its database). A damaged document is a miss.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from hullscan.findings import PasswordVerdict

FORMAT = 1
MAX_DOCUMENT = 4 << 20  # bytes; an account file holds at most a few thousand accounts
_HEX = frozenset("0123456789abcdef")


class VerdictStore(Protocol):
    def get(self, key: str) -> dict[str, PasswordVerdict] | None:
        """The verdicts kept under `key` (user -> verdict), or None."""
        ...

    def put(self, key: str, verdicts: dict[str, PasswordVerdict]) -> None:
        """Keep `verdicts` under `key`, replacing what was there; raises OSError when it cannot."""
        ...


def verdict_key(file_sha256: str, list_version: str) -> str:
    return f"{file_sha256}-{list_version}"


def usable(verdict: PasswordVerdict, budget_seconds: float) -> bool:
    """Whether a kept verdict answers a search under `budget_seconds`: a weak password stays weak, a finished or
    skipped search stays finished; a search cut by its budget answers only for a budget no larger than it had."""
    return verdict.complete or verdict.skipped != "" or verdict.budget_seconds >= budget_seconds


def better(new: PasswordVerdict, old: PasswordVerdict | None) -> bool:
    """Whether `new` should replace `old` in the cache (the one that searched further wins)."""
    if old is None:
        return True
    return (new.weak, new.complete, new.budget_seconds, new.tried) >= (old.weak, old.complete, old.budget_seconds,
                                                                       old.tried)


class VerdictCache:
    """The filesystem store: `<root>/passwords/<key[:2]>/<key>.json`."""

    def __init__(self, root: Path) -> None:
        self.root = root / "passwords"

    def _path(self, key: str) -> Path | None:
        digest, _, version = key.partition("-")
        if len(digest) != 64 or not version or not set(digest + version) <= _HEX:
            return None  # keys are made here from hex digests; anything else is never a file name
        return self.root / digest[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, PasswordVerdict] | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_DOCUMENT + 1)
            if len(raw) > MAX_DOCUMENT:
                raise ValueError("verdict document over its bound")
            return _decode(json.loads(raw))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            with contextlib.suppress(OSError):  # a damaged entry is a miss, rebuilt by this scan
                path.unlink(missing_ok=True)
            return None

    def put(self, key: str, verdicts: dict[str, PasswordVerdict]) -> None:
        path = self._path(key)
        if path is None:
            return
        data = json.dumps({"format": FORMAT, "verdicts": {u: _encode(v) for u, v in sorted(verdicts.items())}})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old document or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


_FIELDS = ("algorithm", "weak", "test", "tried", "total", "skipped", "budget_seconds")


def _encode(v: PasswordVerdict) -> dict[str, Any]:
    return {name: getattr(v, name) for name in _FIELDS}


def _decode(doc: Any) -> dict[str, PasswordVerdict]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("verdicts"), dict):
        raise ValueError("not a verdict document")
    out = {}
    for user, v in doc["verdicts"].items():
        if not isinstance(v, dict):
            raise ValueError("not a verdict")
        verdict = PasswordVerdict(
            str(user), _typed(v["algorithm"], str), weak=_typed(v["weak"], bool), test=_typed(v["test"], str),
            tried=_typed(v["tried"], int), total=_typed(v["total"], int), skipped=_typed(v["skipped"], str),
            budget_seconds=float(_typed(v["budget_seconds"], (int, float))))
        out[verdict.user] = verdict
    return out


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"unexpected {type(value).__name__} in a verdict")
    return value
