"""Weak passwords: every password hash of the image tried against guessable passwords, cheapest tests first.

Tests per account, in this order:
  1. empty: the empty password (a hash of "" opens the account as surely as an empty field);
  2. username: the user name and trivial variants (alice, alice123, alice1, Alice, ecila);
  3. wordlist: the bundled list in rank order: distribution and appliance defaults (system-defaults.txt), then the
     10,000 most common passwords (common-passwords.txt, from zxcvbn; see wordlists/PROVENANCE.md), with more
     user-name variants (alice@123, 123alice, alice2024, ...) after the first EXTRA_AFTER entries.
Across accounts the order is stage by stage: every account gets the empty test, then every account the user-name
tests, before any gets the wordlist, so a budget cut never leaves an account without the cheap tests.

The budget is the wordlist stage's wall-clock time (0 skips the stage); the cheap stages always run, bounded only
by CHEAP_SECONDS against images with thousands of accounts. In the wordlist stage scheduling is time-fair: the next
guess goes to the unfinished account that has used the least CPU time, so fast hashes (md5crypt, sha512crypt) get
far down the list while slow ones (yescrypt) share what is left, and a cut says how far each account got.

Hashes are computed by the system's libxcrypt through ctypes (checks.crypt), on one thread per CPU: ctypes releases
the GIL during each crypt_rn call.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from hullscan.checks.crypt import Crypt, algorithm_of, excessive_cost
from hullscan.findings import PasswordVerdict

WORDLISTS = ("system-defaults.txt", "common-passwords.txt")
# Bump when the tests, their order or the variants change: verdicts found under another plan are not reused.
PLAN_VERSION = 2
# The default wordlist-stage budget. A default scan of a typical image (a Debian base, a few application layers,
# a handful of yescrypt accounts; about 2 s without the check) then stays within 1.5x the same scan without the
# check, cheap stages included; benchmarks/bench_passwords.py measures it. --password-budget searches further.
DEFAULT_BUDGET_SECONDS = 0.5
# The distribution defaults and the most common passwords are likelier in an image than the rarer user-name variants.
EXTRA_AFTER = 50
# Bound of the empty and user-name stages, which run whatever the budget: 6 guesses per account.
CHEAP_SECONDS = 10.0
# Grace after a deadline for the guesses in flight (one crypt call each; costs are capped in crypt.py).
GRACE_SECONDS = 5.0
TICK_SECONDS = 0.1  # how often progress is reported while hashing


@lru_cache(maxsize=1)
def bundled_words() -> tuple[str, ...]:
    """The bundled candidate list: defaults first, then common passwords by frequency, without repeats."""
    out: list[str] = []
    seen: set[str] = set()
    base = resources.files("hullscan.checks").joinpath("wordlists")
    for name in WORDLISTS:
        for line in base.joinpath(name).read_text(encoding="utf-8").splitlines():
            word = line.rstrip("\r\n")
            if word and word not in seen:
                seen.add(word)
                out.append(word)
    return tuple(out)


def list_version(words: Sequence[str]) -> str:
    """Identifies a candidate list and the plan around it: a verdict is reused only under the same one."""
    if words is bundled_words():
        return _bundled_version()
    return _version_of(tuple(words))


@lru_cache(maxsize=1)
def _bundled_version() -> str:
    return _version_of(bundled_words())


def _version_of(words: tuple[str, ...]) -> str:
    digest = hashlib.sha256(f"plan {PLAN_VERSION}\n".encode())
    for w in words:
        digest.update(w.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()[:16]


def trivial_variants(user: str) -> list[str]:
    """The user-name stage: the name itself and what people make of it with the least effort."""
    return [user, f"{user}123", f"{user}1", user[:1].upper() + user[1:], user[::-1]]


def more_variants(user: str) -> list[str]:
    """User-name variants tried at the head of the wordlist stage."""
    cap = user[:1].upper() + user[1:]
    return [f"{user}@123", f"{cap}123", f"{user}!", f"123{user}", f"{user}12", f"{user}1234", f"{user}2024",
            f"{user}2025", f"{cap}@123", f"{user}{user}", f"{user}#123"]


def username_variants(user: str) -> list[str]:
    """Every user-name variant, in the order they are tried."""
    return _unique([*trivial_variants(user), *more_variants(user)])


def plan(user: str, words: Sequence[str]) -> list[tuple[str, str]]:
    """(stage, candidate) in the order one account is tried, without repeats: the whole search written out (for
    tests and tools; the search itself walks `words` in place)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    wordlist = [*words[:EXTRA_AFTER], *more_variants(user), *words[EXTRA_AFTER:]]
    stages = (("empty", [""]), ("username", trivial_variants(user)), ("wordlist", wordlist))
    for stage, candidates in stages:
        for c in candidates:
            if c not in seen and (c or stage == "empty"):
                seen.add(c)
                out.append((stage, c))
    return out


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class Account:
    user: str
    hash: str  # without the "!" lock prefix
    locked: bool = False
    uid: int | None = None
    source: str = "etc/shadow"
    line: int = 0


