"""A small, real world for access, history and observability tests: the service running on its own data directory,
a real local registry holding two namespaces (`team`, `other`), two scanned tags of `team/app` that differ in
real OSV vulnerabilities and in a secret, and a user for every role:

    admin       the admin the service made at its first start
    maintainer  maintainer of team          viewer      viewer of team
    other       maintainer of other only    none        a user with no role at all

The images' packages are real releases matched against the real OSV records kept in tests/vulndb/data/osv.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar
from hullscan.service.api.app import create_app
from hullscan.service.storage.models import Namespace, Registry
from tests.service.conftest import ADMIN, make_settings, wait_for, wait_sync
from tests.support.registry import RegistryServer, open_registry

SITE = "usr/local/lib/python3.11/site-packages"
# Shaped like a GitHub token and an AWS key pair, made up: the scan must find them and no log may show them.
GHP = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
PASSWORDS = {"admin": ADMIN[1], "maintainer": "maintainer-pass-1", "viewer": "viewer-pass-1",
             "other": "other-pass-1", "none": "nobody-pass-1"}
ROLES = ("admin", "maintainer", "viewer", "other", "none", "anonymous")


def dist_info(name: str, version: str) -> tuple[str, str]:
    return (f"{SITE}/{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def app_image(version: str) -> Image:
    """team/app 1.0: PyYAML 5.3 (CVE-2020-1747, fixed in 5.3.1), requests 2.19.0 and a GitHub token in .env.
    team/app 2.0: PyYAML 5.3.1, requests 2.19.0 still, py 1.10.0 (CVE-2022-42969), and no token."""
    files: list[FileSpec | tuple[str, str | bytes]] = [
        FileSpec("etc", type="d"), ("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
        dist_info("requests", "2.19.0")]
    if version == "1.0":
        files += [dist_info("PyYAML", "5.3"), ("srv/app/.env", f"GITHUB_TOKEN={GHP}\n")]
    else:
        files += [dist_info("PyYAML", "5.3.1"), dist_info("py", "1.10.0")]
    return Image([Layer(layer_tar(files))])


@dataclass
class World:
    client: TestClient
    registry: RegistryServer
    registry_id: int
    namespaces: dict[str, int]  # name -> id
    users: dict[str, int]  # role -> user id
    images: dict[str, int]  # "team/app:1.0" -> image id
    scans: dict[str, int]  # "team/app:1.0" -> id of its succeeded scan
    tmp: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def auth(self, role: str) -> tuple[str, str] | None:
        if role == "anonymous":
            return None
        return (ADMIN[0] if role == "admin" else role, PASSWORDS[role])

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"

    def call(self, method: str, path: str, role: str, **kw: Any) -> Any:
        """One request as `role`, with no cookie carried over from an earlier one."""
        self.client.cookies.clear()
        response = self.client.request(method, path, auth=self.auth(role), **kw)
        self.client.cookies.clear()
        return response


@contextmanager
def running_world(tmp: Path, database_url: str | None = None) -> Iterator[World]:
    registry_root = tmp / "registry"
    registry_root.mkdir(parents=True)
    registry = open_registry(registry_root)
    try:
        for tag in ("1.0", "2.0"):
            registry.push_images(app_image(tag), f"team/app:{tag}", tmp)
        registry.push_images(app_image("1.0"), "other/app:1.0", tmp)
        settings = make_settings(tmp, database_url or f"sqlite:///{tmp / 'service.db'}")
        with TestClient(create_app(settings)) as client:
            client.auth = ADMIN
            yield _populate(client, registry, tmp)
    finally:
        registry.stop()


def _populate(client: TestClient, registry: RegistryServer, tmp: Path) -> World:
    reg = client.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                                  "insecure": True})
    assert reg.status_code == 201, reg.text
    registry_id = reg.json()["id"]
    assert client.post(f"/api/v1/registries/{registry_id}/sync").status_code == 202
    assert wait_sync(client, registry_id)["last_sync"]["state"] == "succeeded"
    namespaces = {ns["name"]: ns["id"] for ns in client.get(f"/api/v1/registries/{registry_id}/namespaces").json()}
    images = {f"{i['repository']}:{i['tag']}": i["id"]
              for i in client.get("/api/v1/images", params={"registry": registry_id}).json()}
    users = {"admin": client.get("/api/v1/users/me").json()["id"]}
    grants = {"maintainer": [("team", "maintainer")], "viewer": [("team", "viewer")],
              "other": [("other", "maintainer")], "none": []}
    for role, memberships in grants.items():
        made = client.post("/api/v1/users", json={
            "username": role, "password": PASSWORDS[role],
            "memberships": [{"namespace_id": namespaces[ns], "role": r} for ns, r in memberships]})
        assert made.status_code == 201, made.text
        users[role] = made.json()["id"]
    scans = {}
    for name in ("team/app:1.0", "team/app:2.0"):
        started = client.post("/api/v1/scans", json={"image_id": images[name]})
        assert started.status_code == 202, started.text
        done = wait_for(client, started.json()["id"])
        assert done["state"] == "succeeded", done
        scans[name] = done["id"]
    return World(client, registry, registry_id, namespaces, users, images, scans, tmp)


def seed_namespace(session: Session, registry: str = "seed", namespace: str = "team") -> Namespace:
    """A registry row and one namespace of it, written straight into the database, for tests that need the rows
    but no registry: its address is the discard port, where nothing answers, so a sync or a test fails at once."""
    row = Registry(name=registry, type="distribution", url="http://127.0.0.1:9")
    session.add(row)
    session.flush()
    ns = Namespace(registry_id=row.id, name=namespace)
    session.add(ns)
    session.flush()
    return ns
