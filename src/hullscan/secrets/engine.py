"""The secret scanning engine: keyword prefilter, rule regexes, checks, redaction.

Scanning one file:
1. its path picks the rules that may run (path filters, allow rules);
2. one multi-keyword search over the content (case-insensitive) says which keywords occur; only the
   rules owning one of them run, so a file without any keyword costs that one pass;
3. each remaining rule's regex runs over the raw bytes; a match must pass the boundary check, the
   entropy floor, the rule's validator, the placeholder and user allow rules;
4. where two rules found overlapping secrets, the earlier rule (the more specific) keeps it;
5. each finding gets a line number and a redacted excerpt. The secret itself leaves this module only
   as a keyed hash (with a per-process random key), used to deduplicate and never shown.

The keyword search uses Hyperscan when it is installed (Intel's multi-pattern matcher: gigabytes per
second), else Aho-Corasick (ahocorasick_rs), else Python's `in` per keyword; all three are tested to
agree.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hullscan.secrets.rules import BUILTIN_ALLOW, PLACEHOLDER_WORDS, RULES, AllowRule, Rule

ENGINE_VERSION = 2  # 2: a finding's line is where its match starts (a key's BEGIN line)
BINARY_SNIFF = 8192  # a NUL byte in this many leading bytes marks a binary file
MAX_ITERATIONS = 2000  # regex matches examined per rule per file (bounds work on hostile files)
MAX_FINDINGS = 200  # findings kept per file
MAX_POSITIONS = 4096  # keyword occurrences a near-keyword rule searches around; past that, the whole file
NEAR = 64  # a near-keyword rule's match starts at most this many bytes before one of its keywords
EXCERPT_CONTEXT = 40  # bytes of the match shown before the (redacted) secret
PREFIX_WINDOW = 64  # bytes before a match where a rule's `prefix` is looked for
_NAMEISH = re.compile(rb"[a-z_.-]{1,64}")
_NAME_WORDS = re.compile(rb"pass|pwd|secret|token|key|user|login|auth|cred")

_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_FINGERPRINT_KEY = os.urandom(32)
_DOTTED_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_HAS_DIGIT = re.compile(rb"[0-9]")
_HAS_LETTER = re.compile(rb"[A-Za-z]")


class RuleError(ValueError):
    """A rule or allow rule that cannot be compiled; the message names it."""


def shannon_entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte."""
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def redact(secret: str) -> str:
    """At most a few leading characters (never more than a fifth of the secret), the rest masked."""
    text = secret.strip()
    n = len(text)
    keep = 0 if n < 8 else min(4, n // 5)
    shown = "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in text[:keep])
    return shown + "*" * max(4, min(n - keep, 16))


def fingerprint(secret: bytes) -> str:
    return hmac.new(_FINGERPRINT_KEY, secret, hashlib.sha256).hexdigest()[:32]


# -- keyword prefilter -------------------------------------------------------------------------------


Found = tuple[set[int], dict[int, list[int]]]  # keywords present; start offsets of the positional ones


class KeywordIndex:
    """Which of a fixed set of lower-case keywords occur in a text, case-insensitively; for the keywords
    marked positional, also where (start offsets, at most MAX_POSITIONS of them: past that, none)."""

    def __init__(self, keywords: Sequence[bytes], backend: str = "auto", positional: Iterable[int] = ()) -> None:
        self.keywords = list(keywords)
        self.positional = frozenset(positional)
        self.backend = ""
        self._find: Callable[[bytes], Found] = self._find_plain
        self._local = threading.local()
        order = ["hyperscan", "ahocorasick", "plain"] if backend == "auto" else [backend]
        for name in order:
            if self._setup(name):
                self.backend = name
                break
        if not self.backend:
            raise ValueError(f"keyword backend {backend!r} is not available")

    def _setup(self, name: str) -> bool:
        if not self.keywords:
            self._find = lambda data: (set(), {})
            return True
        if name == "hyperscan":
            return self._setup_hyperscan()
        if name == "ahocorasick":
            return self._setup_ahocorasick()
        if name == "plain":
            self._find = self._find_plain
            return True
        return False

    def _setup_hyperscan(self) -> bool:
        try:
            import hyperscan
        except ImportError:
            return False
        try:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            once = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
            flags = [hyperscan.HS_FLAG_CASELESS if i in self.positional else once for i in range(len(self.keywords))]
            db.compile(expressions=self.keywords, ids=list(range(len(self.keywords))),
                       elements=len(self.keywords), flags=flags, literal=True)
        except (hyperscan.error, TypeError, AttributeError):  # an old build without literal mode
            return False
        self._hs_db = db
        self._hs_module = hyperscan
        self._find = self._find_hyperscan
        return True

    def _find_hyperscan(self, data: bytes) -> Found:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:  # a scratch space belongs to one thread at a time
            scratch = self._hs_module.Scratch(self._hs_db)
            self._local.scratch = scratch
        found: set[int] = set()
        where: dict[int, list[int]] = {}
        positional, keywords = self.positional, self.keywords

        def on_match(ident: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
            found.add(ident)
            if ident in positional:
                where.setdefault(ident, []).append(end - len(keywords[ident]))

        self._hs_db.scan(data, match_event_handler=on_match, scratch=scratch)
        return found, _capped(where)

    def _setup_ahocorasick(self) -> bool:
        try:
            import ahocorasick_rs
        except ImportError:
            return False
        automaton = ahocorasick_rs.BytesAhoCorasick(self.keywords)

        def find(data: bytes) -> Found:
            found: set[int] = set()
            where: dict[int, list[int]] = {}
            for ident, start, _end in automaton.find_matches_as_indexes(data.lower(), overlapping=True):
                found.add(ident)
                if ident in self.positional:
                    where.setdefault(ident, []).append(start)
            return found, _capped(where)

        self._find = find
        return True

    def _find_plain(self, data: bytes) -> Found:
        low = data.lower()
        found = {i for i, k in enumerate(self.keywords) if k in low}
        where: dict[int, list[int]] = {}
        for i in found & self.positional:
            k, at = self.keywords[i], low.find(self.keywords[i])
            starts: list[int] = []
            while at >= 0 and len(starts) <= MAX_POSITIONS:
                starts.append(at)
                at = low.find(k, at + 1)
            where[i] = starts
        return found, _capped(where)

    def find(self, data: bytes) -> set[int]:
        return self._find(data)[0]

    def locate(self, data: bytes) -> Found:
        return self._find(data)


def _capped(where: dict[int, list[int]]) -> dict[int, list[int]]:
    """Positions only while there are few enough to be worth searching around."""
    return {k: sorted(v) for k, v in where.items() if len(v) <= MAX_POSITIONS}


# -- compiled rules ------------------------------------------------------------------------------------


@dataclass
class CompiledRule:
    """A rule with its patterns compiled. The main regex (and what depends on it) is compiled when first used: a
    scan runs only the rules whose keywords occur, and a warm scan only looks at the image history."""

    rule: Rule
    order: int
    path: re.Pattern[str] | None
    allow_match: re.Pattern[bytes] | None
    allow_paths: re.Pattern[str] | None
    prefix: re.Pattern[bytes] | None = None

    @functools.cached_property
    def regex(self) -> re.Pattern[bytes]:
        return _compile(self.rule.regex, f"rule {self.rule.id!r}")

    @functools.cached_property
    def group(self) -> str | int:
        return self.rule.secret_group if self.rule.secret_group in self.regex.groupindex else 0

    @functools.cached_property
    def width(self) -> int | None:
        """The longest text the regex can match, when bounded."""
        return _max_width(self.regex.pattern)


@dataclass
class CompiledAllow:
    allow: AllowRule
    path: re.Pattern[str] | None
    regex: re.Pattern[bytes] | None
    rules: frozenset[str]
    dir: re.Pattern[str] | None = None
    name: re.Pattern[str] | None = None
    orders: frozenset[int] = frozenset()  # the engine's indexes of `rules`

    def matches_file(self, path: str, name: str) -> bool:
        """The path and name conditions (the directory one is decided once per directory)."""
        return ((self.name is None or self.name.search(name) is not None)
                and (self.path is None or self.path.search(path) is not None))


@dataclass
class _DirState:
    skip: bool  # an allow rule skips every file of this directory
    skips: list[CompiledAllow]  # file-skipping allow rules whose directory condition holds here
    rule_allows: list[CompiledAllow]  # allow rules that switch some rules off, directory condition holding
    value_allows: list[CompiledAllow]  # allow rules on secret values, directory condition holding


@dataclass(frozen=True)
class SecretHit:
    """One secret found. Holds no secret: only where it is, a redacted excerpt and a keyed hash."""

    rule: Rule
    line: int
    excerpt: str  # the match with the secret redacted (and any other secret on it masked)
    start: int  # byte offsets of the secret in the scanned content
    end: int
    fingerprint: str  # keyed hash of the secret, for deduplication inside this process only


def _compile(pattern: str, what: str, flags: int = 0) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode("utf-8"), flags)
    except (re.error, RecursionError, OverflowError) as exc:
        raise RuleError(f"{what}: invalid regular expression: {exc}") from None


def _compile_text(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise RuleError(f"{what}: invalid path regular expression: {exc}") from None


def compile_rule(rule: Rule, order: int, *, lazy: bool = False) -> CompiledRule:
    """The compiled rule; RuleError for a bad pattern. `lazy` leaves the main regex for its first use (for rules
    known to compile: the built-in ones)."""
    what = f"rule {rule.id!r}"
    compiled = CompiledRule(
        rule=rule, order=order,
        path=_compile_text(rule.path, what) if rule.path else None,
        allow_match=_compile(rule.allow_match, f"{what} allow_match", re.IGNORECASE) if rule.allow_match else None,
        allow_paths=_compile_text(rule.allow_paths, what) if rule.allow_paths else None,
        prefix=_compile(f"(?:{rule.prefix})\\Z", f"{what} prefix") if rule.prefix else None,
    )
    if not lazy:
        compiled.regex  # noqa: B018 (compile now: a bad pattern is refused here)
    return compiled


def compile_allow(allow: AllowRule) -> CompiledAllow:
    what = f"allow rule {allow.id!r}"
    return CompiledAllow(
        allow=allow,
        path=_compile_text(allow.path, what) if allow.path else None,
        regex=_compile(allow.regex, what) if allow.regex else None,
        rules=frozenset(allow.rules),
        dir=_compile_text(allow.dir, what) if allow.dir else None,
        name=_compile_text(allow.name, what) if allow.name else None,
    )


# -- the engine ------------------------------------------------------------------------------------------


class SecretEngine:
    def __init__(self, rules: Sequence[Rule] = RULES, allow: Sequence[AllowRule] = BUILTIN_ALLOW,
                 keyword_backend: str = "auto") -> None:
        ids = [r.id for r in rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise RuleError(f"duplicate rule ids: {', '.join(dupes)}")
        builtin = {id(r) for r in RULES}
        self.rules = [compile_rule(r, i, lazy=id(r) in builtin) for i, r in enumerate(rules)]
        self.allow = [compile_allow(a) for a in allow]
        keywords: dict[bytes, int] = {}
        self._by_keyword: list[list[int]] = []
        self._always: list[int] = []
        self._near: dict[int, list[int]] = {}  # a near-keyword rule -> its keyword ids
        for cr in self.rules:
            kws = [k.lower().encode("utf-8") for k in cr.rule.keywords if k]
            if not kws:
                self._always.append(cr.order)
            kw_ids: list[int] = []
            for k in kws:
                if k not in keywords:
                    keywords[k] = len(keywords)
                    self._by_keyword.append([])
                self._by_keyword[keywords[k]].append(cr.order)
                kw_ids.append(keywords[k])
            if cr.rule.near_keyword and kws and cr.prefix is None:
                self._near[cr.order] = kw_ids
        positional = {k for ids in self._near.values() for k in ids}
        self.index = KeywordIndex(list(keywords), keyword_backend, positional)
        order_of = {cr.rule.id: cr.order for cr in self.rules}
        for a in self.allow:
            a.orders = frozenset(order_of[i] for i in a.rules if i in order_of)
        self._path_rules = [cr for cr in self.rules if cr.path is not None or cr.allow_paths is not None]
        self._dirs: dict[str, _DirState] = {}

    # -- paths --

    def _dir_state(self, directory: str) -> _DirState:
        state = self._dirs.get(directory)
        if state is None:
            here = [a for a in self.allow if a.dir is None or a.dir.search(directory) is not None]
            skips = [a for a in here if a.regex is None and not a.rules
                     and (a.dir is not None or a.path is not None or a.name is not None)]
            state = _DirState(
                skip=any(a.path is None and a.name is None for a in skips),
                skips=skips,
                rule_allows=[a for a in here if a.regex is None and a.rules],
                value_allows=[a for a in here if a.regex is not None],
            )
            if len(self._dirs) >= 8192:
                self._dirs.clear()
            self._dirs[directory] = state
        return state

    def skips_path(self, path: str) -> bool:
        """True when an allow rule excludes this whole file (claims() asks this for every file)."""
        cut = path.rfind("/") + 1
        state = self._dir_state(path[:cut])
        return state.skip or any(a.matches_file(path, path[cut:]) for a in state.skips)

    # -- scanning --

    def scan(self, path: str, data: bytes) -> list[SecretHit]:
        """Every secret in `data` (the content of `path`); [] for binary content or an allowed path."""
        return self.scan_within(path, data, None)[0]

    def scan_within(self, path: str, data: bytes, seconds: float | None) -> tuple[list[SecretHit], list[str]]:
        """Like `scan`, giving up on the remaining rules once `seconds` have passed (checked between rules, so a
        hostile file cannot hold the scan for long); also returns the ids of the rules that did not run."""
        deadline = None if seconds is None else time.monotonic() + seconds
        plan = self._plan(path, data)
        if plan is None:
            return [], []
        order, present, where, path_value_allows = plan
        accepted: list[tuple[int, int, int, CompiledRule, bytes]] = []  # (secret start, end, match start, ...)
        for i, rule_order in enumerate(order):
            if deadline is not None and time.monotonic() >= deadline:
                return self._hits(data, accepted), [self.rules[o].rule.id for o in order[i:]]
            cr = self.rules[rule_order]
            for s, e, ms, secret in self._matches(cr, data, path_value_allows,
                                                     self._windows(cr, present, where, len(data))):
                if any(s < e2 and s2 < e for s2, e2, _, _, _ in accepted):
                    continue
                accepted.append((s, e, ms, cr, secret))
                if len(accepted) >= MAX_FINDINGS:
                    return self._hits(data, accepted), []
        return self._hits(data, accepted), []

    def search_spans(self, path: str, data: bytes) -> dict[str, list[tuple[int, int]]]:
        """For each rule that would run on this file, the spans of `data` its regex is searched over (a rule's
        work is bounded by their length: the tests check it on hostile input)."""
        plan = self._plan(path, data)
        if plan is None:
            return {}
        order, present, where, _ = plan
        return {self.rules[o].rule.id: self._windows(self.rules[o], present, where, len(data)) for o in order}

    def _plan(self, path: str, data: bytes) -> tuple[list[int], set[int], dict[int, list[int]],
                                                      list[CompiledAllow]] | None:
        """The rules to run on a file, in order, with the keyword positions and the value allow rules that apply;
        None when nothing runs (binary content, an allowed path, no keyword)."""
        if not data or b"\0" in data[:BINARY_SNIFF] or self.skips_path(path):
            return None
        present, where = self.index.locate(data)
        candidates = set(self._always)
        for k in present:
            candidates.update(self._by_keyword[k])
        if not candidates:
            return None
        cut = path.rfind("/") + 1
        name = path[cut:]
        state = self._dir_state(path[:cut])
        for cr in self._path_rules:
            if cr.order in candidates and ((cr.path is not None and cr.path.search(path) is None)
                                           or (cr.allow_paths is not None and cr.allow_paths.search(path))):
                candidates.discard(cr.order)
        for a in state.rule_allows:
            if not a.orders.isdisjoint(candidates) and a.matches_file(path, name):
                candidates -= a.orders
        path_value_allows = [a for a in state.value_allows if a.matches_file(path, name)]
        return sorted(candidates), present, where, path_value_allows

    def _windows(self, cr: CompiledRule, present: set[int], where: dict[int, list[int]],
                 size: int) -> list[tuple[int, int]]:
        """Where a rule can match: the whole file, or for a near-keyword rule the merged spans around its
        keywords' occurrences (the whole file again when a keyword occurs too often to be located)."""
        ids = self._near.get(cr.order)
        width = cr.width if ids is not None else None
        if ids is None or width is None:
            return [(0, size)]
        starts: list[int] = []
        for k in ids:
            if k in where:
                starts.extend(where[k])
            elif k in present:
                return [(0, size)]
        out: list[tuple[int, int]] = []
        for p in sorted(starts):
            lo, hi = max(0, p - NEAR), min(size, p + width + NEAR)
            if out and lo <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], hi))
            else:
                out.append((lo, hi))
        return out

    def _matches(self, cr: CompiledRule, data: bytes, allows: Sequence[CompiledAllow],
                 windows: Sequence[tuple[int, int]]) -> Iterable[tuple[int, int, int, bytes]]:
        n = 0
        for lo, hi in windows:
            for m in cr.regex.finditer(data, lo, hi):
                n += 1
                if n > MAX_ITERATIONS:
                    return
                found = self._check(cr, data, m, allows)
                if found is not None:
                    yield found

    def _check(self, cr: CompiledRule, data: bytes, m: re.Match[bytes],
               allows: Sequence[CompiledAllow]) -> tuple[int, int, int, bytes] | None:
        """(secret start, end, match start, secret) when the match passes every check, else None."""
        rule = cr.rule
        ms = m.start()
        if cr.prefix is not None:
            before = cr.prefix.search(data, max(0, ms - PREFIX_WINDOW), ms)
            if before is None:
                return None
            ms = before.start()
        s, e = m.span(cr.group)
        if s < 0 or e <= s:
            return None
        if cr.group == 0:
            s = ms
        ms = min(ms, s)
        if rule.boundary and ms > 0 and data[ms - 1] in _WORD:
            return None
        secret = data[s:e]
        if rule.entropy and shannon_entropy(secret) < rule.entropy:
            return None
        if rule.validate is not None and not rule.validate(secret):
            return None
        if rule.generic and not _plausible(secret, rule):
            return None
        if cr.allow_match is not None and cr.allow_match.search(data, ms, m.end()):
            return None
        if any((not a.rules or rule.id in a.rules) and a.regex is not None and a.regex.search(secret)
               for a in allows):
            return None
        return s, e, ms, secret

    def _hits(self, data: bytes, accepted: list[tuple[int, int, int, CompiledRule, bytes]]) -> list[SecretHit]:
        accepted.sort(key=lambda t: (t[0], t[3].order))
        spans = [(s, e) for s, e, _, _, _ in accepted]
        # A finding's line is where its match starts (a key's -----BEGIN line, a key=value's key), as editors
        # and SARIF viewers annotate it, not where the secret group starts (a PEM body starts a line later).
        anchors = [_anchor(data, ms, s) for s, _, ms, _, _ in accepted]
        lines: dict[int, int] = {}
        line, pos = 1, 0
        for at in sorted(set(anchors)):
            line += data.count(b"\n", pos, at)
            pos = at
            lines[at] = line
        return [SecretHit(rule=cr.rule, line=lines[at], excerpt=_excerpt(data, ms, s, secret, spans), start=s, end=e,
                          fingerprint=fingerprint(secret))
                for (s, e, ms, cr, secret), at in zip(accepted, anchors, strict=True)]