@dataclass
class CrackResult:
    account: Account
    algorithm: str
    password: str | None = None  # found; never rendered unless the user asked to see it
    found_by: str = ""  # the stage that found it
    tried: int = 0
    total: int = 0
    skipped: str = ""  # why the hash was not tried (unsupported method, cost too high)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.password is not None or (not self.skipped and self.tried >= self.total)

    def verdict(self, budget_seconds: float) -> PasswordVerdict:
        """What may be kept and shown: no password, and for a weak account only a bound on the tries."""
        weak = self.password is not None
        return PasswordVerdict(self.account.user, self.algorithm, weak=weak, test=self.found_by,
                               tried=_bound(self.tried) if weak else self.tried, total=self.total,
                               skipped=self.skipped, budget_seconds=budget_seconds)


def _bound(tried: int) -> int:
    bound = 10
    while bound < tried:
        bound *= 10
    return bound


@dataclass
class Snapshot:
    """Where a search is, for a progress display."""

    stage: str
    tried: int  # candidates tried so far, all accounts
    accounts: int
    cheap_total: int  # candidates of the empty and user-name stages, all accounts
    elapsed: float  # seconds in the current stage
    budget_seconds: float


@dataclass
class CrackSummary:
    results: list[CrackResult] = field(default_factory=list)
    budget_seconds: float = 0.0
    elapsed: float = 0.0
    workers: int = 0
    budget_exhausted: bool = False
    crypt_calls: int = 0


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _Job:
    """One account's search. The wordlist stage walks the shared `words` in place, with `extra` after the first
    EXTRA_AFTER of them (an image with many accounts must not copy a 10,000-word list per account)."""

    def __init__(self, result: CrackResult, cheap: list[tuple[str, str]], extra: list[str],
                 words: Sequence[str]) -> None:
        self.result = result
        self.cheap = cheap
        self.extra = extra
        self.words = words
        self.skip = {c for _, c in cheap} | set(extra)  # tried before the list proper
        self.cursor = 0  # position in extra + words
        self.in_flight = 0
        self.spent = 0.0
        self.estimate = 0.0

    @property
    def found(self) -> bool:
        return self.result.password is not None

    def next_word(self) -> str | None:
        head = min(EXTRA_AFTER, len(self.words))
        while self.cursor < len(self.extra) + len(self.words):
            i = self.cursor
            self.cursor += 1
            if head <= i < head + len(self.extra):
                return self.extra[i - head]
            word = self.words[i if i < head else i - len(self.extra)]
            if word not in self.skip:
                return word
        return None


Pick = tuple[_Job, str, str]  # the account, its stage, the candidate


def crack(accounts: Sequence[Account], budget_seconds: float, crypt: Crypt, *, words: Sequence[str] | None = None,
          workers: int | None = None, stop: Callable[[], bool] | None = None,
          on_progress: Callable[[Snapshot], None] | None = None) -> CrackSummary:
    """Try every account's hash, stage by stage, until found, exhausted, out of budget or stopped."""
    words = bundled_words() if words is None else _unique(list(words))
    word_set = _bundled_set() if words is bundled_words() else frozenset(words)
    workers = workers or default_workers()
    summary = CrackSummary(budget_seconds=budget_seconds, workers=workers)
    calls_before = crypt.calls
    start = time.monotonic()
    jobs: list[_Job] = []
    head = set(words[:EXTRA_AFTER])  # a variant the top of the list holds is tried there, as plan() has it
    for acct in accounts:
        result = CrackResult(acct, algorithm_of(acct.hash))
        summary.results.append(result)
        cheap = cheap_plan(acct.user)
        first = {c for _, c in cheap}
        extra = [w for w in _unique(more_variants(acct.user)) if w not in first and w not in head]
        result.total = len(cheap) + len(extra) + len(word_set - first - set(extra))
        reason = excessive_cost(acct.hash)
        if reason is None and not crypt.supports(acct.hash):
            reason = f"this system's libcrypt cannot compute {result.algorithm} hashes"
        if reason is not None:
            result.skipped = reason
            continue
        jobs.append(_Job(result, cheap, extra, words))

    search = _Search(jobs, crypt, workers, stop or (lambda: False), on_progress, budget_seconds)
    search.cheap(start + CHEAP_SECONDS)
    if budget_seconds > 0:
        search.wordlist(time.monotonic() + budget_seconds)
    summary.elapsed = time.monotonic() - start
    summary.crypt_calls = crypt.calls - calls_before
    summary.budget_exhausted = any(not j.result.complete for j in jobs)
    return summary


