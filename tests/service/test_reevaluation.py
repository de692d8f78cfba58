"""A vulnerability database update re-evaluates every stored result, without downloading a layer.

The first database is built from the real OSV extract in tests/vulndb/data without its Alpine records; the update
downloads the whole extract (Alpine included) from a local OSV bucket. An image with Alpine's openssl 1.1.1d-r2,
clean at first, must then carry ALPINE-CVE-2019-1551 (fixed in 1.1.1d-r3), found while every request to the
registry is answered 503: no manifest and no layer is fetched."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hullscan.service.reevaluation import current_version, relabel
from hullscan.vulndb.store import apply_changes, build_from_paths, refresh
from tests.service.conftest import OSV_EXTRACT, make_settings, running, wait_for, wait_sync, wait_update
from tests.service.images import openssl_image, push
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer
from tests.vulndb.osvserver import OSVBucket, bucket_from_extract

pytestmark = pytest.mark.timeout(300)


def test_database_update_reevaluates_without_downloading(registry: RegistryServer, tmp_path: Path,
                                                         fault_proxy: Callable[..., FaultProxy],
                                                         request: pytest.FixtureRequest) -> None:
    bucket = OSVBucket(bucket_from_extract(tmp_path / "bucket")).start()  # the whole extract, Alpine included
    request.addfinalizer(bucket.stop)
    without_alpine = tmp_path / "extract"
    for folder in OSV_EXTRACT.iterdir():
        if folder.name != "Alpine":
            shutil.copytree(folder, without_alpine / folder.name)
    # OSV from the local bucket; the enrichment sources (CVE list, EPSS, KEV on the internet) off.
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}", osv_url=bucket.url, cve_url="",
                             epss_url="", kev_url="", scheduler_interval=0.5)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    build_from_paths(settings.db_path, [without_alpine])
    digest = push(registry, "reeval/openssl", "3.11", openssl_image())
    proxy = fault_proxy(registry)

    with running(settings) as api:
        reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": proxy.url,
                                                   "insecure": True}).json()
        api.post(f"/api/v1/registries/{reg['id']}/sync")
        assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
        image = api.get("/api/v1/images", params={"registry": reg["id"], "repository": "reeval/openssl"}).json()[0]
        first = wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])
        assert first["state"] == "succeeded" and first["digest"] == digest, first
        assert sum(first["counts"]["vulnerabilities"].values()) == 0
        assert api.get(f"/api/v1/scans/{first['id']}/report").json()["vulnerabilities"] == []
        before = api.get("/api/v1/database").json()
        assert before["database"]["built_at"] == first["database_built_at"] and before["update"] is None
        assert "Alpine" not in before["database"]["counts"]

        # From now on the registry answers nothing but 503: a scan that fetched anything would fail.
        proxy.clear()
        proxy.respond(r"", 503, times=-1)
        assert api.post("/api/v1/database/update", json={"base_url": bucket.url}, auth=None).status_code == 401
        started = api.post("/api/v1/database/update", json={"base_url": bucket.url})
        assert started.status_code == 202 and started.json()["update"]["state"] in ("running", "succeeded")
        done = wait_update(api)["update"]
        assert (done["state"], done["mode"], done["queued"]) == ("succeeded", "full", 1), done
        assert done["built_at"] != first["database_built_at"]

        scans = api.get("/api/v1/scans", params={"registry": reg["id"], "trigger": "reevaluate"}).json()
        assert [(s["kind"], s["digest"], s["image_id"]) for s in scans] == [("reevaluate", digest, image["id"])]
        again = wait_for(api, scans[0]["id"])
        assert again["state"] == "succeeded", again
        assert again["database_built_at"] == done["built_at"]
        report = api.get(f"/api/v1/scans/{again['id']}/report").json()
        found = [(v["id"], v["advisory_ids"], v["package"]["name"], v["installed_version"], v["fixed_versions"])
                 for v in report["vulnerabilities"]]
        assert found == [("CVE-2019-1551", ["ALPINE-CVE-2019-1551"], "libssl1.1", "1.1.1d-r2", ["1.1.1d-r3"])]
        assert sum(again["counts"]["vulnerabilities"].values()) == 1
        assert api.get("/api/v1/images", params={"registry": reg["id"], "repository": "reeval/openssl"}).json()[0][
            "last_scan"]["id"] == again["id"]
        assert proxy.count() == 0, [r.path for r in proxy.requests]

        # The same data again: nothing rebuilt, nothing to re-evaluate.
        api.post("/api/v1/database/update", json={"base_url": bucket.url})
        unchanged = wait_update(api)["update"]
        assert (unchanged["state"], unchanged["mode"], unchanged["queued"]) == ("succeeded", "unchanged", 0)

        # A bucket that is not there: the update fails with its cause, and the database stays as it was.
        api.post("/api/v1/database/update", json={"base_url": "http://127.0.0.1:9"})
        failed = wait_update(api)
        assert failed["update"]["state"] == "failed"
        assert failed["update"]["cause"]["code"] == "DB_DOWNLOAD_FAILED" and failed["update"]["cause"]["solution"]
        assert failed["database"]["built_at"] == done["built_at"]

        # A nightly db-update schedule, run now, updates from the configured bucket.
        nightly = api.post("/api/v1/schedules", json={"action": "db-update", "cron": "0 4 * * *"}).json()
        assert api.post(f"/api/v1/schedules/{nightly['id']}/run").status_code == 202
        deadline = time.monotonic() + 60
        while (api.get("/api/v1/database").json()["update"] or {}).get("requested_by") != f"schedule {nightly['id']}" \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        scheduled = wait_update(api)["update"]
        assert (scheduled["requested_by"], scheduled["state"]) == (f"schedule {nightly['id']}", "succeeded")

        # Changed in place outside the service, as an incremental `hullscan db update` does (the same build, a
        # record withdrawn from the data): the scheduler notices, and the result is re-evaluated again.
        built = api.get("/api/v1/database").json()["database"]["built_at"]
        apply_changes(settings.db_path, [], removals=["ALPINE-CVE-2019-1551"])
        assert api.get("/api/v1/database").json()["database"]["built_at"] == built
        deadline = time.monotonic() + 60
        while len(latest := api.get("/api/v1/scans", params={"registry": reg["id"], "trigger": "reevaluate"}).json()) \
                < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(latest) == 2, latest
        third = wait_for(api, latest[0]["id"])
        assert third["state"] == "succeeded" and sum(third["counts"]["vulnerabilities"].values()) == 0
        assert proxy.count() == 0


def test_the_tick_waits_for_a_running_update_to_judge_unchanged_data(registry: RegistryServer,
                                                                      tmp_path: Path) -> None:
    """An update that finds the data unchanged still swaps in a file with a new `updated_at`, then relabels the
    stored results. A scheduler tick between the two must not take the new file for new data and queue a
    re-evaluation of every image (the nightly update of a quiet day would re-match the whole registry)."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}", cve_url="", epss_url="", kev_url="",
                             scheduler_interval=3600)  # only this test's own ticks
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    build_from_paths(settings.db_path, [OSV_EXTRACT])
    push(registry, "reeval/quiet", "3.11", openssl_image())
    with running(settings) as api:
        svc = api.app.state.service  # type: ignore[attr-defined]
        reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                                   "insecure": True}).json()
        api.post(f"/api/v1/registries/{reg['id']}/sync")
        assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
        image = api.get("/api/v1/images", params={"registry": reg["id"], "repository": "reeval/quiet"}).json()[0]
        assert wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])["state"] \
            == "succeeded"
        svc.scheduler.tick()
        evaluated = current_version(settings)

        # The update's thread, between swapping in the refreshed file and relabelling the results.
        hold = threading.Event()
        svc.updater._thread = threading.Thread(target=hold.wait, daemon=True)
        svc.updater._thread.start()
        refresh(settings.db_path)
        assert current_version(settings) != evaluated  # the file says "checked again", nothing else changed
        svc.scheduler.tick()
        reevaluations = api.get("/api/v1/scans", params={"registry": reg["id"], "trigger": "reevaluate"}).json()
        assert reevaluations == []
        relabel(svc.db, evaluated, current_version(settings) or "")
        hold.set()
        svc.updater._thread.join()
        svc.scheduler.tick()
        assert api.get("/api/v1/scans", params={"registry": reg["id"], "trigger": "reevaluate"}).json() == []
