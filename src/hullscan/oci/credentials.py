"""Registry credentials: explicit flags, then the environment, then Docker's config.json.

config.json is read the way the Docker CLI reads it: a `credHelpers` entry for the registry wins, then a
`credsStore` for every registry, then the `auths` entry (base64 `auth`, `identitytoken`). Helpers are
run as `docker-credential-<name> get` with the server address on stdin and answer JSON on stdout.

Secrets never reach logs or reprs: `Credentials` hides them, and error messages name sources, not values.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.errors import AuthError, HullscanError
from hullscan.oci.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

ENV_USERNAME = "HULLSCAN_USERNAME"
ENV_PASSWORD = "HULLSCAN_PASSWORD"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 30.0
MAX_TOKEN_LENGTH = 64 * 1024  # far beyond any real JWT; servers refuse headers this long anyway
_VISIBLE_ASCII = re.compile(r"[!-~]+")
# docker-credential-helpers' message for "no credentials for this server": not an error, just no credentials.
_NOT_FOUND_MESSAGES = ("credentials not found in native keychain", "credentials not found")


class CredentialHelperError(HullscanError):
    code = "CREDENTIAL_HELPER"


@dataclass(frozen=True)
class Credentials:
    """What to authenticate with. `source` says where it came from, for error messages."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # OAuth2 refresh token (docker login with SSO)
    registry_token: str = field(default="", repr=False)  # a bearer token used as is
    source: str = "flags"

    @property
    def has_secret(self) -> bool:
        return bool(self.password or self.identity_token or self.registry_token)

    def __str__(self) -> str:
        who = f"user {self.username!r}" if self.username else "token"
        return f"{who} from {self.source}"


def token_problem(token: str) -> str:
    """Why a token cannot be sent as a credential ('' when it can). Tokens are visible ASCII (RFC 6750's
    b64token; JWTs and opaque tokens alike): anything else would break the Authorization header, or smuggle
    a second header line into it."""
    if not token:
        return "it is empty"
    if len(token) > MAX_TOKEN_LENGTH:
        return f"it is {len(token):,} characters long"
    if _VISIBLE_ASCII.fullmatch(token):
        return ""
    bad = next(c for c in token if not "!" <= c <= "~")
    if bad in "\r\n":
        return "it contains a line break"
    if ord(bad) > 0x7F:
        return "it contains a non-ASCII character"
    return "it contains a space or a control character"


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    env = os.environ if env is None else env
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / "config.json"


