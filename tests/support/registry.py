"""Real registries for tests: Debian's `docker-registry` (distribution 2.8) on loopback ports.

Fixtures (a pytest plugin, registered from tests/conftest.py):

- `registry`        session: open registry (anonymous push and pull), plain HTTP.
- `basic_registry`  session: htpasswd Basic auth; `.creds` is ("alice", "wonderland").
- `token_registry`  session: Docker token auth; `.issuer` is the TokenIssuer (request log, expires_in...).
- `tls_registry`    session: open registry over HTTPS with a self-signed certificate at `.ca_cert`.
- `fault_proxy`     function: factory `fault_proxy(upstream) -> FaultProxy` (see tests/support/proxy.py).

Each RegistryServer has `.host` ("127.0.0.1:PORT"), `.url`, `.ref("repo:tag")`, `.client(**kw)`,
`.push(layout_dir, "repo:tag")`, `.push_images(images, "repo:tag", workdir)` and `.upload(...)` for raw
manifests (artifacts, hand-made indexes). Registries are shared by the session: use a repository name of
your own in each test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from hullscan.imagebuild import Image, write_oci_layout
from hullscan.oci.credentials import Credentials
from hullscan.oci.registry import RegistryClient, RetryPolicy

from .proxy import FaultProxy
from .tokenissuer import ISSUER, SERVICE, TokenIssuer, self_signed, write_pem

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SKOPEO_BIN = shutil.which("skopeo") or "/usr/bin/skopeo"
USER, PASSWORD = "alice", "wonderland"
FAST_RETRY = RetryPolicy(attempts=5, connect_attempts=2, base_delay=0.01, max_delay=0.05, max_retry_after=2.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None
    creds: tuple[str, str] | None = None
    issuer: TokenIssuer | None = None
    ca_cert: Path | None = None
    scheme: str = "http"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def ref(self, repo_tag: str) -> str:
        return f"{self.host}/{repo_tag}"

    @property
    def credentials(self) -> Credentials | None:
        return None if self.creds is None else Credentials(self.creds[0], self.creds[1], source="test fixture")

    def client(self, *, credentials: Credentials | None | bool = True, **kwargs: Any) -> RegistryClient:
        """A RegistryClient for this registry: the fixture's credentials unless told otherwise, fast retries."""
        creds = self.credentials if credentials is True else (credentials or None)
        kwargs.setdefault("retry", FAST_RETRY)
        if self.scheme == "https":
            kwargs.setdefault("scheme", "https")
            kwargs.setdefault("ca_cert", self.ca_cert)
        return RegistryClient(self.host, creds, **kwargs)

    def push(self, layout_dir: Path, repo_tag: str, **kwargs: Any) -> None:
        kwargs.setdefault("creds", self.creds)
        push(layout_dir, self.ref(repo_tag), **kwargs)

    def push_images(self, images: Image | list[Image], repo_tag: str, workdir: Path, *,
                    as_index: bool = False, **kwargs: Any) -> Path:
        """Write an OCI layout for `images` under workdir and push it (an index is pushed with --all)."""
        layout = Path(tempfile.mkdtemp(prefix="layout-", dir=workdir))
        write_oci_layout(layout, images, "latest", as_index=as_index)
        is_index = as_index or (isinstance(images, list) and len(images) > 1)
        kwargs.setdefault("all_images", is_index)
        self.push(layout, repo_tag, **kwargs)
        return layout

    def upload(self, repo: str, ref: str, manifest: bytes, media_type: str,
               blobs: Mapping[str, bytes] | None = None) -> str:
        """Push raw blobs and a raw manifest with hullscan's own client (for artifacts and odd manifests)."""
        with self.client() as c:
            for data in (blobs or {}).values():
                c.put_blob(repo, data)
            return c.put_manifest(repo, ref, manifest, media_type)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.issuer is not None:
            self.issuer.stop()


def push(layout_dir: Path, ref: str, creds: tuple[str, str] | None = None, *, src_tag: str = "latest",
         all_images: bool = False, fmt: str | None = None, tls_verify: bool = False) -> None:
    """`skopeo copy oci:<layout>:<tag> docker://<ref>`: --all for indexes, fmt='v2s2' for Docker media types."""
    auth_dir = Path(tempfile.mkdtemp(prefix="skopeo-auth-"))
    auth_file = auth_dir / "auth.json"
    auth_file.write_text("{}")
    cmd = [SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", f"--dest-tls-verify={str(tls_verify).lower()}",
           "--retry-times", "2"]
    if creds is not None:
        cmd += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
    if all_images:
        cmd.append("--all")
    if fmt:
        cmd += ["--format", fmt]
    cmd += [f"oci:{layout_dir}:{src_tag}", f"docker://{ref}"]
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth_file), "TMPDIR": str(auth_dir)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    finally:
        shutil.rmtree(auth_dir, ignore_errors=True)
    if proc.returncode != 0:
        shown = " ".join(c if not c.startswith(f"{creds[0]}:") else "<creds>" for c in cmd) if creds else " ".join(cmd)
        raise RuntimeError(f"skopeo push failed ({proc.returncode}): {shown}\n{proc.stderr}")


