"""Baseline check: image configuration (CIS Docker Benchmark image rules), OS settings, weak passwords.

Image configuration, as far as the config JSON and its history show it:
  image-user-root, image-no-healthcheck, image-add-remote-url, image-pipe-to-shell, image-secret-env,
  image-secret-build-arg, image-sensitive-port, image-update-without-install, image-setuid-heavy.
OS settings, from the final text of the files the config-files analyzer kept:
  sshd-permit-root-login, sshd-password-authentication, sshd-permit-empty-passwords (sshd's first-match
  semantics, Include and Match honoured), passwd-extra-uid0, empty-password, weak-password-hash,
  login-defs-password-ageing, login-defs-encrypt-method, sudoers-nopasswd-all, ld-so-preload.
Weak passwords (checks/weakpasswords.py): weak-password, and weak-password-incomplete when a hash was not tried
(its method or cost) or the cheap tests could not finish; how far the budgeted wordlist got is stated in the
report (ScanReport.password_check), not as a finding.

Secret values never leave this module: findings name keys, users and algorithms; history lines shown as
evidence are redacted; a password found in this run appears only with DetectContext.show_weak_passwords.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hullscan.checks.accounts import GROUP, LOCKED_OR_DISABLED, PASSWD, Accounts
from hullscan.checks.crypt import Crypt, algorithm_of, is_weak_algorithm
from hullscan.checks.files import finding, is_setid_executable
from hullscan.checks.weakpasswords import PasswordOptions, check_passwords
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding, PasswordCheck
from hullscan.model import FileEntry, ImageFacts
from hullscan.redact import URL_CREDS, build_arg_keys, is_secret_name, redact_history

ITEM = "baseline"
SSHD = "etc/ssh/sshd_config"
SUDOERS = "etc/sudoers"
LOGIN_DEFS = "etc/login.defs"
LD_PRELOAD = "etc/ld.so.preload"
SETUID_HEAVY = 16  # more setuid/setgid executables than a stock distribution image carries

# port -> (service, severity). Ports a database or cache image exposes as its whole purpose (redis 6379,
# memcached 11211, ...) are left out: exposing them is the image's job, not a slip.
SENSITIVE_PORTS: dict[int, tuple[str, str]] = {
    21: ("FTP", "MEDIUM"), 22: ("SSH", "MEDIUM"), 23: ("Telnet", "HIGH"), 69: ("TFTP", "HIGH"),
    111: ("rpcbind", "MEDIUM"), 135: ("MS-RPC", "MEDIUM"), 139: ("NetBIOS", "MEDIUM"), 445: ("SMB", "MEDIUM"),
    512: ("rexec", "HIGH"), 513: ("rlogin", "HIGH"), 514: ("rsh", "HIGH"), 2375: ("Docker API (plain HTTP)", "HIGH"),
    2376: ("Docker API (TLS)", "MEDIUM"), 3389: ("RDP", "MEDIUM"), 5900: ("VNC", "MEDIUM"), 5901: ("VNC", "MEDIUM"),
    5902: ("VNC", "MEDIUM"), 5903: ("VNC", "MEDIUM"), 6000: ("X11", "MEDIUM"), 10250: ("kubelet API", "HIGH"),
}

@dataclass
class HistoryStep:
    index: int  # position in config["history"]
    created_by: str
    layer: int  # the layer it made, or -1 for an empty (metadata-only) step

    @property
    def instruction(self) -> str:
        """The Dockerfile instruction, normalised: "RUN apt-get update", "ENV A=b", "ADD https://... /x"."""
        text = self.created_by.strip()
        text = re.sub(r"\s*# buildkit\s*$", "", text)
        nop = re.match(r"^/bin/sh -c #\(nop\)\s+(.*)$", text, re.S)
        if nop:
            return nop.group(1).strip()
        if text.startswith(("/bin/sh -c ", "|")):
            return "RUN " + text
        return text


def history_steps(facts: ImageFacts) -> list[HistoryStep]:
    history = facts.config.get("history")
    if not isinstance(history, list):
        return []
    steps, layer = [], 0
    for i, h in enumerate(history):
        if not isinstance(h, dict):
            continue
        empty = bool(h.get("empty_layer"))
        steps.append(HistoryStep(i, str(h.get("created_by", "")), -1 if empty else layer))
        if not empty:
            layer += 1
    return steps


_PIPE_TO_SHELL = [
    re.compile(r"\b(?:curl|wget|fetch)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+(?:\S+=\S+\s+)*)?"
               r"(?:/usr)?(?:/local)?(?:/s?bin/)?(?:ba|da|z|k|a|fi)?sh\b"),
    re.compile(r"\b(?:curl|wget|fetch)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/usr)?(?:/local)?(?:/bin/)?"
               r"(?:python[0-9.]*|perl|ruby|node|php)\b(?!\s+-m\s+json)"),
    re.compile(r"\b(?:ba|da|z|k|a)?sh\s+(?:-c\s+)?[\"']?\$\(\s*(?:curl|wget|fetch)\b"),
    re.compile(r"\b(?:ba|da|z|k|a)?sh\s+<\(\s*(?:curl|wget|fetch)\b"),
]
_ADD = re.compile(r"^ADD\s+(.*)$", re.S)
_REMOTE = re.compile(r"(?i)(?:^|\s)((?:https?|ftp)://\S+|git@\S+)")
_PM = r"(?:-{1,2}[\w-]+(?:=\S+)?\s+)*"
_UPDATE_ALONE = [
    ("apt-get update", re.compile(rf"\bapt(?:-get)?\s+{_PM}update\b"),
     re.compile(rf"\bapt(?:-get)?\s+{_PM}(?:install|upgrade|dist-upgrade|full-upgrade|build-dep|source)\b")),
    ("aptitude update", re.compile(rf"\baptitude\s+{_PM}update\b"),
     re.compile(rf"\baptitude\s+{_PM}(?:install|upgrade|safe-upgrade|full-upgrade)\b")),
    ("apk update", re.compile(rf"\bapk\s+{_PM}update\b"), re.compile(rf"\bapk\s+{_PM}(?:add|upgrade|fix)\b")),
    ("zypper refresh", re.compile(rf"\bzypper\s+{_PM}(?:refresh|ref)\b"),
     re.compile(rf"\bzypper\s+{_PM}(?:install|in|update|up|patch|dist-upgrade|dup)\b")),
    ("makecache", re.compile(rf"\b(?:yum|dnf|microdnf)\s+{_PM}makecache\b"),
     re.compile(rf"\b(?:yum|dnf|microdnf)\s+{_PM}(?:install|update|upgrade|reinstall)\b")),
]


def _image_config(facts: ImageFacts, accounts: Accounts) -> list[CheckFinding]:
    cfg: dict[str, Any] = facts.config.get("config") or {} if isinstance(facts.config, dict) else {}
    if not isinstance(cfg, dict):
        cfg = {}
    out: list[CheckFinding] = []
    out.extend(_user(facts, cfg, accounts))
    hc = cfg.get("Healthcheck")
    test = hc.get("Test") if isinstance(hc, dict) else None
    if not isinstance(test, list) or not test or test[0] == "NONE":
        out.append(finding(
            facts, ITEM, "image-no-healthcheck", "No HEALTHCHECK instruction", "LOW",
            description="The image defines no health check"
            + (" (HEALTHCHECK NONE disables the base image's)" if isinstance(test, list) and test else "")
            + ", so the engine cannot tell a hung container from a working one.",
            remediation="Add a HEALTHCHECK instruction that probes the service (CIS Docker Benchmark 4.6).",
            metadata={"cis": "4.6"}))
    out.extend(_secret_env(facts, cfg))
    out.extend(_ports(facts, cfg))
    out.extend(_history(facts))
    return out


def _user(facts: ImageFacts, cfg: dict[str, Any], accounts: Accounts) -> list[CheckFinding]:
    user = str(cfg.get("User") or "").strip()
    name = user.split(":", 1)[0].strip()
    root = name in ("", "root", "0")
    via = ""
    if not root:
        entry = accounts.user(name)
        if entry is not None and entry.uid == 0:
            root, via = True, f" ({name} has uid 0 in /etc/passwd)"
    if not root:
        return []
    shown = f"USER {user}" if user else "no USER instruction"
    return [finding(
        facts, ITEM, "image-user-root", "Image runs as root", "MEDIUM",
        description=f"The container's processes run as root ({shown}{via}); a breakout or a writable mount "
        "then acts with root's rights.",
        remediation="Create an unprivileged user (RUN useradd -r -u 10001 app) and add USER 10001 "
        "(CIS Docker Benchmark 4.1).",
        evidence=shown, metadata={"cis": "4.1", "user": user}),
    ]


def _secret_env(facts: ImageFacts, cfg: dict[str, Any]) -> list[CheckFinding]:
    env = cfg.get("Env")
    if not isinstance(env, list):
        return []
    steps = history_steps(facts)
    out, seen = [], set()
    for item in env:
        key, sep, value = str(item).partition("=")
        if not sep or not value.strip() or key in seen or not is_secret_name(key):
            continue
        seen.add(key)
        step = next((s for s in steps if re.search(rf"\bENV\b.*\b{re.escape(key)}[= ]", s.instruction)), None)
        out.append(finding(
            facts, ITEM, "image-secret-env", f"Secret-like environment variable {key} is set in the image", "HIGH",
            description=f"The image config sets {key}; every container, `docker inspect` and anyone who can pull "
            "the image sees its value. (The value is not shown here.)",
            remediation=f"Remove {key} from ENV; pass it at run time from a secret store, or mount it as a "
            "file (CIS Docker Benchmark 4.10).",
            evidence=f"ENV {key}=***", layer=step.layer if step else -1,
            created_by=redact_history(step.created_by) if step else "", metadata={"key": key, "cis": "4.10"}))
    return out


def _ports(facts: ImageFacts, cfg: dict[str, Any]) -> list[CheckFinding]:
    ports = cfg.get("ExposedPorts")
    if not isinstance(ports, dict):
        return []
    out = []
    for spec in sorted(ports, key=str):
        number, _, proto = str(spec).partition("/")
        if not number.isdecimal() or int(number) not in SENSITIVE_PORTS:
            continue
        service, severity = SENSITIVE_PORTS[int(number)]
        out.append(finding(
            facts, ITEM, "image-sensitive-port", f"Image exposes port {number}/{proto or 'tcp'} ({service})", severity,
            description=f"EXPOSE {spec}: {service} gives remote access or control; containers are managed "
            "through the engine, not by logging in or by remote administration protocols.",
            remediation=f"Remove EXPOSE {number} and the {service} service from the image (CIS Docker Benchmark "
            "5.8: open only needed ports).",
            evidence=f"EXPOSE {spec}", metadata={"port": number, "protocol": proto or "tcp", "service": service}))
    return out


def _history(facts: ImageFacts) -> list[CheckFinding]:
    out: list[CheckFinding] = []
    seen: set[tuple[str, str]] = set()
    for step in history_steps(facts):
        text = step.instruction
        shown = redact_history(step.created_by)

        def add(check_id: str, key: str, title: str, severity: str, description: str, remediation: str,
                metadata: dict[str, str], step: HistoryStep = step, shown: str = shown) -> None:
            if (check_id, key) in seen:
                return
            seen.add((check_id, key))
            out.append(finding(facts, ITEM, check_id, title, severity, description=description,
                               remediation=remediation, evidence=shown, layer=step.layer, created_by=shown,
                               metadata={"history_index": str(step.index), **metadata}))

        add_m = _ADD.match(text)
        if add_m and "--checksum=" not in add_m.group(1):
            remote = _REMOTE.search(add_m.group(1))
            if remote:
                url = URL_CREDS.sub(r"\1***@", remote.group(1))
                add("image-add-remote-url", f"{step.index}", f"ADD fetches a remote URL: {url[:120]}", "MEDIUM",
                    "ADD downloads at build time without verifying what it got; a changed or hijacked source "
                    "ends up in the image unnoticed.",
                    "Download with RUN curl -fsSLO and check a pinned sha256 (or ADD --checksum=sha256:...), and "
                    "use COPY for local files (CIS Docker Benchmark 4.9).",
                    {"cis": "4.9"})
        if any(p.search(text) for p in _PIPE_TO_SHELL):
            add("image-pipe-to-shell", f"{step.index}", "Remote script piped into a shell at build time", "MEDIUM",
                "A build step runs a script straight from the network (curl|sh style): whatever the server "
                "sent that day was executed as root in the build, unverified.",
                "Download the script, verify its sha256 or signature, then run it; or install from the "
                "distribution's signed packages.", {})
        for name, update, install in _UPDATE_ALONE:
            if update.search(text) and not install.search(text):
                add("image-update-without-install", f"{step.index}:{name}", f"'{name}' without an install in the "
                    "same RUN", "LOW",
                    f"A step runs {name} alone: the cached layer keeps an old package index, so later installs "
                    "may fetch outdated packages (or fail) when the build cache is reused.",
                    f"Run {name} and the install in one RUN (e.g. apt-get update && apt-get install -y ...) "
                    "(CIS Docker Benchmark 4.7).", {"cis": "4.7"})
        for key in build_arg_keys(step.created_by):
            if is_secret_name(key):
                add("image-secret-build-arg", key, f"Secret-like build argument {key} is recorded in the history",
                    "HIGH", f"The build argument {key} was passed with --build-arg and used by a RUN step; its "
                    "value is stored in the image history for anyone who pulls the image. (Not shown here.)",
                    "Use BuildKit secrets (RUN --mount=type=secret,id=...) instead of build arguments "
                    "(CIS Docker Benchmark 4.10).", {"key": key, "cis": "4.10"})
        arg = re.match(r"^ARG\s+(.*)$", text, re.S)
        if arg:
            for m in re.finditer(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(=\S*)?", arg.group(1)):
                key, default = m.group(1), m.group(2)
                if is_secret_name(key):
                    with_value = bool(default and default != "=")
                    add("image-secret-build-arg", key, f"Secret-like build argument {key}"
                        + (" has a default value in the history" if with_value else " is declared"),
                        "HIGH" if with_value else "LOW",
                        f"ARG {key}" + (" carries a default value, stored in the image history. (Not shown.)"
                                        if with_value else ": values given with --build-arg are recorded in the "
                                        "history of every RUN step that uses them."),
                        "Use BuildKit secrets (RUN --mount=type=secret,id=...) instead of build arguments "
                        "(CIS Docker Benchmark 4.10).", {"key": key, "cis": "4.10"})
        for m in re.finditer(r"--build-arg[= ]\s*([A-Za-z_][A-Za-z0-9_]*)=", text):
            if is_secret_name(m.group(1)):
                add("image-secret-build-arg", m.group(1), f"Secret-like --build-arg {m.group(1)} in a build step",
                    "MEDIUM", f"A build step passes {m.group(1)} on a command line, which the history keeps.",
                    "Pass secrets as BuildKit secrets or files, never on command lines.", {"key": m.group(1)})
    return out


# -- sshd_config -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshSetting:
    keyword: str  # lower case
    value: str  # first argument, as written
    path: str
    line: int
    match: str = ""  # the Match block's criteria, "" for global settings


_SSHD_MAX_DEPTH = 16


def _glob_config(pattern: str, files: dict[str, str]) -> list[str]:
    """Files kept by the analyzer that an Include pattern names; '*' does not cross '/'."""
    pattern = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
    pattern = pattern.lstrip("/")
    depth = pattern.count("/")
    return sorted(p for p in files if p.count("/") == depth and fnmatch.fnmatchcase(p, pattern))


def sshd_settings(files: dict[str, str]) -> tuple[dict[str, SshSetting], list[SshSetting]]:
    """(global settings with sshd's first-match-wins semantics, settings inside Match blocks)."""
    effective: dict[str, SshSetting] = {}
    conditional: list[SshSetting] = []

    def walk(path: str, match: str, depth: int) -> None:
        if depth > _SSHD_MAX_DEPTH or path not in files:
            return
        for number, raw in enumerate(files[path].splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(\S+?)(?:\s*=\s*|\s+)(.*)$", line)
            if not m:
                continue
            keyword, args = m.group(1).lower(), m.group(2).strip()
            args = args.split("#", 1)[0].strip() if " #" in args else args
            if keyword == "match":
                # Match blocks override the global values for the connections they match, "Match all" for every one
                match = args or "all"
                continue
            if keyword == "include":
                for pattern in args.split():
                    for included in _glob_config(pattern.strip("\"'"), files):
                        walk(included, match, depth + 1)
                continue
            value = args.split()[0].strip("\"'") if args.split() else ""
            setting = SshSetting(keyword, value, path, number, match)
            if match:
                conditional.append(setting)
            else:
                effective.setdefault(keyword, setting)

    walk(SSHD, "", 0)
    return effective, conditional


_SSH_CHECKS = (
    # keyword, id, title, severity, severity in a Match block, default when unset, remediation
    ("permitrootlogin", "sshd-permit-root-login", "sshd permits root login", "HIGH", "MEDIUM", "prohibit-password",
     "Set PermitRootLogin no (or prohibit-password) in /etc/ssh/sshd_config."),
    ("passwordauthentication", "sshd-password-authentication", "sshd accepts password authentication", "MEDIUM",
     "LOW", "yes", "Set PasswordAuthentication no and use keys."),
    ("permitemptypasswords", "sshd-permit-empty-passwords", "sshd accepts empty passwords", "HIGH", "MEDIUM", "no",
     "Set PermitEmptyPasswords no in /etc/ssh/sshd_config."),
)


def _sshd(facts: ImageFacts, layers: dict[str, int]) -> list[CheckFinding]:
    if SSHD not in facts.config_files:
        return []
    effective, conditional = sshd_settings(facts.config_files)
    out = []
    for keyword, check_id, title, severity, match_severity, default, remediation in _SSH_CHECKS:
        setting = effective.get(keyword)
        if setting is not None and setting.value.lower() == "yes":
            out.append(finding(
                facts, ITEM, check_id, title, severity,
                description=f"{setting.value} is the effective value: sshd takes the first value it reads, and this "
                f"one comes first (/{setting.path}, line {setting.line}).",
                remediation=remediation, path=setting.path, line=setting.line,
                evidence=f"{keyword} {setting.value}", layer=layers.get(setting.path, -1),
                metadata={"keyword": keyword, "value": setting.value}))
        elif setting is None and default == "yes":
            out.append(finding(
                facts, ITEM, check_id, f"{title} (OpenSSH default)", "LOW",
                description=f"sshd_config and its includes never set {keyword}; OpenSSH's default is yes.",
                remediation=remediation, path=SSHD, evidence=f"{keyword} unset (default yes)",
                layer=layers.get(SSHD, -1), metadata={"keyword": keyword, "value": "default"}))
        for c in conditional:
            if c.keyword == keyword and c.value.lower() == "yes":
                everyone = c.match.strip().lower() == "all"
                out.append(finding(
                    facts, ITEM, check_id, f"{title} for connections matching '{c.match}'",
                    severity if everyone else match_severity,
                    description=f"Inside 'Match {c.match}' (/{c.path}, line {c.line}) {keyword} is yes.",
                    remediation=remediation, path=c.path, line=c.line, evidence=f"Match {c.match}: {keyword} yes",
                    layer=layers.get(c.path, -1), metadata={"keyword": keyword, "value": c.value, "match": c.match}))
    return out


# -- accounts ----------------------------------------------------------------------------------------------

def _accounts_checks(facts: ImageFacts, accounts: Accounts, layers: dict[str, int]) -> list[CheckFinding]:
    out = []
    for p in accounts.passwd or []:
        if p.uid == 0 and p.name != "root":
            out.append(finding(
                facts, ITEM, "passwd-extra-uid0", f"Account {p.name} has uid 0", "HIGH",
                description=f"{p.name} is a second root account (uid 0 in /etc/passwd): whoever logs in as "
                f"{p.name} is root, and audit trails name the wrong user.",
                remediation=f"Give {p.name} its own uid, or delete it.", path=PASSWD, line=p.line,
                evidence=f"{p.name}:uid 0", layer=layers.get(PASSWD, -1), metadata={"user": p.name}))
    for user, field, source, line in accounts.password_fields():
        entry = accounts.user(user)
        if entry is None:
            continue  # no such account: nothing can log in with it
        if field == "":
            if not entry.login_shell:
                continue
            out.append(finding(
                facts, ITEM, "empty-password", f"Account {user} has an empty password and a login shell",
                "CRITICAL" if entry.uid == 0 else "HIGH",
                description=f"/{source} gives {user} no password at all and /etc/passwd gives it the shell "
                f"{entry.shell or '/bin/sh'}: anyone can log in (or su) as {user} without a password.",
                remediation=f"Lock the account (passwd -l {user}, or '*' in /{source}) in the Dockerfile.",
                path=source, line=line, evidence=f"{user}: empty password field", layer=layers.get(source, -1),
                metadata={"user": user, "uid": str(entry.uid)}))
            continue
        locked = field.startswith("!")
        hashed = field.lstrip("!")
        if LOCKED_OR_DISABLED.match(field) or not hashed or hashed in ("*", "x"):
            continue
        if is_weak_algorithm(hashed):
            algorithm = algorithm_of(hashed)
            out.append(finding(
                facts, ITEM, "weak-password-hash", f"Password of {user} is hashed with {algorithm}",
                "LOW" if locked else "MEDIUM",
                description=f"{algorithm} is fast to brute-force (billions of guesses a second on a GPU); "
                "a leaked image gives its password away." + (" The account is locked." if locked else ""),
                remediation=f"Set ENCRYPT_METHOD YESCRYPT (or SHA512) in /etc/login.defs and reset {user}'s "
                "password, or lock the account; images should not carry passwords at all.",
                path=source, line=line, evidence=f"{user}: {algorithm}", layer=layers.get(source, -1),
                metadata={"user": user, "algorithm": algorithm}))
    return out


def _login_defs(facts: ImageFacts, layers: dict[str, int]) -> list[CheckFinding]:
    text = facts.config_files.get(LOGIN_DEFS)
    if text is None:
        return []
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            values.setdefault(parts[0].upper(), (parts[1], number))
    out = []
    problems, first_line = [], 0
    max_days = values.get("PASS_MAX_DAYS")
    if max_days and max_days[0].lstrip("-").isdecimal() and (int(max_days[0]) > 365 or int(max_days[0]) < 0):
        problems.append(f"PASS_MAX_DAYS {max_days[0]} (passwords never or rarely expire; 365 or less)")
        first_line = max_days[1]
    min_days = values.get("PASS_MIN_DAYS")
    if min_days and min_days[0] == "0":
        problems.append("PASS_MIN_DAYS 0 (a password can be changed back at once; 1 or more)")
        first_line = first_line or min_days[1]
    if problems:
        out.append(finding(
            facts, ITEM, "login-defs-password-ageing", "Password ageing is not enforced in /etc/login.defs", "LOW",
            description="New accounts get: " + "; ".join(problems) + ".",
            remediation="Set PASS_MAX_DAYS 365 and PASS_MIN_DAYS 1 in /etc/login.defs (CIS distribution "
            "benchmarks), or keep the image free of password logins.",
            path=LOGIN_DEFS, line=first_line, evidence="; ".join(p.split(" (")[0] for p in problems),
            layer=layers.get(LOGIN_DEFS, -1)))
    method = values.get("ENCRYPT_METHOD")
    md5 = values.get("MD5_CRYPT_ENAB")
    weak = None
    if method and method[0].upper() in ("DES", "MD5"):
        weak = (f"ENCRYPT_METHOD {method[0]}", method[1])
    elif not method and md5 and md5[0].lower() == "yes":
        weak = ("MD5_CRYPT_ENAB yes", md5[1])
    if weak:
        out.append(finding(
            facts, ITEM, "login-defs-encrypt-method", f"/etc/login.defs hashes new passwords weakly ({weak[0]})",
            "MEDIUM", description="Passwords set with passwd/chpasswd get a DES or MD5 hash, which GPUs "
            "brute-force quickly.", remediation="Set ENCRYPT_METHOD YESCRYPT (or SHA512) in /etc/login.defs.",
            path=LOGIN_DEFS, line=weak[1], evidence=weak[0], layer=layers.get(LOGIN_DEFS, -1)))
    return out


# -- sudoers -----------------------------------------------------------------------------------------------


def _sudo_lines(files: dict[str, str], path: str, depth: int = 0) -> Iterator[tuple[str, int, str]]:
    """(file, line number, logical line) of sudoers with its includes, continuation lines joined."""
    if depth > 8 or path not in files:
        return
    pending, start = "", 0
    for number, raw in enumerate(files[path].splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        inc = re.match(r"^[#@](include|includedir)\s+(\S+)", line)
        if inc:
            target = inc.group(2).lstrip("/")
            if inc.group(1) == "include":
                yield from _sudo_lines(files, target, depth + 1)
            else:
                for p in sorted(f for f in files if f.rsplit("/", 1)[0] == target.rstrip("/")):
                    name = p.rsplit("/", 1)[1]
                    if not name.endswith("~") and "." not in name:  # what sudo itself skips
                        yield from _sudo_lines(files, p, depth + 1)
            continue
        if not line or line.startswith("#"):
            continue
        yield path, start, line


def sudo_nopasswd_all(files: dict[str, str]) -> list[tuple[str, int, str, str]]:
    """(file, line, who, rule) for rules that let someone run any command without a password."""
    found = []
    for path, number, line in _sudo_lines(files, SUDOERS):
        if re.match(r"^Defaults\b", line):
            if re.search(r"(?:^|[\s,])!\s*authenticate\b", line):
                scope = line.split(None, 1)[0]
                found.append((path, number, scope, line))
            continue
        if re.match(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\b", line):
            continue
        who = line.split(None, 1)[0]
        nopasswd = False  # tags carry over to the following commands of the same rule
        rhs = line.split("=", 1)[1] if "=" in line else ""
        for item in rhs.split(","):
            item = re.sub(r"^\s*\([^)]*\)\s*", "", item.strip())  # a runas spec: (ALL:ALL)
            while True:
                tag = re.match(r"^([A-Z_]+)\s*:\s*", item)
                if not tag or tag.group(1) == "ALL":
                    break
                if tag.group(1) == "NOPASSWD":
                    nopasswd = True
                elif tag.group(1) == "PASSWD":
                    nopasswd = False
                item = item[tag.end():]
            if nopasswd and item.strip() == "ALL":
                found.append((path, number, who, line))
                break
    return found


def _sudoers(facts: ImageFacts, layers: dict[str, int]) -> list[CheckFinding]:
    if SUDOERS not in facts.config_files:
        return []
    out = []
    for path, line, who, rule in sudo_nopasswd_all(facts.config_files):
        everyone = who in ("ALL", "Defaults")
        out.append(finding(
            facts, ITEM, "sudoers-nopasswd-all", f"sudo lets {who} run any command without a password",
            "HIGH" if everyone else "MEDIUM",
            description=f"/{path} line {line}: {who} becomes root with sudo, no password asked; any code running "
            f"as {who} in the container is root.",
            remediation="Remove the NOPASSWD: ALL rule (and !authenticate defaults), or drop sudo from the image "
            "and run as a user that needs no privileges.",
            path=path, line=line, evidence=rule[:200], layer=layers.get(path, -1), metadata={"who": who}))
    return out


def _ld_preload(facts: ImageFacts, layers: dict[str, int]) -> list[CheckFinding]:
    text = facts.config_files.get(LD_PRELOAD)
    if text is None:
        return []
    libs = [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]
    if not libs:
        return []
    return [finding(
        facts, ITEM, "ld-so-preload", "/etc/ld.so.preload loads libraries into every program", "HIGH",
        description=f"Every dynamically linked program in the container loads {', '.join(libs[:5])}"
        f"{' ...' if len(libs) > 5 else ''} first; rootkits use this to hide and to intercept calls.",
        remediation="Delete /etc/ld.so.preload unless the image needs the library, and find out which layer "
        "put it there.", path=LD_PRELOAD, evidence=" ".join(libs)[:200], layer=layers.get(LD_PRELOAD, -1),
        metadata={"libraries": " ".join(libs)[:500]})]


# -- weak passwords (checks/weakpasswords.py) ---------------------------------------------------------------


class BaselineDetector:
    """Baseline: image configuration, OS settings and weak passwords. After `detect`, `password_check` says what the
    weak-password search tried (None when the image has no password hash)."""

    item = ITEM

    def __init__(self, *, words: Sequence[str] | None = None, workers: int | None = None,
                 crypt: Crypt | None = None, passwords: PasswordOptions | None = None) -> None:
        self.passwords = passwords or PasswordOptions()
        if words is not None:
            self.passwords.words = words
        if workers is not None:
            self.passwords.workers = workers
        if crypt is not None:
            self.passwords.crypt = crypt
        self.password_check: PasswordCheck | None = None

    def detect(self, facts: ImageFacts, context: DetectContext) -> list[CheckFinding]:
        accounts = Accounts.of(facts)
        layers = {e.path: layer for e, layer in facts.files}
        out: list[CheckFinding] = []
        if facts.config:
            out.extend(_image_config(facts, accounts))
        setid = [(e, layer) for e, layer in facts.files if is_setid_executable(e)]
        if len(setid) > SETUID_HEAVY:
            out.append(_setuid_heavy(facts, setid))
        out.extend(_sshd(facts, layers))
        out.extend(_accounts_checks(facts, accounts, layers))
        out.extend(_login_defs(facts, layers))
        out.extend(_sudoers(facts, layers))
        out.extend(_ld_preload(facts, layers))
        out.extend(self.weak_passwords(facts, accounts, layers, context))
        return out

    def weak_passwords(self, facts: ImageFacts, accounts: Accounts, layers: dict[str, int],
                       context: DetectContext) -> list[CheckFinding]:
        opts = dataclasses.replace(self.passwords, budget_seconds=context.password_budget_seconds,
                                   show_passwords=context.show_weak_passwords)
        outcome = check_passwords(facts, accounts, layers, opts)
        self.password_check = outcome.check
        return outcome.findings


def _setuid_heavy(facts: ImageFacts, setid: list[tuple[FileEntry, int]]) -> CheckFinding:
    names = sorted("/" + e.path for e, _ in setid)
    return finding(
        facts, ITEM, "image-setuid-heavy", f"Image carries {len(setid)} setuid/setgid executables", "LOW",
        description=f"More than {SETUID_HEAVY} programs run with raised privileges: " + ", ".join(names[:12])
        + (" ..." if len(names) > 12 else "") + ". Each one is a privilege-escalation candidate.",
        remediation="Strip the bits the container does not need in the Dockerfile: RUN find / -xdev -perm /6000 "
        "-type f -exec chmod a-s {} + (CIS Docker Benchmark 4.8).",
        evidence=f"{len(setid)} setuid/setgid executables", metadata={"count": str(len(setid)), "cis": "4.8"})


__all__ = ["BaselineDetector", "GROUP", "is_secret_name", "redact_history", "sshd_settings", "sudo_nopasswd_all"]
