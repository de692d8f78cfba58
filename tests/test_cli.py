"""The CLI end to end on the demo image: formats, output files, exit codes, cache behaviour."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo"))
import run as demo  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo.OUT = tmp_path_factory.mktemp("demo")
    return demo.build()


def _json(layout: Path, cache: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["sbom", f"oci:{layout}:demo", "-f", "json", "--cache-dir", str(cache), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_demo_inventory_shows_final_state_with_layers(demo_layout: Path, tmp_path: Path) -> None:
    doc = _json(demo_layout, tmp_path)
    pkgs = {(p["ecosystem"], p["name"]): p for p in doc["packages"]}
    # urllib3 was upgraded in layer 3 and Jinja2 removed there: only the final state is reported.
    assert pkgs[("pypi", "urllib3")]["version"] == "1.26.5"
    assert pkgs[("pypi", "urllib3")]["layer"]["index"] == 3
    assert ("pypi", "jinja2") not in pkgs
    # bash is in the base layer's status and again in layer 1's rewritten status: still layer 0.
    assert pkgs[("deb", "bash")]["layer"]["index"] == 0
    assert pkgs[("deb", "curl")]["layer"]["index"] == 1
    assert pkgs[("deb", "curl")]["layer"]["created_by"].startswith("RUN apt-get install")
    assert pkgs[("deb", "zlib1g")]["licenses"] == ["Zlib"]
    assert pkgs[("deb", "libc6")]["purl"].startswith("pkg:deb/debian/libc6@")
    assert "distro=debian-12" in pkgs[("deb", "libc6")]["purl"]
    assert pkgs[("maven", "org.apache.logging.log4j:log4j-core")]["version"] == "2.14.1"
    assert pkgs[("npm", "@babel/code-frame")]["purl"] == "pkg:npm/%40babel/code-frame@7.0.0"
    assert ("npm", "demo-app") not in pkgs  # the app's own package.json is not an installed package
    assert doc["artifact"]["os"]["family"] == "debian"


def test_formats_write_files(demo_layout: Path, tmp_path: Path) -> None:
    for fmt, probe in (("cyclonedx", '"bomFormat"'), ("spdx-json", '"spdxVersion"'), ("spdx", "SPDXVersion: SPDX-2.3"),
                       ("table", "urllib3")):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(app, ["sbom", f"oci:{demo_layout}:demo", "-f", fmt, "-o", str(out),
                                     "--cache-dir", str(tmp_path / "c")])
        assert result.exit_code == 0, result.output
        assert probe in out.read_text()


def test_cache_makes_second_scan_equal_and_clean_removes_it(demo_layout: Path, tmp_path: Path) -> None:
    first = _json(demo_layout, tmp_path)
    assert list((tmp_path / "layers").rglob("*.json.zst"))
    second = _json(demo_layout, tmp_path)
    assert first["packages"] == second["packages"]
    result = runner.invoke(app, ["cache", "clean", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0 and "removed 5" in result.stdout
    assert not any(tmp_path.rglob("*.json.zst"))


def test_errors_exit_3_with_cause_and_solution(tmp_path: Path) -> None:
    bogus = tmp_path / "not-an-image.tar"
    bogus.write_bytes(b"definitely not a tar")
    result = runner.invoke(app, ["scan", str(bogus), "--scanners", "none", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 3
    assert "SOURCE_INVALID" in result.output


def test_bad_platform_is_usage_error(demo_layout: Path) -> None:
    result = runner.invoke(app, ["scan", f"oci:{demo_layout}:demo", "--platform", "amd64"])
    assert result.exit_code == 2
    assert "os/arch" in result.output


def test_list_files_gives_the_final_tree_with_hashes(demo_layout: Path, tmp_path: Path) -> None:
    import hashlib

    result = runner.invoke(app, ["scan", f"oci:{demo_layout}:demo", "--scanners", "file", "--list-files",
                                 "-f", "json", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    app_conf = files["/etc/app.conf"]
    assert app_conf["mode"] == "0666" and app_conf["layer"] == 4
    assert app_conf["sha256"] == hashlib.sha256(b"listen=0.0.0.0\n").hexdigest()
    assert files["/etc/os-release"]["type"] == "l"
    assert not any(p.startswith("/usr/local/lib/python3.11/site-packages/Jinja2") for p in files)  # whited out


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    click_group = typer.main.get_command(group) if not hasattr(group, "commands") else group  # type: ignore[arg-type]
    out: list[tuple[str, ...]] = []
    for name, cmd in click_group.commands.items():  # type: ignore[attr-defined]
        out.append((*prefix, name))
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, (*prefix, name)))
    return out


def test_every_command_has_working_help() -> None:
    """Help text goes through Rich markup: a bracket in an option's help once crashed `scan --help`."""
    commands = _commands(app)
    assert ("scan",) in commands and ("db", "update") in commands
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output


def test_progress_bars_run_no_thread_so_scans_may_fork_workers() -> None:
    """Rich's refresh thread would make the worker pool start from a forkserver (layers/pool.py forks directly,
    which is cheaper, only while no other thread runs); the bars are refreshed from the scan's callbacks."""
    import io
    import threading

    from rich.console import Console

    from hullscan.cli.common import RichProgress
    from hullscan.cli.common import progress_display as _progress_display
    from hullscan.model import Descriptor, LayerInfo

    out = io.StringIO()
    before = threading.active_count()
    layer = LayerInfo(0, Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "a" * 64, 1000),
                      "sha256:" + "b" * 64, "")
    with _progress_display(Console(file=out, force_terminal=True, width=100)) as progress:
        bars = RichProgress(progress, Console(file=out))
        bars.image_resolved([layer])
        bars.layer_started(layer, False)
        assert threading.active_count() == before
        bars.layer_advanced(layer, 500)
        bars.layer_finished(layer)
    assert "layer 1/1" in out.getvalue()


def test_the_collector_is_off_while_the_cli_loads_and_back_on_once_a_command_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main loads the command tree and reads the arguments with Python's cycle collector off (what that makes
    lives as long as the process); every command turns it back on as it starts, since a server or a long update
    must collect, and the scan commands do so when they settle the heap just before scanning."""
    import gc
    import signal

    import typer

    from hullscan import cli
    from hullscan.cli.options import Command, ScanCommand

    def leaves(group: typer.core.TyperGroup, prefix: str = "") -> dict[str, object]:
        found: dict[str, object] = {}
        for name, command in group.commands.items():
            if isinstance(command, typer.core.TyperGroup):
                found.update(leaves(command, f"{prefix}{name} "))
            else:
                found[prefix + name] = command
        return found

    commands = leaves(typer.main.get_command(app))
    assert len(commands) > 10 and all(isinstance(c, Command) for c in commands.values())
    assert {name for name, c in commands.items() if isinstance(c, ScanCommand)} == {"scan", "image", "sbom"}

    previous = signal.getsignal(signal.SIGTERM)  # cli._main installs its SIGTERM handler
    try:
        monkeypatch.setattr(sys, "argv", ["hullscan", "sbom", "--help"])
        with pytest.raises(SystemExit):
            cli._main()
        assert not gc.isenabled()  # the help was printed while the arguments were read: no command ran
        monkeypatch.setattr(sys, "argv", ["hullscan", "cache", "clean", "--cache-dir", str(tmp_path / "cache")])
        with pytest.raises(SystemExit) as done:
            cli._main()
        assert done.value.code == 0 and gc.isenabled()
    finally:
        gc.enable()
        signal.signal(signal.SIGTERM, previous)
