"""Real binaries for the binary classifiers' tests: Debian packages, fetched with the machine's own apt sources.

`apt-get download` brings the .deb files (no host is named here: apt uses the machine's configured sources),
`dpkg-deb -x` unpacks one, `dpkg --root` installs several into a root filesystem with a real status database.
The download directory is kept across runs when HULLSCAN_TEST_DEB_CACHE names one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hullscan.analyzers import default_analyzers
from hullscan.layers.merge import merge
from hullscan.layers.walker import LayerWalker
from hullscan.model import Descriptor, ImageFacts, LayerInfo
from hullscan.oci.source import Limits


class Debs:
    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def deb(self, package: str) -> Path:
        found = sorted(self.cache.glob(f"{package}_*.deb"))
        if not found:
            try:
                subprocess.run(["apt-get", "download", "-q", package], cwd=self.cache, check=True,
                               capture_output=True, timeout=600)
            except (OSError, subprocess.SubprocessError) as exc:
                pytest.skip(f"cannot download the Debian package {package}: {exc}")
            found = sorted(self.cache.glob(f"{package}_*.deb"))
        return found[-1]

    def version(self, package: str) -> str:
        out = subprocess.run(["dpkg-deb", "-f", str(self.deb(package)), "Version"], check=True,
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def upstream_version(self, package: str) -> str:
        """The upstream version a Debian version packages: "5:7.0.15-1~deb12u10" -> "7.0.15",
        "1.5.4+dfsg2-5" -> "1.5.4", "3.1.7+really3.1.2-0+deb12u1" -> "3.1.2"."""
        version = self.version(package).split(":", 1)[-1].rsplit("-", 1)[0]
        version = version.split("+really", 1)[-1]
        m = re.match(r"\d+(?:\.\d+)*(?:p\d+)?", version)  # OpenSSH's portable releases: "9.2p1"
        assert m, version
        return m.group(0)

    def unpack(self, package: str) -> Path:
        target = self.cache / "unpacked" / package
        if not target.exists():
            tmp = target.with_suffix(".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(self.deb(package)), str(tmp)], check=True, timeout=600)
            tmp.rename(target)
        return target

    def install(self, root: Path, packages: list[str]) -> None:
        """Install into `root` with the real dpkg: status database, info/*.list and the files themselves."""
        admin = root / "var/lib/dpkg"
        (admin / "info").mkdir(parents=True, exist_ok=True)
        (admin / "updates").mkdir(exist_ok=True)
        for name in ("status", "available"):
            (admin / name).touch()
        subprocess.run(["dpkg", f"--root={root}", "--force-depends", "--force-script-chrootless", "--no-triggers",
                        "--force-not-root", "-i", *[str(self.deb(p)) for p in packages]],
                       check=True, capture_output=True, timeout=600)


def scan_root(root: Path, work: Path) -> ImageFacts:
    """What a scan reports for a root filesystem: every analyzer, walked and merged as one layer."""
    facts = LayerWalker(default_analyzers(), Limits(), work).walk_dir(root)
    info = LayerInfo(0, Descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:" + "0" * 64, 0), "")
    return merge("rootfs", [info], [facts])


def copy_file(src: Path, root: Path, path: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, target)
