"""Images the console tests push to the real registry.

`base` and `app` carry real releases that real OSV records in tests/vulndb/data/osv name (see its PROVENANCE.md):
lodash 4.17.11 (GHSA-jf85-cpcp-j695, critical; GHSA-29mw-wpgm-hmr9, moderate), express 4.19.2
(GHSA-qw6h-vgh9-j6wx, moderate, fixed in 4.20.0), PyYAML 5.3 (PYSEC-2020-96, fixed in 5.3.1) and py 1.10.0
(PYSEC-2022-42969, no fix). `app` is `base` plus one layer, so once `base` has been scanned the service knows it as
app's base image and splits findings by origin.

`hostile` is an image whose names try to become markup: a Python package named `<script>...`, versions and
licences that close attributes, an npm package named `"><svg onload=...>`, a secret in a directory named
`"><img src=x onerror=...>`, a Python package whose name would set `window.hullscanpwned`, a setuid file named
`<svg onload=...>`, and strings thousands of characters long. Every other marker calls alert(): a console page that
ran any of them would open a dialog.
"""

from __future__ import annotations

import json

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar

SITE = "usr/local/lib/python3.11/site-packages"
# Shaped like a GitHub token, made up: the secret item must find it and the console show it redacted.
GHP = "ghp_" + "q1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8"
LONG = "L" * 3000
XSS_NAME = '<script>alert("pkg")</script>'
XSS_VERSION = '1.0"><img src=x onerror=alert("version")>'
XSS_LICENCE = "<b onmouseover=alert('licence')>MIT</b>"
XSS_NPM = "\"><svg onload=alert('npm')>"
XSS_DIR = "\"><img src=x onerror=alert('path')>"
XSS_SETUID = "<svg onload=alert('setuid')>"
# A script that ran leaves window.hullscanpwned behind (no "." or "_": PyPI names are normalised, PEP 503).
XSS_CANARY = "<img src=x onerror=hullscanpwned=1>"
HOSTILE_STRINGS = (XSS_NAME, XSS_VERSION, XSS_LICENCE, XSS_NPM, XSS_DIR, XSS_SETUID, XSS_CANARY)


def dist_info(name: str, version: str, licence: str = "") -> tuple[str, str]:
    extra = f"License: {licence}\n" if licence else ""
    return (f"{SITE}/{name}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}")


def npm(name: str, version: str, licence: str = "MIT") -> tuple[str, str]:
    return (f"app/node_modules/{name}/package.json", json.dumps({"name": name, "version": version,
                                                                 "license": licence}))


def _base_layer() -> Layer:
    return Layer(layer_tar([
        FileSpec("etc", type="d"), ("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
        dist_info("PyYAML", "5.3", "MIT"), dist_info("py", "1.10.0", "MIT"),
    ]), created_by="ADD rootfs and Python packages")


def base() -> Image:
    return Image([_base_layer()])


def app(express: str = "4.19.2") -> Image:
    """base + the application: npm packages and a .env file holding a token."""
    return Image([_base_layer(), Layer(layer_tar([
        npm("lodash", "4.17.11"), npm("express", express), ("srv/app/.env", f"GITHUB_TOKEN={GHP}\n"),
    ]), created_by="COPY app /app")])


def hostile() -> Image:
    return Image([Layer(layer_tar([
        FileSpec("etc", type="d"), ("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
        (f"{SITE}/evil-1.0.dist-info/METADATA",
         f"Metadata-Version: 2.1\nName: {XSS_NAME}\nVersion: {XSS_VERSION}\nLicense: {XSS_LICENCE}\n"),
        dist_info("PyYAML", "5.3"),
        (f"{SITE}/canary-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {XSS_CANARY}\nVersion: 1.0\n"),
        npm(XSS_NPM, "1.0.0", licence=XSS_LICENCE), npm("long-" + LONG[:200].lower(), "1.0.0-" + LONG[:500]),
        (f"srv/{XSS_DIR}/{LONG[:200]}.env", f"GITHUB_TOKEN={GHP}\n"),
        FileSpec(f"usr/bin/{XSS_SETUID}", b"\x7fELF", mode=0o4755),
    ]), created_by=f"RUN echo '{XSS_NAME}' {LONG}")])