def cheap_plan(user: str) -> list[tuple[str, str]]:
    """The empty and user-name stages of one account: (stage, candidate), without repeats."""
    return [("empty", ""), *(("username", c) for c in _unique(trivial_variants(user)) if c)]


@lru_cache(maxsize=1)
def _bundled_set() -> frozenset[str]:
    return frozenset(bundled_words())


class _Search:
    """The worker threads of one crack() call, stage by stage."""

    def __init__(self, jobs: list[_Job], crypt: Crypt, workers: int, stop: Callable[[], bool],
                 on_progress: Callable[[Snapshot], None] | None, budget_seconds: float) -> None:
        self.jobs = jobs
        self.crypt = crypt
        self.workers = workers
        self.stop = stop
        self.on_progress = on_progress
        self.budget_seconds = budget_seconds
        self.lock = threading.Lock()
        self.tried = 0
        self.cheap_total = sum(len(j.cheap) for j in jobs)
        self.stage = "empty"
        self.stage_start = time.monotonic()

    def cheap(self, deadline: float) -> None:
        """Every account's empty test, then every account's user-name tests, in that order."""
        queue: deque[Pick] = deque()
        for stage in ("empty", "username"):
            for job in self.jobs:
                queue.extend((job, s, c) for s, c in job.cheap if s == stage)

        def take() -> Pick | None:
            while queue:
                pick = queue.popleft()
                if not pick[0].found:
                    self.stage = pick[1]
                    return pick
            return None

        self._run(take, deadline, len(queue))

    def wordlist(self, deadline: float) -> None:
        """The rest of each account's candidates, time-fair: the poorest unfinished account guesses next."""
        self.stage, self.stage_start = "wordlist", time.monotonic()
        heap: list[tuple[float, int]] = [(0.0, i) for i, j in enumerate(self.jobs) if not j.found]
        heapq.heapify(heap)

        def take() -> Pick | None:
            while heap:
                _, i = heapq.heappop(heap)
                job = self.jobs[i]
                word = None if job.found else job.next_word()
                if word is None:
                    continue
                # charge the expected cost now, so the other threads pick the next-poorest account
                heapq.heappush(heap, (job.spent + job.estimate * (job.in_flight + 1), i))
                return job, "wordlist", word
            return None

        self._run(take, deadline, self.workers if heap else 0)

    def _run(self, take: Callable[[], Pick | None], deadline: float, most: int) -> None:
        def work() -> None:
            while time.monotonic() < deadline and not self.stop():
                with self.lock:
                    picked = take()
                    if picked is not None:
                        picked[0].in_flight += 1
                if picked is None:
                    return
                job, stage, word = picked
                t0 = time.monotonic()
                out = self.crypt.hash(word, job.result.account.hash)
                took = time.monotonic() - t0
                with self.lock:
                    job.in_flight -= 1
                    job.spent += took
                    job.estimate = took
                    job.result.tried += 1
                    job.result.seconds += took
                    self.tried += 1
                    if (out is not None and job.result.password is None
                            and hmac.compare_digest(out.encode(), job.result.account.hash.encode())):
                        job.result.password = word
                        job.result.found_by = stage

        if most <= 0 or self.stop():
            return
        threads = [threading.Thread(target=work, name=f"hullscan-crypt-{n}", daemon=True)
                   for n in range(min(self.workers, most))]
        for t in threads:
            t.start()
        # This thread reports progress while the workers hash, and waits at most a grace past the deadline (a guess
        # in flight cannot be interrupted; its thread is a daemon).
        for t in threads:
            while t.is_alive() and time.monotonic() < deadline + GRACE_SECONDS:
                t.join(TICK_SECONDS)
                self._report()
        self._report()

    def _report(self) -> None:
        if self.on_progress is None:
            return
        with self.lock:
            snap = Snapshot(self.stage, self.tried, len(self.jobs), self.cheap_total,
                            time.monotonic() - self.stage_start, self.budget_seconds)
        self.on_progress(snap)
