"""Base image identification: annotations, the catalogue's longest proper prefix, recommendations, origins."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.checks.baseimage import (
    ANNOTATION_BASE_DIGEST,
    ANNOTATION_BASE_NAME,
    BaseCatalogue,
    BaseImageDetector,
    CatalogueEntry,
    finding_origin,
    repository_and_tag,
    split_by_base,
)
from hullscan.cli import app
from hullscan.detectors import DetectContext
from hullscan.findings import BaseImage, CheckFinding, ScanReport, VulnFinding
from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout
from hullscan.model import ImageFacts, Package
from hullscan.scan import Scanner, ScanOptions
from hullscan.scanstore import ScanStore, StoredScan

OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'


def _layer(*files: tuple[str, str], by: str = "") -> Layer:
    return Layer(layer_tar(list(files)), created_by=by)


BASE = [_layer(("etc/os-release", OS_RELEASE), ("bin/sh", "shell"), by="ADD rootfs.tar /"),
        _layer(("etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main"), by="RUN apt-get update")]
MID = [*BASE, _layer(("usr/bin/python3", "python"), by="RUN apt-get install -y python3")]
APP = _layer(("app/main.py", "print('hi')"), by="COPY app /app")
APP2 = _layer(("app/server.py", "serve()"), by="COPY server /app")


class Images:
    """Builds OCI layouts and scans them with the real pipeline into a scan store in tmp."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scanner = Scanner(ScanOptions(cache_dir=root / "cache"))
        self.store = ScanStore(root / "scans")
        self.catalogue = BaseCatalogue(root / "catalogue.json")

    def layout(self, name: str, layers: list[Layer], *, created: str = "2024-01-01T00:00:00Z",
               annotations: dict[str, str] | None = None) -> str:
        image = Image(layers, config_extra={"created": created}, annotations=annotations or {})
        write_oci_layout(self.root / name, image, tag="t")
        return f"oci:{self.root / name}:t"

    def scan(self, target: str, *, remember: bool = True, findings: int | None = None) -> ImageFacts:
        facts = self.scanner.scan(target)
        if remember:
            keys = [f"CVE-{i}|deb|p|1|" for i in range(findings or 0)]
            self.store.save(StoredScan(ScanStore.key_for(facts), facts, keys,
                                       "2026-11-01T00:00:00+00:00" if findings is not None else "", ""))
        return facts

    def detector(self) -> BaseImageDetector:
        return BaseImageDetector(self.catalogue, self.store)


@pytest.fixture
def images(tmp_path: Path) -> Images:
    return Images(tmp_path)


def test_catalogue_prefix_from_stored_scans(images: Images) -> None:
    base = images.scan(images.layout("base", BASE))
    derived = images.scan(images.layout("derived", [*BASE, APP]))
    found = images.detector().identify(derived, DetectContext())
    assert found is not None
    assert found.method == "catalogue" and found.layers == 2
    assert found.name == base.reference and found.digest == base.manifest_digest
    assert found.recommendation == ""


def test_longest_prefix_wins(images: Images) -> None:
    images.scan(images.layout("base", BASE))
    mid = images.scan(images.layout("mid", MID))
    on_mid = images.scan(images.layout("on-mid", [*MID, APP]), remember=False)
    on_base = images.scan(images.layout("on-base", [*BASE, APP2]), remember=False)
    det = images.detector()
    found = det.identify(on_mid)
    assert found is not None and found.name == mid.reference and found.layers == 3
    found = det.identify(on_base)
    assert found is not None and found.layers == 2  # mid shares only two layers with it: not a prefix


def test_same_image_is_not_its_own_base(images: Images) -> None:
    target = images.layout("base", BASE)
    base = images.scan(target)
    # the same image under another name (same chain) is no base either
    images.catalogue.add(CatalogueEntry.from_facts(base, name="registry.example/debian:12"))
    assert images.detector().identify(base) is None
    # ... and the only other image has a longer chain
    images.scan(images.layout("derived", [*BASE, APP]))
    assert images.detector().identify(base) is None


def test_catalogue_entry_preferred_over_a_scan_of_the_same_chain(images: Images) -> None:
    base = images.scan(images.layout("base", BASE))
    images.catalogue.add(CatalogueEntry.from_facts(base, name="docker.io/library/debian:12"))
    derived = images.scan(images.layout("derived", [*BASE, APP]), remember=False)
    found = images.detector().identify(derived)
    assert found is not None and found.name == "docker.io/library/debian:12" and found.method == "catalogue"


def test_base_by_annotation(images: Images) -> None:
    base = images.scan(images.layout("base", BASE))
    ann = {ANNOTATION_BASE_NAME: "docker.io/library/debian:12", ANNOTATION_BASE_DIGEST: base.manifest_digest}
    derived = images.scan(images.layout("derived", [*BASE, APP], annotations=ann), remember=False)
    assert derived.annotations == ann  # carried from the manifest into the facts
    found = images.detector().identify(derived)
    assert found == BaseImage(name="docker.io/library/debian:12", digest=base.manifest_digest,
                              method="annotation", layers=2)


