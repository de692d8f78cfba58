"""The report page's tabs and filters, on a real scan (real OSV records) of a two-layer image whose first layer is a
known base image."""

from __future__ import annotations

import pytest

from hullscan.findings import ScanReport
from hullscan.imagebuild import write_oci_layout
from hullscan.pipeline import Engine, ScanRequest
from hullscan.service.console.reportview import TAB_KEYS, Filters, build
from tests.service.conftest import make_settings
from tests.service.console import images


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ScanReport:
    tmp = tmp_path_factory.mktemp("reportview")
    settings = make_settings(tmp, f"sqlite:///{tmp / 's.db'}")
    with Engine(settings) as engine:
        for name, image in (("base", images.base()), ("app", images.app())):  # the base first: then it is known
            write_oci_layout(tmp / name, image, "latest")
            scanned = engine.scan(ScanRequest(f"oci:{tmp / name}:latest"))
    return scanned


def names(view: object) -> list[str]:
    return sorted(f.package.name for f in view.rows)  # type: ignore[attr-defined]


def test_tabs_summary_and_origins(report: ScanReport) -> None:
    view = build(report, "vuln", Filters())
    assert [t for t in TAB_KEYS] == ["vuln", "malware", "software", "file", "baseline", "secret", "compliance",
                                     "base"]
    assert names(view) == ["express", "lodash", "lodash", "py", "pyyaml"]
    assert view.counts["vuln"] == 5 and view.counts["secret"] == 1 and view.counts["software"] == 4
    assert view.vuln_summary["CRITICAL"] == 1 and sum(view.summary.values()) >= sum(view.vuln_summary.values())
    assert report.base_image is not None and report.base_image.layers == 1
    assert {f.package.name: view.origin(f.package.layer_index) for f in view.rows} == {
        "express": "image", "lodash": "image", "py": "base", "pyyaml": "base"}
    assert [la.origin for la in view.layers] == ["base", "image"]
    assert build(report, "nonsense", Filters()).tab.key == "vuln"


def test_filters(report: ScanReport) -> None:
    def only(**kw: object) -> list[str]:
        params = {k: str(v) for k, v in kw.items() if k != "severity"}
        return names(build(report, "vuln", Filters.parse(params, kw.get("severity", []))))  # type: ignore[arg-type]

    assert only(severity=["critical"]) == ["lodash"]
    assert only(fixed="unfixed") == ["py"]  # PYSEC-2022-42969: no fixed version
    assert only(fixed="fixed") == ["express", "lodash", "lodash", "pyyaml"]
    assert only(package="LOD") == ["lodash", "lodash"]
    assert only(layer="0") == ["py", "pyyaml"]
    assert only(layer="1", severity=["CRITICAL", "MEDIUM"], fixed="fixed") == ["express", "lodash", "lodash"]
    assert only(layer="7") == [] and only(layer="x") == names(build(report, "vuln", Filters()))
    software = build(report, "software", Filters(package="express"))
    assert [p.name for p in software.rows] == ["express"]  # type: ignore[attr-defined]
    assert software.vuln_by_package[("npm", "express", "4.19.2")] == 1
    secrets = build(report, "secret", Filters(package=".env"))
    assert [c.id for c in secrets.rows] == ["github-pat"]  # type: ignore[attr-defined]
    assert build(report, "secret", Filters(layer=0)).rows == []  # the .env is in the app's layer
