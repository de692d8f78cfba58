"""The user's secret configuration (`--secret-config FILE`, YAML): add, replace, disable and allow rules.

```yaml
max-file-size: 10MiB            # files larger than this are not scanned (default 10 MiB)
rules:                          # added before the built-in rules; an id of a built-in rule replaces it
  - id: acme-api-token
    title: ACME API token
    severity: HIGH              # CRITICAL, HIGH, MEDIUM or LOW
    category: ACME              # optional
    keywords: [acme_]           # recommended: the regex runs only on files containing one (any case)
    regex: 'acme_(?P<secret>[a-z0-9]{32})'   # Python syntax; the `secret` group is the secret
    entropy: 3.0                # optional minimum Shannon entropy (bits per byte) of the secret
    path: '\\.env$'              # optional: only files whose path matches
    remediation: Rotate it in the ACME console.
disable-rules: [jwt, sentry-dsn]
allow-rules:                    # skip a path, or a secret whose value matches, for every rule or some
  - id: fixtures
    description: our own test keys
    path: '^srv/app/fixtures/'
  - id: known-dummy
    regex: '^AKIA0{16}$'
    rules: [aws-access-key-id]
disable-allow-rules: [documentation]   # scan documentation too
```
Paths are image paths without a leading slash (``etc/app.conf``). Keys may be written with `-` or `_`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.errors import CATALOGUE, Cause, HullscanError
from hullscan.secrets.engine import ENGINE_VERSION, RuleError, SecretEngine, compile_allow, compile_rule
from hullscan.secrets.rules import BUILTIN_ALLOW, RULES, SEVERITIES, AllowRule, Rule

DEFAULT_MAX_FILE_SIZE = 10 << 20

_CAUSE = Cause("SECRET_CONFIG_INVALID", "The secret configuration file is not valid",
               "Fix the file named in the message (see `hullscan scan --help` for --secret-config), or leave "
               "the option out to use the built-in rules.", exit_code=2)

_RULE_KEYS = {"id", "title", "severity", "category", "keywords", "regex", "secret_group", "entropy", "path",
              "remediation"}
_ALLOW_KEYS = {"id", "description", "path", "regex", "rules"}
_TOP_KEYS = {"max_file_size", "rules", "disable_rules", "allow_rules", "disable_allow_rules"}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class SecretConfigError(HullscanError):
    code = "SECRET_CONFIG_INVALID"

    @property
    def cause(self) -> Cause:
        return CATALOGUE.get(self.code, _CAUSE)


@dataclass
class SecretConfig:
    rules: list[Rule] = field(default_factory=list)  # the user's, added (or replacing built-ins by id)
    disabled_rules: frozenset[str] = frozenset()
    allow_rules: list[AllowRule] = field(default_factory=list)
    disabled_allow_rules: frozenset[str] = frozenset()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    source: str = ""
    _engine: SecretEngine | None = field(default=None, repr=False, compare=False)
    _fingerprint: str = field(default="", repr=False, compare=False)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_engine": None}  # compiled engines do not pickle; rebuilt on first use

    def effective_rules(self) -> list[Rule]:
        mine = {r.id: r for r in self.rules}
        builtin = [mine.pop(r.id, r) for r in RULES]
        return [r for r in [*mine.values(), *builtin] if r.id not in self.disabled_rules]

    def effective_allow(self) -> list[AllowRule]:
        return [a for a in [*BUILTIN_ALLOW, *self.allow_rules] if a.id not in self.disabled_allow_rules]

    def engine(self) -> SecretEngine:
        if self._engine is None:
            self._engine = SecretEngine(self.effective_rules(), self.effective_allow())
        return self._engine

    def fingerprint(self) -> str:
        """Changes whenever anything that decides the findings changes (the layer cache key uses it)."""
        if not self._fingerprint:
            self._fingerprint = self._digest()
        return self._fingerprint

    def _digest(self) -> str:
        h = hashlib.sha256(f"engine:{ENGINE_VERSION};max:{self.max_file_size}".encode())
        for r in self.effective_rules():
            h.update(repr((r.id, r.title, r.severity, r.regex, r.keywords, r.category, r.entropy, r.path,
                           r.secret_group, r.boundary, r.generic, r.kind, r.remediation, r.allow_match,
                           r.allow_paths, getattr(r.validate, "__name__", None))).encode())
        for a in self.effective_allow():
            h.update(repr((a.id, a.path, a.regex, a.rules)).encode())
        return h.hexdigest()


@functools.lru_cache(maxsize=1)
def default_config() -> SecretConfig:
    """The built-in rules, one per process: their compiled engine (a Hyperscan database, about 5 ms to build) and
    fingerprint are then made once, not again for every scan a service runs. Shared by threads: the engine keeps
    a scratch space per thread."""
    return SecretConfig(source="built-in")


def load_secret_config(path: Path | str) -> SecretConfig:
    """Read and validate a YAML secret configuration; SecretConfigError says what is wrong and where."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretConfigError(f"cannot read {p}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = safejson.yaml_loads(text, what=str(p))
    except safejson.DocumentError as exc:
        raise SecretConfigError(str(exc)) from None
    return parse_secret_config(doc, str(p))


