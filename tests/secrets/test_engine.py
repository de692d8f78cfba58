"""The engine and the analyzer: prefilter backends, file filters, allow rules, overlaps, lines, redaction."""

from __future__ import annotations

import importlib.util
import io
import json

import pytest

from hullscan.model import FileEntry
from hullscan.secrets import RULES, SecretConfig, SecretEngine, default_config, redact, secret_analyzer
from hullscan.secrets.analyzer import SecretAnalyzer
from hullscan.secrets.engine import MAX_FINDINGS, MAX_POSITIONS, KeywordIndex, shannon_entropy
from hullscan.secrets.rules import BUILTIN_ALLOW
from tests.secrets.samples import B32, HEX, SAMPLES, r

ENGINE = default_config().engine()
GHP = "ghp_" + r(36)
AWS_ID = "AKIA" + r(16, B32)
AWS_SECRET = r(40)


def ids(path: str, text: str | bytes, engine: SecretEngine = ENGINE) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [h.rule.id for h in engine.scan(path, data)]


# -- keyword prefilter ------------------------------------------------------------------------------------

BACKENDS = ["plain"] + [name for name, module in (("hyperscan", "hyperscan"), ("ahocorasick", "ahocorasick_rs"))
                        if importlib.util.find_spec(module) is not None]


@pytest.mark.parametrize("backend", BACKENDS)
def test_keyword_backends_agree(backend: str) -> None:
    keywords = [b"ghp_", b"password", b"-----begin", b"sk", b"aaaa"]
    index = KeywordIndex(keywords, backend, positional=[1, 3])
    plain = KeywordIndex(keywords, "plain", positional=[1, 3])
    texts = [b"", b"nothing here", b"PassWord=1 and password=2 GHP_x", b"aaaaaaa sk SK sK", b"-----BEGIN x",
             b"x" * 10000 + b"password", *(s.text.encode() for s in list(SAMPLES.values())[:40])]
    for text in texts:
        assert index.locate(text) == plain.locate(text), text[:40]
    assert index.backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_engines_with_every_backend_find_the_same(backend: str) -> None:
    engine = SecretEngine(keyword_backend=backend)
    for rule_id, sample in SAMPLES.items():
        assert ids(sample.path, sample.text, engine) == ids(sample.path, sample.text), rule_id


def test_too_many_keyword_occurrences_fall_back_to_a_full_search() -> None:
    flood = "password: x\n" * (MAX_POSITIONS + 10)
    text = flood + "[db]\npassword = " + "Zq7" + r(12) + "\n"
    assert "generic-password" in ids("srv/app/app.ini", text)


def test_near_keyword_rules_find_secrets_far_into_a_file() -> None:
    text = "x" * 300_000 + "\nDD_API_KEY=" + r(32, HEX) + "\n" + "y" * 300_000
    assert ids("srv/app/env.sh", text) == ["datadog-api-key"]


# -- what is scanned ------------------------------------------------------------------------------------


def entry(path: str, size: int = 100) -> FileEntry:
    return FileEntry(path, "f", size)


def test_claims_by_path_and_size_only() -> None:
    a = SecretAnalyzer(default_config())
    assert a.claims("srv/app/.env", entry("srv/app/.env"))
    assert a.claims("etc/app.conf", entry("etc/app.conf", 10 << 20))
    assert not a.claims("etc/app.conf", entry("etc/app.conf", (10 << 20) + 1))  # over the size limit
    assert not a.claims("etc/x", entry("etc/x", 3))  # too small for any credential
    assert not a.claims("srv/logo.png", entry("srv/logo.png"))
    assert not a.claims("usr/lib/python3.11/__pycache__/os.cpython-311.pyc", entry("x.pyc"))
    assert not a.claims("usr/share/doc/curl/README", entry("usr/share/doc/curl/README"))
    assert a.max_size == 10 << 20


