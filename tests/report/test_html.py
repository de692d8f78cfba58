"""The self-contained HTML report: every scan item a section, and nothing from the image as markup."""

from __future__ import annotations

from html.parser import HTMLParser

from hullscan.findings import CheckFinding
from hullscan.report import html
from tests.report import HTML_TITLE, SCRIPT_NAME, sample_report


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def _report_with_checks():  # type: ignore[no-untyped-def]
    report = sample_report()
    report.scanners = ["vuln", "secret", "baseline"]
    report.checks = [
        CheckFinding("secret", "aws-access-key-id", "AWS access key", "CRITICAL", path="etc/<b>x</b>.env", line=3,
                     evidence="AKIA************", remediation="Remove it and rotate the key", layer_index=1),
        CheckFinding("baseline", "image-user-root", "Image runs as root", "MEDIUM",
                     description='USER is "<img src=x onerror=alert(2)>"', remediation="Add a USER", layer_index=-1),
    ]
    return report


def test_hostile_strings_never_become_markup() -> None:
    page = html.render(_report_with_checks())
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and "b" not in parser.tags
    assert not any(name.startswith("on") for name, _ in parser.attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT_NAME not in page and HTML_TITLE not in page


def test_every_item_has_a_section_with_its_findings() -> None:
    report = _report_with_checks()
    page = html.render(report)
    for anchor in ('id="vuln"', 'id="secret"', 'id="baseline"', 'id="packages"'):
        assert anchor in page
    assert "Remove it and rotate the key" in page and "AKIA************" in page
    assert 'id="malware"' not in page  # an item that did not run gets no empty section
    for v in report.vulnerabilities:
        assert v.id in page
