"""Weak passwords: every password hash of the image tried against common passwords, within a time budget.

Candidates per account, in order: username variants (alice, alice123, ecila, ...), the distribution and
appliance defaults (system-defaults.txt), then the 10,000 most common passwords (common-passwords.txt,
from zxcvbn; see wordlists/PROVENANCE.md). Hashes are computed by the system's libxcrypt through ctypes
(checks.crypt), on one thread per CPU: ctypes releases the GIL during each crypt_rn call.

Scheduling is time-fair: the next guess goes to the unfinished account that has used the least CPU
time, so fast hashes (md5crypt, sha512crypt) finish their whole list while slow ones (yescrypt) share
what is left of the budget, and a budget cut says how far each account got.
"""

from __future__ import annotations

import heapq
import hmac
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from hullscan.checks.crypt import Crypt, algorithm_of, excessive_cost

WORDLISTS = ("system-defaults.txt", "common-passwords.txt")
# Grace after the budget for the guesses in flight (one crypt call each; costs are capped in crypt.py).
GRACE_SECONDS = 5.0


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


def username_variants(user: str) -> list[str]:
    """What people derive from a user name: alice, alice123, alice@123, Alice123, alice!, 123alice, ecila..."""
    cap = user[:1].upper() + user[1:]
    variants = [user, f"{user}123", f"{user}@123", f"{cap}123", f"{user}!", f"123{user}", user[::-1],
                f"{user}1", f"{user}12", f"{user}1234", f"{user}2024", f"{user}2025", cap, f"{cap}@123",
                f"{user}{user}", f"{user}#123"]
    return variants


def candidates_for(user: str, words: Sequence[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for w in ["", *username_variants(user), *words]:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


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
    tried: int = 0
    total: int = 0
    skipped: str = ""  # why the hash was not tried (unsupported method, cost too high)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.password is not None or (not self.skipped and self.tried >= self.total)


@dataclass
class CrackSummary:
    results: list[CrackResult] = field(default_factory=list)
    budget_seconds: float = 0.0
    elapsed: float = 0.0
    workers: int = 0
    budget_exhausted: bool = False

    def found(self) -> list[CrackResult]:
        return [r for r in self.results if r.password is not None]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _Job:
    def __init__(self, result: CrackResult, candidates: list[str]) -> None:
        self.result = result
        self.candidates = candidates
        self.next = 0
        self.in_flight = 0
        self.spent = 0.0
        self.estimate = 0.0

    @property
    def exhausted(self) -> bool:
        return self.result.password is not None or self.next >= len(self.candidates)


def crack(accounts: Sequence[Account], budget_seconds: float, crypt: Crypt, *, words: Sequence[str] | None = None,
          workers: int | None = None) -> CrackSummary:
    """Try every account's hash against its candidates until found, exhausted or out of time."""
    words = bundled_words() if words is None else words
    workers = workers or default_workers()
    summary = CrackSummary(budget_seconds=budget_seconds, workers=workers)
    start = time.monotonic()
    deadline = start + max(0.0, budget_seconds)
    jobs: list[_Job] = []
    for acct in accounts:
        result = CrackResult(acct, algorithm_of(acct.hash))
        summary.results.append(result)
        reason = excessive_cost(acct.hash)
        if reason is None and not crypt.supports(acct.hash):
            reason = f"this system's libcrypt cannot compute {result.algorithm} hashes"
        if reason is not None:
            result.skipped = reason
            continue
        candidates = candidates_for(acct.user, words)
        result.total = len(candidates)
        jobs.append(_Job(result, candidates))

    lock = threading.Lock()
    heap: list[tuple[float, int]] = [(0.0, i) for i in range(len(jobs))]
    heapq.heapify(heap)

    def take() -> tuple[_Job, str] | None:
        with lock:
            while heap:
                _, i = heapq.heappop(heap)
                job = jobs[i]
                if job.exhausted:
                    continue
                word = job.candidates[job.next]
                job.next += 1
                job.in_flight += 1
                if not job.exhausted:
                    # charge the expected cost now, so the other threads pick the next-poorest account
                    heapq.heappush(heap, (job.spent + job.estimate * job.in_flight, i))
                return job, word
            return None

    def work() -> None:
        while time.monotonic() < deadline:
            picked = take()
            if picked is None:
                return
            job, word = picked
            t0 = time.monotonic()
            out = crypt.hash(word, job.result.account.hash)
            took = time.monotonic() - t0
            with lock:
                job.in_flight -= 1
                job.spent += took
                job.estimate = took
                job.result.tried += 1
                job.result.seconds += took
                if (out is not None and job.result.password is None
                        and hmac.compare_digest(out.encode(), job.result.account.hash.encode())):
                    job.result.password = word

    if jobs:
        threads = [threading.Thread(target=work, name=f"hullscan-crypt-{n}", daemon=True)
                   for n in range(min(workers, sum(len(j.candidates) for j in jobs)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline + GRACE_SECONDS - time.monotonic()))
    summary.elapsed = time.monotonic() - start
    with lock:
        summary.budget_exhausted = any(not j.exhausted for j in jobs)
    return summary
