"""A tiny Docker token service for tests: checks Basic credentials and issues RS256 JWTs.

The signing key's self-signed certificate is the registry's `auth.token.rootcertbundle`; each token carries
it in the `x5c` header, which distribution 2.x verifies against that bundle.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SERVICE = "hullscan-test-registry"
ISSUER = "hullscan-test-issuer"


def self_signed(common_name: str, *, ip: str | None = None, dns: list[str] | None = None,
                ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns or []]
    if ip:
        import ipaddress

        sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return key, cert


def write_pem(key: rsa.RSAPrivateKey, cert: x509.Certificate, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class TokenRequest:
    method: str
    scopes: list[str]
    user: str  # "" when anonymous
    service: str
    granted: list[dict[str, Any]]


@dataclass
class TokenIssuer:
    """Users: name -> password. Identity tokens: refresh token -> user (the oauth2 POST flow)."""

    users: dict[str, str]
    identity_tokens: dict[str, str] = field(default_factory=dict)
    anonymous_pull: set[str] = field(default_factory=set)  # repositories anyone may pull
    expires_in: int = 300
    mangle: Callable[[str], str] | None = None  # rewrites each issued token (a lying token service)
    raw_answer: bytes | None = None  # answers every granted request with these bytes instead
    service: str = SERVICE
    issuer: str = ISSUER
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key, self._cert = self_signed("hullscan test token signer")
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        self._pem_key = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # -- lifecycle --

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                query = parse_qs(urlsplit(self.path).query)
                issuer._answer(self, "GET", query, self.headers.get("Authorization", ""))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                issuer._answer(self, "POST", form, self.headers.get("Authorization", ""))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="token-issuer").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def write_root_bundle(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "token-signer.crt"
        path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        return path

    def count(self, scope: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if scope is None or scope in r.scopes)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- token logic --

    def _authenticate(self, method: str, params: dict[str, list[str]], header: str) -> str | None:
        """The user name, '' for anonymous, None for bad credentials."""
        if method == "POST":
            grant = (params.get("grant_type") or [""])[0]
            if grant == "refresh_token":
                return self.identity_tokens.get((params.get("refresh_token") or [""])[0])
            if grant == "password":
                user, pw = (params.get("username") or [""])[0], (params.get("password") or [""])[0]
                return user if self.users.get(user) == pw and pw else None
            return None
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, pw = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.users.get(user) == pw and pw else None

    def _grant(self, user: str, scope: str) -> dict[str, Any] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            return None
        wanted = [a for a in actions.split(",") if a]
        if user:
            allowed = wanted
        elif kind == "repository" and name in self.anonymous_pull:
            allowed = [a for a in wanted if a == "pull"]
        else:
            allowed = []
        return {"type": kind, "name": name, "actions": allowed}

    def _answer(self, handler: BaseHTTPRequestHandler, method: str, params: dict[str, list[str]],
                auth_header: str) -> None:
        user = self._authenticate(method, params, auth_header)
        scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
        service = (params.get("service") or [""])[0]
        if user is None:
            with self._lock:
                self.requests.append(TokenRequest(method, scopes, "<rejected>", service, []))
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}).encode()
            handler.send_response(401)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        access = [g for g in (self._grant(user, s) for s in scopes) if g is not None]
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + self.expires_in,
                  "nbf": now - 5, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, self._pem_key, algorithm="RS256", headers={"x5c": [self._x5c]})
        if self.mangle is not None:
            token = self.mangle(token)
        with self._lock:
            self.requests.append(TokenRequest(method, scopes, user, service, access))
        doc: dict[str, Any] = {"token": token, "access_token": token, "expires_in": self.expires_in,
                               "issued_at": dt.datetime.now(dt.UTC).isoformat()}
        body = json.dumps(doc, ensure_ascii=False).encode() if self.raw_answer is None else self.raw_answer
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
