"""What every command shares and `--help` needs: option types and the help and parsing habits of the CLI.

Imported to build the command tree, so it holds typer, the standard library and hullscan.heap only:
`hullscan --help` must not pay for Rich, pydantic or the scan engine.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from hullscan import heap

BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})
# What a value of each type is called in the help (click's words, not Python's: `<str>` says nothing to a user).
_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "file": "FILE",
               "directory": "DIR", "list[Path]": "PATH", "list[str]": "TEXT"}


def _type_word(param: Any, ctx: Any) -> str:
    display = getattr(param, "display_type", None)
    raw = display(ctx) if callable(display) else ""
    return _TYPE_WORDS.get(str(raw).strip("<>"), str(raw).strip("<>").upper() or "VALUE")


def _default_words(param: Any) -> str:
    default = param.default
    if default is None or isinstance(default, bool) or callable(default) or default == [] or default == ():
        return ""
    if isinstance(default, (list, tuple)):
        return ", ".join(str(d) for d in default)
    text = str(default)
    # A comma list gets spaces so the help wraps between its words instead of cutting one.
    return ", ".join(text.split(",")) if "," in text and " " not in text else text


def _write_dl(formatter: Any, rows: list[tuple[str, str]], col_max: int = 30, spacing: int = 2) -> None:
    """click's definition list, wrapped between words only: click's own wrapping breaks at hyphens, which cut
    option names in two (`--exit-` / `code`)."""
    first_col = min(max(len(first) for first, _ in rows), col_max) + spacing
    indent = formatter.current_indent
    text_width = max(formatter.width - first_col - 2, 10)
    for first, second in rows:
        formatter.write(f"{'':>{indent}}{first}")
        if not second:
            formatter.write("\n")
            continue
        if len(first) <= first_col - spacing:
            formatter.write(" " * (first_col - len(first)))
        else:
            formatter.write("\n" + " " * (first_col + indent))
        lines = textwrap.wrap(second, text_width, break_long_words=False, break_on_hyphens=False) or [""]
        formatter.write(lines[0] + "\n")
        for line in lines[1:]:
            formatter.write(f"{'':>{first_col + indent}}{line}\n")


def _plain_help_option(option: Any) -> Any:
    # The help flag's "not given" is None, which typer coerces through pydantic: that import alone is half of the
    # startup budget of `hullscan scan --help`. False is a bool, which typer passes through as it is.
    if option is not None and option.default is None:
        option.default = False
    return option


class Command(TyperCommand):
    """A command whose help reads like a classic CLI's (`-f, --format FORMAT`, flags without a value, defaults
    whole) and which says so when a flag is given a value (`--ignore-unfixed true IMAGE`).

    The command line loads its modules with the cycle collector off (hullscan.heap.hold in cli.main); a command
    turns it back on as it starts, so a server or a long update collects as any program does."""

    collector_from_start = True

    def invoke(self, ctx: Any) -> Any:
        if self.collector_from_start:
            heap.release()
        return super().invoke(ctx)

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        params: list[Any] = self.get_params(ctx)
        for param in params:
            if getattr(param, "hidden", False):
                continue
            extra: list[str] = []
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                if param.required:
                    extra.append("required")
                args.append((name, " ".join([param.help or "", *(f"[{e}]" for e in extra)]).strip()))
                continue
            names = ", ".join(sorted(param.opts, key=lambda o: (o.startswith("--"), o)))
            if not getattr(param, "is_flag", False):
                names += f" {param.metavar or _type_word(param, ctx)}"
            if getattr(param, "multiple", False):
                extra.append("repeatable")
            if param.envvar and getattr(param, "show_envvar", True):
                extra.append(f"env: {param.envvar}")
            default = _default_words(param) if getattr(param, "show_default", True) else ""
            if default:
                extra.append(f"default: {default}")
            opts.append((names, " ".join([param.help or "", *(f"[{e}]" for e in extra)]).strip()))
        if args:
            with formatter.section("Arguments"):
                _write_dl(formatter, args)
        if opts:
            with formatter.section("Options"):
                _write_dl(formatter, opts)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        flags = {opt for p in self.params if getattr(p, "is_flag", False) for opt in p.opts}
        for given, value in zip(args, args[1:], strict=False):
            if given in flags and value.lower() in BOOLEAN_WORDS:
                raise typer.BadParameter(f"{given} is a flag and takes no value: write {given} to turn it on, "
                                         "leave it out to keep it off", param_hint=given)
            if given == "--":
                break
        return super().parse_args(ctx, args)


class ScanCommand(Command):
    """A one-scan command: it keeps the collector off through the engine's imports too, and turns it on when it
    settles the heap just before scanning (cli.scan.run)."""

    collector_from_start = False


class Group(TyperGroup):
    """A command group; an unknown command gets the nearest name as a suggestion (click's own), or the hint that
    Trivy's verbs have hullscan names."""

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name in TRIVY_VERBS and name not in self.commands:
            raise typer.BadParameter(f"hullscan has no {name!r} command; {TRIVY_VERBS[name]}",
                                     param_hint="COMMAND")
        return super().resolve_command(ctx, args)


TRIVY_VERBS = {
    "fs": "scan a root filesystem with 'hullscan scan dir:PATH'",
    "rootfs": "scan a root filesystem with 'hullscan scan dir:PATH'",
    "repo": "hullscan scans images only: 'hullscan scan IMAGE'",
    "config": "baseline checks run in 'hullscan scan IMAGE --scanners baseline'",
    "server": "the scan service is 'hullscan serve'",
}


def examples(*lines: str) -> str:
    """An epilog of examples that click prints as written: each paragraph (lines between empty ones) starts with
    click's \\b marker, which stops it re-wrapping them."""
    text = "\n".join(f"  {line}" if line else "" for line in lines)
    return "Examples:\n\n" + "\n\n".join(f"\b\n{part}" for part in text.split("\n\n"))


ImageArg = Annotated[str, typer.Argument(metavar="IMAGE", help="Registry reference (registry[:port]/repo[:tag]"
                                         "[@digest], http(s):// accepted), docker-archive tar, OCI layout "
                                         "(oci:DIR[:tag]) or root filesystem (dir:PATH)", show_default=False)]
PlatformOpt = Annotated[str | None, typer.Option("--platform", metavar="OS/ARCH[/VARIANT]",
                                                 help="Platform to pick from a multi-architecture index")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                help="Write the report to this file (its directory must exist)")]
