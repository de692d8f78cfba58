from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from rich.console import Console

from hullscan.findings import ScanReport
from hullscan.report import table
from hullscan.vulndb.model import DatabaseInfo

from . import (
    ESCAPE_NAME,
    ESCAPE_TITLE,
    HTML_TITLE,
    MANIFEST,
    MARKUP_NAME,
    MARKUP_TITLE,
    VENV1,
    VENV2,
    assert_fits,
    empty_report,
    report_tokens,
    sample_report,
)

NOW = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
ORDER = [  # severity, then package (ecosystem, name, version, path), then id
    ("CRITICAL", "CVE-2023-5678"),  # deb openssl
    ("CRITICAL", "CVE-2021-45046"),  # maven log4j
    ("HIGH", "CVE-2024-6666"),  # npm evil
    ("HIGH", "CVE-2024-35195"),  # pypi requests, in venv1 and venv2: one row
    ("MEDIUM", "CVE-2022-0001"),
    ("LOW", "CVE-2011-3374"),
    ("UNKNOWN", "CVE-2023-45288"),
]


def _render(report: ScanReport | None = None, width: int = 250, now: datetime = NOW, **kwargs: bool) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    table.render_report(report or sample_report(), console, now=now, **kwargs)
    return console.export_text()


def _rows(text: str) -> list[list[str]]:
    """The vulnerability rows of a wide rendering, split on the column gaps (lines under a row are indented)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Package ") and "Severity" in line) + 2
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        if not line.startswith(" "):  # lines under a row (a title, a CVSS vector) are indented
            rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_header_names_the_image_and_the_database_age() -> None:
    text = _render()
    assert "registry.example.com:5000/team/app:1.4" in text
    assert MANIFEST in text
    assert "Debian GNU/Linux 12 (bookworm)" in text
    assert "Packages          17" in text
    assert "Vulnerability DB  updated 2024-05-02 10:00 UTC (2 days old)" in text
    assert "older than" not in text


def test_stale_database_is_flagged_in_yellow() -> None:
    later = datetime(2024, 5, 20, tzinfo=UTC)
    text = _render(now=later)
    assert "(17 days old); older than 7 days, run 'hullscan db update'" in text
    buf = io.StringIO()
    console = Console(file=buf, width=250, force_terminal=True, color_system="standard")
    table.render_report(sample_report(), console, now=later)
    assert "\x1b[33mupdated 2024-05-02" in buf.getvalue()


def test_database_label() -> None:
    assert table.database_label(None) == ("none", False)
    info = DatabaseInfo(schema_version=1, built_at="2024-05-01T00:00:00", updated_at="")
    assert table.database_label(info, NOW) == ("updated 2024-05-01 00:00 UTC (3 days old)", False)
    info.updated_at = "2024-05-04T11:30:00+00:00"
    assert table.database_label(info, NOW)[0].endswith("(less than an hour old)")
    info.updated_at = "2024-05-03T09:00:00+02:00"
    assert table.database_label(info, NOW)[0] == "updated 2024-05-03 07:00 UTC (29 hours old)"
    info.updated_at = "yesterday"
    assert table.database_label(info, NOW) == ("updated yesterday", False)


def test_rows_sorted_by_severity_then_package() -> None:
    rows = _rows(_render())
    assert [(row[3], row[6].removesuffix(" KEV")) for row in rows] == ORDER


def test_every_cell_of_a_row() -> None:
    rows = {row[6]: row for row in _rows(_render())}
    # requests is in two places, so the table has a Path column ("-" for packages found in one place only)
    assert rows["CVE-2023-5678 KEV"] == [
        "openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "CRITICAL", "9.8 cvss:3.1", "-", "CVE-2023-5678 KEV",
        "OpenSSL: excessive time spent in DH check / generation with…", "-", "1",
    ]
    assert rows["CVE-2023-45288"] == [
        "stdlib", "1.21.5", "1.21.9, 1.22.2", "UNKNOWN", "-", "-", "CVE-2023-45288", "net/http: memory exhaustion",
        "-", "-",
    ]
    assert rows["CVE-2011-3374"][:3] == ["bash", "5.2.15-2+b2", "no fix yet"]
    assert rows["CVE-2011-3374"][-1] == "0"
    assert sum("KEV" in row[6] for row in rows.values()) == 1


def test_an_advisory_in_several_places_is_one_row_naming_them() -> None:
    text = _render()
    [row] = [r for r in _rows(text) if r[6] == "CVE-2024-35195"]
    assert row[0] == "requests" and row[-2:] == ["2 places", "2"]
    places = text[text.index("requests 2.31.0 is in 2 places:"):].splitlines()[1:3]
    assert [line.split() for line in places] == [[VENV1, "(layer", "2)"], [VENV2, "(layer", "2)"]]
    assert "8 findings in 7 rows" in text
    assert "Total: 8 (" in text  # the totals count every place, as the JSON lists them


def test_a_package_in_one_place_gets_no_path_column() -> None:
    report = sample_report()
    report.vulnerabilities = [f for f in report.vulnerabilities if f.package.name != "requests"]
    report.facts.packages = [p for p in report.facts.packages if p.name != "requests"]
    text = _render(report)
    header = next(line for line in text.splitlines() if line.startswith("Package "))
    assert "Path" not in header and "places" not in text


def test_summary_line_and_fixable_count() -> None:
    text = _render()
    assert "Total: 8 (CRITICAL: 2, HIGH: 3, MEDIUM: 1, LOW: 1, UNKNOWN: 1), fixable: 6" in text
    assert "Known exploited (CISA KEV): 1" in text
    assert table.report_summary_line(sample_report()) == (
        "Total: 8 (CRITICAL: 2, HIGH: 3, MEDIUM: 1, LOW: 1, UNKNOWN: 1), fixable: 6"
    )


def test_ignored_findings_and_expired_entries() -> None:
    text = _render()
    tail = text[text.index("Ignored: 2"):]
    assert "CVE-2023-9999 in six 1.16.0" in tail  # the CRITICAL one first
    assert "CVE-2024-0727 in openssl 3.0.11-1~deb12u2 (no PKCS12 parsing in this image; until 2099-12-31)" in tail
    assert tail.index("CVE-2023-9999") < tail.index("CVE-2024-0727")
    assert "1 ignore entry has expired and no longer applies (see the warnings)" in tail
    # the ignored ones are not in the table or the counts
    assert "CVE-2024-0727" not in text[: text.index("Ignored: 2")]


def test_detector_and_image_notes_in_yellow() -> None:
    text = _render()
    tail = text[text.index("Warnings (5)"):]
    assert "! OS_NOT_CHECKED: OS packages not checked: no vulnerability data for rocky 9" in tail
    assert "! IGNORE_EXPIRED: ignore entry CVE-2020-0001 expired on 2024-01-01" in tail
    assert "! db.corrupt: rpm database could not be read" in tail
    buf = io.StringIO()
    console = Console(file=buf, width=250, force_terminal=True, color_system="standard")
    table.render_report(sample_report(), console, now=NOW)
    out = buf.getvalue()
    assert "\x1b[33m! OS_NOT_CHECKED" in out
    assert "\x1b[1;31mCRITICAL" in out  # severity colours
    assert "\x1b[31mHIGH" in out and "\x1b[33mMEDIUM" in out and "\x1b[34mLOW" in out


def test_hostile_strings_print_literally() -> None:
    text = _render()
    assert MARKUP_NAME in text  # not swallowed as Rich markup
    assert MARKUP_TITLE[:50] in text
    assert HTML_TITLE[:40] in text
    assert table.clean(ESCAPE_NAME) in text
    assert "terminal\\x1b]0;pwned\\x07 title second line" in text  # control characters escaped, newline folded
    assert "\x1b" not in text and "\x07" not in text
    assert ESCAPE_TITLE not in text

    buf = io.StringIO()
    console = Console(file=buf, width=250, force_terminal=True, color_system="standard")
    table.render_report(sample_report(), console, now=NOW)
    out = buf.getvalue()
    assert "\x1b]0;pwned" not in out and "\x07" not in out and "evil\x1b[31m" not in out
    assert "[link=https://evil.example]click[/link]" in out and "\x1b]8;" not in out  # no hyperlink made


def test_fits_narrow_consoles_and_never_breaks_a_token() -> None:
    report = sample_report()
    for width in (250, 160, 120, 100, 80, 60, 40):
        text = _render(width=width)
        assert_fits(text, width, report_tokens(report))
        assert "Total: 8 (CRITICAL: 2" in text.replace("\n", " ")
    # At 80 columns the titles leave the row and are cut, visibly, to the line under it.
    text = _render(width=80)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Package "))
    assert header.split() == ["Package", "Severity", "ID"]  # the most important columns that fit
    row = lines.index(next(line for line in lines if line.startswith("openssl ")))
    assert lines[row].split() == ["openssl", "CRITICAL", "CVE-2023-5678", "KEV"]
    assert lines[row + 1] == "    Installed: 3.0.11-1~deb12u2   Fixed in: 3.0.13-1~deb12u1   Layer: 1"
    assert lines[row + 2] == "    Rating: 9.8 cvss:3.1"  # what does not fit on one line goes on the next
    assert lines[row + 3] == "    OpenSSL: excessive time spent in DH check / generation with large Q paramet…"
    wide = _render(width=250)
    assert "OpenSSL: excessive time spent in DH check / generation with…" in wide  # cut at TITLE_WIDTH


def test_no_colour_off_a_terminal() -> None:
    buf = io.StringIO()
    table.render_report(sample_report(), Console(file=buf, width=120), now=NOW)
    assert "\x1b" not in buf.getvalue()
    assert "CRITICAL" in buf.getvalue()


def test_inventory_only_on_request() -> None:
    assert "Licence" not in _render()
    text = _render(show_packages=True)
    assert "Licence" in text and "17 packages: apk 1" in text
    assert text.index("Licence") < text.index("Total: 8")


def test_empty_report() -> None:
    text = _render(empty_report(), width=100)
    assert "No vulnerabilities found." in text
    assert "Total: 0 (CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0), fixable: 0" in text
    assert "Severity" not in text and "Ignored" not in text and "Warnings" not in text
    assert "Vulnerability DB  updated at an unknown time" in text


def test_no_database_row_without_a_vulnerability_scan() -> None:
    report = empty_report()
    report.database, report.scanners = None, []
    assert "Vulnerability DB" not in _render(report)
    report.scanners = ["vuln"]
    assert "Vulnerability DB  none" in _render(report)