def test_size_limit_is_configurable() -> None:
    a = SecretAnalyzer(SecretConfig(max_file_size=1024))
    assert a.max_size == 1024
    assert a.claims("etc/a.conf", entry("etc/a.conf", 1024))
    assert not a.claims("etc/a.conf", entry("etc/a.conf", 1025))
    assert a.version != SecretAnalyzer(default_config()).version  # a different cache key


def test_binary_files_are_skipped() -> None:
    a = secret_analyzer(None)
    token = GHP.encode()
    binary = b"\x7fELF\x02\x01\x00\x00" + b"x" * 100 + token
    assert a.analyze("usr/bin/tool", entry("usr/bin/tool", len(binary)), io.BytesIO(binary)) is None
    assert ENGINE.scan("usr/bin/tool", binary) == []
    # a NUL past the first 8 KiB does not make a text file binary
    late = b"a" * 9000 + b"\0" + b"\ntoken=" + token + b"\n"
    facts = a.analyze("srv/app/data.txt", entry("srv/app/data.txt", len(late)), io.BytesIO(late))
    assert facts is not None and [d.rule_id for d in facts.detections] == ["github-pat"]


def test_analyzer_reads_no_more_than_its_limit() -> None:
    a = SecretAnalyzer(SecretConfig(max_file_size=64))
    data = b"t=" + GHP.encode() + b"\n" + b"x" * 100  # the entry lies about its size
    assert a.analyze("srv/x.txt", entry("srv/x.txt", 50), io.BytesIO(data)) is None


def test_detections_carry_rule_details() -> None:
    a = secret_analyzer(None)
    data = f"# config\nGITHUB_TOKEN={GHP}\n".encode()
    facts = a.analyze("srv/app/.env", entry("srv/app/.env", len(data)), io.BytesIO(data))
    assert facts is not None
    (d,) = facts.detections
    assert (d.kind, d.rule_id, d.severity, d.path, d.line, d.category) == (
        "secret", "github-pat", "CRITICAL", "srv/app/.env", 2, "GitHub")
    assert d.title == "GitHub personal access token" and "Revoke" in d.remediation
    assert d.match == "ghp_****************" and GHP not in d.match


# -- allow rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "usr/share/doc/openssl/README",
    "usr/share/man/man1/curl.1",
    "usr/include/openssl/pem.h",
    "usr/local/lib/python3.11/site-packages/requests/tests/test_auth.py",
    "usr/lib/python3/dist-packages/oauthlib/tests/fixtures/token.json",
    "usr/lib/python3.11/test/keycert.pem",
    "srv/app/node_modules/jsonwebtoken/test/keys/priv.pem",
    "srv/app/node_modules/@scope/pkg/__tests__/fixture.js",
    "go/pkg/mod/github.com/x/y@v1.0.0/testdata/key.pem",
    "srv/app/vendor/github.com/x/y/test/key.pem",
    "usr/local/lib/python3.11/site-packages/Crypto/SelfTest/PublicKey/test_import_RSA.py",
    "usr/local/lib/python3.11/site-packages/pkg/test_settings.py",
    "srv/app/node_modules/lib/README.md",
    "usr/local/lib/python3.11/site-packages/pkg-1.0.dist-info/METADATA",
    "srv/app/src/crypto_test.go",
    "srv/app/config.example.yaml",
    "srv/app/.env.sample",
    "srv/app/docs/setup.md",
])
def test_allowed_paths_are_not_scanned(path: str) -> None:
    assert ENGINE.skips_path(path)
    assert ids(path, f"token = {GHP}\n") == []


@pytest.mark.parametrize("path", [
    "srv/app/tests/fixtures/creds.json",  # the application's own files are scanned, tests included
    "root/.ssh/id_rsa",
    "etc/app/app.conf",
    "usr/local/lib/python3.11/site-packages/myapp/settings.py",
    "srv/app/node_modules/lib/index.js",
])
def test_other_paths_are_scanned(path: str) -> None:
    assert not ENGINE.skips_path(path)
    assert ids(path, f"token = {GHP}\n") == ["github-pat"]