def parse_secret_config(doc: Any, source: str = "secret config") -> SecretConfig:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SecretConfigError(f"{source}: the top level must be a mapping, got {_kind(doc)}")
    top = _normalise_keys(doc, _TOP_KEYS, source)
    cfg = SecretConfig(source=source)
    if "max_file_size" in top:
        cfg.max_file_size = _size(top["max_file_size"], f"{source}: max-file-size")
    rules = _list(top.get("rules"), f"{source}: rules")
    seen: set[str] = set()
    for i, raw in enumerate(rules):
        rule = _rule(raw, f"{source}: rules[{i}]")
        if rule.id in seen:
            raise SecretConfigError(f"{source}: rules[{i}]: rule id {rule.id!r} is defined twice")
        seen.add(rule.id)
        cfg.rules.append(rule)
    known_rules = {r.id for r in RULES} | seen
    disabled = _strings(top.get("disable_rules"), f"{source}: disable-rules")
    unknown = sorted(set(disabled) - known_rules)
    if unknown:
        raise SecretConfigError(f"{source}: disable-rules names unknown rule(s): {', '.join(unknown)}")
    cfg.disabled_rules = frozenset(disabled)
    allow_ids = {a.id for a in BUILTIN_ALLOW}
    for i, raw in enumerate(_list(top.get("allow_rules"), f"{source}: allow-rules")):
        allow = _allow(raw, f"{source}: allow-rules[{i}]", known_rules)
        if allow.id in allow_ids:
            raise SecretConfigError(f"{source}: allow-rules[{i}]: allow rule id {allow.id!r} is already used")
        allow_ids.add(allow.id)
        cfg.allow_rules.append(allow)
    disabled_allow = _strings(top.get("disable_allow_rules"), f"{source}: disable-allow-rules")
    unknown = sorted(set(disabled_allow) - {a.id for a in BUILTIN_ALLOW} - {a.id for a in cfg.allow_rules})
    if unknown:
        raise SecretConfigError(f"{source}: disable-allow-rules names unknown allow rule(s): {', '.join(unknown)}")
    cfg.disabled_allow_rules = frozenset(disabled_allow)
    try:
        cfg.engine()
    except RuleError as exc:  # e.g. a user rule replacing a built-in with a regex that needs more
        raise SecretConfigError(f"{source}: {exc}") from None
    return cfg


# -- pieces --------------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "nothing"}.get(type(value), type(value).__name__)