def notifications(url: str, token: str, name: str = "hullscan") -> dict[str, Any]:
    """A `notifications` block sending every event but pulls to `url` with `Authorization: Bearer <token>`
    (configuration.md, "notifications"): retried every 100 ms after a failure, so a test does not wait long."""
    return {"endpoints": [{"name": name, "url": url, "headers": {"Authorization": [f"Bearer {token}"]},
                           "timeout": "5s", "threshold": 3, "backoff": "100ms",
                           "ignore": {"actions": ["pull"]}}]}


def start_registry(root: Path, *, auth: dict[str, Any] | None = None, tls: tuple[Path, Path] | None = None,
                   attempts: int = 3, extra: dict[str, Any] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start `docker-registry serve` with filesystem storage under root; wait until /v2/ answers. `extra` adds
    top-level configuration sections (`notifications`, `compatibility`)."""
    last_log = ""
    for _ in range(attempts):
        port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": "hullscan-tests"},
            "health": {"storagedriver": {"enabled": False}},
        }
        if auth:
            config["auth"] = auth
        config.update(extra or {})
        if tls:
            config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        # JSON is valid YAML, so no YAML writer is needed.
        cfg_path = root / "config.yml"
        cfg_path.write_text(json.dumps(config, indent=2))
        log_path = root / "registry.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg_path)], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        scheme = "https" if tls else "http"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                r = httpx.get(f"{scheme}://127.0.0.1:{port}/v2/", verify=False, timeout=1)
                if r.status_code in (200, 401):
                    return proc, port
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        last_log = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not start:\n{last_log}")


def htpasswd_line(user: str, password: str) -> str:
    tool = shutil.which("htpasswd")
    if tool:
        out = subprocess.run([tool, "-Bbn", user, password], capture_output=True, text=True, check=True).stdout
        return out.strip() + "\n"
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"


def open_registry(root: Path, *, extra: dict[str, Any] | None = None) -> RegistryServer:
    root.mkdir(parents=True, exist_ok=True)
    proc, port = start_registry(root, extra=extra)
    return RegistryServer(root, port, proc)


def basic_auth_registry(root: Path, users: Mapping[str, str] | None = None) -> RegistryServer:
    users = dict(users or {USER: PASSWORD})
    htpasswd = root / "htpasswd"
    root.mkdir(parents=True, exist_ok=True)
    htpasswd.write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
    proc, port = start_registry(root, auth={"htpasswd": {"realm": "hullscan-test", "path": str(htpasswd)}})
    first = next(iter(users.items()))
    return RegistryServer(root, port, proc, creds=first)


def token_auth_registry(root: Path, users: Mapping[str, str] | None = None) -> RegistryServer:
    root.mkdir(parents=True, exist_ok=True)
    issuer = TokenIssuer(dict(users or {USER: PASSWORD})).start()
    bundle = issuer.write_root_bundle(root)
    auth = {"token": {"realm": issuer.url, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    try:
        proc, port = start_registry(root, auth=auth)
    except Exception:
        issuer.stop()
        raise
    first = next(iter(issuer.users.items()))
    return RegistryServer(root, port, proc, creds=first, issuer=issuer)


def tls_registry_server(root: Path) -> RegistryServer:
    key, cert = self_signed("127.0.0.1", ip="127.0.0.1", dns=["localhost"])
    key_path, cert_path = write_pem(key, cert, root / "tls", "registry")
    proc, port = start_registry(root, tls=(cert_path, key_path))
    return RegistryServer(root, port, proc, ca_cert=cert_path, scheme="https")


def _session_server(factory: Callable[[Path], RegistryServer], tmp_path_factory: pytest.TempPathFactory,
                    name: str) -> Iterator[RegistryServer]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    server = factory(tmp_path_factory.mktemp(name))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_server(open_registry, tmp_path_factory, "registry-open")


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_server(basic_auth_registry, tmp_path_factory, "registry-basic")


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_server(token_auth_registry, tmp_path_factory, "registry-token")


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_server(tls_registry_server, tmp_path_factory, "registry-tls")


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: fault_proxy(upstream_server_or_url, upstream_auth=None, port=0) -> a started FaultProxy."""
    proxies: list[FaultProxy] = []

    def make(upstream: RegistryServer | str, upstream_auth: tuple[str, str] | None = None,
             port: int = 0) -> FaultProxy:
        url = upstream.url if isinstance(upstream, RegistryServer) else upstream
        p = FaultProxy(url, upstream_auth=upstream_auth, port=port).start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        with contextlib.suppress(Exception):
            p.stop()
