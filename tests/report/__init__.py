"""Shared, hand-built ImageFacts for the renderer tests."""

from __future__ import annotations

from packageurl import PackageURL

from hullscan.model import Descriptor, ImageFacts, LayerInfo, Note, OSInfo, Package, Platform

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
