"""The ignore file: findings of any scan item to leave out of the report, by id, optionally only at some paths, each
with an optional expiry and reason.

Two forms. One entry a line (`.hullscanignore`, Trivy's `.trivyignore` plus paths):

    ID [exp:YYYY-MM-DD] [path:GLOB]... [# reason]

where ID is a vulnerability id or alias (CVE-..., GHSA-..., DSA-...), a secret rule id (aws-secret-access-key), a
malware rule id or a check id (image-no-healthcheck, sshd-permit-root-login); it applies to whichever item's
finding has that id. Or YAML (`.hullscanignore.yaml`, the shape of Trivy's `.trivyignore.yaml`), one section per
item:

    vulnerabilities:
      - id: CVE-2023-32681
        paths: ["usr/local/lib/python3.11/site-packages/*"]
        expired_at: 2025-06-30
        statement: the proxy strips credentials
    secrets:
      - id: aws-access-key-id
        paths: [srv/app/.env]
    baseline:            # also: misconfigurations
      - id: image-no-healthcheck

Sections: vulnerabilities, secrets, malware, files, baseline (or misconfigurations), compliance, base. Ids match
case-insensitively; a GLOB matches the finding's path inside the image (`*` crosses directories; a leading `/`
does not matter). An expired entry stops ignoring and the report says so, so a waiver cannot outlive its review
date silently; an entry that matched nothing is reported too (a typo must not look like a clean image).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan.errors import CATALOGUE, Cause, HullscanError
from hullscan.findings import CheckFinding, IgnoredCheck, IgnoredFinding, VulnFinding
from hullscan.model import Note

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
# A mistake in the user's own file: invalid usage (exit 2), like a bad option, not an unscannable image.
_CAUSE = Cause("IGNORE_FILE_INVALID", "The ignore file is not valid",
               "Fix the line, entry or byte named in the message (one `ID [exp:YYYY-MM-DD] [path:GLOB]... [# reason]` "
               "a line, or the YAML sections of the README; UTF-8 text), or point --ignore-file at another file.",
               exit_code=2)
CATALOGUE.setdefault(_CAUSE.code, _CAUSE)
SECTIONS: dict[str, str] = {
    "vulnerabilities": "vuln", "secrets": "secret", "malware": "malware", "files": "file", "baseline": "baseline",
    "misconfigurations": "baseline", "compliance": "compliance", "base": "base",
}


@dataclass(frozen=True)
class IgnoreEntry:
    id: str
    expires: dt.date | None = None
    reason: str = ""
    line: int = 0
    paths: tuple[str, ...] = ()  # globs; empty: anywhere
    item: str = ""  # the scan item the entry is for (a YAML section); "": any item
    source: str = ".hullscanignore"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    def matches(self, ids: set[str], path: str, item: str) -> bool:
        if self.id not in ids or (self.item and self.item != item):
            return False
        if not self.paths:
            return True
        here = path.lstrip("/")
        return any(fnmatch.fnmatchcase(here, glob.lstrip("/")) for glob in self.paths)


class IgnoreFileError(HullscanError):
    code = "IGNORE_FILE_INVALID"


def parse(text: str, source: str = ".hullscanignore") -> list[IgnoreEntry]:
    """The entries of an ignore file in the one-a-line form."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        body, _, reason = raw.partition("#")
        words = body.split()
        if not words:
            continue
        finding_id, expires, paths = words[0], None, []
        if not _ID.match(finding_id):
            raise IgnoreFileError(f"ignore file {source}, line {number}: {finding_id!r} is not a finding id")
        for word in words[1:]:
            if word.startswith("exp:"):
                expires = _date(word[4:], f"ignore file {source}, line {number}")
            elif word.startswith("path:") and len(word) > 5:
                paths.append(word[5:])
            else:
                raise IgnoreFileError(f"ignore file {source}, line {number}: unexpected {word!r} (write "
                                      "'ID [exp:YYYY-MM-DD] [path:GLOB]... # reason')")
        entries.append(IgnoreEntry(finding_id.upper(), expires, reason.strip(), number, tuple(paths), "", source))
    return entries


