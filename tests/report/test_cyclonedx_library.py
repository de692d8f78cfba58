"""hullscan writes CycloneDX JSON itself (the library's model cost seconds on big images); the document must be the
one cyclonedx-python-lib writes for the same BOM. Each document is read into the library's model and written again by
its own JSON outputter: any member out of the library's order, any value it would write differently, shows up as a
different text. The reports are generated from a fixed seed, with the awkward cases in them: missing versions and
purls, purls that do not parse, repeated purls, licence ids, expressions and free text mixed, every evidence method,
vendor, CVE-provider and CVSS ratings of every version, URLs the library escapes."""

from __future__ import annotations

import json
import random

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from hullscan.findings import CoverageGap, ScanReport, VulnFinding
from hullscan.model import ImageFacts, OSInfo, Package
from hullscan.report import cyclonedx

from . import sample_facts

NAMES = ["bash", "libc6", "openssl", "requests", "Flask", "a b", "ünï", "x[1]", "@scope/pkg", "z", "A"]
VERSIONS = ["", "1.0", "2.3.4-1", "1:2.0", "10", "1.0 beta"]
LICENCES = ["MIT", "mit", "Apache-2.0", "GPL-2.0+", "GPLv2+", "MIT OR Apache-2.0", "BSD", "Public Domain", "(((",
            "LGPL-2.1-or-later AND MIT", "custom licence", "ISC"]
ECOSYSTEMS = ["deb", "pypi", "npm", "apk", "rpm", "golang", "binary", "maven"]
METHODS = ["", "package-database", "lock-file", "file-name", "binary-signature", "an-unknown-method", "build-info"]
SEVERITY_SOURCES = ["", "vendor:Debian", "cvss:3.1", "CVSS:3.0", "nvd/cvss:3.1", "cna:redhat/cvss:3.1",
                    "adp:CISA-ADP/cvss:3.1", "cna:redhat/rating", "nvd/rating", "cvss:2", "cvss:4.0"]
VECTORS = ["", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N",
           "AV:N/AC:M/Au:N/C:N/I:P/A:N", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
           "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P"]
URLS = ["https://example.com/a", "https://example.com/a b", "https://e.com/{x}", "ftp://no",
        "https://e.com/'q'", "https://security-tracker.debian.org/tracker/CVE-2011-3374", "https://e.com/%zz"]


class _Reports:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def package(self) -> Package:
        r = self.r
        name, version, eco = r.choice(NAMES), r.choice(VERSIONS), r.choice(ECOSYSTEMS)
        purl = r.choice(["", f"pkg:{eco}/{name}@{version}", f"pkg:{eco}/{name}", "not a purl",
                         f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12"])
        return Package(name, version, eco, path=r.choice(["", f"usr/lib/{name}", "var/lib/dpkg/status"]), purl=purl,
                       licenses=r.sample(LICENCES, r.randint(0, 3)), source_name=r.choice(["", name + "-src"]),
                       arch=r.choice(["", "amd64"]), epoch=r.choice([None, 0, 1]), release=r.choice(["", "3.el9"]),
                       vendor=r.choice(["", "Red Hat, Inc."]), layer_index=r.randint(-1, 3),
                       layer_created_by=r.choice(["", "RUN apt-get install x"]),
                       metadata=r.choice([{}, {"dev": "true"}]), method=r.choice(METHODS),
                       cpe=r.choice(["", "cpe:2.3:a:x:y:1.0:*:*:*:*:*:*:*"]))

    def finding(self, packages: list[Package]) -> VulnFinding:
        r = self.r
        package = r.choice(packages) if packages and r.random() < 0.85 else self.package()
        vid = r.choice(["CVE-2024-0001", "CVE-2023-1234", "GHSA-xxxx-yyyy-zzzz", "DSA-1234-1"])
        return VulnFinding(
            vid, package, advisory_ids=r.sample(["DEBIAN-" + vid, "PYSEC-2024-1"], r.randint(0, 2)),
            aliases=r.sample(["CVE-2024-9999", vid], r.randint(0, 2)), installed_version=r.choice(["", "1.0"]),
            fixed_versions=r.sample(["1.1", "2.0"], r.randint(0, 2)), status=r.choice(["fixed", "affected"]),
            severity=r.choice(["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]),
            severity_source=r.choice(SEVERITY_SOURCES), cvss_score=r.choice([None, 0.0, 7.5, 9.75, 4.25, 10.0]),
            cvss_vector=r.choice(VECTORS), title=r.choice(["", "A  bug\nhere"]), description=r.choice(["", " d "]),
            references=r.sample(URLS, r.randint(0, 3)), published=r.choice(["", "2019-11-26T00:15:00Z", "junk"]),
            modified=r.choice(["", "2021-01-01T00:00:00+02:00"]), data_source=r.choice(["", "Debian:12", "PyPI"]),
            kev=r.random() < 0.2, epss=r.choice([None, 0.12345678]), epss_percentile=r.choice([None, 0.9]))

    def report(self) -> ScanReport:
        r = self.r
        packages = [self.package() for _ in range(r.randint(0, 20))]
        facts = ImageFacts(reference=r.choice(["registry.example.com/app:1", "oci:/x:y"]),
                           manifest_digest=r.choice(["", "sha256:" + "a" * 64]),
                           os=r.choice([None, OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12"),
                                        OSInfo("alpine")]), packages=packages)
        return ScanReport(facts=facts, vulnerabilities=[self.finding(packages) for _ in range(r.randint(0, 10))],
                          scanners=r.choice([["vuln"], []]),
                          unchecked=r.choice([[], [CoverageGap("Debian:12", 3, "no vulnerability data")]]))


def _as_the_library_writes_it(text: str) -> str:
    return JsonV1Dot6(Bom.from_json(json.loads(text))).output_as_string(indent=2) + "\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(4))
def test_the_document_is_the_one_the_library_writes(seed: int) -> None:
    reports = _Reports(seed)
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    for _ in range(15):
        report = reports.report()
        for text in (cyclonedx.render(report.facts, deterministic=True),
                     cyclonedx.render_report(report, deterministic=True)):
            assert _as_the_library_writes_it(text) == text
            errors = validator.validate_str(text, all_errors=True)
            assert errors is None, [str(e) for e in errors]


def test_the_sample_image_is_written_as_the_library_writes_it() -> None:
    text = cyclonedx.render(sample_facts())
    assert json.loads(text)["components"]
    assert _as_the_library_writes_it(text) == text


def test_spdx_ids_are_the_librarys() -> None:
    # hullscan reads the library's SPDX id list itself (importing cyclonedx.spdx builds a second SPDX licensing)
    from cyclonedx import spdx

    ids = sorted(cyclonedx._spdx_ids().values())
    assert len(ids) > 500 and "Apache-2.0" in ids
    for text in [*ids, *(i.upper() for i in ids[::7]), *(i.lower() for i in ids[::5]), "GPLv2+", "custom", ""]:
        assert cyclonedx.fixup_id(text) == spdx.fixup_id(text), text
