"""The user's YAML secret configuration: add, replace, disable and allow rules; clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hullscan.secrets import (
    SecretConfigError,
    default_config,
    load_secret_config,
    parse_secret_config,
    secret_analyzer,
)
from hullscan.secrets.analyzer import SecretAnalyzer
from tests.secrets.samples import r

GHP = "ghp_" + r(36)
ACME = "acme_" + r(32, "abcdefghijklmnopqrstuvwxyz0123456789")


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "secret.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def ids(cfg: Any, path: str, text: str) -> list[str]:
    return [h.rule.id for h in cfg.engine().scan(path, text.encode())]


def test_full_configuration(tmp_path: Path) -> None:
    cfg = load_secret_config(write(tmp_path, """
max-file-size: 2MiB
rules:
  - id: acme-api-token
    title: ACME API token
    severity: high
    category: ACME
    keywords: [ACME_]
    regex: 'acme_(?P<secret>[a-z0-9]{32})'
    entropy: 3.0
    remediation: Rotate it in the ACME console.
disable-rules: [jwt]
allow-rules:
  - id: fixtures
    description: our own test keys
    path: '^srv/app/fixtures/'
  - id: known-github-token
    regex: '^ghp_0{36}$'
    rules: [github-pat]
  - id: no-github-in-docs-dir
    path: '^srv/app/handbook/'
    rules: [github-pat]
