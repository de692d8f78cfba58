"""The deployment files in deploy/ run real `hullscan` commands with real options, and give every process the same
settings.

Each `hullscan ...` command line in the compose file, the Dockerfile and the systemd units is read the way its
tool reads it (compose's `${VAR:-default}` interpolation, systemd's `%i` specifier and `${VAR}` from the unit's own
`Environment=` lines), then parsed by hullscan's own command tree (Click, under Typer): an unknown command, an
unknown option, a missing or ill-typed value fails here, as it would fail at `systemctl start`. The same options
are looked for in `hullscan COMMAND --help` as a user would run it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.core import TyperGroup

from hullscan.cli.commands import app
from hullscan.settings import Settings
from tests.support.cli import hullscan

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = DEPLOY / "systemd"
SAMPLE_QUEUE = "eu"  # what `%i` stands for when the worker template is instantiated
ROLES = {"serve", "scheduler", "worker"}


@dataclass(frozen=True)
class Invocation:
    where: str
    args: tuple[str, ...]  # what follows the `hullscan` program


# -- reading the files as their tools do -------------------------------------------------------------------------

_COMPOSE_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose_interpolate(value: str) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?message}`, as with an empty environment (a required variable
    stands for a placeholder value)."""
    def one(match: re.Match[str]) -> str:
        op, rest = match.group(2), match.group(3)
        if op in ("-", ":-"):
            return rest
        return "placeholder"
    return _COMPOSE_VAR.sub(one, value).replace("$$", "$")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def hullscan_argv(words: list[str]) -> tuple[str, ...] | None:
    """The arguments of a command line that runs hullscan (by name or by path), else None."""
    if words and Path(words[0]).name == "hullscan":
        return tuple(words[1:])
    return None


def compose_invocations() -> Iterator[Invocation]:
    for name, service in compose()["services"].items():
        for key in ("entrypoint", "command"):
            value = service.get(key)
            if value is None:
                continue
            words = shlex.split(value) if isinstance(value, str) else [str(w) for w in value]
            args = hullscan_argv([compose_interpolate(w) for w in words])
            if args is not None:
                yield Invocation(f"compose.yaml services.{name}.{key}", args)


def dockerfile_invocations() -> Iterator[Invocation]:
    for number, line in enumerate((DEPLOY / "Dockerfile").read_text().splitlines(), 1):
        instruction, _, rest = line.partition(" ")
        if instruction in ("CMD", "ENTRYPOINT"):
            words = yaml.safe_load(rest) if rest.lstrip().startswith("[") else shlex.split(rest)
            args = hullscan_argv([str(w) for w in words])
            if args is not None:
                yield Invocation(f"Dockerfile:{number}", args)


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of a systemd unit file, in order; continuation lines joined."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_environment(entries: list[tuple[str, str, str]], instance: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for _, key, value in entries:
        if key == "Environment":
            for assignment in shlex.split(systemd_specifiers(value, instance)):
                name, _, val = assignment.partition("=")
                env[name] = val
    return env


def systemd_specifiers(value: str, instance: str) -> str:
    return re.sub(r"%([%iI])", lambda m: "%" if m.group(1) == "%" else instance, value)


def systemd_exec(value: str, env: Mapping[str, str], instance: str) -> list[str]:
    """An ExecStart= line as systemd runs it: prefixes dropped, specifiers and ${VAR}/$VAR expanded."""
    value = systemd_specifiers(value.lstrip("@-:+!"), instance)
    words = []
    for word in shlex.split(value):
        whole = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", word)
        if whole:  # "$VAR" alone is split on whitespace, "${VAR}" stays one word
            val = env.get(whole.group(1) or whole.group(2), "")
            words.extend(val.split() if whole.group(2) else [val])
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def systemd_invocations() -> Iterator[Invocation]:
    for unit in sorted(UNITS.glob("*.service")):
        entries = unit_entries(unit)
        instance = SAMPLE_QUEUE if unit.name.endswith("@.service") else ""
        env = unit_environment(entries, instance)
        for section, key, value in entries:
            if section == "Service" and key in ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload"):
                args = hullscan_argv(systemd_exec(value, env, instance))
                if args is not None:
                    yield Invocation(f"systemd/{unit.name} {key}", args)


def invocations() -> list[Invocation]:
    return [*compose_invocations(), *dockerfile_invocations(), *systemd_invocations()]


# -- checking a command line against hullscan's command tree -----------------------------------------------------

# Typer carries its own Click; its exceptions' base class, reached through a public name.
ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class Refused(Exception):
    """A command line hullscan would refuse."""


