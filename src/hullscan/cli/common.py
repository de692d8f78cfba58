"""What the commands share when they run: settings from flags, safe printing and the progress display.

Imported inside the commands (it loads the scan engine; Rich only once something is printed or a progress display
starts, so a quiet scan to a pipe never loads it); the option types live in `cli.options`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import typer

from hullscan.errors import HullscanError
from hullscan.scan import NoProgress
from hullscan.textsafe import clean, clean_lines

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.text import Text

    from hullscan.model import LayerInfo
    from hullscan.settings import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the settings file, with the flags given on the command line on top."""
    from pydantic import ValidationError

    from hullscan.settings import Settings

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(f"invalid settings: {problems}") from None


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _text(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(text, style=style)


def print_error(exc: HullscanError, console: Console | None = None) -> None:
    """A catalogue error, printed literally: its text may come from a registry, an image or a file."""
    out = console or err_console()
    out.print(_text("error", "bold red") + _text(": " + clean_lines(exc.render())))


def print_warning(message: str, console: Console | None = None) -> None:
    out = console or err_console()
    out.print(_text("warning", "yellow") + _text(": " + clean_lines(message)))


def print_internal_error(exc: BaseException) -> None:
    err_console().print(_text(f"internal error: {type(exc).__name__}: {clean(str(exc))} "
                              "(set HULLSCAN_DEBUG=1 for a trace)"))


def fail(exc: HullscanError) -> typer.Exit:
    print_error(exc)
    return typer.Exit(exc.cause.exit_code)


def read_password(password_stdin: bool) -> str | None:
    if not password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise typer.BadParameter("--password-stdin was given but stdin held no password")
    return password


class RichProgress:
    """The scan's progress on a terminal: a bar per layer, then a line for the later phases, which says what the
    current one does and how far it is (a long detector such as the weak-password check reports as it goes).

    Refreshed from the scan's own callbacks (no refresh thread); layer callbacks may come from several
    threads at once, hence the lock."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.p = progress
        self.console = console
        self.tasks: dict[int, TaskID] = {}
        self._phase: TaskID | None = None
        self._phase_name = ""
        self._shown = 0.0
        self._lock = threading.Lock()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._shown >= 0.1:
            self._shown = now
            self.p.refresh()

    def phase(self, name: str) -> None:
        with self._lock:
            self._phase_name = name
            if self._phase is None:
                self._phase = self.p.add_task(name, total=None, amount="")
            else:  # the previous phase's bar and amount go with it
                self.p.reset(self._phase, total=None, description=name, amount="")
            self._refresh(force=True)

    def phase_progress(self, detail: str, done: float | None = None, total: float | None = None,
                       unit: str = "") -> None:
        with self._lock:
            if self._phase is None:
                self._phase = self.p.add_task(detail, total=None, amount="")
            amount = ""
            if done is not None:
                digits = 0 if float(done).is_integer() and (total is None or float(total).is_integer()) else 1
                amount = f"{done:,.{digits}f}" + ("" if total is None else f"/{total:,.{digits}f}") + \
                    (f" {unit}" if unit else "")
            changed = detail != self._phase_name
            self._phase_name = detail
            self.p.update(self._phase, description=detail, completed=done or 0, total=total, amount=amount)
            self._refresh(force=changed)  # a new step shows at once; its amounts at most ten times a second

    def warning(self, message: str) -> None:
        with self._lock:
            print_warning(message, self.p.console)

    def image_resolved(self, layers: list[LayerInfo]) -> None:
        with self._lock:
            for layer in layers:
                self.tasks[layer.index] = self.p.add_task(f"layer {layer.index + 1}/{len(layers)}",
                                                          total=layer.descriptor.size or None, start=False)

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        with self._lock:
            task = self.tasks[layer.index]
            self.p.start_task(task)
            if cached:
                self.p.update(task, description=f"layer {layer.index + 1} (cached)")
            self._refresh(force=True)

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None:
        with self._lock:
            self.p.update(self.tasks[layer.index], completed=compressed_bytes)
            self._refresh()

    def layer_finished(self, layer: LayerInfo) -> None:
        with self._lock:
            task = self.tasks[layer.index]
            self.p.update(task, completed=self.p.tasks[task].total or 0)
            self._refresh(force=True)


class QuietProgress(NoProgress):
    """No bars (a pipe, or --quiet), but warnings still reach stderr."""

    def warning(self, message: str) -> None:
        print_warning(message)


def progress_display(console: Console) -> Progress:
    from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn, TransferSpeedColumn
    from rich.progress import Task as RichTask

    class Bytes(ProgressColumn):
        """Bytes and speed for a layer; a phase shows its own amount (guesses, seconds) instead."""

        def __init__(self) -> None:
            super().__init__()
            self.download, self.speed = DownloadColumn(), TransferSpeedColumn()

        def render(self, task: RichTask) -> Text:
            if "amount" in task.fields:
                return _text(str(task.fields["amount"]), "progress.download")
            return self.download.render(task) + _text(" ") + self.speed.render(task)

    # auto_refresh=False: refreshed from the callbacks, no refresh thread
    return Progress(TextColumn("{task.description}"), BarColumn(), Bytes(), console=console, transient=True,
                    auto_refresh=False)