def parse_yaml(text: str, source: str = ".hullscanignore.yaml") -> list[IgnoreEntry]:
    """The entries of an ignore file in the YAML form (sections per scan item, as `.trivyignore.yaml`)."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IgnoreFileError(f"ignore file {source} is not valid YAML: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise IgnoreFileError(f"ignore file {source}: expected sections ({', '.join(SECTIONS)}) at the top")
    entries = []
    for section, listed in doc.items():
        item = SECTIONS.get(str(section))
        if item is None:
            raise IgnoreFileError(f"ignore file {source}: unknown section {section!r}; use {', '.join(SECTIONS)}")
        if not isinstance(listed, list):
            raise IgnoreFileError(f"ignore file {source}: section {section} must be a list of entries")
        for n, raw in enumerate(listed, 1):
            entries.append(_yaml_entry(raw, item, f"ignore file {source}, {section} entry {n}", source))
    return entries


def _yaml_entry(raw: Any, item: str, where: str, source: str) -> IgnoreEntry:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), (str, int)):
        raise IgnoreFileError(f"{where}: needs an id (- id: CVE-...)")
    finding_id = str(raw["id"]).strip()
    if not _ID.match(finding_id):
        raise IgnoreFileError(f"{where}: {finding_id!r} is not a finding id")
    unknown = sorted(set(raw) - {"id", "paths", "expired_at", "expires", "statement", "reason"})
    if unknown:
        raise IgnoreFileError(f"{where}: unknown key {', '.join(unknown)} (id, paths, expired_at, statement)")
    paths = raw.get("paths") or []
    if isinstance(paths, str) or not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise IgnoreFileError(f"{where}: paths must be a list of paths or globs")
    when = raw.get("expired_at", raw.get("expires"))
    expires = when if isinstance(when, dt.date) else _date(str(when), where) if when is not None else None
    reason = str(raw.get("statement", raw.get("reason")) or "")
    return IgnoreEntry(finding_id.upper(), expires, " ".join(reason.split()), 0, tuple(paths), item,
                       f"{source} ({where.rsplit(', ', 1)[-1]})")


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise IgnoreFileError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def load(path: Path) -> list[IgnoreEntry]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IgnoreFileError(f"the ignore file {path} does not exist") from None
    except OSError as exc:
        raise IgnoreFileError(f"cannot read the ignore file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IgnoreFileError(f"the ignore file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                              f"{exc.start} (line {line}) is not valid UTF-8") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    return parse(text, str(path))


@dataclass
class Outcome:
    """What the ignore file did to a report's findings."""

    vulnerabilities: list[VulnFinding] = field(default_factory=list)  # kept
    checks: list[CheckFinding] = field(default_factory=list)  # kept
    ignored: list[IgnoredFinding] = field(default_factory=list)
    ignored_checks: list[IgnoredCheck] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def _active(entries: list[IgnoreEntry], today: dt.date) -> tuple[list[IgnoreEntry], list[Note]]:
    notes = [Note("IGNORE_EXPIRED", f"ignore entry {e.id} expired on {e.expires}; it no longer applies"
                  + (f" ({e.reason})" if e.reason else ""), e.where)
             for e in entries if e.expires is not None and e.expires < today]
    return [e for e in entries if e.expires is None or e.expires >= today], notes


def _expiry(entry: IgnoreEntry) -> str:
    return entry.expires.isoformat() if entry.expires else ""


def apply_all(vulnerabilities: list[VulnFinding], checks: list[CheckFinding], entries: list[IgnoreEntry],
              items_run: list[str], today: dt.date | None = None) -> Outcome:
    """Split every item's findings into kept and ignored. Notes name each expired entry (it no longer ignores)
    and each active entry that matched no finding of the items that ran."""
    active, notes = _active(entries, today or dt.date.today())
    used: set[IgnoreEntry] = set()
    out = Outcome(notes=notes)
    for f in vulnerabilities:
        ids = {i.upper() for i in (f.id, *f.aliases, *f.advisory_ids)}
        hit = next((e for e in active if e.matches(ids, f.package.path, "vuln")), None)
        if hit is None:
            out.vulnerabilities.append(f)
        else:
            used.add(hit)
            out.ignored.append(IgnoredFinding(f, hit.reason, _expiry(hit)))
    for c in checks:
        hit = next((e for e in active if e.matches({c.id.upper()}, c.path, c.item)), None)
        if hit is None:
            out.checks.append(c)
        else:
            used.add(hit)
            out.ignored_checks.append(IgnoredCheck(c, hit.reason, _expiry(hit)))
    ran = ", ".join(items_run) or "none"
    for e in active:
        if e not in used and (not e.item or e.item in items_run):
            scope = f" at {', '.join(e.paths)}" if e.paths else ""
            out.notes.append(Note("IGNORE_UNUSED", f"ignore entry {e.id}{scope} matched no finding of the scan "
                                                   f"items that ran ({ran}); check the id", e.where))
    return out


def apply(findings: list[VulnFinding], entries: list[IgnoreEntry], today: dt.date | None = None,
          ) -> tuple[list[VulnFinding], list[IgnoredFinding], list[Note]]:
    """Vulnerabilities only: (kept, ignored, notes on expired entries); for callers holding no other findings."""
    active, notes = _active(entries, today or dt.date.today())
    outcome = apply_all(findings, [], active, [])
    return outcome.vulnerabilities, outcome.ignored, notes