def check(args: tuple[str, ...]) -> tuple[str, Any, list[str]]:
    """Parse `hullscan ARGS` with hullscan's own command tree, without running it: the command's path, the command,
    and the long options used. `Refused` says what is wrong (unknown command or option, a bad or missing value)."""
    command: Any = typer.main.get_command(app)
    context = typer.Context(command, info_name="hullscan")
    rest = list(args)
    path: list[str] = []
    while isinstance(command, TyperGroup):
        if not rest:
            raise Refused(f"hullscan {' '.join(path)}: a command is missing")
        sub = command.get_command(context, rest[0])
        if sub is None:
            raise Refused(f"no such command {rest[0]!r}")
        path.append(rest.pop(0))
        parent, command = context, sub
        context = typer.Context(command, info_name=path[-1], parent=parent)
    try:
        with command.make_context(path[-1], list(rest), parent=context.parent, resilient_parsing=False):
            pass  # parsing alone validates: every option known, every value of its type and range
    except ClickException as exc:
        raise Refused(exc.format_message()) from None  # type: ignore[attr-defined]
    options = [word.split("=", 1)[0] for word in rest if word.startswith("--")]
    return " ".join(path), command, options


# Fleet-core's commands. Until that branch is in, a line running one of them is skipped (never passed); any other
# unknown command still fails.
FLEET_COMMANDS = {"worker", "scheduler"}


def missing_fleet_commands() -> set[str]:
    group: Any = typer.main.get_command(app)
    context = typer.Context(group, info_name="hullscan")
    return {name for name in FLEET_COMMANDS if group.get_command(context, name) is None}


def skip_without_fleet_commands(args: tuple[str, ...]) -> None:
    if args and args[0] in missing_fleet_commands():
        pytest.skip(f"`hullscan {args[0]}` is not in this checkout: it comes with branch fleet-core (issue 14 item 1)")


# -- the tests ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("invocation", invocations(), ids=lambda i: i.where)
def test_every_hullscan_command_line_in_deploy_parses(invocation: Invocation) -> None:
    skip_without_fleet_commands(invocation.args)
    try:
        check(invocation.args)
    except Refused as exc:
        pytest.fail(f"{invocation.where}: `hullscan {' '.join(invocation.args)}` is refused: {exc}")


def test_the_files_run_every_role_of_the_fleet() -> None:
    by_file: dict[str, set[str]] = {}
    for invocation in invocations():
        by_file.setdefault(invocation.where.split()[0].split(":")[0], set()).add(invocation.args[0])
    assert by_file["compose.yaml"] == ROLES
    units = {role for where, roles in by_file.items() if where.startswith("systemd/") for role in roles}
    assert units == ROLES
    assert sorted(p.name for p in UNITS.glob("*.service")) == [
        "hullscan-api.service", "hullscan-scheduler.service", "hullscan-worker@.service"]


def _queue(args: tuple[str, ...]) -> str:
    return args[args.index("--queue") + 1]


def test_compose_has_one_worker_group_per_cluster_and_the_same_settings_everywhere() -> None:
    services = compose()["services"]
    assert {"api", "scheduler", "postgres", "redis"} <= set(services)
    workers = [i for i in compose_invocations() if i.args[0] == "worker"]
    queues = [_queue(w.args) for w in workers]
    assert len(queues) >= 2 and len(set(queues)) == len(queues), queues  # two clusters, each its own group
    hullscan_services = {i.where.split()[1].split(".")[1] for i in compose_invocations()}
    settings = {}
    vulndb_volumes = set()
    for name in hullscan_services:
        env = services[name]["environment"]
        settings[name] = tuple(compose_interpolate(str(env.get(k, ""))) for k in
                               ("HULLSCAN_DATABASE_URL", "HULLSCAN_BROKER_URL", "HULLSCAN_CONFIG",
                                "HULLSCAN_SECRET_KEY", "HULLSCAN_DB"))
        assert all(settings[name]), f"{name} lacks one of the fleet's settings: {settings[name]}"
        mounted = [c["target"] for c in services[name].get("configs", [])]
        assert settings[name][2] in mounted, f"{name} does not get the settings file at HULLSCAN_CONFIG"
        # The scheduler's database updates reach the workers only through a volume they all mount.
        volumes = dict(reversed(v.split(":")[:2]) for v in services[name].get("volumes", []))
        shared = volumes.get(str(Path(settings[name][4]).parent))
        assert shared in compose()["volumes"], f"{name}: HULLSCAN_DB is not on a named volume: {volumes}"
        vulndb_volumes.add(shared)
    assert len(vulndb_volumes) == 1, vulndb_volumes
    assert len(set(settings.values())) == 1, settings
    database, broker = next(iter(settings.values()))[:2]
    assert database.startswith("postgresql://") and "@postgres:" in database
    assert broker.startswith("redis://redis:")


