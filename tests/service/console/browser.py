"""Debian's Chromium driven by Playwright, for the console's browser tests.

Playwright's own browser download does not work here (and would not be the browser users run): the tests launch
/usr/bin/chromium with a fresh profile. Every page records the dialogs it opened (alert, confirm: a script that
ran), its console errors (a Content-Security-Policy violation shows there) and the responses of its documents,
and screenshots go to HULLSCAN_CONSOLE_ARTIFACTS (default tests/.artifacts/console, git-ignored) unless the page
is watched with another directory (the journey's: tests/.artifacts/journey). The steps every browser test takes
(log in, read the flash messages, find a table row) are here too, so they are written once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import ADMIN

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("HULLSCAN_CONSOLE_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / ".artifacts" / "console")
VIEWPORT = {"width": 1366, "height": 768}  # a common laptop screen


def available() -> bool:
    if not Path(CHROMIUM).exists():
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


needs_chromium = pytest.mark.skipif(not available(), reason="needs Debian's chromium (scripts/system-deps.sh) and "
                                    "the playwright package (the test extras)")


@dataclass
class Watched:
    """A page and what happened on it."""

    page: Any  # playwright.sync_api.Page
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)  # responses of top-level navigations
    accept_dialogs: bool = False
    artifacts: Path = ARTIFACTS  # where shot() saves

    def shot(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A persistent browser context on a fresh profile directory (removed afterwards)."""
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="hullscan-chromium-"))
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, args=ARGS, headless=True, viewport=VIEWPORT,
                accept_downloads=True)
            context.set_default_timeout(30_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def watch(context: Any, artifacts: Path = ARTIFACTS) -> Watched:
    page = context.new_page()
    watched = Watched(page, artifacts=artifacts)

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        if watched.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: watched.documents.append(r) if r.request.resource_type == "document" else None)
    return watched


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def log_in(w: Watched, base: str, username: str = ADMIN[0], password: str = ADMIN[1],
           shot: str | None = None) -> None:
    page = w.page
    page.context.clear_cookies()
    page.goto(f"{base}/ui/")
    assert "/ui/login" in page.url  # the console asks who you are first
    if shot:
        w.shot(shot)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def flash(w: Watched) -> str:
    return str(w.page.locator(".messages").inner_text())


def row(w: Watched, text: str) -> Any:
    return w.page.locator("tbody tr", has_text=text).first
