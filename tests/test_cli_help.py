"""Habits a Trivy (or any CLI) user brings: -h, --version, help without Python types, flags that take no value,
examples, Trivy's `image` verb, SPDX as Trivy names it; a help that answers at once (it loads no engine code); and a
README that documents every command and option."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from hullscan import __version__
from hullscan.cli import app
from tests.support.cli import ROOT, hullscan
from tests.support.registry import RegistryServer

runner = CliRunner()


def _commands(group: Any = None, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    group = group or typer.main.get_command(app)
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, cmd in group.commands.items():
        found.append(((*prefix, name), cmd))
        if hasattr(cmd, "commands"):
            found.extend(_commands(cmd, (*prefix, name)))
    return found


def test_h_and_version() -> None:
    assert hullscan("-h").stdout.startswith("Usage: ")
    result = hullscan("scan", "-h")
    assert result.returncode == 0 and "--exit-code" in result.stdout
    assert hullscan("db", "update", "-h").returncode == 0
    assert hullscan("--version").stdout == f"hullscan {__version__}\n"
    assert runner.invoke(app, ["--version"]).stdout == f"hullscan {__version__}\n"  # not only the fast path


def test_help_shows_words_not_python_types_and_whole_defaults() -> None:
    for command, _ in _commands():
        text = hullscan(*command, "--help", env={"COLUMNS": "80"}).stdout
        assert not re.search(r"<(bool|str|int|float|path|list\[\w+\])>", text), command
        assert "…" not in text, command
        assert all(len(line) <= 80 for line in text.splitlines()), command
    text = hullscan("scan", "--help", env={"COLUMNS": "80"}).stdout
    assert "--ignore-unfixed  " in text and "--ignore-unfixed <" not in text  # a flag shows no value
    assert "-f, --format FORMAT" in text and "-o, --output FILE" in text
    joined = " ".join(text.split())
    assert "[default: vuln, secret, malware, file, baseline, compliance, base]" in joined
    assert "[default: settings' cache_dir]" in joined  # brackets in help are text, not markup


def test_a_flag_given_a_value_says_so() -> None:
    result = hullscan("scan", "--ignore-unfixed", "true", "alpine:3.20")
    assert result.returncode == 2
    assert "--ignore-unfixed is a flag and takes no value" in result.stderr


def test_examples_in_help() -> None:
    for args, example in ((["--help"], "hullscan scan alpine:3.20"),
                          (["scan", "--help"], "--exit-code-scanners vuln,secret --fail-on-unchecked"),
                          (["sbom", "--help"], "hullscan sbom -f spdx-json"),
                          (["db", "update", "--help"], "hullscan db update --ecosystem Debian")):
        text = hullscan(*args).stdout
        assert "Examples:" in text and example in text, args


def test_image_is_scan_and_trivy_verbs_get_a_hint(demo_layout: Path, user_env: dict[str, str]) -> None:
    args = [f"oci:{demo_layout}:demo", "--scanners", "none", "-f", "json"]
    scan = json.loads(hullscan("scan", *args, env=user_env).stdout)
    image = json.loads(hullscan("image", *args, env=user_env).stdout)
    assert image["packages"] == scan["packages"] and image["artifact"] == scan["artifact"]
    result = hullscan("fs", ".")
    assert result.returncode == 2 and "hullscan scan dir:PATH" in result.stderr
    assert "Did you mean 'scan'" in hullscan("scna", "x").stderr


@pytest.mark.parametrize("fmt", ["spdx-json", "spdx"])
def test_spdx_json_and_tag_value_as_trivy_names_them(demo_layout: Path, user_env: dict[str, str], fmt: str) -> None:
    result = hullscan("sbom", f"oci:{demo_layout}:demo", "-f", fmt, env=user_env)
    assert result.returncode == 0, result.stderr
    if fmt == "spdx-json":
        assert json.loads(result.stdout)["spdxVersion"] == "SPDX-2.3"
    else:
        assert result.stdout.startswith("## Document Information\nSPDXVersion: SPDX-2.3\n")
        assert "PackageName: urllib3" in result.stdout


HEAVY = ("rich", "pydantic", "pydantic_settings", "httpx", "hullscan.scan", "hullscan.pipeline",
         "hullscan.vulndb.store", "hullscan.vulndb.update", "hullscan.checks.baseimage", "hullscan.settings")


def test_a_command_line_builds_only_the_command_it_names() -> None:
    """Turning every command's options into click's objects took 20-30 ms of each run, so a command line gets the
    command it names alone, and that command reads and helps exactly as in the whole tree; the root's help, a
    mistyped name and no command at all get every command (the list, the suggestions)."""
    from hullscan.cli.commands import application

    names = list(typer.main.get_command(app).commands)
    assert {"scan", "sbom", "image", "serve", "db", "cache", "base", "version"} <= set(names)
    for name in names:
        alone = application([name, "--help"])
        assert list(typer.main.get_command(alone).commands) == [name]
        helped = runner.invoke(alone, [name, "--help"])
        assert helped.exit_code == 0 and helped.stdout == runner.invoke(app, [name, "--help"]).stdout
    for argv in ([], ["--help"], ["scna", "x"], ["--version"]):
        assert list(typer.main.get_command(application(argv)).commands) == names
    mistyped = runner.invoke(application(["scna", "x"]), ["scna", "x"])
    assert mistyped.exit_code == 2 and "Did you mean 'scan'" in mistyped.output


@pytest.mark.parametrize("args", [["--help"], ["scan", "--help"], ["db", "update", "--help"], ["base", "add", "-h"],
                                  ["version"]])
def test_help_and_version_load_no_engine_code(args: list[str]) -> None:
    """Startup is measured by `make bench`; what keeps it short is checked here: `--help` imports typer and the
    option definitions, never Rich, pydantic, httpx or the scan engine."""
    result = hullscan(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0
    loaded = _imported(result)
    assert "typer" in loaded or args == ["version"]
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == [], heavy


def _imported(result: Any) -> set[str]:
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_a_quiet_re_scan_of_a_local_image_loads_no_terminal_network_or_yaml_code(
        demo_layout: Path, demo_db: Path, user_env: dict[str, str]) -> None:
    """A re-scan's time is mostly imports (`make bench`); a quiet one to a pipe, of a local image with the database
    left as it is, needs no Rich (nothing is drawn), no httpx (nothing is downloaded), no PyYAML (no lock file is
    read) and no email.policy (30 ms of import the Python metadata parser does without)."""
    args = ["scan", f"oci:{demo_layout}:demo", "--db", str(demo_db), "--skip-db-update", "-f", "json", "--quiet"]
    assert hullscan(*args, env=user_env).returncode == 0  # fills the layer cache
    result = hullscan(*args, env={**user_env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0 and json.loads(result.stdout)["packages"]
    loaded = _imported(result)
    assert "hullscan.pipeline" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in ("rich", "httpx", "yaml") or m == "email.policy") == []


def test_a_quiet_sbom_of_a_registry_image_loads_httpx_without_its_command_line_client(
        registry: RegistryServer, demo_layout: Path, user_env: dict[str, str]) -> None:
    """httpx imports its own CLI (Rich, Pygments) when they are installed; hullscan never runs it, and a quiet
    command draws nothing, so neither is loaded for the registry scan."""
    ref = registry.ref("cli-imports/demo:1")
    registry.push(demo_layout, "cli-imports/demo:1", src_tag="demo")
    result = hullscan("sbom", ref, "--quiet", env={**user_env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["components"]
    loaded = _imported(result)
    assert "httpx" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in ("rich", "pygments")) == []


def test_readme_is_the_manual() -> None:
    readme = (ROOT / "README.md").read_text()
    for command, cmd in _commands():
        if not hasattr(cmd, "commands"):
            assert f"hullscan {' '.join(command)}" in readme, command
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in readme, (command, opt)
    for fmt in ("table", "json", "sarif", "cyclonedx", "spdx-json", "spdx", "html"):
        assert f"`{fmt}`" in readme, fmt
    for word in (".hullscanignore", ".hullscanignore.yaml", "HULLSCAN_CONFIG", "HULLSCAN_DATA_DIR",
                 "HULLSCAN_CACHE_DIR", "HULLSCAN_DB", "HULLSCAN_WORK_DIR", "config.toml", "pipeline.py", "items/",
                 "formats.py", "settings.py", "COLUMNS", "--exit-code-scanners", "--fail-on-unchecked"):
        assert word in readme, word
    from hullscan.settings import Settings

    for field in Settings.model_fields:
        assert f"HULLSCAN_{field.upper()}" in readme, field
