"""Every built-in rule: a positive and a near-miss sample, redaction, speed on pathological input."""

from __future__ import annotations

import re
import time

import pytest

from hullscan.secrets import RULES, SecretEngine, default_config
from hullscan.secrets.rules import BUILTIN_ALLOW, SEVERITIES, SKIP_EXTENSIONS
from tests.secrets.samples import SAMPLES

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


def _pathological(rule_id: str) -> list[bytes]:
    rule = next(r for r in RULES if r.id == rule_id)
    kw = (rule.keywords[0] if rule.keywords else "password").encode()
    size = 1 << 20
    inputs = [bytes([c]) * size for c in b"Aa0f =-/\n."]
    inputs.append((kw * (size // len(kw) + 1))[:size])
    inputs.append(((kw + b"A" * 300 + b"\n") * (size // (len(kw) + 301) + 1))[:size])
    inputs.append(((kw + b"a1b2c3d4e5" * 30 + b" ") * (size // (len(kw) + 301) + 1))[:size])
    inputs.append(((kw + b"=" + b"x" * 200 + b":" + b"y" * 200 + b"@") * 2000)[:size])
    sample = SAMPLES[rule_id]
    head = sample.text.encode()[:200]
    inputs.append((head * (size // max(len(head), 1) + 1))[:size])
    return inputs


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_is_fast_on_pathological_input(rule_id: str) -> None:
    """1 MiB hostile inputs (runs of one byte, keyword floods, near-matches) finish quickly for every rule."""
    rule = next(r for r in RULES if r.id == rule_id)
    engine = SecretEngine([rule], [])
    path = SAMPLES[rule_id].path
    worst = 0.0
    for data in _pathological(rule_id):
        t = time.perf_counter()
        engine.scan(path, data)
        worst = max(worst, time.perf_counter() - t)
    assert worst < 1.0, f"{rule_id}: {worst:.2f}s on a 1 MiB pathological input"
