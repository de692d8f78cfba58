from __future__ import annotations

import json
from typing import Any

from hullscan import __version__
from hullscan.report import json_report

from . import CONFIG, DIFF, MANIFEST, UNICODE_NAME, VENV1, VENV2, empty_facts, sample_facts


def _doc() -> dict[str, Any]:
    return json.loads(json_report.render(sample_facts()))


def test_header_and_artifact() -> None:
    doc = _doc()
    assert doc["schema"] == "hullscan/report/v1"
    assert doc["tool"] == {"name": "hullscan", "version": __version__}
    assert doc["artifact"] == {
        "reference": "registry.example.com:5000/team/app:1.4",
        "manifest_digest": MANIFEST,
        "config_digest": CONFIG,
        "platform": "linux/arm64/v8",
        "os": {"family": "debian", "version": "12", "codename": "bookworm", "name": "Debian GNU/Linux 12 (bookworm)"},
    }


def test_layers() -> None:
    layers = _doc()["layers"]
    assert [la["index"] for la in layers] == [0, 1, 2]
    assert layers[1] == {
        "index": 1,
        "diff_id": DIFF[1],
        "digest": "sha256:" + "b" * 64,
        "size": 2000,
        "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
        "created_by": "RUN /bin/sh -c apt-get update && apt-get install -y openssl # buildkit",
    }


def test_every_package_with_every_field() -> None:
    facts = sample_facts()
    packages = _doc()["packages"]
    assert len(packages) == len(facts.packages)
    by_key = {(p["ecosystem"], p["name"], p["path"]): p for p in packages}
    assert len(by_key) == len(packages)
    for pkg in facts.packages:
        got = by_key[(pkg.ecosystem, pkg.name, pkg.path)]
        assert got["version"] == pkg.version
        assert got["purl"] == pkg.purl
        assert got["licenses"] == pkg.licenses
        assert got["source_name"] == pkg.source_name
        assert got["source_version"] == pkg.source_version
        assert got["arch"] == pkg.arch
        assert got["epoch"] == pkg.epoch
        assert got["release"] == pkg.release
        assert got["vendor"] == pkg.vendor
        assert got["layer"]["diff_id"] == pkg.layer_diff_id
        assert got["layer"]["created_by"] == pkg.layer_created_by
        assert got["layer"]["index"] == (pkg.layer_index if pkg.layer_index >= 0 else None)
        assert got["evidence"] == {"path": pkg.path, "method": pkg.method}
        assert (got["cpe"], got["dev"]) == (pkg.cpe, pkg.dev)
        assert set(got) == {
            "name", "version", "ecosystem", "purl", "licenses", "path", "source_name", "source_version",
            "arch", "epoch", "release", "vendor", "cpe", "dev", "evidence", "layer",
        }


def test_awkward_values_survive() -> None:
    packages = _doc()["packages"]
    glibc = next(p for p in packages if p["name"] == "glibc")
    assert glibc["epoch"] == 2 and glibc["release"] == "60.el9" and glibc["licenses"] == ["GPLv2+ and weird"]
    assert glibc["layer"] == {"index": 0, "diff_id": DIFF[0], "created_by": "/bin/sh -c #(nop) ADD file:0a1b in / "}
    stdlib = next(p for p in packages if p["name"] == "stdlib")
    assert stdlib["layer"]["index"] is None
    assert [p["path"] for p in packages if p["name"] == "requests"] == [VENV1, VENV2]
    assert any(p["name"] == "@angular/core" for p in packages)
    text = json_report.render(sample_facts())
    assert UNICODE_NAME in text  # not \u-escaped
    assert "<script>alert(1)</script>" in text


def test_packages_sorted_by_ecosystem_name_version_path() -> None:
    packages = _doc()["packages"]
    keys = [(p["ecosystem"], p["name"], p["version"], p["path"]) for p in packages]
    assert keys == sorted(keys)
    assert keys[0][0] == "apk" and keys[-1][0] == "rpm"


def test_notes_and_summary() -> None:
    doc = _doc()
    assert doc["notes"][0] == {
        "code": "layer.too_big",
        "message": "layer 2 exceeds the size cap; files after 10 GB were skipped",
        "path": "",
        "layer": 2,
    }
    assert doc["notes"][2]["layer"] is None
    assert doc["summary"] == {
        "packages": 17,
        "by_ecosystem": {"apk": 1, "deb": 2, "golang": 2, "maven": 1, "npm": 4, "pypi": 5, "rpm": 2},
    }


def test_to_dict_matches_render_and_is_stable() -> None:
    facts = sample_facts()
    assert json.loads(json_report.render(facts)) == json_report.to_dict(facts)
    assert json_report.render(facts) == json_report.render(sample_facts())
    # the input order does not matter
    facts.packages.reverse()
    assert json_report.render(facts) == json_report.render(sample_facts())


def test_empty_image() -> None:
    doc = json.loads(json_report.render(empty_facts()))
    assert doc["artifact"]["os"] is None
    assert doc["artifact"]["manifest_digest"] == ""
    assert doc["packages"] == [] and doc["layers"] == [] and doc["notes"] == []
    assert doc["summary"] == {"packages": 0, "by_ecosystem": {}}