def _normalise_keys(raw: dict[Any, Any], allowed: set[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).strip().lower().replace("-", "_")
        if name not in allowed:
            shown = ", ".join(sorted(k.replace("_", "-") for k in allowed))
            raise SecretConfigError(f"{where}: unknown key {str(key)!r} (expected one of: {shown})")
        out[name] = value
    return out


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SecretConfigError(f"{where}: must be a list, got {_kind(value)}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise SecretConfigError(f"{where}: every entry must be a non-empty string, got {_kind(item)}")
    return [s.strip() for s in items]


def _string(raw: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise SecretConfigError(f"{where}: {key.replace('_', '-')} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise SecretConfigError(f"{where}: {key.replace('_', '-')} must be a non-empty string, got {_kind(value)}")
    return value


def _ident(raw: dict[str, Any], where: str) -> str:
    ident = _string(raw, "id", where, required=True) or ""
    if not _ID.match(ident):
        raise SecretConfigError(f"{where}: id {ident!r} must be letters, digits and . _ : - (at most 128)")
    return ident


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise SecretConfigError(f"{where}: a rule must be a mapping, got {_kind(raw)}")
    r = _normalise_keys(raw, _RULE_KEYS, where)
    ident = _ident(r, where)
    where = f"{where} (rule {ident!r})"
    regex = _string(r, "regex", where, required=True) or ""
    severity = (_string(r, "severity", where) or "MEDIUM").strip().upper()
    if severity not in SEVERITIES:
        raise SecretConfigError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    keywords = _strings(r.get("keywords"), f"{where}: keywords")
    entropy = r.get("entropy", 0.0)
    if isinstance(entropy, bool) or not isinstance(entropy, int | float) or not 0 <= entropy <= 8:
        raise SecretConfigError(f"{where}: entropy must be a number from 0 to 8 (bits per byte)")
    rule = Rule(
        id=ident,
        title=(_string(r, "title", where) or ident).strip(),
        severity=severity,
        regex=regex,
        keywords=tuple(k.lower() for k in keywords),
        category=(_string(r, "category", where) or "Custom").strip(),
        entropy=float(entropy),
        path=_string(r, "path", where),
        secret_group=(_string(r, "secret_group", where) or "secret").strip(),
        remediation=(_string(r, "remediation", where) or "").strip(),
    )
    try:
        compiled = compile_rule(rule, 0)
    except RuleError as exc:
        raise SecretConfigError(f"{where}: {exc}") from None
    if "secret_group" in r and rule.secret_group not in compiled.regex.groupindex:
        raise SecretConfigError(f"{where}: the regex has no group named {rule.secret_group!r}")
    if compiled.regex.match(b"") is not None:
        raise SecretConfigError(f"{where}: the regex matches the empty string")
    return rule


def _allow(raw: Any, where: str, known_rules: set[str]) -> AllowRule:
    if not isinstance(raw, dict):
        raise SecretConfigError(f"{where}: an allow rule must be a mapping, got {_kind(raw)}")
    a = _normalise_keys(raw, _ALLOW_KEYS, where)
    ident = _ident(a, where)
    where = f"{where} (allow rule {ident!r})"
    path, regex = _string(a, "path", where), _string(a, "regex", where)
    if path is None and regex is None:
        raise SecretConfigError(f"{where}: give a path, a regex or both")
    rules = _strings(a.get("rules"), f"{where}: rules")
    unknown = sorted(set(rules) - known_rules)
    if unknown:
        raise SecretConfigError(f"{where}: rules names unknown rule(s): {', '.join(unknown)}")
    allow = AllowRule(id=ident, description=(_string(a, "description", where) or "").strip(), path=path,
                      regex=regex, rules=tuple(rules))
    try:
        compile_allow(allow)
    except RuleError as exc:
        raise SecretConfigError(f"{where}: {exc}") from None
    return allow


def _size(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise SecretConfigError(f"{where}: must be a size such as 10MiB or a number of bytes")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.match(str(value))
        if m is None:
            raise SecretConfigError(f"{where}: {value!r} is not a size such as 10MiB, 512KB or 1048576")
        number, unit, suffix = float(m.group(1)), m.group(2).lower(), m.group(3).lower()
        base = 1024 if (suffix.startswith("i") or not suffix) else 1000
        n = int(number * base ** "_kmgt".index(unit or "_"))
    if n <= 0:
        raise SecretConfigError(f"{where}: must be more than 0 bytes")
    return n