def _anchor(data: bytes, match_start: int, secret_start: int) -> int:
    """The first byte of the match that is not white space (a rule may start by consuming line ends)."""
    at = match_start
    while at < secret_start and data[at] in b" \t\r\n\f\v":
        at += 1
    return at


def _max_width(pattern: bytes) -> int | None:
    """The longest text a regex can match, when bounded (via the re module's own parser)."""
    try:
        parser: Any = importlib.import_module("re._parser")
        width = int(parser.parse(pattern).getwidth()[1])
    except Exception:  # a private module: when it changes, rules simply run over whole files
        return None
    return width if width < 1 << 20 else None


def _plausible(secret: bytes, rule: Rule) -> bool:
    """For key=value rules: a value that is a word, a reference, a path or code is not a secret."""
    value = secret.strip(b"\"'`,;")
    if value.lower().decode("utf-8", "replace") in PLACEHOLDER_WORDS:
        return False
    if value[:1] in (b"/", b"~") or value[:2] == b"./":
        return False
    if _NAMEISH.fullmatch(value) and _NAME_WORDS.search(value):
        return False  # proxypass, repo_pwd, db-secret: a name standing in for a value
    if rule.entropy:
        # Random credentials mix letters and digits; dotted names (settings.API_KEY) are code.
        if not (_HAS_DIGIT.search(value) and _HAS_LETTER.search(value)):
            return False
        if _DOTTED_NAME.fullmatch(value):
            return False
    return True


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _excerpt(data: bytes, match_start: int, s: int, secret: bytes, spans: list[tuple[int, int]]) -> str:
    """The bytes of the match before the secret (at most EXCERPT_CONTEXT, other secrets masked) + redaction."""
    ps = max(match_start, s - EXCERPT_CONTEXT)
    before = bytearray(data[ps:s])
    for s2, e2 in spans:
        if s2 < s and e2 > ps:
            for i in range(max(s2, ps), min(e2, s)):
                before[i - ps] = 0x2A  # '*'
    text = re.sub(r"\s+", " ", _printable(bytes(before).decode("utf-8", "replace")))
    return text + redact(secret.decode("utf-8", "replace"))
