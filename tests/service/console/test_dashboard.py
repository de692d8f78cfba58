"""The dashboard's and the repository list's queries over stored scans, on both databases: worst severity per
namespace, the open critical/high trend day by day, repositories grouped from image rows, the newest scan of each
image, and the namespaces a reader may see. Rows are written as the scan runner stores them (its `summary_counts`
shape) with chosen finish times: a trend over days cannot wait for days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from hullscan.findings import SEVERITIES
from hullscan.service.dashboard import open_findings_trend, severities_by_namespace
from hullscan.service.inventory import newest_scans, repositories
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import Image, Namespace, Registry, Scan

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def counts(critical: int = 0, high: int = 0, low: int = 0) -> dict[str, Any]:
    per = dict.fromkeys(SEVERITIES, 0) | {"CRITICAL": critical, "HIGH": high, "LOW": low}
    return {"vulnerabilities": per, "items": {}, "total": critical + high + low}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """On SQLite and on a real PostgreSQL server (tests/service/conftest.py)."""
    database = Database(database_url)
    database.migrate()
    yield database
    database.close()


def _scan(image: Image, state: str, when: dt.datetime | None, found: dict[str, Any] | None) -> Scan:
    return Scan(image_id=image.id, registry_id=image.registry_id, trigger="manual", priority=0, state=state,
                digest=image.digest, items=["vuln"], created_at=(when or NOW) - dt.timedelta(minutes=1),
                finished_at=when, counts=found)


def test_worst_severity_trend_and_repositories(db: Database) -> None:
    with db.session() as s:
        reg = Registry(name="local", type="distribution", url="http://127.0.0.1:9")
        s.add(reg)
        s.flush()
        team, other = Namespace(registry_id=reg.id, name="team"), Namespace(registry_id=reg.id, name="other")
        s.add_all([team, other])
        s.flush()
        rows = {ref: Image(registry_id=reg.id, namespace_id=ns.id, repository=repo, reference=ref.split(":")[-1],
                           tag=None if ref.endswith(":untagged") else ref.split(":")[-1], digest=f"sha256:{i:064x}")
                for i, (ns, repo, ref) in enumerate([(team, "team/app", "team/app:1"), (team, "team/app", "team/app:2"),
                                                     (team, "team/app", "team/app:untagged"),
                                                     (team, "team/db", "team/db:1"),
                                                     (other, "other/x", "other/x:1")])}
        rows["team/app:untagged"].reference = rows["team/app:untagged"].digest or ""
        s.add_all(rows.values())
        s.flush()
        day = dt.timedelta(days=1)
        app1, app2, db1, x1 = rows["team/app:1"], rows["team/app:2"], rows["team/db:1"], rows["other/x:1"]
        history = [
            _scan(app1, "succeeded", NOW - 5 * day, counts(critical=2, high=1)),
            _scan(app1, "succeeded", NOW - 2 * day, counts(critical=0, high=1)),  # a rebuild fixed the criticals
            _scan(app2, "succeeded", NOW - 3 * day, counts(low=4)),
            _scan(db1, "failed", NOW - 1 * day, None),
            _scan(x1, "succeeded", NOW - 4 * day, counts(high=7)),
        ]
        s.add_all(history)
        s.flush()
        app1.last_scan_id, app2.last_scan_id, x1.last_scan_id = history[1].id, history[2].id, history[4].id
        running = _scan(app2, "running", None, None)
        s.add(running)
        s.flush()
        ids = {"team": team.id, "other": other.id, "running": running.id, "app1_last": history[1].id,
               "db_failed": history[3].id, "app1": app1.id, "app2": app2.id, "db1": db1.id, "registry": reg.id}

    with db.session() as s:
        by_ns = {n.namespace: n.counts for n in severities_by_namespace(s, None)}
        assert {k: v for k, v in by_ns["team"].items() if v} == {"HIGH": 1, "LOW": 1, "UNSCANNED": 2}
        assert {k: v for k, v in by_ns["other"].items() if v} == {"HIGH": 1}
        assert [n.namespace for n in severities_by_namespace(s, [ids["team"]])] == ["team"]  # a viewer of team

        trend = open_findings_trend(s, None, days=7, at=NOW)
        assert [p.day for p in trend][0] == dt.date(2026, 12, 1) and trend[-1].day == dt.date(2026, 12, 7)
        assert [(p.critical, p.high) for p in trend] == [(0, 0), (2, 1), (2, 8), (2, 8), (0, 8), (0, 8), (0, 8)]
        assert [(p.critical, p.high) for p in open_findings_trend(s, [ids["team"]], days=3, at=NOW)] == \
            [(0, 1), (0, 1), (0, 1)]

        repos, total = repositories(s, ids["registry"], None)
        assert total == 3
        app = next(r for r in repos if r.name == "team/app")
        assert (app.tags, app.untagged, app.worst) == (2, 1, "HIGH")
        assert app.counts["HIGH"] == 1 and app.counts["LOW"] == 4
        assert next(r for r in repos if r.name == "team/db").worst == "UNSCANNED"  # only a failed scan
        assert [r.name for r in repositories(s, ids["registry"], [ids["other"]])[0]] == ["other/x"]
        assert [r.name for r in repositories(s, ids["registry"], None, contains="A%P")[0]] == []  # % is no wildcard
        assert [r.name for r in repositories(s, ids["registry"], None, contains="APP")[0]] == ["team/app"]
        assert repositories(s, ids["registry"], None, page=2, page_size=2)[0][0].name == "team/db"

        newest = newest_scans(s, [ids["app1"], ids["app2"], ids["db1"]])
        assert newest[ids["app2"]].id == ids["running"] and newest[ids["app2"]].state == "running"
        assert newest[ids["app1"]].id == ids["app1_last"]
        assert (newest[ids["db1"]].state, newest[ids["db1"]].id) == ("failed", ids["db_failed"])
