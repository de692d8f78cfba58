"""Weak passwords: hashes made here with libxcrypt, tried by the baseline detector within its budget."""

from __future__ import annotations

import io
import secrets

import pytest
from rich.console import Console

from hullscan.checks.accounts import Accounts
from hullscan.checks.baseline import BaselineDetector
from hullscan.checks.crypt import system_crypt
from hullscan.checks.passwords import (
    EXTRA_AFTER,
    Account,
    bundled_words,
    cheap_plan,
    crack,
    plan,
    trivial_variants,
    username_variants,
)
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding, ScanReport
from hullscan.model import Descriptor, FileEntry, ImageFacts, LayerInfo
from hullscan.report import html, json_report, sarif, table

CRYPT = system_crypt()
PREFIXES = {"yescrypt": "$y$", "gost-yescrypt": "$gy$", "bcrypt": "$2b$", "sha512crypt": "$6$",
            "sha256crypt": "$5$", "md5crypt": "$1$"}


def make_hash(password: str, algorithm: str) -> str:
    if algorithm == "descrypt":
        h = CRYPT.hash(password, "Qx")
        assert h is not None
        return h
    return CRYPT.make(password, PREFIXES[algorithm])


def image(users: dict[str, str], *, shells: dict[str, str] | None = None, uids: dict[str, int] | None = None,
          passwd_fields: dict[str, str] | None = None) -> ImageFacts:
    """An image whose /etc/shadow (layer 1) gives each user the hash field in `users`."""
    passwd = ["root:x:0:0:root:/root:/bin/bash"]
    shadow = []
    for n, (user, field) in enumerate(users.items()):
        uid = (uids or {}).get(user, 1000 + n)
        pw = (passwd_fields or {}).get(user, "x")
        if user != "root":
            passwd.append(f"{user}:{pw}:{uid}:{uid}::/home/{user}:{(shells or {}).get(user, '/bin/bash')}")
        shadow.append(f"{user}:{field}:19700:0:99999:7:::")
    if "root" not in users:
        shadow.insert(0, "root:*:19700:0:99999:7:::")
    layers = [LayerInfo(i, Descriptor("application/vnd.oci.image.layer.v1.tar", f"sha256:{i:064x}", 1),
                        f"sha256:{i + 7:064x}", f"RUN step {i}") for i in range(2)]
    files = [(FileEntry("etc/passwd", "f", 100, 0o644), 0), (FileEntry("etc/shadow", "f", 100, 0o640, 0, 42), 1)]
    return ImageFacts(reference="weak:test", layers=layers, files=files,
                      config_files={"etc/passwd": "\n".join(passwd) + "\n", "etc/shadow": "\n".join(shadow) + "\n"})


def weak(findings: list[CheckFinding]) -> dict[str, CheckFinding]:
    return {f.metadata["user"]: f for f in findings if f.id == "weak-password"}


def run(facts: ImageFacts, budget: float = 60.0, show: bool = False, **kw: object) -> list[CheckFinding]:
    det = BaselineDetector(**kw)  # type: ignore[arg-type]
    return det.weak_passwords(facts, Accounts.of(facts), {e.path: i for e, i in facts.files},
                              DetectContext(password_budget_seconds=budget, show_weak_passwords=show))


def test_bundled_list_is_real_and_large() -> None:
    words = bundled_words()
    assert len(words) >= 1000
    assert words[:3] == ("toor", "raspberry", "vagrant")  # the distribution defaults come first
    assert "password123" in words and "123456" in words and len(set(words)) == len(words)


def test_username_variants() -> None:
    assert trivial_variants("alice") == ["alice", "alice123", "alice1", "Alice", "ecila"]
    v = username_variants("alice")
    assert v[:5] == trivial_variants("alice") and len(v) >= 12 and len(set(v)) == len(v)
    words = ["password", "alice", "alice@123", "dragon", *(f"w{n}" for n in range(EXTRA_AFTER))]
    steps = plan("alice", words)
    assert steps[0] == ("empty", "")
    assert steps[1:6] == [("username", c) for c in trivial_variants("alice")]
    assert [c for s, c in steps].count("alice") == 1 and [c for s, c in steps].count("alice@123") == 1
    # the top of the list first (without what was tried already), the rarer user-name variants after it
    assert steps[6:9] == [("wordlist", "password"), ("wordlist", "alice@123"), ("wordlist", "dragon")]
    tail = [c for _, c in steps[6 + EXTRA_AFTER - 1:]]
    assert tail[: len(username_variants("alice")) - 6] == username_variants("alice")[6:]
    assert tail[-4:] == [f"w{n}" for n in range(EXTRA_AFTER - 4, EXTRA_AFTER)]


@pytest.mark.parametrize("algorithm", ["yescrypt", "gost-yescrypt", "bcrypt", "sha512crypt", "sha256crypt",
                                       "md5crypt", "descrypt"])
def test_username_variant_found_with_each_algorithm(algorithm: str) -> None:
    facts = image({"alice": make_hash("alice123", algorithm)})
    found = weak(run(facts, budget=60))
    f = found["alice"]
    assert f.metadata["algorithm"] == algorithm
    assert f.severity == "HIGH" and f.item == "baseline" and f.path == "/etc/shadow"
    assert f.layer_index == 1 and f.layer_diff_id == f"sha256:{8:064x}"
    assert "alice123" not in f.evidence + f.description + f.title + str(f.metadata)