def test_annotation_for_an_unknown_base(images: Images) -> None:
    ann = {ANNOTATION_BASE_NAME: "registry.example/corp/base:7"}
    derived = images.scan(images.layout("derived", [*BASE, APP], annotations=ann), remember=False)
    found = images.detector().identify(derived)
    assert found is not None and found.method == "annotation"
    assert found.name == "registry.example/corp/base:7" and found.layers == 0  # layer count unknown


def test_annotations_survive_the_scan_store(images: Images) -> None:
    ann = {ANNOTATION_BASE_NAME: "docker.io/library/debian:12"}
    images.scan(images.layout("derived", [*BASE, APP], annotations=ann))
    (stored,) = list(images.store.all())
    assert stored.facts.annotations == ann


def test_no_base_without_catalogue(images: Images) -> None:
    derived = images.scan(images.layout("derived", [*BASE, APP]), remember=False)
    assert images.detector().identify(derived) is None
    assert images.detector().detect(derived) == []


def _variant(tag_layer: str) -> list[Layer]:
    return [_layer(("etc/os-release", OS_RELEASE), ("etc/debian_version", tag_layer), by="ADD rootfs.tar /")]


def test_recommends_newer_tag_with_fewer_findings(images: Images) -> None:
    old_layers = _variant("12.1")
    old = images.scan(images.layout("d121", old_layers, created="2024-01-01T00:00:00Z"), remember=False)
    cat = images.catalogue
    cat.add(CatalogueEntry.from_facts(old, name="registry.example/debian:12.1", findings=10))
    for tag, created, findings in [("12.5", "2025-01-01T00:00:00Z", 3), ("12.6", "2025-06-01T00:00:00Z", 5),
                                   ("12.0", "2023-06-10T00:00:00Z", 1)]:  # older: never recommended
        f = images.scan(images.layout(f"d{tag}", _variant(tag), created=created), remember=False)
        cat.add(CatalogueEntry.from_facts(f, name=f"registry.example/debian:{tag}", findings=findings))
    other = images.scan(images.layout("ubuntu", _variant("u"), created="2026-01-01T00:00:00Z"), remember=False)
    cat.add(CatalogueEntry.from_facts(other, name="registry.example/ubuntu:24.04", findings=0))

    derived = images.scan(images.layout("app", [*old_layers, APP]), remember=False)
    report = ScanReport(facts=derived)
    images.detector().apply(report, DetectContext())
    base = report.base_image
    assert base is not None and base.name == "registry.example/debian:12.1" and base.layers == 1
    assert base.recommendation.startswith("registry.example/debian:12.5 (created 2025-01-01): 3 vulnerabilities "
                                          "against 10")
    (finding,) = report.checks
    assert (finding.item, finding.id, finding.severity) == ("base", "base-update-available", "LOW")
    assert finding.metadata["recommended"] == "registry.example/debian:12.5"
    assert "base" in report.scanners


def test_no_recommendation_without_fewer_findings_or_counts(images: Images) -> None:
    old_layers = _variant("12.1")
    old = images.scan(images.layout("d121", old_layers), remember=False)
    newer = images.scan(images.layout("d125", _variant("12.5"), created="2025-01-01T00:00:00Z"), remember=False)
    images.catalogue.add(CatalogueEntry.from_facts(old, name="registry.example/debian:12.1", findings=2))
    images.catalogue.add(CatalogueEntry.from_facts(newer, name="registry.example/debian:12.5", findings=2))
    derived = images.scan(images.layout("app", [*old_layers, APP]), remember=False)
    base = images.detector().identify(derived)
    assert base is not None and base.recommendation == ""
    # the base's own count unknown: nothing to compare
    images.catalogue.add(CatalogueEntry.from_facts(old, name="registry.example/debian:12.1", findings=None))
    images.catalogue.add(CatalogueEntry.from_facts(newer, name="registry.example/debian:12.5", findings=0))
    base = images.detector().identify(derived)
    assert base is not None and base.recommendation == ""


def _merge_layouts(dest: Path, *sources: Path) -> Path:
    """One OCI layout holding several tags of one repository (so their references share the repository)."""
    import shutil

    manifests = []
    for src in sources:
        shutil.copytree(src / "blobs", dest / "blobs", dirs_exist_ok=True)
        manifests += json.loads((src / "index.json").read_text())["manifests"]
    shutil.copy(sources[0] / "oci-layout", dest / "oci-layout")
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return dest


