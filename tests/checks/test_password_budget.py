"""The weak-password search's order, counts and budget, and its verdict cache: hashes made here with libxcrypt,
every guess counted through the crypt interface (a real libcrypt that also records what it was asked)."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

from hullscan.analyzers.configfiles import ConfigFilesAnalyzer
from hullscan.checks.accounts import Accounts
from hullscan.checks.baseline import BaselineDetector
from hullscan.checks.crypt import Crypt
from hullscan.checks.passwords import EXTRA_AFTER, Account, cheap_plan, crack, list_version, plan, trivial_variants
from hullscan.checks.verdicts import VerdictCache, verdict_key
from hullscan.checks.weakpasswords import PasswordOptions
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding
from hullscan.model import FileEntry, ImageFacts

WORDS = ["dragon", "alice", "monkey", "letmein", "sunshine"]
# longer than the head of the list, with user-name variants in it (at the head and after it)
LONG = ["123456", "bob@123", *(f"word{n}" for n in range(EXTRA_AFTER)), "alice2024", "Bob123", "password"]


class Recording(Crypt):
    """The system's libcrypt, recording every (password, user) it hashes for."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: dict[str, str] = {}  # hash -> user, set by the test
        self.seen: list[tuple[str, str]] = []

    def hash(self, phrase: str | bytes, setting: str) -> str | None:
        self.seen.append((str(phrase), self.owner.get(setting, "?")))
        return super().hash(phrase, setting)

    def tried_by(self, user: str) -> list[str]:
        return [p for p, u in self.seen if u == user]


def accounts(crypt: Recording, passwords: dict[str, str]) -> list[Account]:
    out = []
    for n, (user, password) in enumerate(passwords.items()):
        hashed = crypt.make(password, "$1$")
        crypt.owner[hashed] = user
        out.append(Account(user, hashed, uid=1000 + n))
    crypt.seen.clear()
    return out


def test_cheapest_tests_first_stage_by_stage_then_the_wordlist_in_rank_order() -> None:
    crypt = Recording()
    accts = accounts(crypt, {"alice": secrets.token_urlsafe(12), "bob": secrets.token_urlsafe(12)})
    summary = crack(accts, 60.0, crypt, words=WORDS, workers=1)
    # every account's empty test, then every account's user-name tests, then the wordlist
    assert crypt.seen[:2] == [("", "alice"), ("", "bob")]
    assert trivial_variants("bob")[-1] == "bob"  # a palindrome: tried once
    assert crypt.seen[2:11] == [(c, "alice") for c in trivial_variants("alice")] + \
        [(c, "bob") for _, c in cheap_plan("bob")[1:]]
    for user in ("alice", "bob"):
        assert crypt.tried_by(user) == [c for _, c in plan(user, WORDS)]  # each account's own order, no repeats
    for r in summary.results:
        assert r.password is None and r.complete and r.tried == r.total == len(plan(r.account.user, WORDS))
    assert summary.crypt_calls == len(crypt.seen) == sum(r.tried for r in summary.results)


def test_wordlist_top_first_then_the_rarer_user_name_variants() -> None:
    crypt = Recording()
    accts = accounts(crypt, {"alice": secrets.token_urlsafe(12), "bob": secrets.token_urlsafe(12)})
    summary = crack(accts, 60.0, crypt, words=LONG, workers=2)
    for user in ("alice", "bob"):
        tried = crypt.tried_by(user)
        assert tried == [c for _, c in plan(user, LONG)] and len(tried) == len(set(tried))
        assert tried.index("123456") < tried.index(f"{user}@123") < tried.index("password")
    # where the list has it: after the cheap tests and 123456
    assert crypt.tried_by("bob").index("bob@123") == len(cheap_plan("bob")) + 1
    assert all(r.tried == r.total for r in summary.results)


def test_the_search_of_an_account_ends_where_its_password_is_found() -> None:
    crypt = Recording()
    accts = accounts(crypt, {"alice": "alice1", "bob": "monkey", "carol": ""})
    summary = crack(accts, 60.0, crypt, words=WORDS, workers=1)
    by = {r.account.user: r for r in summary.results}
    assert (by["carol"].found_by, by["carol"].tried) == ("empty", 1)
    assert (by["alice"].found_by, crypt.tried_by("alice")) == ("username", ["", "alice", "alice123", "alice1"])
    assert by["bob"].found_by == "wordlist"
    bob = [c for _, c in plan("bob", WORDS)]
    assert crypt.tried_by("bob") == bob[: bob.index("monkey") + 1]
    # what may be kept says by which test, and only a bound on the tries (the exact count would name it)
    v = by["alice"].verdict(60.0)
    assert (v.weak, v.test, v.tried) == (True, "username", 10)
    assert "alice1" not in repr(v) and by["alice"].account.hash not in repr(v)


