"""What the Harbor adapter tests share: the vulnerable image, a service served by uvicorn on a loopback port (the
adapter is called over real HTTP), an executor held back until a test lets scans run, and an admin API token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from sqlalchemy import select

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar
from hullscan.service.api.app import create_app
from hullscan.service.core import Service
from hullscan.service.jobs.executor import InProcessExecutor
from hullscan.service.jobs.runner import ScanRunner
from hullscan.service.passwords import new_token, token_hash
from hullscan.service.storage.models import ApiToken, User
from hullscan.settings import Settings
from tests.support.registry import free_port

# Alpine 3.11 with openssl's libcrypto 1.1.1d-r2 (ALPINE-CVE-2019-1551, fixed in 1.1.1d-r3, no severity given) and
# an app with lodash 4.17.11 in node_modules (GHSA-jf85-cpcp-j695 / CVE-2019-10744, critical, fixed in 4.17.12;
# GHSA-29mw-wpgm-hmr9 / CVE-2020-28500, moderate, fixed in 4.17.21): real records in tests/vulndb/data/osv.
APK_INSTALLED = "\n".join(["C:Q1abcdefabcdefabcdefabcdefab=", "P:libcrypto1.1", "V:1.1.1d-r2", "A:x86_64",
                           "S:1064960", "I:2764800", "T:Crypto library from openssl", "o:openssl", ""]) + "\n"
EXPECTED = {  # (id, package, version, fix_version, severity)
    ("CVE-2019-10744", "lodash", "4.17.11", "4.17.12", "Critical"),
    ("CVE-2020-28500", "lodash", "4.17.11", "4.17.21", "Medium"),
    ("CVE-2019-1551", "libcrypto1.1", "1.1.1d-r2", "1.1.1d-r3", "Unknown"),
}


def vulnerable_image() -> Image:
    return Image([
        Layer(layer_tar([FileSpec("etc", type="d"), ("etc/os-release", "ID=alpine\nVERSION_ID=3.11.2\n"),
                         FileSpec("lib/apk/db", type="d"), ("lib/apk/db/installed", APK_INSTALLED)])),
        Layer(layer_tar([("srv/app/package.json", json.dumps({"name": "webapp", "version": "1.0.0"})),
                         ("srv/app/node_modules/lodash/package.json",
                          json.dumps({"name": "lodash", "version": "4.17.11"}))])),
    ])


class HeldExecutor:
    """The service's in-process executor, started only on `release()`: until then every scan stays queued, so a
    test sees what Harbor sees while a scan waits, without racing the scan."""

    def __init__(self) -> None:
        self.inner: InProcessExecutor | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()

    def attach(self, svc: Service) -> None:
        self.inner = InProcessExecutor(ScanRunner(svc.settings, svc.db, svc.box, svc.engine), svc.limits,
                                       attempts=svc.settings.scan_attempts)

    def release(self) -> None:
        with self._lock:
            if self._released.is_set():
                return
            self._released.set()
        assert self.inner is not None
        self.inner.start()

    def start(self) -> None:
        pass

    def wake(self) -> None:
        if self._released.is_set() and self.inner is not None:
            self.inner.wake()

    def stop_scan(self, scan_id: int) -> None:
        if self._released.is_set() and self.inner is not None:
            self.inner.stop_scan(scan_id)

    def shutdown(self) -> None:
        if self._released.is_set() and self.inner is not None:
            self.inner.shutdown()


@dataclass
class Served:
    url: str
    service: Service
    executor: HeldExecutor
    token: str  # an API token of the admin: what Harbor's scanner registration carries


@contextmanager
def serve(settings: Settings) -> Iterator[Served]:
    """hullscan's app (lifespan, migrations, the held executor) under uvicorn on 127.0.0.1."""
    held = HeldExecutor()
    svc = Service(settings, executor=held)
    held.attach(svc)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, svc), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="hullscan-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a hang guard, not a timing assertion
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", svc, held, admin_token(svc))
    finally:
        server.should_exit = True
        thread.join(60)


def admin_token(svc: Service, name: str = "harbor") -> str:
    """An API token for `admin`, stored hashed as the service stores every token."""
    token = new_token()
    with svc.db.session() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        session.add(ApiToken(user_id=admin.id, name=name, token_hash=token_hash(token), prefix=token[:8]))
    return token