def test_systemd_units_read_the_shared_environment_file() -> None:
    env_example = dict(line.split("=", 1) for line in (DEPLOY / "hullscan.env.example").read_text().splitlines()
                       if line and not line.startswith("#"))
    for key in ("HULLSCAN_DATABASE_URL", "HULLSCAN_BROKER_URL", "HULLSCAN_CONFIG", "HULLSCAN_SECRET_KEY",
                "HULLSCAN_DB"):
        assert env_example.get(key), key
    vulndb = Path(env_example["HULLSCAN_DB"]).parent
    for unit in UNITS.glob("*.service"):
        entries = unit_entries(unit)
        files = [v for _, k, v in entries if k == "EnvironmentFile"]
        assert "/etc/hullscan/hullscan.env" in files, unit.name
        # ProtectSystem=strict leaves only the state directories writable: the scheduler's update needs this one,
        # and every role reads the same file.
        states = {Path("/var/lib") / d for _, k, v in entries if k == "StateDirectory" for d in v.split()}
        assert vulndb in states, (unit.name, states)
    worker = [i for i in systemd_invocations() if i.args[0] == "worker"]
    assert len(worker) == 1 and _queue(worker[0].args) == SAMPLE_QUEUE  # the template's instance is the queue
    assert "--queue %i" in (UNITS / "hullscan-worker@.service").read_text()


def test_the_shared_settings_file_holds_only_real_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = set(tomllib.loads((DEPLOY / "config.toml").read_text()))
    unknown = keys - set(Settings.model_fields)
    assert not unknown, f"deploy/config.toml has keys hullscan ignores: {sorted(unknown)}"
    for name in list(os.environ):
        if name.startswith("HULLSCAN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HULLSCAN_CONFIG", str(DEPLOY / "config.toml"))
    settings = Settings(data_dir=tmp_path)  # validates every value
    assert settings.max_scans_per_registry == tomllib.loads((DEPLOY / "config.toml").read_text())[
        "max_scans_per_registry"]


@pytest.mark.parametrize("args, why", [
    (("serve", "--hots", "0.0.0.0"), "No such option"),
    (("serve", "--port", "eighty"), "valid integer"),
    (("serve", "--port", "70000"), "--port"),
    (("serve", "--port"), "requires an argument"),
    (("deploy",), "no such command"),
    (("db",), "a command is missing"),
])
def test_the_check_refuses_what_hullscan_refuses(args: tuple[str, ...], why: str) -> None:
    # The check itself can fail: a mistyped option, a bad value, a made-up command.
    with pytest.raises(Refused, match=why):
        check(args)


def test_the_options_used_are_in_each_commands_help() -> None:
    used: dict[str, set[str]] = {}
    for invocation in invocations():
        if invocation.args[0] in missing_fleet_commands():
            continue  # the test above skips these lines, saying why
        path, _, found = check(invocation.args)
        used.setdefault(path, set()).update(found)
    for path, options in sorted(used.items()):
        result = hullscan(*path.split(), "--help")
        assert result.returncode == 0, result.stderr
        missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", result.stdout))
        assert not missing, f"`hullscan {path} --help` does not show {missing}"


def test_every_worker_queue_is_a_cluster_a_registry_can_name() -> None:
    # A worker group takes the scans of registries whose "cluster" is its queue: a queue no registry can name
    # (the API refuses it) would take nothing.
    from hullscan.service.api.schemas import RegistryPatch

    queues = {_queue(i.args) for i in invocations() if i.args[0] == "worker"}
    assert queues
    for queue in queues:
        assert RegistryPatch(cluster=queue).cluster == queue


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze (Debian package systemd) absent")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    # systemd's own parser on a root holding the units and an executable where ExecStart expects hullscan: an
    # unknown key, a bad value or a unit it would refuse to start is reported here.
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for unit in UNITS.glob("*.service"):
        shutil.copy(unit, units / unit.name)
    program = tmp_path / "opt" / "hullscan" / "bin" / "hullscan"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    names = ["hullscan-api.service", "hullscan-scheduler.service", f"hullscan-worker@{SAMPLE_QUEUE}.service"]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={tmp_path}", *names],
                            capture_output=True, text=True, timeout=120)
    # A bare root has no sysinit.target for the default dependencies to point at; that line says nothing of ours.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "sysinit.target not found" not in line]
    assert not complaints, complaints