disable-allow-rules: [documentation]
"""))
    assert cfg.max_file_size == 2 << 20
    assert [r.id for r in cfg.rules] == ["acme-api-token"]
    rule = cfg.rules[0]
    assert (rule.severity, rule.keywords, rule.category, rule.entropy) == ("HIGH", ("acme_",), "ACME", 3.0)
    # added rule
    hits = cfg.engine().scan("srv/app/app.env", f"ACME_TOKEN={ACME}\n".encode())
    assert [(h.rule.id, h.rule.remediation) for h in hits] == [("acme-api-token", "Rotate it in the ACME console.")]
    assert ACME[5:] not in hits[0].excerpt
    # disabled rule
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4eXoiLCJpYXQiOjE3MDAwMDAwMDB9." + r(43)
    assert ids(default_config(), "srv/a.txt", f"t={jwt}\n") == ["jwt"]
    assert ids(cfg, "srv/a.txt", f"t={jwt}\n") == []
    # allowed path, value and per-rule path
    assert ids(cfg, "srv/app/fixtures/creds.txt", f"t={GHP}\n") == []
    assert ids(cfg, "srv/app/other.txt", "t=ghp_" + "0" * 36 + "\n") == []
    assert ids(cfg, "srv/app/handbook/a.txt", f"t={GHP}\nkey_id: AKIA{r(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}\n") \
        == ["aws-access-key-id"]
    assert ids(cfg, "srv/app/other.txt", f"t={GHP}\n") == ["github-pat"]
    # a disabled built-in allow rule: documentation is scanned again
    assert ids(default_config(), "usr/share/man/man1/x.1", f"t={GHP}\n") == []
    assert ids(cfg, "usr/share/man/man1/x.1", f"t={GHP}\n") == ["github-pat"]
    # the analyzer follows the configuration, and its cache key changes with it
    analyzer = secret_analyzer(cfg)
    assert isinstance(analyzer, SecretAnalyzer) and analyzer.max_size == 2 << 20
    assert analyzer.version != secret_analyzer(None).version
    assert analyzer.version == secret_analyzer(load_secret_config(tmp_path / "secret.yaml")).version


def test_user_rule_replaces_a_builtin_by_id() -> None:
    cfg = parse_secret_config({"rules": [{"id": "github-pat", "title": "GitHub token (ours)", "severity": "LOW",
                                          "keywords": ["ghp_"], "regex": r"ghp_[A-Za-z0-9]{36}"}]})
    hits = cfg.engine().scan("srv/a.txt", f"t={GHP}\n".encode())
    assert [(h.rule.id, h.rule.severity, h.rule.title) for h in hits] == [("github-pat", "LOW", "GitHub token (ours)")]
    assert len(cfg.effective_rules()) == len(default_config().effective_rules())


def test_empty_configuration_is_the_default() -> None:
    cfg = parse_secret_config(None)
    assert cfg.fingerprint() == default_config().fingerprint()
    assert load_secret_config.__doc__


@pytest.mark.parametrize(("doc", "message"), [
    ({"rules": [{"id": "bad-one", "regex": "acme_(", "keywords": ["acme"]}]}, "rule 'bad-one'"),
    ({"rules": [{"id": "bad-one", "regex": "acme_(", "keywords": ["acme"]}]}, "invalid regular expression"),
    ({"rules": [{"id": "x1", "regex": "a+", "severity": "SEVERE"}]}, "severity 'SEVERE'"),
    ({"rules": [{"id": "x1", "regex": "a+", "colour": "red"}]}, "unknown key 'colour'"),
    ({"rules": [{"id": "x1"}]}, "regex is required"),
    ({"rules": [{"regex": "a+"}]}, "id is required"),
    ({"rules": [{"id": "x 1", "regex": "a+"}]}, "id 'x 1'"),
    ({"rules": [{"id": "x1", "regex": "a+"}, {"id": "x1", "regex": "b+"}]}, "defined twice"),
    ({"rules": [{"id": "x1", "regex": "a*"}]}, "matches the empty string"),
    ({"rules": [{"id": "x1", "regex": "a+", "secret-group": "token"}]}, "no group named 'token'"),
    ({"rules": [{"id": "x1", "regex": "a+", "entropy": 9}]}, "entropy"),
    ({"rules": [{"id": "x1", "regex": "a+", "path": "(["}]}, "invalid path regular expression"),
    ({"rules": [{"id": "x1", "regex": "a+", "keywords": "acme"}]}, "keywords: must be a list"),
    ({"rules": "all"}, "rules: must be a list"),
    ({"disable-rules": ["no-such-rule"]}, "unknown rule(s): no-such-rule"),
    ({"disable-allow-rules": ["nope"]}, "unknown allow rule(s): nope"),
    ({"allow-rules": [{"id": "a1"}]}, "give a path, a regex or both"),
    ({"allow-rules": [{"id": "a1", "regex": "(?P<"}]}, "allow rule 'a1'"),
    ({"allow-rules": [{"id": "a1", "path": "x", "rules": ["nope"]}]}, "unknown rule(s): nope"),
    ({"allow-rules": [{"id": "documentation", "path": "x"}]}, "already used"),
    ({"max-file-size": "lots"}, "not a size"),
    ({"max-file-size": 0}, "more than 0"),
    ({"bogus": 1}, "unknown key 'bogus'"),
    (["rules"], "top level must be a mapping"),
])
def test_invalid_configurations_are_explained(doc: Any, message: str) -> None:
    with pytest.raises(SecretConfigError) as err:
        parse_secret_config(doc, "secret.yaml")
    assert message in str(err.value)
    assert "secret.yaml" in str(err.value)
    rendered = err.value.render()
    assert "SECRET_CONFIG_INVALID" in rendered and message in rendered


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(SecretConfigError, match="cannot read"):
        load_secret_config(tmp_path / "missing.yaml")
    with pytest.raises(SecretConfigError, match="not valid YAML"):
        load_secret_config(write(tmp_path, "rules: [\n"))


@pytest.mark.parametrize(("text", "size"), [("1024", 1024), ("1KiB", 1024), ("1kb", 1000), ("2M", 2 << 20),
                                            ("1.5MiB", 3 << 19), ("1G", 1 << 30)])
def test_sizes(text: str, size: int) -> None:
    assert parse_secret_config({"max-file-size": text}).max_file_size == size