def test_recommendation_from_stored_scan_counts(images: Images, tmp_path: Path) -> None:
    old_layers = _variant("12.1")
    write_oci_layout(tmp_path / "a", Image(old_layers), tag="12.1")
    write_oci_layout(tmp_path / "b", Image(_variant("12.5"), config_extra={"created": "2025-01-01T00:00:00Z"}),
                     tag="12.5")
    repo = _merge_layouts(tmp_path / "debian", tmp_path / "a", tmp_path / "b")
    images.scan(f"oci:{repo}:12.1", findings=4)
    images.scan(f"oci:{repo}:12.5", findings=1)
    derived = images.scan(images.layout("app", [*old_layers, APP]), remember=False)
    base = images.detector().identify(derived)
    assert base is not None and base.name == f"{repo}:12.1"
    assert base.recommendation.startswith(f"{repo}:12.5 (created 2025-01-01): 1 vulnerabilities against 4")


def test_split_by_base() -> None:
    def vuln(layer: int, sev: str) -> VulnFinding:
        return VulnFinding(id="CVE-1", package=Package("p", "1", "deb", layer_index=layer), severity=sev)

    def check(layer: int, item: str = "secret") -> CheckFinding:
        return CheckFinding(item=item, id="x", title="x", severity="MEDIUM", layer_index=layer)

    report = ScanReport(facts=ImageFacts(reference="x"),
                        vulnerabilities=[vuln(0, "HIGH"), vuln(1, "LOW"), vuln(2, "CRITICAL"), vuln(-1, "LOW")],
                        checks=[check(0), check(3), check(-1), check(-1, item="base")],
                        base_image=BaseImage("debian:12", layers=2))
    split = split_by_base(report)
    assert (split.base.vulnerabilities, split.base.checks) == (2, 1)
    assert (split.image.vulnerabilities, split.image.checks) == (1, 1)
    assert (split.unknown.vulnerabilities, split.unknown.checks) == (1, 1)
    assert split.base.by_severity["HIGH"] == 1 and split.image.by_severity["CRITICAL"] == 1
    assert finding_origin(1, report.base_image) == "base"
    assert finding_origin(2, report.base_image) == "image"
    assert finding_origin(0, None) == "unknown"
    assert finding_origin(0, BaseImage("x", layers=0)) == "unknown"


def test_repository_and_tag() -> None:
    assert repository_and_tag("debian:12") == ("docker.io/library/debian", "12")
    assert repository_and_tag("registry.example:5000/a/b") == ("registry.example:5000/a/b", "latest")
    assert repository_and_tag("oci:/tmp/x y:t") == ("oci:/tmp/x y", "t")


def test_cli_add_list_remove(images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULLSCAN_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    target = images.layout("base", BASE)
    cat = tmp_path / "cat.json"
    common = ["--catalogue", str(cat)]
    result = runner.invoke(app, ["base", "add", target, "--name", "docker.io/library/debian:12", "--cache-dir",
                                 str(tmp_path / "cache"), "--db", str(tmp_path / "missing.db"), *common])
    assert result.exit_code == 0, result.output
    assert "added docker.io/library/debian:12 (2 layers)" in result.output
    assert "no vulnerability database" in result.output
    listed = runner.invoke(app, ["base", "list", "--json", *common])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)
    assert entry["repository"] == "docker.io/library/debian" and entry["tag"] == "12"
    assert len(entry["diff_ids"]) == 2 and entry["created"] == "2024-01-01T00:00:00Z" and entry["findings"] is None
    table = runner.invoke(app, ["base", "list", *common])
    assert "docker.io/library/debian:12" in table.stdout

    derived = images.scan(images.layout("derived", [*BASE, APP]), remember=False)
    found = BaseImageDetector(BaseCatalogue(cat)).identify(derived, DetectContext())
    assert found is not None and found.name == "docker.io/library/debian:12"

    removed = runner.invoke(app, ["base", "remove", "debian:12", *common])  # the familiar form matches too
    assert removed.exit_code == 0 and "removed docker.io/library/debian:12" in removed.stdout
    again = runner.invoke(app, ["base", "remove", "debian:12", *common])
    assert again.exit_code == 1
    empty = runner.invoke(app, ["base", "list", *common])
    assert "empty" in empty.stdout


def test_cli_add_rejects_a_root_filesystem(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(OS_RELEASE)
    result = CliRunner().invoke(app, ["base", "add", f"dir:{root}", "--no-vulns", "--catalogue",
                                      str(tmp_path / "c.json"), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2 and "no layer chain" in result.output


def test_broken_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    from hullscan.checks.baseimage import CatalogueError

    with pytest.raises(CatalogueError, match=str(path)):
        BaseCatalogue(path).entries()


def test_created_dates_compare_across_formats() -> None:
    e = CatalogueEntry("a", ["sha256:1"], created="2024-01-01T00:00:00.123456789Z")  # Docker writes nanoseconds
    assert e.created_at == dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    assert CatalogueEntry("a", [], created="yesterday").created_at is None
    assert CatalogueEntry("a", [], created="2024-01-01T00:00:00+00:00").created_at == dt.datetime(
        2024, 1, 1, tzinfo=dt.UTC)