@pytest.mark.parametrize("algorithm", ["bcrypt", "sha512crypt", "sha256crypt", "md5crypt", "descrypt"])
def test_common_password_found_from_the_bundled_list(algorithm: str) -> None:
    facts = image({"bob": make_hash("password123", algorithm)})
    f = weak(run(facts, budget=120, show=True))["bob"]
    assert f.metadata["algorithm"] == algorithm
    # DES reads 8 characters: "password" (a system default, tried early) opens it
    assert f.metadata["password"] == ("password" if algorithm == "descrypt" else "password123")


@pytest.mark.parametrize("algorithm", ["yescrypt", "sha512crypt"])
def test_common_password_found_with_a_short_list(algorithm: str) -> None:
    facts = image({"carol": make_hash("password123", algorithm)})
    assert "carol" in weak(run(facts, words=["letmein", "password123", "dragon"]))


def test_strong_random_password_not_found_and_search_complete() -> None:
    facts = image({"dave": make_hash(secrets.token_urlsafe(18), "md5crypt")})
    out = run(facts, budget=120)
    assert out == []  # nothing found, and no "incomplete" finding: every candidate was tried


def test_root_is_critical_and_locked_account_medium() -> None:
    facts = image({"root": make_hash("toor", "sha512crypt"), "erin": "!" + make_hash("erin", "sha512crypt")})
    found = weak(run(facts))
    assert found["root"].severity == "CRITICAL"
    assert found["erin"].severity == "MEDIUM" and "locked" in found["erin"].description


def test_hash_in_passwd_field_is_tried() -> None:
    facts = image({"frank": "x"}, passwd_fields={"frank": make_hash("frank1", "md5crypt")})
    f = weak(run(facts))["frank"]
    assert f.path == "/etc/passwd" and f.layer_index == 0


def test_password_shown_only_when_asked() -> None:
    facts = image({"grace": make_hash("grace2024", "sha256crypt")})
    shown = weak(run(facts, show=True))["grace"]
    assert shown.metadata["password"] == "grace2024" and "grace2024" in shown.evidence


def test_password_never_rendered_unless_asked() -> None:
    password = "Henry@123"
    facts = image({"henry": make_hash(password, "sha512crypt")})
    facts.config = {"config": {"User": "henry", "Healthcheck": {"Test": ["CMD", "true"]}}}
    checks = BaselineDetector().detect(facts, DetectContext(password_budget_seconds=60))
    assert "henry" in weak(checks)
    report = ScanReport(facts=facts, scanners=["baseline"], checks=checks)
    outputs = [json_report.render_report(report), sarif.render(report), html.render(report)]
    console = Console(file=io.StringIO(), width=200, record=True)
    table.render_report(report, console)
    outputs.append(console.export_text())
    outputs.append(repr(checks))
    for text in outputs:
        assert password not in text
    assert any("henry" in text for text in outputs[:3])


@pytest.mark.timeout(120)  # a hang guard: ignoring the budget would crack 6 yescrypt accounts for minutes
def test_budget_cut_is_stated_not_a_finding() -> None:
    """The wordlist stage ends with its budget; the report says how far each account got (no finding: the budget
    did what it was set to do), and every account still had the empty and user-name tests."""
    users = {f"user{n:02d}": make_hash(secrets.token_urlsafe(12), "yescrypt") for n in range(6)}
    det = BaselineDetector()
    out = det.weak_passwords(image(users), Accounts.of(image(users)), {}, DetectContext(password_budget_seconds=0.2))
    assert out == []
    check = det.password_check
    assert check is not None and check.budget_seconds == 0.2 and check.stages == ["empty", "username", "wordlist"]
    assert len(check.verdicts) == 6 and check.crypt_calls >= 6 * 6
    for v in check.verdicts:
        assert not v.weak and not v.cached and v.algorithm == "yescrypt" and v.budget_seconds == 0.2
        assert len(cheap_plan(v.user)) <= v.tried < v.total and v.total > 10_000


def test_fast_hashes_finish_while_slow_ones_share_the_budget() -> None:
    """Time-fair scheduling: an md5crypt user whose password is last in the list is still found while a
    yescrypt user (100x slower per guess) takes the rest of the budget."""
    words = list(bundled_words()[:2500])
    accounts = [Account("slow", make_hash(secrets.token_urlsafe(12), "yescrypt"), uid=1000),
                Account("fast", make_hash(words[-1], "md5crypt"), uid=1001)]
    summary = crack(accounts, 6.0, CRYPT, words=words)
    by = {r.account.user: r for r in summary.results}
    assert by["fast"].password == words[-1]
    assert not by["slow"].complete and by["slow"].tried > 0
    assert summary.budget_exhausted


def test_unsupported_or_too_costly_hashes_are_reported_not_tried() -> None:
    facts = image({"ivan": "$9$weird$hash", "judy": "$2b$31$" + "a" * 53})
    out = run(facts)
    inc = [f for f in out if f.id == "weak-password-incomplete"]
    assert len(inc) == 1 and "cannot compute" in inc[0].description and "bcrypt cost 31" in inc[0].description
    assert inc[0].metadata["accounts_skipped"] == "2"


def test_locked_and_disabled_fields_are_not_tried() -> None:
    facts = image({"root": "*", "svc": "!", "old": "!!", "nopw": "!*"})
    assert run(facts) == []
