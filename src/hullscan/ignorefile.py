"""`.hullscanignore`: vulnerability ids to leave out of the report, each with an optional expiry and reason.

One entry a line: `ID [exp:YYYY-MM-DD] [# reason]`; blank lines and lines starting with `#` are
comments. An expired entry stops ignoring and the report says so, so a waiver cannot outlive its
review date silently.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from hullscan.errors import CATALOGUE, Cause, HullscanError
from hullscan.findings import IgnoredFinding, VulnFinding
from hullscan.model import Note

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._:-]*$")

# A mistake in the user's own file: invalid usage (exit 2), like a bad option, not an unscannable image.
_CAUSE = Cause("IGNORE_FILE_INVALID", "The ignore file is not valid",
               "Fix the line or byte named in the message (one `ID [exp:YYYY-MM-DD] [# reason]` a line, UTF-8 "
               "text), or point --ignore-file at another file.", exit_code=2)
CATALOGUE.setdefault(_CAUSE.code, _CAUSE)


@dataclass(frozen=True)
class IgnoreEntry:
    id: str
    expires: dt.date | None = None
    reason: str = ""
    line: int = 0


class IgnoreFileError(HullscanError):
    code = "IGNORE_FILE_INVALID"


def parse(text: str, source: str = ".hullscanignore") -> list[IgnoreEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        body, _, reason = raw.partition("#")
        words = body.split()
        if not words:
            continue
        vuln_id, expires = words[0], None
        if not _ID.match(vuln_id):
            raise IgnoreFileError(f"{source}:{number}: {vuln_id!r} is not a vulnerability id")
        for word in words[1:]:
            if not word.startswith("exp:"):
                raise IgnoreFileError(f"{source}:{number}: unexpected {word!r} (use 'ID exp:YYYY-MM-DD # reason')")
            try:
                expires = dt.date.fromisoformat(word[4:])
            except ValueError:
                raise IgnoreFileError(f"{source}:{number}: {word!r} is not a date (exp:YYYY-MM-DD)") from None
        entries.append(IgnoreEntry(vuln_id.upper(), expires, reason.strip(), number))
    return entries


def load(path: Path) -> list[IgnoreEntry]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IgnoreFileError(f"cannot read the ignore file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IgnoreFileError(f"the ignore file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                              f"{exc.start} (line {line}) is not valid UTF-8") from None
    return parse(text, str(path))


def apply(findings: list[VulnFinding], entries: list[IgnoreEntry], today: dt.date | None = None,
          ) -> tuple[list[VulnFinding], list[IgnoredFinding], list[Note]]:
    """Split findings into (kept, ignored); notes name every expired entry that no longer ignores."""
    today = today or dt.date.today()
    active = {e.id: e for e in entries if e.expires is None or e.expires >= today}
    notes = [Note("IGNORE_EXPIRED", f"ignore entry {e.id} expired on {e.expires}; it no longer applies"
                  + (f" ({e.reason})" if e.reason else ""), f"line {e.line}")
             for e in entries if e.expires is not None and e.expires < today]
    kept: list[VulnFinding] = []
    ignored: list[IgnoredFinding] = []
    for f in findings:
        ids = {i.upper() for i in (f.id, *f.aliases, *f.advisory_ids)}
        hit = next((active[i] for i in sorted(ids) if i in active), None)
        if hit is None:
            kept.append(f)
        else:
            ignored.append(IgnoredFinding(f, hit.reason, hit.expires.isoformat() if hit.expires else ""))
    return kept, ignored, notes
