"""The service part of `make demo`: hullscan serve next to a local registry, offline.

It starts `hullscan serve` on a fresh data directory (HULLSCAN_ADMIN_PASSWORD makes the admin), starts Debian's
docker-registry configured to notify the service of pushes, connects the registry through the REST API,
synchronises it, turns on automatic scanning and pull blocking (HIGH) for the namespace `demo`, pushes the demo
image with skopeo, waits for the scan the push notification started and reads the report through the API. Then
issue 11's journey: `hullscan gate` in front of the registry, `skopeo copy` through it refused with Harbor's 412 and
the reason, the blocking findings allowlisted, and the same `skopeo copy` succeeding.
Every step prints the call it made and what came back, and the web console's address of what it just did: the
scan and its report, the namespace settings where the allowlist is edited. Run from a terminal, the demo waits at
the allowlist step (allowlist the findings in the console yourself, or press Enter and it does it through the API)
and at the end (the service stays up to look around until Enter); otherwise it runs straight through.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from hullscan.findings import severity_rank

ADMIN_PASSWORD = "demo-admin-password"
NAMESPACE = "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def console(what: str, url: str) -> None:
    print(f"   console: {what}: {url}", flush=True)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def pause(prompt: str) -> None:
    """Wait for Enter when someone is at the terminal; go on at once otherwise (make demo in a script, CI)."""
    if interactive():
        input(f"   >> {prompt} ")


def show(method: str, path: str, response: httpx.Response, keys: tuple[str, ...] = ()) -> Any:
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
    shown = {k: body[k] for k in keys if k in body} if keys and isinstance(body, dict) else ""
    print(f"   {method} {path} -> {response.status_code} {json.dumps(shown, default=str) if shown else ''}", flush=True)
    response.raise_for_status()
    return body


@contextmanager
def registry(root: Path, port: int, notify: str | None, token: str | None) -> Iterator[str]:
    """docker-registry on 127.0.0.1:port, filesystem storage under root, notifying `notify` of pushes."""
    config: dict[str, Any] = {
        "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "hullscan-demo"},
    }
    if notify:
        config["notifications"] = {"endpoints": [{
            "name": "hullscan", "url": notify, "headers": {"Authorization": [f"Bearer {token}"]},
            "timeout": "5s", "threshold": 3, "backoff": "2s", "ignore": {"actions": ["pull"]}}]}
    (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    with open(root / "registry.log", "ab") as log:
        proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/v2/", timeout=1).status_code == 200, "the registry to start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_until(ready: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = ready()
            if found:
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gave up waiting for {what}")


def push(layout: Path, src_tag: str, dest: str) -> None:
    auth = Path(tempfile.mkdtemp(prefix="demo-skopeo-"))
    (auth / "auth.json").write_text("{}")
    try:
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci:{layout}:{src_tag}", f"docker://{dest}"], check=True,
                       env={**os.environ, "REGISTRY_AUTH_FILE": str(auth / "auth.json"), "TMPDIR": str(auth)})
    finally:
        shutil.rmtree(auth, ignore_errors=True)


def run(layout: Path, small_layout: Path, db: Path, work: Path) -> int:
    """The journey; `layout` holds the demo image (tag demo), `small_layout` a tiny one (tag latest)."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "registry").mkdir(parents=True)
    port, registry_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HULLSCAN_ADMIN_PASSWORD": ADMIN_PASSWORD, "HULLSCAN_DB": str(db),
           "HULLSCAN_CACHE_DIR": str(work / "cache")}
    say(f"hullscan serve --data-dir {work / 'data'} --port {port}   (HULLSCAN_ADMIN_PASSWORD set: the user admin)")
    with open(work / "serve.log", "wb") as log:
        server = subprocess.Popen([str(Path(sys.executable).with_name("hullscan")), "serve", "--data-dir",
                                   str(work / "data"), "--port", str(port), "--log-level", "info"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        return _journey(base, layout, small_layout, work, registry_port)
    finally:
        server.terminate()
        server.wait(timeout=60)
        print(f"\n(the service's JSON logs are in {work / 'serve.log'})")


def _journey(base: str, layout: Path, small_layout: Path, work: Path, registry_port: int) -> int:
    api = httpx.Client(base_url=base, auth=("admin", ADMIN_PASSWORD), timeout=60)
    wait_until(lambda: api.get("/healthz").status_code == 200, "the service to start")
    hooks = "/api/v1/hooks/distribution/{registry_id}" in api.get("/openapi.json").json()["paths"]

    say("connect the registry (POST /api/v1/registries), then make an API token for the rest of the journey")
    reg = show("POST", "/api/v1/registries", api.post("/api/v1/registries", json={
        "name": "local", "type": "distribution", "url": f"http://127.0.0.1:{registry_port}", "insecure": True}),
        ("id", "name", "type", "url"))
    token = show("POST", "/api/v1/tokens", api.post("/api/v1/tokens", json={"name": "demo"}), ("name", "prefix"))
    api.auth = None
    api.headers["Authorization"] = f"Bearer {token['token']}"
    notify = f"{base}/api/v1/hooks/distribution/{reg['id']}" if hooks else None
    with registry(work / "registry", registry_port, notify, reg["hook_token"]) as url:
        print(f"   docker-registry at {url}" + (f", notifying {notify}" if notify else ""))
        show("POST", f"/api/v1/registries/{reg['id']}/test", api.post(f"/api/v1/registries/{reg['id']}/test"),
             ("ok", "message"))

        say(f"push a first image so the namespace '{NAMESPACE}' exists, and synchronise")
        push(small_layout, "latest", f"127.0.0.1:{registry_port}/{NAMESPACE}/hello:1")
        show("POST", f"/api/v1/registries/{reg['id']}/sync", api.post(f"/api/v1/registries/{reg['id']}/sync"))
        synced = wait_until(lambda: (r := api.get(f"/api/v1/registries/{reg['id']}").json())["last_sync"]["state"]
                            in ("succeeded", "failed") and r, "the synchronisation")
        print(f"   last_sync: {synced['last_sync']['state']} {synced['last_sync']['counts']}")

        say(f"turn on automatic scanning for '{NAMESPACE}' and block images with HIGH findings")
        path = f"/api/v1/registries/{reg['id']}/namespaces/{NAMESPACE}"
        show("PUT", path, api.put(path, json={"auto_scan": True, "block": {"enabled": True, "severity": "HIGH"},
                                              "allowlist": []}), ("auto_scan", "block"))

        say(f"push the demo image as {NAMESPACE}/app:1.0 (skopeo)")
        push(layout, "demo", f"127.0.0.1:{registry_port}/{NAMESPACE}/app:1.0")
        scan = _automatic_scan(api, reg["id"], hooks)
        if not _report(api, reg["id"], scan):
            return 1
        say(f"see the automatic scan in the web console, {base}/ui/ (log in as admin, password {ADMIN_PASSWORD})")
        console(f"the repository {NAMESPACE}/app, its scan and whether a pull passes",
                f"{base}/ui/registries/{reg['id']}/images?repository={NAMESPACE}%2Fapp")
        console(f"scan #{scan['id']}'s report (findings by scan item, filters, exports)",
                f"{base}/ui/scans/{scan['id']}")
        code = _gate_journey(api, reg, scan, work)
        if code == 0 and interactive():
            say(f"the service, the registry and the console stay up: {base}/ui/")
            pause("press Enter to stop them")
        return code


def _report(api: httpx.Client, registry_id: int, scan: dict[str, Any]) -> bool:
    say(f"the scan (GET /api/v1/scans/{scan['id']}): trigger {scan['trigger']}, state {scan['state']}")
    if scan["state"] != "succeeded":
        print(f"   cause: {scan['cause']}")
        return False
    print(f"   vulnerabilities by severity: {scan['counts']['vulnerabilities']}")
    print(f"   other findings per item: {scan['counts']['items']}")
    report = api.get(f"/api/v1/scans/{scan['id']}/report", params={"format": "json"}).json()
    say(f"the report (GET /api/v1/scans/{scan['id']}/report?format=json|sarif|cyclonedx|spdx|html)")
    for f in report["vulnerabilities"][:5]:
        print(f"   {f['severity']:<8} {f['id']:<20} {f['package']['name']} {f['package']['version']}")
    for c in [c for c in report["checks"] if c["item"] in ("secret", "malware")][:5]:
        print(f"   {c['severity']:<8} {c['item']}: {c['id']} in {c['path']}")
    decision = api.get(f"/api/v1/registries/{registry_id}/pullable",
                       params={"repository": f"{NAMESPACE}/app", "reference": "1.0"}).json()
    say("may it be pulled? (GET /api/v1/registries/{id}/pullable)")
    print(f"   pullable: {decision['pullable']}; {' '.join(decision['reasons'])[:300]}")
    summary = api.get(f"/api/v1/registries/{registry_id}/summary").json()
    say("the registry's summary and usage (GET .../summary, GET .../usage)")
    print(f"   images by worst severity: { {k: v for k, v in summary['images_by_worst_severity'].items() if v} }")
    usage = api.get(f"/api/v1/registries/{registry_id}/usage").json()
    print(f"   successful scans this month: {usage['months'][-1]['succeeded_scans']}")
    return True


def _gate_journey(api: httpx.Client, reg: dict[str, Any], scan: dict[str, Any], work: Path) -> int:
    """hullscan gate in front of the registry: the pull refused with the reason, allowlisted, then allowed."""
    listen = f"127.0.0.1:{free_port()}"
    ref = f"{listen}/{NAMESPACE}/app:1.0"
    say(f"start the pull gate: hullscan gate --data-dir {work / 'data'} --listen {listen} --registry {reg['name']}")
    with gate(work, listen, reg["name"]):
        say(f"pull through the gate: skopeo copy docker://{ref} oci:{work / 'pulled'}:app")
        refused = pull(ref, work / "pulled")
        print(f"   skopeo exit code {refused.returncode}: {skopeo_message(refused.stderr)}")
        wire = httpx.get(f"http://{listen}/v2/{NAMESPACE}/app/manifests/1.0",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        print(f"   on the wire: GET /v2/{NAMESPACE}/app/manifests/1.0 -> {wire.status_code} {wire.text.strip()}")
        if refused.returncode == 0 or wire.status_code != 412:
            print("   expected the gate to refuse this pull")
            return 1

        base = str(api.base_url).rstrip("/")
        say("allowlist the findings that block it, each with a reason")
        console(f"the namespace {NAMESPACE}'s settings, its allowlist editor (reason and expiry per entry)",
                f"{base}/ui/registries/{reg['id']}/namespaces/{NAMESPACE}")
        console("or from the report: each finding's 'Allowlist…' link", f"{base}/ui/scans/{scan['id']}")
        pause("allowlist them in the console, or press Enter and the demo does it through the API")
        if _pullable(api, reg["id"]):
            print("   the console's allowlist lets the image through")
        else:
            print(f"   PUT /api/v1/registries/{reg['id']}/namespaces/{NAMESPACE} with every blocking finding:")
            ids = allowlist_blocking(api, reg["id"], scan["id"])
            print(f"   {len(ids)} vulnerabilities at or above HIGH allowlisted: {', '.join(ids[:8])}"
                  + (" ..." if len(ids) > 8 else ""))

        say(f"the same pull again: skopeo copy docker://{ref} oci:{work / 'pulled'}:app")
        allowed = pull(ref, work / "pulled")
        if allowed.returncode != 0:
            print(f"   skopeo exit code {allowed.returncode}: {skopeo_message(allowed.stderr)}")
            return 1
        index = json.loads((work / "pulled" / "index.json").read_text())
        print(f"   skopeo exit code 0: pulled {index['manifests'][0]['digest']} into {work / 'pulled'}")
    return 0


def _pullable(api: httpx.Client, registry_id: int) -> bool:
    decision = api.get(f"/api/v1/registries/{registry_id}/pullable",
                       params={"repository": f"{NAMESPACE}/app", "reference": "1.0"}).json()
    return bool(decision["pullable"])


def allowlist_blocking(api: httpx.Client, registry_id: int, scan_id: int) -> list[str]:
    """Allowlist every vulnerability of the scan at or above the namespace's threshold; the ids."""
    path = f"/api/v1/registries/{registry_id}/namespaces/{NAMESPACE}"
    settings = api.get(path).json()
    floor = severity_rank(settings["block"]["severity"])
    report = api.get(f"/api/v1/scans/{scan_id}/report", params={"format": "json"}).json()
    ids = sorted({f["id"] for f in report["vulnerabilities"] if severity_rank(f["severity"]) >= floor})
    entries = [{"id": i, "reason": "demo: reviewed, not reachable in this image"} for i in ids]
    show("PUT", path, api.put(path, json={"auto_scan": settings["auto_scan"], "block": settings["block"],
                                          "allowlist": entries}), ("block",))
    return ids


@contextmanager
def gate(work: Path, listen: str, registry_name: str) -> Iterator[None]:
    """`hullscan gate` as the README starts it, on the service's data directory; its log in work/gate.log."""
    with open(work / "gate.log", "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("hullscan")), "gate", "--data-dir",
                                 str(work / "data"), "--listen", listen, "--registry", registry_name],
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_until(lambda: httpx.get(f"http://{listen}/v2/", timeout=1).status_code in (200, 401), "the gate to start")
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pull(ref: str, dest: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(dest, ignore_errors=True)
    return subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                           "--retry-times", "0", f"docker://{ref}", f"oci:{dest}:app"],
                          capture_output=True, text=True, timeout=300)


def skopeo_message(stderr: str) -> str:
    """skopeo's fatal message without its logfmt wrapping (time=..., level=fatal, msg="...")."""
    text = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if 'msg="' in text:
        text = text.split('msg="', 1)[1].rstrip('"').replace('\\"', '"')
    return text


def _automatic_scan(api: httpx.Client, registry_id: int, hooks: bool) -> dict[str, Any]:
    """The scan the push started: through the registry's notification when the service takes them, otherwise
    through a synchronisation (which scans what is new in a namespace with automatic scanning too)."""
    def scanned() -> dict[str, Any] | None:
        images = api.get("/api/v1/images", params={"registry": registry_id, "repository": f"{NAMESPACE}/app"}).json()
        if not images:
            return None
        scans = api.get(f"/api/v1/images/{images[0]['id']}/scans").json()
        return scans[0] if scans and scans[0]["state"] in ("succeeded", "failed", "stopped") else None

    if hooks:
        say("the registry notified the service of the push; waiting for the automatic scan")
    else:
        say("this build takes no push notifications: a synchronisation finds the new tag and scans it")
        api.post(f"/api/v1/registries/{registry_id}/sync").raise_for_status()
    scan: dict[str, Any] = wait_until(scanned, "the automatic scan", timeout=300)
    return scan
