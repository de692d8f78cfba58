"""A deterministic bound on the work a backtracking regex engine (Python's `re`) can do at one start position.

Instead of timing a rule on hostile input (which measures the machine as much as the rule), this walks the
pattern's parse tree (the `re` module's own parser) and bounds, for one start position,

* `ways`: how many different ways a part can match there (each is a point the engine may backtrack to), and
* `steps`: how many matching steps trying all of them costs, with a sequence's later parts tried once per way
  of the parts before them: steps(a b) = steps(a) + ways(a) * steps(b).

Backtracking blows up where ways multiply: a repeat of something that itself matches in several ways (`(a+)+`,
`(\\w{1,9}\\s?){1,9}`), alternatives that can match the same text inside a repeat, an unbounded repeat (its
steps grow with the input: quadratic over all start positions). Two facts keep honest rules cheap and are used
here: a possessive repeat or an atomic group keeps one way; and a repeat whose characters cannot start what
follows it (`[^"]{0,99}"`, `[a-z]{1,32}:`) can only be followed in one way, the longest. Over a whole file the
work is then at most `steps` per start position the engine tries: linear in the file, with this constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from re import _constants as c  # type: ignore[attr-defined]  # the re module's own parser (Python 3.11+)
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

STEP_BUDGET = 1 << 24  # what the tests allow a pattern at one start position (hostile-input regexes stay below)
UNBOUNDED = 1 << 32  # what an unbounded repeat is charged with: its work grows with the input (quadratic overall)
CAP = 10**30
ALL = (1 << 256) - 1
_SPACE = sum(1 << b for b in b" \t\n\r\f\v")
_DIGIT = sum(1 << b for b in range(48, 58))
_WORD = _DIGIT | sum(1 << b for b in range(65, 91)) | sum(1 << b for b in range(97, 123)) | (1 << 95)
_CATEGORIES = {c.CATEGORY_SPACE: _SPACE, c.CATEGORY_NOT_SPACE: ALL & ~_SPACE, c.CATEGORY_DIGIT: _DIGIT,
               c.CATEGORY_NOT_DIGIT: ALL & ~_DIGIT, c.CATEGORY_WORD: _WORD, c.CATEGORY_NOT_WORD: ALL & ~_WORD,
               c.CATEGORY_LINEBREAK: 1 << 10, c.CATEGORY_NOT_LINEBREAK: ALL & ~(1 << 10)}
_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT)


@dataclass(frozen=True)
class Cost:
    ways: int
    steps: int


def _cap(n: int) -> int:
    return min(n, CAP)


def _fold(mask: int) -> int:
    """Add the other case of every ASCII letter in `mask` (IGNORECASE)."""
    for b in range(65, 91):
        if mask >> b & 1 or mask >> (b + 32) & 1:
            mask |= 1 << b | 1 << (b + 32)
    return mask


class _Analysis:
    def __init__(self, flags: int) -> None:
        self.base_flags = flags

    # -- first characters -------------------------------------------------------------------------------

    def first(self, items: Any, flags: int) -> tuple[int, bool]:
        """(bytes a sequence can start with, whether it can match the empty string)."""
        mask = 0
        for op, av in items:
            m, nullable = self.first_node(op, av, flags)
            mask |= m
            if not nullable:
                return mask, False
        return mask, True

    def first_node(self, op: Any, av: Any, flags: int) -> tuple[int, bool]:
        single = self.char_mask(op, av, flags)
        if single is not None:
            return single, False
        if op in _REPEATS:
            lo, _hi, body = av
            m, nullable = self.first(body, flags)
            return m, nullable or lo == 0
        if op is c.BRANCH:
            mask, nullable = 0, False
            for alt in av[1]:
                m, n = self.first(alt, flags)
                mask, nullable = mask | m, nullable or n
            return mask, nullable
        if op is c.SUBPATTERN:
            return self.first(av[3], (flags | av[1]) & ~av[2])
        if op is c.ATOMIC_GROUP:
            return self.first(av, flags)
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            return 0, True
        if op is c.GROUPREF_EXISTS:
            m1, n1 = self.first(av[1], flags)
            m2, n2 = self.first(av[2], flags) if av[2] is not None else (0, True)
            return m1 | m2, n1 or n2
        return ALL, True  # GROUPREF and anything else: any byte, maybe none

    def char_mask(self, op: Any, av: Any, flags: int) -> int | None:
        """The bytes a single-character node matches; None for anything else."""
        fold = bool(flags & re.IGNORECASE)
        if op is c.LITERAL:
            m = 1 << av
        elif op is c.NOT_LITERAL:
            m = ALL & ~(_fold(1 << av) if fold else 1 << av)
            return m
        elif op is c.ANY:
            return ALL
        elif op is c.IN:
            m, negate = 0, False
            for iop, iav in av:
                if iop is c.NEGATE:
                    negate = True
                elif iop is c.LITERAL:
                    m |= 1 << iav
                elif iop is c.RANGE:
                    m |= sum(1 << b for b in range(iav[0], min(iav[1], 255) + 1))
                elif iop is c.CATEGORY:
                    m |= _CATEGORIES[iav]
                else:
                    raise ValueError(f"unsupported set item {iop}")
            m = _fold(m) if fold else m
            return ALL & ~m if negate else m
        elif op is c.CATEGORY:
            return _CATEGORIES[av]
        else:
            return None
        return _fold(m) if fold else m

    # -- cost ----------------------------------------------------------------------------------------------

    def seq(self, items: Any, follow: int, flags: int) -> Cost:
        items = list(items)
        # what may come after each item: the next items' first bytes, and `follow` when they can all be empty
        follows = [0] * len(items)
        after = follow
        for i in range(len(items) - 1, -1, -1):
            follows[i] = after
            m, n = self.first_node(items[i][0], items[i][1], flags)
            after = m | (after if n else 0)
        ways, steps = 1, 0
        for (op, av), f in zip(items, follows, strict=True):
            cost = self.node(op, av, f, flags)
            steps = _cap(steps + ways * cost.steps)
            ways = _cap(ways * cost.ways)
        return Cost(ways, steps)

    def node(self, op: Any, av: Any, follow: int, flags: int) -> Cost:
        if self.char_mask(op, av, flags) is not None or op is c.AT:
            return Cost(1, 1)
        if op in _REPEATS:
            return self.repeat(op, av, follow, flags)
        if op is c.BRANCH:
            alts = av[1]
            costs = [self.seq(alt, follow, flags) for alt in alts]
            firsts = [self.first(alt, flags) for alt in alts]
            heads = [self.literal_head(alt, flags) for alt in alts]
            # at most one alternative can match at a position when each pair starts with different bytes, or
            # with literal texts that differ somewhere (`sudo|setsid|source`)
            disjoint = all(not n for _, n in firsts) and all(
                firsts[i][0] & firsts[j][0] == 0 or _differ(heads[i], heads[j])
                for i in range(len(alts)) for j in range(i + 1, len(alts)))
            ways = max(k.ways for k in costs) if disjoint else sum(k.ways for k in costs)
            return Cost(_cap(ways), _cap(sum(k.steps for k in costs)))
        if op is c.SUBPATTERN:
            return self.seq(av[3], follow, (flags | av[1]) & ~av[2])
        if op is c.ATOMIC_GROUP:
            return Cost(1, self.seq(av, follow, flags).steps)
        if op in (c.ASSERT, c.ASSERT_NOT):
            return Cost(1, self.seq(av[1], 0, flags).steps)
        if op is c.GROUPREF:
            return Cost(1, 1024)  # compares the group's text: charged as a long one
        if op is c.GROUPREF_EXISTS:
            yes = self.seq(av[1], follow, flags)
            no = self.seq(av[2], follow, flags) if av[2] is not None else Cost(1, 1)
            return Cost(max(yes.ways, no.ways), max(yes.steps, no.steps))
        raise ValueError(f"unsupported regex construct {op}")

    def literal_head(self, items: Any, flags: int) -> bytes:
        """The literal bytes a sequence starts with (none under IGNORECASE)."""
        if flags & re.IGNORECASE:
            return b""
        head = bytearray()
        for op, av in items:
            if op is not c.LITERAL:
                break
            head.append(av)
        return bytes(head)

    def repeat(self, op: Any, av: Any, follow: int, flags: int) -> Cost:
        lo, hi, body = av
        hi = UNBOUNDED if hi == c.MAXREPEAT else hi
        body = list(body)
        single = self.char_mask(body[0][0], body[0][1], flags) if len(body) == 1 else None
        if single is not None:
            steps = hi + 1
            if op is c.POSSESSIVE_REPEAT or single & follow == 0:
                return Cost(1, steps)  # one way on: the longest run (what follows cannot start inside it)
            return Cost(hi - lo + 1, steps)
        first, nullable = self.first(body, flags)
        inner = self.seq(body, first | follow, flags)  # an iteration is followed by another or by `follow`
        reach, steps, ways = 1, 0, 0
        for k in range(hi + 1):
            if k >= lo:
                ways = _cap(ways + reach)
            if k == hi:
                break
            steps = _cap(steps + reach * inner.steps)
            reach = _cap(reach * inner.ways)
            if reach >= CAP and steps >= CAP:
                break
        if op is c.POSSESSIVE_REPEAT or (inner.ways == 1 and not nullable and first & follow == 0):
            ways = 1
        return Cost(ways, steps)


def _differ(a: bytes, b: bytes) -> bool:
    """Two literal heads that cannot both match at one position: they differ within the shorter one."""
    n = min(len(a), len(b))
    return n > 0 and a[:n] != b[:n]


def steps_per_position(pattern: str | bytes, flags: int = 0) -> int:
    """The most matching steps `re` can spend at one start position of `pattern` (see the module notes)."""
    parsed = sre_parse.parse(pattern, flags)
    analysis = _Analysis(parsed.state.flags)
    # at the end of the pattern the first success ends the search: nothing follows that could fail
    return analysis.seq(parsed, 0, parsed.state.flags).steps
