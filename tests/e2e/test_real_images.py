"""Real images, checked against the package managers' own view of them.

A Debian bookworm root filesystem from debootstrap, old PyPI releases installed by pip and old npm
releases installed by npm are layered with umoci (which writes the whiteouts for deleted files),
pushed to the real registry with skopeo and scanned with the hullscan CLI. The reference answers
come from dpkg-query, importlib.metadata and `npm ls`, run on the final root filesystem.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.slow

MIRROR = os.environ.get("HULLSCAN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SITE = "usr/local/lib/python3.11/site-packages"
PYPI_OLD = ["requests==2.19.0", "urllib3==1.24.1", "Django==2.2", "PyYAML==6.0.1", "Jinja2==2.11.2",
            "MarkupSafe==2.1.2", "idna==2.7", "chardet==3.0.4", "certifi==2018.4.16", "six==1.11.0"]
NPM_OLD = ["lodash@4.17.15", "minimist@1.2.0", "express@4.16.0", "handlebars@4.0.11"]


PIP = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
       "--python-version", "3.11", "--platform", "manylinux2014_x86_64"]


def _repack(layout: Path, bundle: Path, created_by: str) -> None:
    _run(["umoci", "repack", "--refresh-bundle", "--image", f"{layout}:real", "--history.created_by", created_by,
          str(bundle)])


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1500, **kw)  # type: ignore[call-overload, no-any-return]


def _rootfs(cache: Path) -> Path:
    root = cache / "bookworm"
    if (root / "var/lib/dpkg/status").exists():
        return root
    tmp = cache / "bookworm.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    _run(["debootstrap", "--variant=minbase", "bookworm", str(tmp), MIRROR])
    tmp.rename(root)
    return root


@pytest.fixture(scope="session")
def real_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(OCI layout with tag 'real', final root filesystem) — three layers built by umoci."""
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap (make test installs it)")
    cache = Path(os.environ.get("HULLSCAN_TEST_ROOTFS_CACHE", tmp_path_factory.mktemp("rootfs-cache")))
    cache.mkdir(parents=True, exist_ok=True)
    base = _rootfs(cache)
    work = tmp_path_factory.mktemp("real-image")
    layout, bundle = work / "layout", work / "bundle"
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", f"{layout}:real"])
    _run(["umoci", "unpack", "--image", f"{layout}:real", str(bundle)])
    rootfs = bundle / "rootfs"
    _run(["cp", "-a", f"{base}/.", str(rootfs)])
    _repack(layout, bundle, "debootstrap bookworm")
    # Layer 2: old PyPI releases and old npm releases.
    _run([*PIP, "--target", str(rootfs / SITE), *PYPI_OLD])
    app_dir = rootfs / "srv/app"
    app_dir.mkdir(parents=True)
    (app_dir / "package.json").write_text('{"name": "real-app", "version": "1.0.0", "private": true}')
    _run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(app_dir), *NPM_OLD])
    _repack(layout, bundle, "pip + npm install")
    # Layer 3: upgrade one package, delete another: umoci records the deletions as whiteouts.
    shutil.rmtree(rootfs / SITE / "six-1.11.0.dist-info")
    shutil.rmtree(rootfs / SITE / "urllib3-1.24.1.dist-info")
    _run([*PIP, "--target", str(work / "up"), "urllib3==1.26.5"])
    shutil.copytree(work / "up" / "urllib3-1.26.5.dist-info", rootfs / SITE / "urllib3-1.26.5.dist-info")
    _repack(layout, bundle, "pip upgrade")
    return layout, rootfs


def _dpkg_reference(rootfs: Path) -> set[tuple[str, str]]:
    fmt = "${db:Status-Abbrev}\t${Package}\t${Version}\n"
    out = _run(["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W", "-f", fmt])
    return {(name, version) for status, name, version in (line.split("\t") for line in out.stdout.splitlines())
            if status.startswith("ii")}


def _pypi_reference(rootfs: Path) -> set[tuple[str, str]]:
    dists = importlib.metadata.distributions(path=[str(rootfs / SITE)])
    return {(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(), d.version) for d in dists}


def _npm_reference(app_dir: Path) -> set[tuple[str, str]]:
    proc = subprocess.run(["npm", "ls", "--all", "--json", "--prefix", str(app_dir)], capture_output=True,
                          text=True, timeout=300, check=False)
    found: set[tuple[str, str]] = set()

    def walk(deps: dict) -> None:  # type: ignore[type-arg]
        for name, info in deps.items():
            if "version" in info:
                found.add((name, info["version"]))
            walk(info.get("dependencies", {}))

    walk(json.loads(proc.stdout).get("dependencies", {}))
    return found


def test_inventory_matches_package_managers(real_image: tuple[Path, Path], registry: RegistryServer,
                                            tmp_path: Path) -> None:
    layout, rootfs = real_image
    registry.push(layout, "real/bookworm:1", src_tag="real")
    result = CliRunner().invoke(app, ["sbom", registry.ref("real/bookworm:1"), "-f", "json",
                                      "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    by_eco: dict[str, set[tuple[str, str]]] = {}
    layer_of: dict[tuple[str, str], int] = {}
    for p in doc["packages"]:
        by_eco.setdefault(p["ecosystem"], set()).add((p["name"], p["version"]))
        layer_of[(p["ecosystem"], p["name"])] = p["layer"]["index"]
    assert doc["artifact"]["os"]["family"] == "debian" and doc["artifact"]["os"]["version"] == "12"
    assert by_eco["deb"] == _dpkg_reference(rootfs)
    assert by_eco["pypi"] == _pypi_reference(rootfs)
    assert ("urllib3", "1.26.5") in by_eco["pypi"] and ("six", "1.11.0") not in by_eco["pypi"]
    assert layer_of[("pypi", "urllib3")] == 2 and layer_of[("pypi", "requests")] == 1
    assert by_eco["npm"] == _npm_reference(rootfs / "srv/app")
    assert all(layer_of[("deb", name)] == 0 for name, _ in by_eco["deb"])
    # Debian's licences come from machine-readable copyright files where the package has one.
    licensed = [p for p in doc["packages"] if p["ecosystem"] == "deb" and p["licenses"]]
    assert len(licensed) > len(by_eco["deb"]) // 2


def test_rootfs_directory_scan_matches_dpkg(real_image: tuple[Path, Path], tmp_path: Path) -> None:
    _, rootfs = real_image
    result = CliRunner().invoke(app, ["sbom", f"dir:{rootfs}", "-f", "json", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    debs = {(p["name"], p["version"]) for p in doc["packages"] if p["ecosystem"] == "deb"}
    assert debs == _dpkg_reference(rootfs)
