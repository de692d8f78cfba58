"""Maven versions, ordered as maven-artifact's ``ComparableVersion`` (Maven 3.8) orders them.

The version is lower-cased and split into items: ``.`` separates items of one list, ``-`` and every
switch between digits and letters start a nested list, and so does a qualifier after ``.`` (``1.0.RC1``
reads like ``1.0-RC1``). Digit runs are numbers; letter runs are
qualifiers, ``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp`` and any
other qualifier after ``sp`` (in alphabetical order); ``a``, ``b`` and ``m`` directly followed by a digit
mean alpha, beta and milestone. Trailing "null" items (0, the empty qualifier, empty lists) are dropped
from each list, so ``1.0 = 1 = 1-ga``. Comparing item against item: number > list > qualifier; a missing
item compares like a null one (a number against 0, a qualifier against the release qualifier, a list
item by item).

The key is a small object whose ``<`` and ``==`` run that comparison on the parsed (cached) items.
"""

from __future__ import annotations

from functools import total_ordering
from typing import Union

Item = Union[int, str, "ListItem"]


class ListItem(tuple[Item, ...]):
    """A nested list of items (a plain tuple subclass, so isinstance tells it from qualifiers)."""


_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE = str(_QUALIFIERS.index(""))
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}


def _qualifier(value: str, followed_by_digit: bool) -> str:
    """The string Maven compares a qualifier by."""
    if followed_by_digit and len(value) == 1:
        value = _SHORT.get(value, value)
    value = _ALIASES.get(value, value)
    if value in _QUALIFIERS:
        return str(_QUALIFIERS.index(value))
    return f"{len(_QUALIFIERS)}-{value}"


def _is_null(item: Item) -> bool:
    if isinstance(item, ListItem):
        return len(item) == 0
    if isinstance(item, str):
        return item == _RELEASE
    return item == 0


def _normalize(items: list[Item]) -> ListItem:
    for i in range(len(items) - 1, -1, -1):
        it = items[i]
        if _is_null(it):
            del items[i]
        elif not isinstance(it, ListItem):
            break
    return ListItem(items)


class _Builder:
    """A list being built, with its not-yet-normalised children."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Item | _Builder] = []

    def build(self) -> ListItem:
        return _normalize([c.build() if isinstance(c, _Builder) else c for c in self.items])


def parse(version: str) -> ListItem:
    v = version.lower()
    root = _Builder()
    cur = root
    is_digit = False
    start = 0

    def item(digit: bool, buf: str) -> Item:
        return int(buf) if digit else _qualifier(buf, False)

    def nest() -> _Builder:
        child = _Builder()
        cur.items.append(child)
        return child

    for i, c in enumerate(v):
        if c == ".":
            cur.items.append(0 if i == start else item(is_digit, v[start:i]))
            start = i + 1
        elif c == "-":
            cur.items.append(0 if i == start else item(is_digit, v[start:i]))
            start = i + 1
            cur = nest()
        elif "0" <= c <= "9":
            if not is_digit and i > start:
                if cur.items:  # 1.0.0.X1 < 1.0.0-X1: a qualifier after a "." starts a list, like after "-"
                    cur = nest()
                cur.items.append(_qualifier(v[start:i], True))
                start = i
                cur = nest()
            is_digit = True
        else:
            if is_digit and i > start:
                cur.items.append(int(v[start:i]))
                start = i
                cur = nest()
            is_digit = False
    if len(v) > start:
        if not is_digit and cur.items:  # the same for a final qualifier
            cur = nest()
        cur.items.append(item(is_digit, v[start:]))
    return root.build()


def _cmp_str(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _cmp(a: Item, b: Item | None) -> int:
    """Sign of ``a.compareTo(b)`` in ComparableVersion (b None = missing item)."""
    if isinstance(a, ListItem):
        if b is None:
            for x in a:
                r = _cmp(x, None)
                if r:
                    return r
            return 0
        if isinstance(b, ListItem):
            n = max(len(a), len(b))
            for i in range(n):
                if i >= len(a):  # a is shorter: invert b's item against "missing"
                    r = -_cmp(b[i], None)
                elif i >= len(b):
                    r = _cmp(a[i], None)
                else:
                    r = _cmp(a[i], b[i])
                if r:
                    return r
            return 0
        return 1 if isinstance(b, str) else -1
    if isinstance(a, str):
        if b is None:
            return _cmp_str(a, _RELEASE)
        if isinstance(b, str):
            return _cmp_str(a, b)
        return -1  # a qualifier is below a number and below a list
    # a number
    if b is None:
        return 0 if a == 0 else 1
    if isinstance(b, int):
        return (a > b) - (a < b)
    return 1


@total_ordering
class MavenKey:
    """Comparable parsed Maven version."""

    __slots__ = ("items",)

    def __init__(self, items: ListItem) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MavenKey):
            return NotImplemented
        return _cmp(self.items, other.items) == 0

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, MavenKey):
            return NotImplemented
        return _cmp(self.items, other.items) < 0

    __hash__ = None  # type: ignore[assignment]  # equal keys can differ in structure

    def __repr__(self) -> str:
        return f"MavenKey({self.items!r})"


def key(version: str) -> MavenKey:
    """Every string is a Maven version; the key orders like ComparableVersion."""
    return MavenKey(parse(version.strip()))
