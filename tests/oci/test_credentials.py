from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from hullscan.errors import AuthError
from hullscan.oci.credentials import (
    CredentialHelperError,
    Credentials,
    DockerConfig,
    config_key_host,
    docker_config_path,
    resolve_credentials,
)

HELPER = """#!/bin/sh
# A fake docker credential helper: logs what it was asked, answers from $FAKE_HELPER_DB.
read -r server
echo "$1 $server" >> "$FAKE_HELPER_LOG"
case "$server" in
  registry.example.com) echo '{"ServerURL":"registry.example.com","Username":"helperuser","Secret":"helpersecret"}' ;;
  https://index.docker.io/v1/)
    echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hubsecret"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"refresh-me"}' ;;
  broken.example.com) echo 'this is not json' ;;
  badtoken.example.com) echo '{"ServerURL":"badtoken.example.com","Username":"<token>","Secret":"refresh\u00e9"}' ;;
  crash.example.com) echo 'keychain locked' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def helper_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker-credential-test"
    script.write_text(HELPER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "helper.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_HELPER_LOG", str(log))
    return log


def write_config(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


NO_ENV: dict[str, str] = {}


def test_repr_and_str_hide_secrets() -> None:
    c = Credentials("alice", "s3cret-pw", "idtok-xyz", "regtok-abc", source="flags")
    for text in (repr(c), str(c)):
        assert "s3cret-pw" not in text and "idtok-xyz" not in text and "regtok-abc" not in text
    assert "alice" in repr(c)


def test_flags_then_env_then_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"auths": {"reg.example.com": {"auth": b64("cfguser:cfgpw")}}})
    env = {"HULLSCAN_USERNAME": "envuser", "HULLSCAN_PASSWORD": "envpw"}
    c = resolve_credentials("reg.example.com", username="flaguser", password="flagpw", config_path=cfg, env=env)
    assert c is not None and (c.username, c.password) == ("flaguser", "flagpw")
    c = resolve_credentials("reg.example.com", config_path=cfg, env=env)
    assert c is not None and (c.username, c.password) == ("envuser", "envpw") and "environment" in c.source
    c = resolve_credentials("reg.example.com", config_path=cfg, env=NO_ENV)
    assert c is not None and (c.username, c.password) == ("cfguser", "cfgpw") and str(cfg) in c.source
    assert resolve_credentials("other.example.com", config_path=cfg, env=NO_ENV) is None
    assert resolve_credentials("reg.example.com", config_path=cfg, env=NO_ENV, use_docker_config=False) is None


def test_password_without_username() -> None:
    with pytest.raises(AuthError, match="without a username"):
        resolve_credentials("r", password="x", env=NO_ENV)
    with pytest.raises(AuthError, match="HULLSCAN_USERNAME is not"):
        resolve_credentials("r", env={"HULLSCAN_PASSWORD": "x"})


def test_config_location(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": "/etc/dc"}) == Path("/etc/dc/config.json")
    assert docker_config_path({"HOME": "/home/u"}) == Path("/home/u/.docker/config.json")
    (tmp_path / "dc").mkdir()
    write_config(tmp_path / "dc", {"auths": {"r.io": {"auth": b64("u:p:with:colons")}}})
    c = resolve_credentials("r.io", env={"DOCKER_CONFIG": str(tmp_path / "dc")})
    assert c is not None and (c.username, c.password) == ("u", "p:with:colons")


@pytest.mark.parametrize(
    "key",
    ["r.example.com:5000", "https://r.example.com:5000", "http://r.example.com:5000/v2/", "R.Example.com:5000"],
)
def test_auth_key_forms(tmp_path: Path, key: str) -> None:
    cfg = write_config(tmp_path, {"auths": {key: {"auth": b64("u:p")}}})
    c = resolve_credentials("r.example.com:5000", config_path=cfg, env=NO_ENV)
    assert c is not None and c.username == "u"
    assert resolve_credentials("r.example.com", config_path=cfg, env=NO_ENV) is None


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io",
                                 "registry-1.docker.io"])
def test_docker_hub_keys(tmp_path: Path, key: str) -> None:
    cfg = write_config(tmp_path, {"auths": {key: {"auth": b64("hub:pw")}}})
    for registry in ("docker.io", "registry-1.docker.io"):
        c = resolve_credentials(registry, config_path=cfg, env=NO_ENV)
        assert c is not None and c.username == "hub"


def test_exact_key_wins(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"auths": {"https://r.io": {"auth": b64("a:1")}, "r.io": {"auth": b64("b:2")}}})
    c = resolve_credentials("r.io", config_path=cfg, env=NO_ENV)
    assert c is not None and c.username == "b"


def test_identity_and_registry_tokens(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"auths": {
        "id.io": {"auth": b64("u:"), "identitytoken": "refresh-123"},
        "rt.io": {"registrytoken": "bearer-456"},
        "empty.io": {},
    }})
    c = resolve_credentials("id.io", config_path=cfg, env=NO_ENV)
    assert c is not None and c.identity_token == "refresh-123" and c.username == "u"
    c = resolve_credentials("rt.io", config_path=cfg, env=NO_ENV)
    assert c is not None and c.registry_token == "bearer-456"
    assert resolve_credentials("empty.io", config_path=cfg, env=NO_ENV) is None


def test_malformed_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(AuthError, match="not valid JSON"):
        resolve_credentials("r.io", config_path=path, env=NO_ENV)
    write_config(tmp_path, {"auths": {"r.io": {"auth": "!!!notbase64"}}})
    with pytest.raises(AuthError, match="base64"):
        resolve_credentials("r.io", config_path=path, env=NO_ENV)
    write_config(tmp_path, {"auths": {"r.io": {"auth": b64("nocolon")}}})
    with pytest.raises(AuthError, match="user:password"):
        resolve_credentials("r.io", config_path=path, env=NO_ENV)
    assert resolve_credentials("r.io", config_path=tmp_path / "missing.json", env=NO_ENV) is None


def test_creds_store(tmp_path: Path, helper_env: Path) -> None:
    cfg = write_config(tmp_path, {"credsStore": "test", "auths": {"registry.example.com": {}}})
    c = resolve_credentials("registry.example.com", config_path=cfg, env=NO_ENV)
    assert c is not None and (c.username, c.password) == ("helperuser", "helpersecret")
    assert "docker-credential-test" in c.source
    c = resolve_credentials("docker.io", config_path=cfg, env=NO_ENV)
    assert c is not None and c.username == "hubuser"
    c = resolve_credentials("token.example.com", config_path=cfg, env=NO_ENV)
    assert c is not None and c.identity_token == "refresh-me" and not c.username
    # "credentials not found" is not an error: just anonymous.
    assert resolve_credentials("nothing.example.com", config_path=cfg, env=NO_ENV) is None
    asked = helper_env.read_text().splitlines()
    assert asked == ["get registry.example.com", "get https://index.docker.io/v1/", "get token.example.com",
                     "get nothing.example.com"]


def test_cred_helpers_win_over_auths_and_store(tmp_path: Path, helper_env: Path) -> None:
    cfg = write_config(tmp_path, {
        "credsStore": "absent-store",
        "credHelpers": {"registry.example.com": "test"},
        "auths": {"registry.example.com": {"auth": b64("fileuser:filepw")}, "plain.io": {"auth": b64("p:q")}},
    })
    c = resolve_credentials("registry.example.com", config_path=cfg, env=NO_ENV)
    assert c is not None and c.username == "helperuser"
    # credsStore applies to every other registry, and it is missing here.
    with pytest.raises(CredentialHelperError) as info:
        resolve_credentials("plain.io", config_path=cfg, env=NO_ENV)
    assert info.value.code == "CREDENTIAL_HELPER"
    assert "docker-credential-absent-store" in str(info.value) and "not installed" in str(info.value)


def test_helper_failures(tmp_path: Path, helper_env: Path) -> None:
    cfg = write_config(tmp_path, {"credHelpers": {"broken.example.com": "test", "crash.example.com": "test"}})
    with pytest.raises(CredentialHelperError, match="malformed JSON"):
        resolve_credentials("broken.example.com", config_path=cfg, env=NO_ENV)
    with pytest.raises(CredentialHelperError, match="exit 3.*keychain locked"):
        resolve_credentials("crash.example.com", config_path=cfg, env=NO_ENV)


def test_invalid_tokens_are_refused_where_they_are_read(tmp_path: Path, helper_env: Path) -> None:
    """A token that cannot go into an Authorization header (non-ASCII, CR/LF) is refused once, with
    AUTH_FAILED naming its source, instead of failing in the HTTP layer on every request."""
    for key, value, problem in (("identitytoken", "refresh\r\nX-Injected: 1", "line break"),
                                ("registrytoken", "t\u00f6ken", "non-ASCII character")):
        cfg = write_config(tmp_path, {"auths": {"registry.example.com": {key: value}}})
        with pytest.raises(AuthError) as info:
            resolve_credentials("registry.example.com", config_path=cfg, env=NO_ENV)
        assert info.value.code == "AUTH_FAILED"
        message = str(info.value)
        assert f"the '{key}' value in Docker config {cfg} is not a valid token (it contains a {problem})" in message
        assert value not in str(info.value)
    cfg = write_config(tmp_path, {"credHelpers": {"badtoken.example.com": "test"}})
    with pytest.raises(AuthError, match="credential helper docker-credential-test returned an invalid identity token"):
        resolve_credentials("badtoken.example.com", config_path=cfg, env=NO_ENV)


def test_deeply_nested_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"auths": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(AuthError, match=f"Docker config {path} is not valid JSON: it nests deeper than"):
        resolve_credentials("registry.example.com", config_path=path, env=NO_ENV)


def test_no_secret_in_logs(tmp_path: Path, helper_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = write_config(tmp_path, {"credHelpers": {"registry.example.com": "test"}})
    c = resolve_credentials("registry.example.com", config_path=cfg, env=NO_ENV)
    assert c is not None
    assert "helpersecret" not in caplog.text and "helpersecret" not in repr(c)


def test_config_key_host() -> None:
    assert config_key_host("https://index.docker.io/v1/") == "index.docker.io"
    assert config_key_host("http://Reg:5000/v2") == "reg:5000"
    assert config_key_host("reg") == "reg"
    assert DockerConfig(Path("x"), cred_helpers={"https://r.io": "h"}).helper_for("r.io") == "h"
