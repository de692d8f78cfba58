"""The weak-password check of the baseline item: which hashes to try, the verdict cache, the search, the findings.

Where the hashes come from. The layer cache keeps account files redacted (analyzers/configfiles.py), so the hashes
exist only in `ImageFacts.private`, and only for layers read in this scan. Verdicts are cached by the account
file's sha256 and the candidate list (checks/verdicts.py), and that sha256 is in the cached layer facts, so:

- cold scan: the layer was read, the hashes are at hand, the search runs and its verdicts are kept;
- warm scan: the layer facts come from the cache without hashes; the verdicts come from the verdict cache, and no
  hash is computed;
- warm scan, verdict missing (the verdict cache was cleaned, or a larger budget asks for a deeper search): the one
  layer that holds the final account file is read again for that file only (`read_private`), then the search runs.

Why not search at walk time, inside the analyzer, so that the verdict is cached with the layer? The verdict depends
on the budget and the candidate list, and the layer facts must not (a budget change would invalidate every cached
layer of every image); the walk would also search every account file of every layer, while only the final one
matters; and a search inside the walk competes with inflating the other layers. Reading one layer again is rare
(the verdict and layer caches live side by side) and costs one layer's read.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hullscan.checks.accounts import LOCKED_OR_DISABLED, PASSWORD_FIELDS, SHADOW, Accounts, redact_field
from hullscan.checks.crypt import Crypt, CryptUnavailable, algorithm_of, excessive_cost, is_redacted, system_crypt
from hullscan.checks.files import finding
from hullscan.checks.passwords import (
    DEFAULT_BUDGET_SECONDS,
    Account,
    CrackResult,
    Snapshot,
    bundled_words,
    cheap_plan,
    crack,
    list_version,
)
from hullscan.checks.verdicts import VerdictStore, better, usable, verdict_key
from hullscan.errors import HullscanError, ScanStopped, ScanTimedOut
from hullscan.findings import CheckFinding, PasswordCheck, PasswordVerdict
from hullscan.model import ImageFacts

ITEM = "baseline"
PrivateReader = Callable[[str], dict[str, Any] | None]
ProgressFn = Callable[[str, float | None, float | None, str], None]  # detail, done, total, unit


@dataclass
class PasswordOptions:
    budget_seconds: float = DEFAULT_BUDGET_SECONDS  # the wordlist stage's; 0 leaves the empty and user-name tests
    show_passwords: bool = False  # passwords found in this run appear in the findings (never from the cache)
    verdicts: VerdictStore | None = None
    read_private: PrivateReader | None = None  # a final file's private facts, by reading its layer again
    progress: ProgressFn | None = None
    stop: Callable[[], bool] | None = None  # the scan was stopped or ran out of time
    warn: Callable[[str], None] | None = None
    words: Sequence[str] | None = None  # the candidate list (default: the bundled one)
    workers: int | None = None
    crypt: Crypt | None = None


@dataclass
class _Target:
    account: Account
    field: str  # the password field as kept (a hash marker, or a literal that names no secret)
    algorithm: str
    verdict: PasswordVerdict | None = None
    password: str | None = None  # found in this run


@dataclass
class Outcome:
    findings: list[CheckFinding] = field(default_factory=list)
    check: PasswordCheck | None = None


def check_passwords(facts: ImageFacts, accounts: Accounts, layers: dict[str, int], opts: PasswordOptions) -> Outcome:
    targets = _targets(accounts)
    if not targets:
        return Outcome()
    started = time.monotonic()
    words = bundled_words() if opts.words is None else opts.words
    version = list_version(words)
    budget = max(0.0, opts.budget_seconds)
    kept = _cached(facts, targets, version, budget, opts)
    hashes, missing = _hashes(facts, [t for t in targets if t.verdict is None], opts)
    calls = 0
    if hashes:
        calls = _search(targets, hashes, budget, words, opts)
    for t, reason in missing:
        t.verdict = PasswordVerdict(t.account.user, t.algorithm, skipped=reason, budget_seconds=budget)
    _keep(facts, targets, hashes, kept, version, opts)
    check = PasswordCheck(budget, f"bundled {version}" if opts.words is None else f"custom {version}",
                          len(set(words)), [t.verdict for t in targets if t.verdict is not None], calls,
                          time.monotonic() - started)
    out = [_weak(facts, accounts, layers, t, opts.show_passwords) for t in targets if t.verdict and t.verdict.weak]
    gap = _incomplete(facts, targets, check)
    if gap is not None:
        out.append(gap)
    return Outcome(out, check)


def _targets(accounts: Accounts) -> list[_Target]:
    out = []
    for user, value, source, line in accounts.password_fields():
        entry = accounts.user(user)
        hashed = value.lstrip("!")
        if entry is None or not hashed or LOCKED_OR_DISABLED.match(value) or hashed in ("*", "x"):
            continue
        account = Account(user, "" if is_redacted(hashed) else hashed, value.startswith("!"), entry.uid, source, line)
        out.append(_Target(account, value, algorithm_of(hashed)))
    return out


def _cached(facts: ImageFacts, targets: list[_Target], version: str, budget: float,
            opts: PasswordOptions) -> dict[str, dict[str, PasswordVerdict]]:
    """Fill in the verdicts the cache has (and returns what it held, per account file, for `_keep`)."""
    held: dict[str, dict[str, PasswordVerdict]] = {}
    if opts.verdicts is None:
        return held
    for source in sorted({t.account.source for t in targets}):
        digest = facts.config_digests.get(source)
        if digest is not None:
            held[source] = opts.verdicts.get(verdict_key(digest, version)) or {}
    for t in targets:
        v = held.get(t.account.source, {}).get(t.account.user)
        if v is not None and v.algorithm == t.algorithm and usable(v, budget):
            t.verdict = dataclasses.replace(v, cached=True)
    return held


def _hashes(facts: ImageFacts, todo: list[_Target],
            opts: PasswordOptions) -> tuple[list[_Target], list[tuple[_Target, str]]]:
    """(targets whose hash is now known, (target, why not) for the others)."""
    ready: list[_Target] = []
    missing: list[tuple[_Target, str]] = []
    private: dict[str, dict[str, Any]] = {s: dict(p) for s, p in facts.private.items()}
    why: dict[str, str] = {}
    for t in todo:
        source = t.account.source
        if t.account.hash:
            ready.append(t)
            continue
        if source not in private and source not in why:
            why[source] = _read_again(source, private, opts)
        original = private.get(source, {}).get(PASSWORD_FIELDS, {}).get(t.account.line)
        # The file read again must be the one the cached facts describe: its redacted field must match.
        if original is not None and redact_field(original) == t.field:
            t.account.hash = original.lstrip("!")
            ready.append(t)
        else:
            missing.append((t, why.get(source) or "its hash is not kept between scans"))
    return ready, missing


def _read_again(source: str, private: dict[str, dict[str, Any]], opts: PasswordOptions) -> str:
    if opts.read_private is None:
        return "its hash is not kept between scans and the image cannot be read again here"
    if opts.progress is not None:
        opts.progress(f"Weak passwords: reading the layer of /{source} again", None, None, "")
    try:
        found = opts.read_private(source)
    except (ScanStopped, ScanTimedOut):
        raise
    except HullscanError as exc:
        return f"its hash is not kept between scans and the layer holding /{source} could not be read again " \
               f"({exc.detail})"
    if found is None:
        return f"its hash is not kept between scans and /{source} is no longer in the image's layer"
    private[source] = found
    return ""


def _search(targets: list[_Target], ready: list[_Target], budget: float, words: Sequence[str],
            opts: PasswordOptions) -> int:
    try:
        crypt = opts.crypt or system_crypt()
    except CryptUnavailable as exc:
        for t in ready:
            t.verdict = PasswordVerdict(t.account.user, t.algorithm, skipped=f"not tried: {exc}",
                                        budget_seconds=budget)
        return 0
    progress = opts.progress

    def shown(snap: Snapshot) -> None:
        if progress is None:
            return
        if snap.stage == "wordlist":
            progress(f"Weak passwords: wordlist, {snap.tried:,} guesses for {snap.accounts} account(s)",
                     min(snap.elapsed, snap.budget_seconds), snap.budget_seconds, "s")
        else:
            progress(f"Weak passwords: empty and user-name tests, {snap.accounts} account(s)", snap.tried,
                     snap.cheap_total, "guesses")

    summary = crack([t.account for t in ready], budget, crypt, words=opts.words, workers=opts.workers,
                    stop=opts.stop, on_progress=shown)
    by_account = {id(r.account): r for r in summary.results}
    for t in ready:
        result: CrackResult = by_account[id(t.account)]
        t.verdict = result.verdict(budget)
        t.password = result.password
    return summary.crypt_calls


def _keep(facts: ImageFacts, targets: list[_Target], searched: list[_Target],
          held: dict[str, dict[str, PasswordVerdict]], version: str, opts: PasswordOptions) -> None:
    """Add this run's verdicts to the cache: only what another machine would conclude too (a method this system's
    libcrypt lacks, or a missing libcrypt, is not a property of the image)."""
    if opts.verdicts is None:
        return
    for source, doc in held.items():
        changed = False
        for t in searched:
            v = t.verdict
            if t.account.source != source or v is None or (v.skipped and excessive_cost(t.account.hash) is None):
                continue
            if better(v, doc.get(v.user)):
                doc[v.user] = v
                changed = True
        if changed:
            try:
                opts.verdicts.put(verdict_key(facts.config_digests[source], version), doc)
            except OSError as exc:
                if opts.warn is not None:
                    opts.warn(f"weak-password verdicts not cached: {exc}")


def _weak(facts: ImageFacts, accounts: Accounts, layers: dict[str, int], t: _Target, show: bool) -> CheckFinding:
    acct, v = t.account, t.verdict
    assert v is not None
    entry = accounts.user(acct.user)
    login = entry is not None and entry.login_shell
    severity = "MEDIUM" if acct.locked else "CRITICAL" if acct.uid == 0 else "HIGH" if login else "MEDIUM"
    how = {"empty": "it is the empty password", "username": "it is the user name or a trivial variant of it",
           "wordlist": f"it is among the first {v.tried:,} candidates of the common-password list (with "
                       "more user-name variants)"}.get(v.test, "it is a common password")
    metadata = {"user": acct.user, "algorithm": t.algorithm, "test": v.test, "tried": str(v.tried)}
    evidence = f"user {acct.user}, {t.algorithm}, {v.test} test"
    if show and t.password is not None:
        metadata["password"] = t.password
        evidence += f", password {t.password!r}"
    elif show:
        evidence += " (password not shown: found by an earlier scan, and passwords are never kept)"
    return finding(
        facts, ITEM, "weak-password", f"Weak password for user {acct.user} ({t.algorithm})", severity,
        description=f"The password of {acct.user} (/{acct.source}) was guessed: {how}."
        + (" The account is locked, but unlocking it or reusing the password elsewhere exposes it."
           if acct.locked else ""),
        remediation=f"Lock {acct.user}'s password (usermod -p '*' {acct.user}) in the Dockerfile: images should "
        "not carry login passwords. If one is needed, set a long random one at deploy time.",
        path=acct.source, line=acct.line, evidence=evidence, layer=layers.get(acct.source, -1), metadata=metadata)


def _incomplete(facts: ImageFacts, targets: list[_Target], check: PasswordCheck) -> CheckFinding | None:
    """A finding for hashes that did not get even the cheap tests. A wordlist stage cut by its budget is the
    budget working as set: the report states how far it got (PasswordCheck), no finding."""
    skipped = [t for t in targets if t.verdict is not None and t.verdict.skipped]
    cut = [t for t in targets if t.verdict is not None and not t.verdict.skipped and not t.verdict.weak
           and t.verdict.tried < _cheap_count(t)]
    if not skipped and not cut:
        return None
    parts = []
    if cut:
        parts.append(f"The empty and user-name tests did not finish for {len(cut)} account(s) "
                     "(the image has too many password hashes for the time allowed): "
                     + ", ".join(f"{t.account.user} ({t.algorithm})" for t in cut[:20])
                     + (f" and {len(cut) - 20} more" if len(cut) > 20 else "") + ".")
    if skipped:
        parts.append("Not tried: " + "; ".join(f"{t.account.user} ({t.verdict.skipped})" for t in skipped[:20]
                                               if t.verdict is not None) + ".")
    return finding(
        facts, ITEM, "weak-password-incomplete", "Weak-password search did not cover every account", "UNKNOWN",
        description=" ".join(parts),
        remediation="Remove the password hashes from the image (lock the accounts), or scan where libxcrypt can "
        "compute them.",
        path=SHADOW if SHADOW in facts.config_files else "",
        metadata={"budget_seconds": f"{check.budget_seconds:g}", "accounts_cut": str(len(cut)),
                  "accounts_skipped": str(len(skipped))})


def _cheap_count(t: _Target) -> int:
    return len(cheap_plan(t.account.user))