def test_budget_zero_keeps_the_empty_and_user_name_tests() -> None:
    crypt = Recording()
    accts = accounts(crypt, {"dave": "dragon", "erin": "erin123"})
    summary = crack(accts, 0.0, crypt, words=WORDS, workers=2)
    by = {r.account.user: r for r in summary.results}
    assert by["erin"].password == "erin123" and by["erin"].found_by == "username"
    assert by["dave"].password is None and by["dave"].tried == len(cheap_plan("dave")) == 6
    assert by["dave"].total == len(plan("dave", WORDS)) and not by["dave"].complete
    assert not {p for p, _ in crypt.seen} & set(WORDS)  # no wordlist candidate was hashed


def test_a_stopped_scan_hashes_nothing_more() -> None:
    crypt = Recording()
    summary = crack(accounts(crypt, {"frank": "frank"}), 60.0, crypt, words=WORDS, stop=lambda: True)
    assert summary.crypt_calls == 0 and crypt.seen == [] and summary.results[0].tried == 0


# -- the verdict cache ---------------------------------------------------------------------------------------------


def facts_of(passwords: dict[str, str], crypt: Crypt, *, prefix: str = "$1$") -> tuple[ImageFacts, str, list[str]]:
    """An image as the walk leaves it: account files through the real config-files analyzer (redacted text, the
    sha256, and the hashes in `private`). Returns the facts, the shadow text and its hashes."""
    passwd = ["root:x:0:0:root:/root:/bin/bash"]
    shadow = ["root:*:19700:0:99999:7:::"]
    hashes = []
    for n, (user, password) in enumerate(passwords.items()):
        passwd.append(f"{user}:x:{1000 + n}:{1000 + n}::/home/{user}:/bin/bash")
        hashes.append(crypt.make(password, prefix))
        shadow.append(f"{user}:{hashes[-1]}:19700:0:99999:7:::")
    facts = ImageFacts(reference="cache:test", files=[(FileEntry("etc/passwd", "f"), 0), (FileEntry("etc/shadow",
                                                                                                     "f"), 1)])
    text = "\n".join(shadow) + "\n"
    analyzer = ConfigFilesAnalyzer()
    for path, body in (("etc/passwd", "\n".join(passwd) + "\n"), ("etc/shadow", text)):
        ff = analyzer.analyze(path, FileEntry(path, "f"), io.BytesIO(body.encode()))
        assert ff is not None
        facts.config_files[path] = ff.hints["config_file"]
        facts.config_digests[path] = ff.hints["config_sha256"]
        if ff.private:
            facts.private[path] = ff.private
    return facts, text, hashes


def warm(facts: ImageFacts) -> ImageFacts:
    """The same image with its layer facts from the cache: no private facts."""
    return ImageFacts(reference=facts.reference, files=facts.files, config_files=dict(facts.config_files),
                      config_digests=dict(facts.config_digests))


def run(facts: ImageFacts, crypt: Crypt, cache: Path | None, *, budget: float = 60.0, show: bool = False,
        reader: Any = None) -> tuple[list[CheckFinding], BaselineDetector]:
    opts = PasswordOptions(verdicts=VerdictCache(cache) if cache else None, read_private=reader, workers=1)
    det = BaselineDetector(words=WORDS, crypt=crypt, passwords=opts)
    found = det.weak_passwords(facts, Accounts.of(facts), {"etc/shadow": 1},
                               DetectContext(password_budget_seconds=budget, show_weak_passwords=show))
    return found, det


def weak_users(found: list[CheckFinding]) -> dict[str, str]:
    return {f.metadata["user"]: f.metadata["test"] for f in found if f.id == "weak-password"}


