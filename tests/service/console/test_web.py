"""The console's small pieces: where a form may send the browser next, links that keep repeated filters, messages
carried over a redirect, values from an image turned into CSS classes, and when an image list refreshes itself."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request

from hullscan.service.console.pages.registries import changing
from hullscan.service.console.web import Flashes, date_of, date_to_api, query_params, safe_next, sevclass
from hullscan.service.inventory import ScanBrief


def _request(query: str, cookie: str = "") -> Request:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/ui/scans/1", "query_string": query.encode(),
                    "headers": headers})


def test_safe_next_stays_in_the_console() -> None:
    for good in ("/ui", "/ui/", "/ui/scans?state=failed", "/ui?x=1"):
        assert safe_next(good, "/ui/") == good
    for bad in ("https://evil.example/ui/", "//evil.example/ui", "/uix/phish", "/api/v1/scans", "/ui/\\evil",
                "/ui/a b", "/ui/\nSet-Cookie: x", "", None, 42):
        assert safe_next(bad, "/ui/") == "/ui/", bad


def test_query_params_keep_repeated_filters() -> None:
    request = _request("tab=vuln&severity=CRITICAL&severity=HIGH&page=3")
    assert query_params(request, tab="software", page=None) == "?severity=CRITICAL&severity=HIGH&tab=software"
    assert query_params(request, page=4) == "?tab=vuln&severity=CRITICAL&severity=HIGH&page=4"


def test_flashes_survive_a_redirect_and_garbage_is_ignored() -> None:
    flashes = Flashes()
    flashes.ok("Scan 3 of <team/app>:1.0 is queued.")
    flashes.error("x" * 5000)
    read = Flashes.read(_request("", f"hullscan_flash={flashes.encode()}"))
    assert [(f.kind, f.text[:5]) for f in read.items] == [("ok", "Scan "), ("error", "xxxxx")]
    assert len(read.items[1].text) == 600  # bounded: a cookie has no room for more
    for garbage in ("%%%", "bm90IGpzb24=", "W1sxXV0="):  # not base64, not JSON, JSON of the wrong shape
        assert Flashes.read(_request("", f"hullscan_flash={garbage}")).items == []


def test_small_filters() -> None:
    assert [sevclass(v) for v in ("CRITICAL", "low", '"><script>', None)] == ["critical", "low", "unknown",
                                                                             "unknown"]
    assert date_to_api("2031-01-31") == "2031-01-31T00:00:00Z" and date_to_api(" ") is None
    assert date_of("2031-01-31T00:00:00Z") == "2031-01-31" and date_of("soon") == "" and date_of(None) == ""


def test_every_console_asset_ships_in_the_package() -> None:
    """A wheel holds what pyproject's package-data names: a template or asset it misses would be absent once
    installed (the tests run from the source tree, where everything is there)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hullscan"]
    package = root / "src" / "hullscan"
    assets = [p.relative_to(package).as_posix() for p in (package / "service" / "console").rglob("*")
              if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert any(a.endswith(".html") for a in assets) and any(a.endswith(".js") for a in assets)
    missing = [a for a in assets if not any(fnmatch.fnmatchcase(a, g) for g in globs)]
    assert missing == []


def test_image_rows_refresh_until_they_were_read_after_the_last_scan_ended() -> None:
    listed = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)

    def brief(state: str, finished: dt.datetime | None) -> ScanBrief:
        return ScanBrief(1, state, 1.0, state, listed - dt.timedelta(minutes=1), finished, None)

    assert changing([brief("running", None)], listed)
    assert changing([brief("queued", None)], listed)
    # Ended between reading the images (no counts yet, pull allowed) and reading the scans: once more.
    assert changing([brief("succeeded", listed + dt.timedelta(milliseconds=5))], listed)
    assert changing([brief("failed", listed)], listed)
    # Ended before the images were read: what the rows show is settled.
    assert not changing([brief("succeeded", listed - dt.timedelta(seconds=1)), brief("stopped", None)], listed)
    assert not changing([], listed)
