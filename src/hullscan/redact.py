"""Redaction of image-config text for reports: secret-like names, build-arg values, URL credentials.

A history line (`created_by`) can carry secrets: BuildKit records every build argument a RUN step used
(`RUN |2 API_TOKEN=... VERSION=1.2 /bin/sh -c ...`), ENV and ARG steps show their values, and URLs may
hold user:password. Findings show history lines only through `redact_history`.
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_PARTS = frozenset({"PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "PWD", "SECRET", "SECRETS", "TOKEN",
                           "TOKENS", "APIKEY", "CREDENTIAL", "CREDENTIALS", "PRIVATEKEY", "SECRETKEY", "ACCESSKEY"})
_SECRET_PAIRS = frozenset({("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"),
                           ("AUTH", "KEY"), ("CLIENT", "SECRET"), ("ENCRYPTION", "KEY"), ("SIGNING", "KEY")})
_NOT_SECRET_LAST = frozenset({"FILE", "PATH", "DIR", "URL", "LENGTH", "MIN", "MAX", "POLICY", "TTL", "EXPIRY",
                              "ENABLED", "REQUIRED", "HEADER", "TYPE", "ENDPOINT", "SOCK", "LOCATION", "NAME"})


def is_secret_name(key: str) -> bool:
    """MYSQL_ROOT_PASSWORD, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY yes; PASSWORD_FILE, PWD, TOKENIZERS_... no."""
    if key.upper() in ("PWD", "OLDPWD"):
        return False
    parts = [p for p in re.split(r"[_\-.]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).upper()) if p]
    if not parts or parts[-1] in _NOT_SECRET_LAST:
        return False
    if any(p in _SECRET_PARTS for p in parts):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(parts, parts[1:], strict=False))




_KV = re.compile(r"""(?P<key>\b[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|\S*)""")
URL_CREDS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@")
_BUILD_ARGS = re.compile(r"^(?:RUN\s+)?\|(\d+)\s+")
_SHELLS = (" /bin/sh -c ", " /bin/bash -c ", " /bin/ash -c ", " sh -c ", " bash -c ", " cmd /S /C ", " /bin/sh -o ")
MAX_EVIDENCE = 400
# `echo 'root:hunter2' | chpasswd` and `--password hunter2`: a secret with no secret-looking NAME=value around it
_CHPASSWD = re.compile(r"""(?P<user>[\w.$-]+):(?P<secret>[^\s'":|;]+)(?=['"]?\s*\|\s*(?:sudo\s+)?chpasswd\b)""")
_PASSWD_STDIN = re.compile(r"""(?P<lead>\becho\s+(?:-[ne]+\s+)?)(?P<secret>'[^']*'|"[^"]*"|[^\s|;]+)"""
                           r"""(?=\s*\|\s*(?:sudo\s+)?passwd\b[^|;]*--stdin)""")
_SECRET_OPTION = re.compile(r"""(?P<opt>--[\w-]*(?:password|passwd|token|secret|api-key|apikey)[\w-]*)(?P<sep>=|\s+)"""
                            r"""(?P<secret>'[^']*'|"[^"]*"|[^\s'"-][^\s;|&]*)""", re.IGNORECASE)


def build_arg_keys(created_by: str) -> list[str]:
    """Names of the build args recorded in a RUN history line (`|2 A=x B=y /bin/sh -c ...`)."""
    m = _BUILD_ARGS.match(created_by.strip())
    if not m:
        return []
    region = _build_arg_region(created_by.strip(), m)
    return re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", region)[: int(m.group(1))]


def _build_arg_region(text: str, m: re.Match[str]) -> str:
    rest = text[m.end():]
    cut = min((i for i in (rest.find(s) for s in _SHELLS) if i >= 0), default=-1)
    if cut >= 0:
        return rest[:cut]
    return " ".join(rest.split()[: int(m.group(1))])


def redact_history(created_by: str) -> str:
    """A history line fit for a report: build-arg values, secret-named values and URL credentials masked."""
    text = created_by.strip()
    m = _BUILD_ARGS.match(text)
    if m:
        region = _build_arg_region(text, m)
        # values may hold spaces (the history does not quote them): mask all of the region but the names
        keys = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", region)
        masked = " ".join(f"{k}=***" for k in keys) if keys else "***"
        text = text[: m.end()] + masked + text[m.end() + len(region):]

    def mask(k: re.Match[str]) -> str:
        return f"{k.group('key')}=***" if is_secret_name(k.group("key")) else k.group(0)

    text = _KV.sub(mask, text)
    text = URL_CREDS.sub(r"\1***@", text)
    text = _CHPASSWD.sub(r"\g<user>:***", text)
    text = _PASSWD_STDIN.sub(r"\g<lead>***", text)
    text = _SECRET_OPTION.sub(_masked_option, text)
    return text if len(text) <= MAX_EVIDENCE else text[: MAX_EVIDENCE - 3] + "..."


def redact_config(config: Any) -> Any:
    """An image config fit to keep (the scan store, stored reports): values of secret-named ENV variables masked and
    history lines redacted, as reports show them. Nothing that reads kept configs needs the values."""
    if not isinstance(config, dict):
        return config
    out = dict(config)
    for key in ("config", "container_config"):
        section = out.get(key)
        if isinstance(section, dict) and isinstance(section.get("Env"), list):
            out[key] = {**section, "Env": [_masked_env(str(item)) for item in section["Env"]]}
    history = out.get("history")
    if isinstance(history, list):
        out["history"] = [{**h, "created_by": redact_history(str(h["created_by"]))}
                          if isinstance(h, dict) and "created_by" in h else h for h in history]
    return out


def _masked_option(m: re.Match[str]) -> str:
    """`--password x` masked; `--password-file /run/x` names where the secret is, not the secret."""
    last = re.split(r"[-_]", m.group("opt").lower())[-1]
    return m.group(0) if last.upper() in _NOT_SECRET_LAST or last == "stdin" else f"{m.group('opt')}{m.group('sep')}***"


def _masked_env(item: str) -> str:
    key, sep, _ = item.partition("=")
    return f"{key}=***" if sep and is_secret_name(key) else item