def test_warm_scan_takes_verdicts_from_the_cache_without_a_single_hash(tmp_path: Path) -> None:
    crypt = Crypt()
    facts, text, hashes = facts_of({"alice": "alice123", "bob": "monkey", "carol": secrets.token_urlsafe(12)},
                                   crypt)
    assert not any(h in str(facts.config_files) for h in hashes)  # the kept text is redacted
    before = crypt.calls
    cold, det = run(facts, crypt, tmp_path, show=True)
    assert weak_users(cold) == {"alice": "username", "bob": "wordlist"}
    assert det.password_check is not None and det.password_check.crypt_calls == crypt.calls - before > 0
    assert {f.metadata["user"]: f.metadata["password"] for f in cold if f.id == "weak-password"} == \
        {"alice": "alice123", "bob": "monkey"}

    # what the cache holds: verdicts, no password, no hash
    files = list((tmp_path / "passwords").rglob("*.json"))
    assert len(files) == 1
    kept = files[0].read_text()
    for secret in [*hashes, "alice123", "monkey", text]:
        assert secret not in kept
    doc = json.loads(kept)["verdicts"]
    assert doc["carol"] == {"algorithm": "md5crypt", "weak": False, "test": "", "tried": len(plan("carol", WORDS)),
                            "total": len(plan("carol", WORDS)), "skipped": "", "budget_seconds": 60.0}
    assert doc["alice"]["weak"] and doc["alice"]["tried"] == 10

    before = crypt.calls
    again, det = run(warm(facts), crypt, tmp_path, show=True)
    assert crypt.calls == before  # zero hashes computed
    assert weak_users(again) == weak_users(cold)
    assert all("password" not in f.metadata and "earlier scan" in f.evidence for f in again)
    check = det.password_check
    assert check is not None and check.crypt_calls == 0 and all(v.cached for v in check.verdicts)
    assert [(v.user, v.weak, v.tried) for v in check.verdicts] == \
        [(v["user"], v["weak"], v["tried"]) for v in ({"user": u, **doc[u]} for u in ("alice", "bob", "carol"))]


def test_same_shadow_in_another_image_pays_nothing(tmp_path: Path) -> None:
    crypt = Crypt()
    facts, _, _ = facts_of({"alice": "alice123"}, crypt)
    run(facts, crypt, tmp_path)
    other = warm(facts)
    other.reference = "another:image"
    before = crypt.calls
    assert weak_users(run(other, crypt, tmp_path)[0]) == {"alice": "username"}
    assert crypt.calls == before


def test_a_cut_verdict_answers_smaller_budgets_and_a_larger_one_searches_again(tmp_path: Path) -> None:
    crypt = Crypt()
    facts, _, _ = facts_of({"gina": secrets.token_urlsafe(12)}, crypt)
    run(facts, crypt, tmp_path, budget=0)  # the cheap tests only: the search is cut, its verdict kept
    before = crypt.calls
    _, det = run(warm(facts), crypt, tmp_path, budget=0)
    assert crypt.calls == before and det.password_check is not None and det.password_check.verdicts[0].cached
    # a larger budget needs the hashes: the layer is read again (here: the facts the walk would give back)
    reads: list[str] = []

    def reader(path: str) -> dict[str, Any] | None:
        reads.append(path)
        return facts.private.get(path)

    found, det = run(warm(facts), crypt, tmp_path, budget=60, reader=reader)
    assert reads == ["etc/shadow"] and crypt.calls > before and found == []
    v = det.password_check.verdicts[0] if det.password_check else None
    assert v is not None and not v.cached and v.complete and v.tried == v.total
    before = crypt.calls
    run(warm(facts), crypt, tmp_path, budget=60)  # and that deeper verdict now answers too
    assert crypt.calls == before


def test_missing_verdict_and_no_way_to_read_the_hash_is_reported(tmp_path: Path) -> None:
    crypt = Crypt()
    facts, _, _ = facts_of({"hank": "hank"}, crypt)
    before = crypt.calls
    found, _ = run(warm(facts), crypt, tmp_path)
    assert crypt.calls == before  # nothing to hash: there is no hash
    gap = [f for f in found if f.id == "weak-password-incomplete"]
    assert len(gap) == 1 and "not kept between scans" in gap[0].description
    assert list((tmp_path / "passwords").rglob("*.json")) == []  # a verdict about this machine is not kept


def test_no_cache_means_no_verdicts_read_or_written(tmp_path: Path) -> None:
    crypt = Crypt()
    facts, _, _ = facts_of({"ivan": "ivan"}, crypt)
    run(facts, crypt, None)
    assert not (tmp_path / "passwords").exists()


def test_damaged_or_foreign_verdict_documents_are_misses(tmp_path: Path) -> None:
    crypt = Crypt()
    facts, _, _ = facts_of({"judy": "judy"}, crypt)
    key = verdict_key(facts.config_digests["etc/shadow"], list_version(WORDS))
    path = tmp_path / "passwords" / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True)
    for bad in ["[" * 100_000, '{"format": 1, "verdicts": {"judy": {"weak": "yes"}}}', "\xff", "{}"]:
        path.write_text(bad, encoding="utf-8", errors="surrogateescape")
        before = crypt.calls
        found, _ = run(facts, crypt, tmp_path)
        assert weak_users(found) == {"judy": "username"} and crypt.calls > before  # searched again ...
        assert json.loads(path.read_text())["verdicts"]["judy"]["weak"]  # ... and the document rewritten
    assert VerdictCache(tmp_path).get("../../etc/passwd-1") is None