def config_key_host(key: str) -> str:
    """The host[:port] an `auths`/`credHelpers` key names: strips a scheme and any path, as Docker does."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
            break
    host = host.split("/", 1)[0]
    return host.lower()


def _same_registry(key: str, registry: str) -> bool:
    host = config_key_host(key)
    reg = registry.lower()
    if reg in DOCKER_HUB_ALIASES or reg == DOCKER_HUB:
        return host in DOCKER_HUB_ALIASES
    return host == reg


def helper_server_address(registry: str) -> str:
    """What Docker hands a credential helper on stdin for a registry."""
    return DOCKER_HUB_CONFIG_KEY if registry.lower() in DOCKER_HUB_ALIASES else registry


@dataclass
class DockerConfig:
    path: Path
    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    cred_helpers: dict[str, str] = field(default_factory=dict)
    creds_store: str = ""

    @classmethod
    def load(cls, path: Path) -> DockerConfig:
        """Read config.json; a missing file is an empty configuration, a broken one an error."""
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise AuthError(f"cannot read Docker config {path}: {exc.strerror}") from None
        if not raw.strip():
            return cls(path)
        try:
            doc = safejson.loads(raw, what=f"Docker config {path}")
        except safejson.DocumentError as exc:
            raise AuthError(str(exc)) from None
        if not isinstance(doc, dict):
            raise AuthError(f"Docker config {path} is not a JSON object")
        auths = doc.get("auths") or {}
        helpers = doc.get("credHelpers") or {}
        store = doc.get("credsStore") or ""
        if not isinstance(auths, dict) or not isinstance(helpers, dict) or not isinstance(store, str):
            raise AuthError(f"Docker config {path} has malformed auths, credHelpers or credsStore")
        return cls(
            path,
            {str(k): v for k, v in auths.items() if isinstance(v, dict)},
            {str(k): str(v) for k, v in helpers.items() if isinstance(v, str) and v},
            store,
        )

    def helper_for(self, registry: str) -> str:
        """The credential helper name for a registry ('' when none): credHelpers first, then credsStore."""
        for key, helper in self.cred_helpers.items():
            if _same_registry(key, registry):
                return helper
        return self.creds_store

    def auth_entry(self, registry: str) -> dict[str, Any] | None:
        # An exact key wins over one that only matches once normalised, as in the Docker CLI.
        wanted = helper_server_address(registry)
        if wanted in self.auths:
            return self.auths[wanted]
        for key, entry in self.auths.items():
            if _same_registry(key, registry):
                return entry
        return None

    def lookup(self, registry: str) -> Credentials | None:
        helper = self.helper_for(registry)
        if helper:
            return run_credential_helper(helper, helper_server_address(registry))
        entry = self.auth_entry(registry)
        return None if entry is None else _from_auth_entry(entry, f"Docker config {self.path}")


def _from_auth_entry(entry: dict[str, Any], source: str) -> Credentials | None:
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"the 'auth' value in {source} is not valid base64 of user:password") from None
        user, colon, pw = decoded.partition(":")
        if not colon:
            raise AuthError(f"the 'auth' value in {source} does not decode to user:password")
        username, password = user, pw
    identity = str(entry.get("identitytoken") or "")
    registry_token = str(entry.get("registrytoken") or "")
    for name, token in (("identitytoken", identity), ("registrytoken", registry_token)):
        problem = token_problem(token) if token else ""
        if problem:
            raise AuthError(f"the '{name}' value in {source} is not a valid token ({problem})")
    if not (username or password or identity or registry_token):
        return None
    return Credentials(username, password, identity, registry_token, source)


def from_authorization(header: str, source: str) -> Credentials:
    """Credentials from an HTTP Authorization value handed over by someone else (Harbor's scan requests):
    `Basic base64(user:password)` logs in as that user; `Bearer <token>` is a registry token used as is.
    Some clients write the scheme with a colon (`Bearer: ...`); that is accepted too."""
    written, _, value = header.strip().partition(" ")
    scheme, value = written.rstrip(":").lower(), value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"the Basic authorization from {source} is not base64 of user:password") from None
        user, colon, password = decoded.partition(":")
        if not colon or not user:
            raise AuthError(f"the Basic authorization from {source} does not decode to user:password")
        return Credentials(user, password, source=source)
    if scheme == "bearer":
        if not value or any(c.isspace() for c in value):
            raise AuthError(f"the Bearer authorization from {source} holds no single token")
        return Credentials(registry_token=value, source=source)
    raise AuthError(f"the authorization from {source} uses the scheme {written.rstrip(':') or '(none)'!r}; "
                    "only Basic and Bearer are understood")


def run_credential_helper(helper: str, server: str, *, timeout: float = HELPER_TIMEOUT) -> Credentials | None:
    """`docker-credential-<helper> get`: None when the helper has nothing for this server."""
    program = f"docker-credential-{helper}"
    exe = shutil.which(program)
    if exe is None:
        raise CredentialHelperError(
            f"credential helper {program} (named in Docker config.json for {server}) is not installed or not on PATH")
    try:
        proc = subprocess.run(
            [exe, "get"], input=server.encode(), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(f"credential helper {program} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise CredentialHelperError(f"credential helper {program} could not be run: {exc.strerror}") from None
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        message = out or proc.stderr.decode("utf-8", "replace").strip()
        if any(m in message.lower() for m in _NOT_FOUND_MESSAGES):
            return None
        # The helper's own message, shortened; helpers do not print secrets on failure.
        raise CredentialHelperError(
            f"credential helper {program} failed for {server} (exit {proc.returncode}): {message[:200] or 'no output'}")
    try:
        doc = safejson.loads(out, what=f"the answer of credential helper {program}")
    except safejson.DocumentError:
        raise CredentialHelperError(f"credential helper {program} returned malformed JSON for {server}") from None
    if not isinstance(doc, dict):
        raise CredentialHelperError(f"credential helper {program} returned malformed JSON for {server}")
    username, secret = str(doc.get("Username") or ""), str(doc.get("Secret") or "")
    if not secret:
        return None
    source = f"credential helper {program}"
    if username == "<token>":
        problem = token_problem(secret)
        if problem:
            raise AuthError(f"credential helper {program} returned an invalid identity token for {server} ({problem})")
        return Credentials("", "", secret, "", source)
    return Credentials(username, secret, "", "", source)


def resolve_credentials(
    registry: str,
    *,
    username: str | None = None,
    password: str | None = None,
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    use_docker_config: bool = True,
) -> Credentials | None:
    """Credentials for `registry` (host[:port] as in the image reference), or None for anonymous access.

    Order: explicit username/password, then HULLSCAN_USERNAME/HULLSCAN_PASSWORD, then Docker's config.json
    (`config_path`, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json).
    """
    env = os.environ if env is None else env
    if username or password:
        if not username:
            raise AuthError("a password was given without a username")
        return Credentials(username, password or "", source="command-line flags")
    env_user, env_pw = env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, "")
    if env_user or env_pw:
        if not env_user:
            raise AuthError(f"{ENV_PASSWORD} is set but {ENV_USERNAME} is not")
        return Credentials(env_user, env_pw, source=f"environment ({ENV_USERNAME})")
    if not use_docker_config:
        return None
    path = Path(config_path) if config_path is not None else docker_config_path(env)
    return DockerConfig.load(path).lookup(registry)