def test_vendored_code_gets_token_rules_but_not_heuristics() -> None:
    site = "usr/local/lib/python3.11/site-packages/somelib"
    assert ids(f"{site}/client.py", f'api_key = "{r(32)}"\n') == []
    assert ids(f"{site}/conf.ini", "password = Zq7" + r(12) + "\n") == []
    assert ids(f"{site}/const.py", f'TOKEN = "{GHP}"\n') == ["github-pat"]
    assert ids("srv/app/client.py", f'api_key = "{r(32)}"\n') == ["generic-api-key"]


@pytest.mark.parametrize("text", [
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    "token: ghp_" + "ab" * 18 + "\n",  # under the entropy floor
    "password = changeme\n",
    "password = ${DB_PASSWORD}\n",
    "password = {{ vault_db_password }}\n",
    "password = <your-password>\n",
    "password = %(db_password)s\n",
    "password = $DB_PASSWORD\n",
    "password: proxypass\n",
    "password = None\n",
    "DATABASE_URL=postgres://user:password@localhost/app\n",
    "https://deploy:" + "Zq7" + r(10) + "@artifacts.example.com/simple\n",
    "client_secret = settings.CLIENT_SECRET_VALUE\n",
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==\n",
])
def test_placeholders_and_documented_dummies_are_not_secrets(text: str) -> None:
    assert ids("srv/app/app.conf", text) == []


def test_builtin_allow_rules_have_ids_and_descriptions() -> None:
    for a in BUILTIN_ALLOW:
        assert a.id and a.description
        assert a.path or a.dir or a.name or a.regex


# -- findings -------------------------------------------------------------------------------------------


