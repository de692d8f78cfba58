"""Every built-in rule: a positive and a near-miss sample, redaction, a bound on its work on hostile input."""

from __future__ import annotations

import re

import pytest

from hullscan.secrets import RULES, SecretEngine, default_config
from hullscan.secrets.rules import BUILTIN_ALLOW, SEVERITIES, SKIP_EXTENSIONS
from tests.secrets.samples import SAMPLES, pathological_inputs
from tests.support.regex_cost import STEP_BUDGET, steps_per_position

ENGINE = default_config().engine()
RULE_IDS = [r.id for r in RULES]


def rule_ids(path: str, text: str) -> dict[str, list[tuple[int, int, str]]]:
    found: dict[str, list[tuple[int, int, str]]] = {}
    for h in ENGINE.scan(path, text.encode()):
        found.setdefault(h.rule.id, []).append((h.start, h.end, h.excerpt))
    return found


def test_rule_set_is_large_and_well_formed() -> None:
    assert len(RULES) >= 80
    assert len(set(RULE_IDS)) == len(RULE_IDS)
    for rule in RULES:
        assert rule.severity in SEVERITIES, rule.id
        assert rule.title and rule.category, rule.id
        assert all(k == k.lower() and k for k in rule.keywords), rule.id
        assert rule.keywords or rule.path, f"{rule.id}: a rule without keywords must be limited to some paths"
        assert re.fullmatch(r"[a-z0-9-]+", rule.id), rule.id
        compiled = re.compile(rule.regex.encode())
        assert compiled.match(b"") is None, rule.id
    assert {a.id for a in BUILTIN_ALLOW} >= {"documentation", "vendored-tests", "placeholder-values"}
    assert "png" in SKIP_EXTENSIONS and "pyc" in SKIP_EXTENSIONS


def test_every_rule_has_samples() -> None:
    assert sorted(SAMPLES) == sorted(RULE_IDS)


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_finds_its_sample(rule_id: str) -> None:
    sample = SAMPLES[rule_id]
    found = rule_ids(sample.path, sample.text)
    assert rule_id in found, f"{rule_id} missed its sample; found {sorted(found)}"
    data = sample.text.encode()
    (start, end, excerpt), *_ = found[rule_id]
    assert data[start:end].decode().strip() == sample.secret.strip()
    # the excerpt is redacted: neither the secret nor any long run of it shows
    assert sample.secret not in excerpt
    assert "****" in excerpt
    visible = excerpt.split("*", 1)[0]
    assert len(visible) - len(visible.rstrip(sample.secret[:4])) <= 4


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_ignores_its_near_miss(rule_id: str) -> None:
    sample = SAMPLES[rule_id]
    found = rule_ids(sample.miss_path or sample.path, sample.miss)
    assert rule_id not in found, f"{rule_id} matched its near miss: {found[rule_id]}"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_keyword_prefilter_gates_the_rule(rule_id: str) -> None:
    """Without one of its keywords, a rule is not even run."""
    rule = next(r for r in RULES if r.id == rule_id)
    if not rule.keywords:
        pytest.skip("path-limited rule without keywords")
    sample = SAMPLES[rule_id]
    engine = SecretEngine([rule], [])
    assert engine.scan(sample.path, sample.text.encode())
    # Lower-case keywords match any case of the text.
    present = engine.index.find(sample.text.upper().encode())
    assert present, rule_id


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_cannot_backtrack_catastrophically(rule_id: str) -> None:
    """Deterministic, not timed (benchmarks/bench_secrets.py times the rules): every repetition is bounded and no
    part can match in a number of ways that multiplies (nested or ambiguous repeats), so the regex does at most
    STEP_BUDGET steps at one start position whatever the input; and on 1 MiB hostile inputs (runs of one byte,
    keyword floods, near-matches) the engine tries each byte as a start at most once, so a file costs at most its
    length times that bound."""
    rule = next(r for r in RULES if r.id == rule_id)
    assert steps_per_position(rule.regex.encode()) <= STEP_BUDGET
    engine = SecretEngine([rule], [])
    path = SAMPLES[rule_id].path
    for data in pathological_inputs(rule):
        for spans in engine.search_spans(path, data).values():
            assert all(lo < hi for lo, hi in spans) and all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))
            assert sum(hi - lo for lo, hi in spans) <= len(data)
        engine.scan(path, data)


@pytest.mark.parametrize(("pattern", "catastrophic"), [
    (rb"(a+)+b", True),  # the textbook nested quantifier
    (rb"(a{1,10}){1,20}b", True),  # bounded, still exponential in the nesting
    (rb"(\w{1,9}\s?){1,9}x", True),  # words and optional blanks: many ways to split a line
    (rb"(?:a|aa){1,40}b", True),  # alternatives matching the same text
    (rb'"[^"]*"', True),  # unbounded: linear at one position, quadratic over a file
    (rb"(?:\\{1,7}[rn]|\\?\s){0,64}x", True),  # both alternatives may start with a backslash
    (rb"(?:\\(?:\\{0,6}[rn]|\s)|\s){0,64}x", False),  # the same blanks, one way to read them
    (rb"[A-Za-z0-9_.-]{0,20}[\"']?[ \t]{0,4}[:=][ \t]{0,4}(?P<s>[A-Za-z0-9]{32})", False),
    (rb"(?:[A-Za-z]{1,32}: [^\r\n]{0,200}\r?\n){0,8}", False),  # header lines: each ends where it must
    (rb"ghp_[A-Za-z0-9]{36}", False),
])
def test_the_step_bound_tells_catastrophic_patterns_from_linear_ones(pattern: bytes, catastrophic: bool) -> None:
    assert (steps_per_position(pattern) > STEP_BUDGET) is catastrophic
