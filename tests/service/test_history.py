"""Reports and history through the API: a report equals what the CLI writes for the same image, the scan history
of an image, the difference between two scans, summaries of a registry and a namespace, and usage per month."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hullscan.service.core import Service
from tests.service.conftest import wait_for
from tests.service.world import World, running_world

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("history")) as w:
        yield w


# -- the report is the CLI's ---------------------------------------------------------------------------------------

# Values that differ between two runs of the same scan: when it ran, how long it took, random run ids.
_VOLATILE_KEYS = {"created", "timestamp", "serialNumber", "startTimeUtc", "endTimeUtc", "scanned_at", "created_at",
                  "duration_seconds", "elapsed", "seconds", "automationDetails", "documentNamespace", "bom-ref",
                  "invocations"}
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?|urn:uuid:[0-9a-f-]{36}"
                    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def stable(doc: Any) -> Any:
    """The document without what the clock and random run ids put in it."""
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if k not in _VOLATILE_KEYS}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    if isinstance(doc, str):
        return _STAMP.sub("<stamp>", doc)
    return doc


def cli_report(world: World, ref: str, fmt: str, tmp: Path) -> str:
    svc: Service = world.client.app.state.service  # type: ignore[attr-defined]
    out = tmp / f"cli.{fmt}"
    env = {**os.environ, "HULLSCAN_DATA_DIR": str(tmp / "cli-data"), "HULLSCAN_POOL_WORKERS": "0"}
    done = subprocess.run([sys.executable, "-m", "hullscan.cli", "scan", world.registry.ref(ref), "--insecure",
                           "--format", fmt, "--output", str(out), "--db", str(svc.settings.db_path),
                           "--skip-db-update", "--cache-dir", str(tmp / "cli-cache"), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out.read_text()


@pytest.mark.parametrize("fmt", ["json", "sarif", "cyclonedx", "spdx-json", "html"])  # spdx: tag-value
def test_reports_equal_what_the_cli_writes(world: World, fmt: str, tmp_path: Path) -> None:
    scan_id = world.scans["team/app:1.0"]
    api = world.client.get(f"/api/v1/scans/{scan_id}/report", params={"format": fmt})
    assert api.status_code == 200
    cli = cli_report(world, "team/app:1.0", fmt, tmp_path)
    if fmt == "html":
        assert _STAMP.sub("<stamp>", api.text) == _STAMP.sub("<stamp>", cli)
    else:
        assert stable(api.json()) == stable(json.loads(cli))
    assert "CVE-2020-1747" in api.text or fmt == "spdx-json"  # a real finding is in it, not an empty document


# -- history -------------------------------------------------------------------------------------------------------


def test_scan_history_of_an_image(world: World) -> None:
    image = world.images["team/app:1.0"]
    again = world.client.post("/api/v1/scans", json={"image_id": image})
    assert wait_for(world.client, again.json()["id"])["state"] == "succeeded"
    history = world.client.get(f"/api/v1/images/{image}/scans")
    ids = [s["id"] for s in history.json()]
    assert ids == [again.json()["id"], world.scans["team/app:1.0"]]  # newest first
    assert history.headers["X-Total-Count"] == "2"
    assert {s["image_id"] for s in history.json()} == {image}
    oldest = world.client.get(f"/api/v1/images/{image}/scans", params={"sort": "created_at", "page_size": 1})
    assert [s["id"] for s in oldest.json()] == [world.scans["team/app:1.0"]]
    assert 'rel="next"' in oldest.headers["Link"]
    assert world.client.get(f"/api/v1/images/{image}/scans", params={"state": "failed"}).json() == []
    # with no ?against=, a scan is compared with the image's previous successful scan: the same image, no change
    same = world.client.get(f"/api/v1/scans/{again.json()['id']}/diff").json()
    assert (same["against"], same["new"], same["fixed"]) == (world.scans["team/app:1.0"], [], [])
    assert same["unchanged"] > 0
    first = world.client.get(f"/api/v1/scans/{world.scans['team/app:1.0']}/diff")
    assert first.status_code == 404 and "no earlier successful scan" in first.json()["error"]["message"]


def test_diff_of_two_tags_lists_new_and_fixed_findings_per_item(world: World) -> None:
    diff = world.client.get(f"/api/v1/scans/{world.scans['team/app:2.0']}/diff",
                            params={"against": world.scans["team/app:1.0"]})
    assert diff.status_code == 200, diff.text
    doc = diff.json()
    new = {(f["item"], f["id"], f["package"], f["version"]) for f in doc["new"]}
    fixed = {(f["item"], f["id"], f["package"]) for f in doc["fixed"]}
    assert ("vuln", "CVE-2022-42969", "py", "1.10.0") in new  # py arrived in 2.0
    assert ("vuln", "CVE-2020-1747", "pyyaml") in fixed  # PyYAML 5.3 -> 5.3.1 fixed it
    assert ("secret", "github-pat", None) in fixed  # the token left .env
    assert not {f for f in new if f[2] == "requests"} and not {f for f in fixed if f[2] == "requests"}
    assert all(f["severity"] for f in doc["new"] + doc["fixed"])
    assert doc["counts"]["fixed"]["secret"] == 1 and doc["counts"]["new"]["vuln"] >= 1
    assert doc["unchanged"] >= 1  # requests 2.19.0 is vulnerable in both
    # the other way round, new and fixed swap
    back = world.client.get(f"/api/v1/scans/{world.scans['team/app:1.0']}/diff",
                            params={"against": world.scans["team/app:2.0"]}).json()
    assert {f["id"] for f in back["new"]} == {f["id"] for f in doc["fixed"]}


def test_summaries_of_a_registry_and_a_namespace(world: World) -> None:
    registry = world.client.get(f"/api/v1/registries/{world.registry_id}/summary").json()
    assert registry["images"] == 3
    by_worst = registry["images_by_worst_severity"]
    assert by_worst["UNSCANNED"] == 1  # other/app:1.0
    assert sum(by_worst.values()) == 3
    assert registry["scans_by_state"]["succeeded"] >= 2
    team = world.client.get(f"/api/v1/registries/{world.registry_id}/namespaces/team/summary").json()
    assert team["images"] == 2 and team["images_by_worst_severity"]["UNSCANNED"] == 0
    worst = [s for s, n in team["images_by_worst_severity"].items() if n]
    assert set(worst) <= {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN", "NONE"} and worst
    # the maintainer of `other` sees the registry through its own namespace only
    theirs = world.call("GET", f"/api/v1/registries/{world.registry_id}/summary", "other").json()
    assert theirs["images"] == 1 and theirs["images_by_worst_severity"]["UNSCANNED"] == 1
    assert sum(theirs["scans_by_state"].values()) == 0


def test_successful_scans_are_counted_per_month(world: World) -> None:
    usage = world.client.get(f"/api/v1/registries/{world.registry_id}/usage")
    assert usage.status_code == 200
    doc = usage.json()
    assert len(doc["months"]) == 12 and doc["months"][-1]["month"] == _this_month(world)
    succeeded = world.client.get("/api/v1/scans", params={"registry": world.registry_id, "state": "succeeded",
                                                          "kind": "scan"}).headers["X-Total-Count"]
    assert doc["months"][-1]["succeeded_scans"] == int(succeeded) == doc["succeeded_scans"]
    one = world.client.get(f"/api/v1/registries/{world.registry_id}/usage",
                           params={"since": "2020-11", "until": "2021-02"}).json()
    assert [(m["month"], m["succeeded_scans"]) for m in one["months"]] == [
        ("2020-11", 0), ("2020-12", 0), ("2021-01", 0), ("2021-02", 0)]
    backwards = world.client.get(f"/api/v1/registries/{world.registry_id}/usage",
                                 params={"since": "2021-02", "until": "2020-11"})
    assert backwards.status_code == 422
    assert world.client.get(f"/api/v1/registries/{world.registry_id}/usage",
                            params={"since": "2021-13"}).status_code == 422


def _this_month(world: World) -> str:
    scans = world.client.get("/api/v1/scans", params={"state": "succeeded"}).json()
    return str(scans[0]["finished_at"][:7])


def test_a_namespace_may_reuse_the_system_allowlist(world: World) -> None:
    api, reg = world.client, world.registry_id
    ask = {"repository": "team/app", "reference": "1.0"}
    policy = {"auto_scan": False, "block": {"enabled": True, "severity": "UNKNOWN"}, "allowlist": []}
    assert api.put(f"/api/v1/registries/{reg}/namespaces/team", json=policy).status_code == 200
    blocked = api.get(f"/api/v1/registries/{reg}/pullable", params=ask).json()
    assert blocked["pullable"] is False
    report = api.get(f"/api/v1/scans/{blocked['scan_id']}/report").json()
    ids = sorted({f["id"] for f in report["vulnerabilities"]})
    assert ids  # real findings block it
    system = api.put("/api/v1/allowlist", json={"allowlist": [{"id": i.lower(), "reason": "accepted fleet-wide"}
                                                              for i in ids]})
    assert [e["id"] for e in system.json()["allowlist"]] == ids and system.json()["reused_by"] == 0
    assert api.get(f"/api/v1/registries/{reg}/pullable", params=ask).json()["pullable"] is False  # not reused yet
    reused = api.put(f"/api/v1/registries/{reg}/namespaces/team", json={**policy, "reuse_system_allowlist": True})
    assert reused.json()["reuse_system_allowlist"] is True
    assert api.get(f"/api/v1/registries/{reg}/pullable", params=ask).json()["pullable"] is True
    assert api.get("/api/v1/allowlist").json()["reused_by"] == 1
    twice = api.put("/api/v1/allowlist", json={"allowlist": [{"id": "CVE-1"}, {"id": "cve-1"}]})
    assert twice.status_code == 422 and "more than once" in twice.json()["error"]["message"]
    api.put("/api/v1/allowlist", json={"allowlist": [{"id": ids[0], "expires_at": "2001-01-01T00:00:00Z"}]})
    assert api.get(f"/api/v1/registries/{reg}/pullable", params=ask).json()["pullable"] is False  # expired
