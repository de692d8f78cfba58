"""Shared, hand-built ImageFacts and ScanReports for the renderer tests."""

from __future__ import annotations

from packageurl import PackageURL

from hullscan.findings import IgnoredFinding, ScanReport, VulnFinding
from hullscan.model import Descriptor, ImageFacts, LayerInfo, Note, OSInfo, Package, Platform
from hullscan.vulndb.model import DatabaseInfo

MANIFEST = "sha256:" + "ab" * 32
CONFIG = "sha256:" + "cd" * 32
DIFF = ["sha256:" + c * 64 for c in "123"]
CREATED_BY = [
    "/bin/sh -c #(nop) ADD file:0a1b in / ",
    "RUN /bin/sh -c apt-get update && apt-get install -y openssl # buildkit",
    "COPY app /app # buildkit",
]
MARKUP_NAME = "[bold red]boom[/]"
SCRIPT_NAME = "<script>alert(1)</script>"
ESCAPE_NAME = "evil\x1b[31mred\x1b[0m"
UNICODE_NAME = "github.com/ünïcode/mödule"
VENV1 = "opt/venv1/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"
VENV2 = "opt/venv2/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"


def purl(type_: str, name: str, version: str, namespace: str | None = None, **qualifiers: str) -> str:
    return str(
        PackageURL(type=type_, namespace=namespace, name=name, version=version, qualifiers=qualifiers or None)
        .to_string()
    )


def _at(pkg: Package, layer: int) -> Package:
    pkg.layer_index = layer
    pkg.layer_diff_id = DIFF[layer]
    pkg.layer_created_by = CREATED_BY[layer]
    return pkg