def test_overlapping_rules_keep_the_specific_one() -> None:
    assert ids("srv/app/.env", f"GITHUB_TOKEN={GHP}\n") == ["github-pat"]
    assert ids("srv/app/.env", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n") == ["aws-secret-access-key"]


def test_line_numbers_and_order() -> None:
    text = f"a\nkey_id: {AWS_ID}\n\n\n\n\n\n\n\ntoken={GHP}\n" + "password = Zq7" + r(9) + "\n"
    hits = ENGINE.scan("srv/app/app.conf", text.encode())
    assert [(h.rule.id, h.line) for h in hits] == [("aws-access-key-id", 2), ("github-pat", 10),
                                                    ("generic-password", 11)]


MULTI_LINE = [r.id for r in RULES if r.category == "Private key" and "\n" in SAMPLES[r.id].text.strip()]


@pytest.mark.parametrize("rule_id", MULTI_LINE)
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_multi_line_secrets_are_reported_at_their_first_line(rule_id: str, eol: str) -> None:
    """A key is reported where its -----BEGIN (or PuTTY header) line is, as Trivy's users and SARIF viewers expect:
    on line 1, in the middle of a file, at the end of a file without a final newline; LF or CRLF."""
    key = SAMPLES[rule_id].text.strip("\n")  # every sample starts with its marker line
    before = eol.join(["# deployment notes", "", "host = db.internal", ""]) + eol
    cases = {"line 1": (key + eol, 1), "middle": (before + key + eol + "after = 1" + eol, 5),
             "end, no newline": (before + key, 5), "after blank lines": (eol * 3 + key + eol, 4)}
    for name, (text, line) in cases.items():
        hits = ENGINE.scan("root/.ssh/key", text.replace("\n", eol).encode())
        assert [(h.rule.id, h.line) for h in hits] == [(rule_id, line)], name


def test_a_key_in_a_json_string_is_reported_at_its_line() -> None:
    key = SAMPLES["private-key-rsa"].text
    text = "{\n  \"name\": \"tls\",\n  \"key\": " + json.dumps(key) + "\n}\n"
    assert [(h.rule.id, h.line) for h in ENGINE.scan("srv/app/tls.json", text.encode())] == [("private-key-rsa", 3)]
    sa = SAMPLES["gcp-service-account-key"]  # "private_key" is on line 5 of the service-account file
    assert [(h.rule.id, h.line) for h in ENGINE.scan(sa.path, sa.text.encode())] == [("gcp-service-account-key", 5)]


def test_excerpt_masks_every_secret_it_shows() -> None:
    pw = "Zq7" + r(13)
    text = f"index-url = https://{GHP}:{pw}@pypi.acme.io/simple\n"
    hits = {h.rule.id: h for h in ENGINE.scan("etc/pip.conf", text.encode())}
    assert set(hits) == {"github-pat", "url-credentials"}
    excerpt = hits["url-credentials"].excerpt
    assert GHP not in excerpt and pw not in excerpt and GHP[4:12] not in excerpt
    assert "****" in excerpt


def test_findings_per_file_are_capped() -> None:
    text = "\n".join(f"t={'ghp_' + r(36)}" for _ in range(MAX_FINDINGS + 50))
    assert len(ENGINE.scan("srv/app/tokens.txt", text.encode())) == MAX_FINDINGS


def test_redact() -> None:
    assert redact("AKIAQWERTYUIOPASDFGH") == "AKIA" + "*" * 16
    assert redact("hunter2") == "*******"
    assert redact("abc") == "****"
    assert redact("x" * 200) == "xxxx" + "*" * 16
    assert redact("hunter22") == "h" + "*" * 7
    assert redact("\x1b[2Jabcdefghij") == "?[" + "*" * 12


def test_entropy() -> None:
    assert shannon_entropy(b"") == 0
    assert shannon_entropy(b"aaaa") == 0
    assert shannon_entropy(b"abcd") == 2
    assert shannon_entropy(bytes(range(256))) == 8


def test_hostile_content_does_not_break_the_engine() -> None:
    for data in [bytes(range(1, 256)) * 400, "é€😀".encode() * 10000, b"\xff\xfe" + b"ghp_" * 5000,
                 b"-----BEGIN RSA PRIVATE KEY-----\n" * 10000]:
        ENGINE.scan("srv/app/x.txt", data)


def test_every_rule_is_compiled() -> None:
    assert [cr.rule.id for cr in ENGINE.rules] == [rule.id for rule in RULES]


def test_a_time_budget_bounds_hostile_files() -> None:
    soup = " ".join(k for rule in RULES for k in rule.keywords).encode()
    data = (soup * (2_000_000 // len(soup) + 1))[:2_000_000] + f"\ntoken={GHP}\n".encode()
    hits, skipped = ENGINE.scan_within("srv/app/soup.conf", data, 0.0)
    assert hits == [] and len(skipped) > 100  # out of time before the first rule
    hits, skipped = ENGINE.scan_within("srv/app/soup.conf", data, None)
    assert [h.rule.id for h in hits] == ["github-pat"] and skipped == []


def test_the_analyzer_warns_when_a_file_runs_out_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hullscan.secrets.analyzer as analyzer_module

    monkeypatch.setattr(analyzer_module, "FILE_BUDGET_SECONDS", 0.0)
    data = f"token={GHP}\n".encode()
    facts = secret_analyzer(None).analyze("srv/a.txt", entry("srv/a.txt", len(data)), io.BytesIO(data))
    assert facts is not None and facts.detections == []
    assert "stopped after" in facts.hints["warnings"][0]


def test_builtin_rules_compile_only_when_their_keywords_occur() -> None:
    """A warm scan scans only the image history: building the engine and scanning a few lines compiles the rules
    those lines can trigger, not all of them (each regex is compiled on first use)."""
    engine = SecretEngine()
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    hits = engine.scan("history[3]", f"RUN apt-get update && GITHUB_TOKEN={token} make\n".encode())
    assert [h.rule.id for h in hits] == ["github-pat"]
    compiled = [cr.rule.id for cr in engine.rules if "regex" in vars(cr)]
    assert "github-pat" in compiled and len(compiled) < len(RULES) // 10, compiled
