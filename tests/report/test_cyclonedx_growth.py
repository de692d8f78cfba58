"""CycloneDX output grows linearly with the image (issue 8, item 7's left-over: the library's outputter was
quadratic in components and dependencies). Measured by counting Python function calls, which is deterministic,
never by the clock."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable

from hullscan.findings import ScanReport, VulnFinding
from hullscan.model import ImageFacts, OSInfo, Package
from hullscan.report import cyclonedx

SIZES = (50, 100, 200, 400)  # packages, each twice the one before
# Python calls for each doubling, relative to the doubling before: 2 for linear work, 4 for quadratic. The
# library's outputter measured 2.5 at these sizes.
MAX_STEP = 2.25


def _facts(n: int) -> ImageFacts:
    packages = [Package(f"pkg{i}", "1.0", "pypi", path=f"/usr/lib/python3/dist-packages/pkg{i}/METADATA",
                        purl=f"pkg:pypi/pkg{i}@1.0", licenses=["MIT"]) for i in range(n)]
    return ImageFacts(reference="registry.example.com/app:1", manifest_digest="sha256:" + "a" * 64,
                      os=OSInfo("debian", "12", "bookworm"), packages=packages)


def _report(n: int) -> ScanReport:
    facts = _facts(n)
    findings = [VulnFinding(f"CVE-2024-{i:04d}", pkg, installed_version="1.0", fixed_versions=["1.1"],
                            severity="HIGH", data_source="PyPI") for i, pkg in enumerate(facts.packages)]
    return ScanReport(facts=facts, vulnerabilities=findings, scanners=["vuln"])


def _calls(fn: Callable[[int], object], n: int) -> int:
    """How many Python and C function calls `fn(n)` makes (cProfile's count: deterministic, unlike the clock)."""
    profiler = cProfile.Profile()
    profiler.runcall(fn, n)
    return sum(calls for calls, *_ in pstats.Stats(profiler).stats.values())  # type: ignore[attr-defined]


def _growth(render: Callable[[int], str]) -> list[float]:
    """For each size, Python calls made building and writing the document; then how each step grew against the
    one before."""
    render(SIZES[0])  # caches filled once per process (licence ids, purls) do not count
    written = [_calls(render, n) for n in SIZES]
    steps = [b - a for a, b in zip(written, written[1:], strict=False)]
    return [b / a for a, b in zip(steps, steps[1:], strict=False)]


def test_output_grows_linearly_with_packages_and_findings() -> None:
    # The scan report's document holds the inventory's (`hullscan sbom`) and the vulnerabilities.
    growth = _growth(lambda n: cyclonedx.render_report(_report(n), deterministic=True))
    assert max(growth) < MAX_STEP, growth
    growth = _growth(lambda n: cyclonedx.render(_facts(n), deterministic=True))
    assert max(growth) < MAX_STEP, growth


def test_every_package_and_finding_is_written() -> None:
    doc = cyclonedx.render_report(_report(SIZES[0]), deterministic=True)
    assert doc.count('"type": "library"') == SIZES[0] and doc.count('"id": "CVE-2024-') == SIZES[0]
    assert cyclonedx.render(_facts(SIZES[0]), deterministic=True).count('"type": "library"') == SIZES[0]