UserOpt = Annotated[str | None, typer.Option("--username", "-u", envvar="HULLSCAN_USERNAME", metavar="USER",
                                             help="Registry user")]
PwStdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the registry password from stdin")]
InsecureOpt = Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP and unverified TLS")]
CaOpt = Annotated[Path | None, typer.Option("--ca-cert", metavar="FILE",
                                            help="CA bundle for the registry's TLS certificate")]
DockerCfgOpt = Annotated[Path | None, typer.Option("--docker-config", metavar="FILE",
                                                   help="Path to a Docker config.json")]
CacheDirOpt = Annotated[Path | None, typer.Option("--cache-dir", metavar="DIR",
                                                  help="Layer cache directory [default: settings' cache_dir]")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Analyse every layer afresh; write no cache")]
MaxImageOpt = Annotated[float, typer.Option("--max-image-size", metavar="GB", help="Largest image to scan, in GB")]
MaxLayerOpt = Annotated[float, typer.Option("--max-layer-size", metavar="GB", help="Largest layer to scan, in GB")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", metavar="SECONDS", help="Stop the scan after this "
                                                  "many seconds [default: settings' scan_timeout, 3 hours]")]


def new_app(help_text: str) -> typer.Typer:
    """A command group as every hullscan group is: plain help (no Rich markup: a bracket in a help text is text),
    `-h` as well as `--help`, help when no command is given."""
    return typer.Typer(help=help_text, cls=Group, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False, rich_markup_mode=None,
                       context_settings={"help_option_names": ["-h", "--help"]})
