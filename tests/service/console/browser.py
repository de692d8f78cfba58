"""Debian's Chromium driven by Playwright, for the console's browser tests.

Playwright's own browser download does not work here (and would not be the browser users run): the tests launch
/usr/bin/chromium with a fresh profile. Every page records the dialogs it opened (alert, confirm: a script that
ran), its console errors (a Content-Security-Policy violation shows there) and the responses of its documents,
and screenshots go to HULLSCAN_CONSOLE_ARTIFACTS (default tests/.artifacts/console, git-ignored).
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

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
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


def watch(context: Any) -> Watched:
    page = context.new_page()
    watched = Watched(page)

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
