"""Private keys (real throwaway ones) in the files that carry them: as written, and inside strings of JSON, YAML and
.env files, whose line ends are escaped (`\\n`), once or more (JSON kept in a JSON string)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml

from hullscan.secrets import default_config
from tests.secrets.keys import RULE_OF, pem, service_account
from tests.secrets.samples import SAMPLES

ENGINE = default_config().engine()


def _env(key: str) -> str:
    return "APP_ENV=production\nTLS_KEY=" + json.dumps(key) + "\n"


# (path, the file holding `key`, the line the finding must point at)
CONTAINERS: dict[str, tuple[str, Callable[[str], str], int]] = {
    "pem file": ("etc/ssl/private/app.key", lambda k: k, 1),
    "json": ("srv/app/tls.json", lambda k: json.dumps({"name": "tls", "key": k}, indent=2), 3),
    "json, one line, escaped slashes": ("srv/app/tls.json", lambda k: json.dumps({"key": k}).replace("/", "\\/"), 1),
    "json, CRLF line ends": ("srv/app/tls.json", lambda k: json.dumps({"key": k.replace("\n", "\r\n")}), 1),
    "json in a json string": ("srv/app/state.json",
                              lambda k: json.dumps({"annotations": {"last-applied": json.dumps({"key": k})}}), 1),
    "yaml, double-quoted": ("srv/app/values.yaml", lambda k: yaml.dump({"tls": {"key": k}}, default_style='"'), 2),
    "yaml, block": ("srv/app/values.yaml", lambda k: yaml.dump({"tls": {"key": k}}, default_style="|"), 3),
    ".env, quoted": ("srv/app/.env", _env, 2),
    ".env, unquoted": ("srv/app/.env", lambda k: "TLS_KEY=" + k.replace("\n", "\\n") + "\n", 1),
}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("kind", RULE_OF)
def test_private_keys_are_found_in_every_container(kind: str, container: str) -> None:
    path, wrap, line = CONTAINERS[container]
    data = wrap(pem(kind)).encode()
    hits = ENGINE.scan(path, data)
    assert [(h.rule.id, h.line) for h in hits] == [(RULE_OF[kind], line)]
    body = pem(kind).splitlines()[-2]  # a line of the key: the secret found covers it and never shows it
    (hit,) = hits
    assert body.replace("/", "\\/") in data[hit.start:hit.end].decode() or body in data[hit.start:hit.end].decode()
    assert body[:12] not in hit.excerpt and "****" in hit.excerpt


def test_a_gcp_service_account_file() -> None:
    text = service_account(pem("rsa-pkcs8"))
    hits = ENGINE.scan("srv/app/config/gcp-service-account.json", text.encode())
    assert [(h.rule.id, h.line, h.rule.severity) for h in hits] == [("gcp-service-account-key", 5, "CRITICAL")]
    # a service-account file kept in a JSON string (a Kubernetes secret's last-applied annotation)
    nested = json.dumps({"metadata": {"annotations": {"last-applied": text}}})
    assert [(h.rule.id, h.line) for h in ENGINE.scan("srv/app/secret.json", nested.encode())] == [
        ("gcp-service-account-key", 1)]


@pytest.mark.parametrize("text", [
    '{"key": "-----BEGIN PRIVATE KEY-----\\n-----END PRIVATE KEY-----\\n"}',  # no body
    '{"key": "-----BEGIN PRIVATE KEY-----\\n<your key here>\\n-----END PRIVATE KEY-----\\n"}',
    '{"key": "-----BEGIN PUBLIC KEY-----\\n' + "QUJD" * 40 + '\\n-----END PUBLIC KEY-----\\n"}',
    '{"cert": "-----BEGIN CERTIFICATE-----\\n' + "QUJD" * 40 + '\\n-----END CERTIFICATE-----\\n"}',
])
def test_no_key_no_finding(text: str) -> None:
    assert ENGINE.scan("srv/app/x.json", text.encode()) == []


@pytest.mark.parametrize("word", ["ToDo", "TODO", "fixme", "Dummy", "sample", "xxxxx", "REDACTED"])
def test_a_key_whose_random_body_spells_a_placeholder_word_is_still_reported(word: str) -> None:
    """Roughly one real 2048-bit key in 600 has "todo" (any case) somewhere in its base64: it was taken for a
    placeholder and silently dropped."""
    lines = pem("rsa-pkcs8").splitlines()
    lines[5] = lines[5][:20] + word + lines[5][20 + len(word):]
    text = "\n".join(lines) + "\n"
    for data in (text, json.dumps({"private_key": text})):
        assert [h.rule.id for h in ENGINE.scan("srv/app/key.json", data.encode())] == ["private-key-pkcs8"]


@pytest.mark.parametrize("body", ["x" * 64 + "\n" + "x" * 64, "MIIEpAIBAAKCAQEA" * 8,
                                  ("YOUR_PRIVATE_KEY_HERE" * 4)[:80], "REDACTED" * 10])
def test_placeholder_key_bodies_are_not_reported(body: str) -> None:
    for label in ("PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"):
        text = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"
        assert ENGINE.scan("srv/app/key.pem", text.encode()) == [], (label, body)


@pytest.mark.parametrize("rule_id", ["private-key-pgp", "private-key-ssh2", "private-key-pem-encrypted"])
def test_armoured_keys_with_headers_in_strings(rule_id: str) -> None:
    """Blocks with header lines (Version:, Comment:, Proc-Type:) written in JSON and YAML strings."""
    text = SAMPLES[rule_id].text
    for path, data in [("srv/app/k.json", json.dumps({"key": text})),
                       ("srv/app/k.json", json.dumps({"outer": json.dumps({"key": text})})),
                       ("srv/app/k.yaml", yaml.dump({"deploy": {"signing": {"key": text}}}, default_style='"'))]:
        assert [h.rule.id for h in ENGINE.scan(path, data.encode())] == [rule_id], data[:80]


def test_a_body_starting_with_an_escaped_slash() -> None:
    """PHP and Java escape '/' in JSON; a base64 body may start with one (found with random encrypted keys)."""
    lines = pem("rsa-traditional-encrypted").splitlines()
    first = next(i for i, line in enumerate(lines) if i > 0 and not line.startswith(("Proc-Type", "DEK-Info")) and line)
    lines[first] = "/" + lines[first][1:]
    text = json.dumps({"key": "\n".join(lines) + "\n"}).replace("/", "\\/")
    assert [h.rule.id for h in ENGINE.scan("srv/app/k.json", text.encode())] == ["private-key-pem-encrypted"]
    lines = pem("rsa-pkcs8").splitlines()
    lines[1] = "/" + lines[1][1:]
    text = json.dumps({"key": "\n".join(lines) + "\n"}).replace("/", "\\/")
    assert [h.rule.id for h in ENGINE.scan("srv/app/k.json", text.encode())] == ["private-key-pkcs8"]