def sample_packages() -> list[Package]:
    return [
        _at(Package("openssl", "3.0.11-1~deb12u2", "deb", path="var/lib/dpkg/status",
                    purl=purl("deb", "openssl", "3.0.11-1~deb12u2", "debian", arch="amd64", distro="debian-12"),
                    licenses=["Apache-2.0"], source_name="openssl", source_version="3.0.11-1~deb12u2",
                    arch="amd64"), 1),
        _at(Package("bash", "5.2.15-2+b2", "deb", path="var/lib/dpkg/status",
                    purl=purl("deb", "bash", "5.2.15-2+b2", "debian", arch="amd64", distro="debian-12"),
                    licenses=["GPL-3.0-or-later", "BSD-4-Clause-UC"], arch="amd64"), 0),
        _at(Package("glibc", "2.34", "rpm", path="var/lib/rpm/rpmdb.sqlite",
                    purl=purl("rpm", "glibc", "2:2.34-60.el9", "redhat", arch="x86_64"),
                    licenses=["GPLv2+ and weird"], source_name="glibc", source_version="2.34-60.el9",
                    arch="x86_64", epoch=2, release="60.el9", vendor="Red Hat, Inc. (Raleigh)"), 0),
        _at(Package("zlib", "1.2.11", "rpm", path="var/lib/rpm/rpmdb.sqlite",
                    purl=purl("rpm", "zlib", "1.2.11-40.el9", "redhat", arch="x86_64"),
                    licenses=["zlib and Boost"], release="40.el9", arch="x86_64", epoch=0), 0),
        _at(Package("musl", "1.2.4-r2", "apk", path="lib/apk/db/installed",
                    purl=purl("apk", "musl", "1.2.4-r2", "alpine", arch="x86_64"),
                    licenses=["mit"], source_name="musl", arch="x86_64"), 0),
        _at(Package("requests", "2.31.0", "pypi", path=VENV1, purl=purl("pypi", "requests", "2.31.0"),
                    licenses=["Apache-2.0"]), 2),
        _at(Package("requests", "2.31.0", "pypi", path=VENV2, purl=purl("pypi", "requests", "2.31.0"),
                    licenses=["Apache-2.0"]), 2),
        _at(Package("six", "1.16.0", "pypi", path="usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                    purl=purl("pypi", "six", "1.16.0"), licenses=["MIT", "Apache-2.0 OR BSD-2-Clause"]), 1),
        _at(Package("certifi", "2024.2.2", "pypi", path="usr/lib/python3/dist-packages/certifi/METADATA",
                    purl=purl("pypi", "certifi", "2024.2.2"), licenses=["LicenseRef-public-domain"]), 1),
        _at(Package("chardet", "5.2.0", "pypi", path="usr/lib/python3/dist-packages/chardet/METADATA",
                    purl=purl("pypi", "chardet", "5.2.0"),
                    licenses=["GPL-2.0-only WITH Classpath-exception-2.0", "Custom Licence v1"]), 1),
        _at(Package("@angular/core", "17.0.0", "npm", path="app/node_modules/@angular/core/package.json",
                    purl=purl("npm", "core", "17.0.0", "@angular"), licenses=["MIT"]), 2),
        _at(Package(SCRIPT_NAME, "1.0.0", "npm", path="app/node_modules/x/package.json",
                    purl=purl("npm", SCRIPT_NAME.replace("/", ""), "1.0.0"), licenses=["ISC"]), 2),
        _at(Package(MARKUP_NAME, "0.0.1", "npm", path="app/node_modules/boom/package.json",
                    purl=purl("npm", MARKUP_NAME.replace("/", ""), "0.0.1"), licenses=["MIT", "BSD-2-Clause"]), 2),
        _at(Package(ESCAPE_NAME, "6.6.6", "npm", path="app/node_modules/evil/package.json",
                    purl=purl("npm", "evil", "6.6.6")), 2),
        _at(Package("org.apache.logging.log4j:log4j-core", "2.17.1", "maven", path="app/lib/log4j-core-2.17.1.jar",
                    purl=purl("maven", "log4j-core", "2.17.1", "org.apache.logging.log4j"),
                    licenses=["Apache-2.0 OR MIT"]), 2),
        _at(Package(UNICODE_NAME, "v1.2.3", "golang", path="usr/local/bin/app",
                    purl=purl("golang", "mödule", "v1.2.3", "github.com/ünïcode")), 2),
        Package("stdlib", "1.21.5", "golang", path="usr/local/bin/app", purl=purl("golang", "stdlib", "1.21.5"),
                licenses=["BSD-3-Clause"]),  # no layer attribution
    ]


def sample_facts() -> ImageFacts:
    layers = [
        LayerInfo(
            index=i,
            descriptor=Descriptor(
                media_type="application/vnd.oci.image.layer.v1.tar+gzip", digest="sha256:" + c * 64, size=1000 * (i + 1)
            ),
            diff_id=DIFF[i],
            created_by=CREATED_BY[i],
        )
        for i, c in enumerate("abc")
    ]
    return ImageFacts(
        reference="registry.example.com:5000/team/app:1.4",
        manifest_digest=MANIFEST,
        config_digest=CONFIG,
        platform=Platform("linux", "arm64", "v8"),
        layers=layers,
        os=OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
        packages=sample_packages(),
        notes=[
            Note("layer.too_big", "layer 2 exceeds the size cap; files after 10 GB were skipped", "", 2),
            Note("path.escape", "member [red]../../etc/passwd[/red] escapes the root", "../../etc/passwd", 1),
            Note("db.corrupt", "rpm database could not be read"),
        ],
    )


def empty_facts() -> ImageFacts:
    return ImageFacts(reference="/tmp/rootfs")


HTML_TITLE = 'Session <script>alert("x")</script> & "verify" \\u0000 </title>'
MARKUP_TITLE = "[link=https://evil.example]click[/link] ReDoS in [bold]boom[/bold]"
ESCAPE_TITLE = "terminal\x1b]0;pwned\x07 title\nsecond line"
DB_UPDATED = "2024-05-02T10:00:00Z"


def _pkg(facts: ImageFacts, name: str, path: str = "") -> Package:
    return next(p for p in facts.packages if p.name == name and (not path or p.path == path))


def sample_findings(facts: ImageFacts) -> list[VulnFinding]:
    """Every severity, a KEV one, unfixed ones, one id on two packages, hostile names and titles. Listed out of
    order on purpose."""
    openssl, log4j = _pkg(facts, "openssl"), _pkg(facts, "org.apache.logging.log4j:log4j-core")
    return [
        VulnFinding(
            "CVE-2011-3374", _pkg(facts, "bash"), advisory_ids=["DEBIAN-CVE-2011-3374"],
            installed_version="5.2.15-2+b2", status="affected", severity="LOW", severity_source="vendor:Debian",
            cvss_score=4.3, cvss_vector="AV:N/AC:M/Au:N/C:N/I:P/A:N",
            title="apt-key does not correctly validate keyring downloads",
            description="It was found that apt-key in apt, all versions, do not correctly validate gpg keys.",
            references=["https://security-tracker.debian.org/tracker/CVE-2011-3374"],
            published="2019-11-26T00:15:00Z", data_source="Debian:12",
        ),
        VulnFinding(
            "CVE-2024-35195", _pkg(facts, "requests", VENV2), advisory_ids=["GHSA-9wx4-h78v-vm56"],
            aliases=["GHSA-9wx4-h78v-vm56", "PYSEC-2024-0001"], installed_version="2.31.0", fixed_versions=["2.32.0"],
            severity="HIGH", severity_source="vendor:GitHub", cvss_score=5.6,
            cvss_vector="CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N", title=HTML_TITLE,
            description="Requests `Session` objects keep verify=False.\n\n<img src=x onerror=alert(1)>",
            references=["https://github.com/psf/requests/security/advisories/GHSA-9wx4-h78v-vm56",
                        "https://example.com/a b", "not a url"],
            published="2024-05-20T20:15:00Z", modified="2024-06-10T18:15:00Z", data_source="PyPI",
        ),
        VulnFinding(
            "CVE-2024-35195", _pkg(facts, "requests", VENV1), advisory_ids=["GHSA-9wx4-h78v-vm56"],
            aliases=["GHSA-9wx4-h78v-vm56"], installed_version="2.31.0", fixed_versions=["2.32.0"],
            severity="HIGH", severity_source="vendor:GitHub", cvss_score=5.6,
            cvss_vector="CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N", title=HTML_TITLE,
            references=["https://github.com/psf/requests/security/advisories/GHSA-9wx4-h78v-vm56"],
            published="2024-05-20T20:15:00Z", data_source="PyPI",
        ),
        VulnFinding(
            "CVE-2023-45288", _pkg(facts, "stdlib"), advisory_ids=["GO-2024-2687"], installed_version="1.21.5",
            fixed_versions=["1.21.9", "1.22.2"], severity="UNKNOWN", title="net/http: memory exhaustion",
            references=["https://go.dev/issue/65051"], published="2024-04-03T21:05:00Z", data_source="Go",
        ),
        VulnFinding(
            "CVE-2021-45046", log4j, advisory_ids=["GHSA-7rjr-3q55-vv33"], installed_version="2.17.1",
            fixed_versions=["2.17.2"], severity="CRITICAL", severity_source="cvss:3.1", cvss_score=9.0,
            cvss_vector="CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", title="Incomplete fix for Apache Log4j",
            references=["https://logging.apache.org/log4j/2.x/security.html"], data_source="Maven",
        ),
        VulnFinding(
            "CVE-2022-0001", _pkg(facts, MARKUP_NAME), advisory_ids=["GHSA-xxxx-yyyy-zzzz"], installed_version="0.0.1",
            fixed_versions=["0.0.2"], severity="MEDIUM", severity_source="cvss:3.1", cvss_score=5.3,
            cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", title=MARKUP_TITLE,
            references=["https://example.com/advisory?id=1&x=[y]#frag#more"], data_source="npm",
        ),
        VulnFinding(
            "CVE-2023-5678", openssl, advisory_ids=["DSA-5600-1"], aliases=["DSA-5600-1"],
            installed_version="3.0.11-1~deb12u2", fixed_versions=["3.0.13-1~deb12u1"], severity="CRITICAL",
            severity_source="cvss:3.1", cvss_score=9.8, cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            title="OpenSSL: excessive time spent in DH check / generation with large Q parameter value",
            description="Generating excessively long X9.42 DH keys may be very slow.",
            references=["https://security-tracker.debian.org/tracker/CVE-2023-5678",
                        "https://www.openssl.org/news/secadv/20231106.txt"],
            published="2023-11-06T16:15:00Z", modified="2024-02-01T00:00:00Z", data_source="Debian:12", kev=True,
        ),
        VulnFinding(
            "CVE-2024-6666", _pkg(facts, ESCAPE_NAME), advisory_ids=["GHSA-6666-6666-6666"], installed_version="6.6.6",
            status="affected", severity="HIGH", severity_source="cvss:3.1", cvss_score=7.5,
            cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", title=ESCAPE_TITLE, data_source="npm",
        ),
    ]


def sample_report() -> ScanReport:
    facts = sample_facts()
    openssl = _pkg(facts, "openssl")
    ignored = [
        IgnoredFinding(
            VulnFinding("CVE-2024-0727", openssl, installed_version="3.0.11-1~deb12u2",
                        fixed_versions=["3.0.13-1~deb12u1"], severity="LOW", title="PKCS12 NULL dereference",
                        data_source="Debian:12"),
            reason="no PKCS12 parsing in this image", expires="2099-12-31",
        ),
        IgnoredFinding(
            VulnFinding("CVE-2023-9999", _pkg(facts, "six"), installed_version="1.16.0", severity="CRITICAL",
                        data_source="PyPI"),
            reason="",
        ),
    ]
    return ScanReport(
        facts=facts,
        vulnerabilities=sample_findings(facts),
        ignored=ignored,
        database=DatabaseInfo(
            schema_version=1, built_at="2024-05-01T10:00:00Z", updated_at=DB_UPDATED,
            sources=["osv:Debian", "osv:PyPI"], counts={"PyPI": 10, "Debian": 20}, path="/home/u/.cache/db.sqlite",
        ),
        scanners=["vuln"],
        notes=[
            Note("OS_NOT_CHECKED", "OS packages not checked: no vulnerability data for rocky 9"),
            Note("IGNORE_EXPIRED", "ignore entry CVE-2020-0001 expired on 2024-01-01; it no longer applies (legacy)",
                 "line 3"),
        ],
    )


def empty_report() -> ScanReport:
    return ScanReport(facts=empty_facts(), scanners=["vuln"],
                      database=DatabaseInfo(schema_version=1, built_at="", updated_at=""))


def report_tokens(report: ScanReport) -> set[str]:
    """What a table must never break: every package name, version, path and finding id (as printed, escaped), and
    each check's place."""
    from hullscan.textsafe import clean

    tokens: set[str] = set()
    for f in report.vulnerabilities:
        tokens |= {f.package.name, f.installed_version or f.package.version, f.id, *f.fixed_versions}
    for c in report.checks:
        tokens |= {c.id, f"{c.path}:{c.line}" if c.line > 0 else c.path}
    tokens |= {report.facts.reference, report.facts.manifest_digest}
    return {clean(t) for t in tokens if t}


def assert_fits(text: str, width: int, tokens: set[str]) -> None:
    """Every line fits `width` unless it holds one token longer than that (it then runs past, whole); every token
    is whole on some line, never split across two."""
    for line in text.splitlines():
        assert len(line) <= width or " " not in line.strip(), (width, line)
    lines = text.splitlines()
    for token in tokens:
        assert any(token in line for line in lines), (width, token)
