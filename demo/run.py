"""`make demo`: build a small, realistic multi-layer image by code, then scan it with hullscan.

The last layer plants one of everything the scan items look for (a fake cloud key, EICAR, a
webshell, a miner config, unsafe sshd and sudo settings, a weak password, a setuid helper).

Offline: every file comes from demo/image/ (real dpkg records and copyright files of Debian 12,
real metadata fields of old PyPI/npm/Maven releases), assembled into an OCI layout by hullscan's
own image builder. Nothing is downloaded and no image blob is checked in.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import service  # demo/service.py, beside this file
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout

HERE = Path(__file__).resolve().parent
SRC = HERE / "image"
OUT = HERE.parent / ".work" / "demo"

PYPI = {  # name, version, licence as their releases declare them
    "requests": ("2.19.0", "Apache 2.0"), "urllib3": ("1.24.1", "MIT"), "Django": ("2.2", "BSD"),
    "PyYAML": ("5.3", "MIT"), "Jinja2": ("2.10", "BSD"),
}
NPM = {"lodash": ("4.17.15", "MIT"), "minimist": ("1.2.0", "MIT"), "@babel/code-frame": ("7.0.0", "MIT")}
SITE = "usr/local/lib/python3.11/site-packages"


def dist_info(name: str, version: str, licence: str) -> list[tuple[str, str]]:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: {licence}\n"
    return [(f"{SITE}/{name}-{version}.dist-info/METADATA", meta)]


def jar(group: str, artifact: str, version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nImplementation-Version: {version}\n")
        z.writestr(f"META-INF/maven/{group}/{artifact}/pom.properties",
                   f"groupId={group}\nartifactId={artifact}\nversion={version}\n")
    return buf.getvalue()


def _fake(prefix: str, length: int, alphabet: str, seed: str) -> str:
    """A format-valid but fake credential: deterministic, so the demo is stable, and never a real one."""
    digest = hashlib.sha512(seed.encode()).digest() * 4
    return prefix + "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def planted() -> list[FileSpec | tuple[str, bytes | str]]:
    """A layer that gets wrong everything the other scan items look for."""
    from hullscan.checks.crypt import system_crypt

    upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    key_id = _fake("AKIA", 16, upper, "demo-id")
    secret = _fake("", 40, b64, "demo-secret")
    eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    shadow_hash = system_crypt().make("admin123", "$y$")
    return [
        ("srv/app/.env", f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n"),
        ("var/tmp/eicar.com", eicar),
        ("var/www/html/shell.php", "<?php if (isset($_POST['c'])) { eval($_POST['c']); } ?>\n"),
        ("opt/.cache/config.json", '{"autosave": true, "donate-level": 1, "randomx": {"mode": "fast"}, '
                                   '"pools": [{"url": "stratum+tcp://pool.invalid:3333", "user": "wallet"}]}'),
        ("etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication yes\n"),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/srv/app:/bin/sh\n"
                       "admin:x:1001:1001::/home/admin:/bin/bash\n"),
        ("etc/group", "root:x:0:\napp:x:1000:\nadmin:x:1001:\n"),
        FileSpec("etc/shadow", f"root:*:19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n"
                               f"admin:{shadow_hash}:19000:0:99999:7:::\n".encode(), mode=0o640),
        ("etc/sudoers", "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"),
        ("etc/sudoers.d/app", "app ALL=(ALL) NOPASSWD: ALL\n"),
        FileSpec("usr/local/bin/netdiag", b"#!/bin/sh\nexec ping \"$@\"\n", mode=0o4755),
        FileSpec("etc/app.conf", b"listen=0.0.0.0\n", mode=0o666),
    ]


def build() -> Path:
    base = SRC / "1-base"
    copyright_files = [(f"usr/share/doc/{p.name}/copyright", p.read_bytes()) for p in (base / "copyright").iterdir()]
    layer1 = layer_tar([FileSpec("etc", type="d"), FileSpec("usr/lib", type="d"),
                        ("usr/lib/os-release", (base / "os-release").read_bytes()),
                        FileSpec("etc/os-release", type="l", linkname="../usr/lib/os-release"),
                        ("etc/debian_version", "12.11\n"),
                        ("var/lib/dpkg/status", (base / "status").read_bytes()), *copyright_files])
    layer2 = layer_tar([("var/lib/dpkg/status", (SRC / "2-runtime" / "status").read_bytes())])
    app: list[FileSpec | tuple[str, bytes | str]] = []
    for name, (version, licence) in PYPI.items():
        app += dist_info(name, version, licence)
    for name, (version, licence) in NPM.items():
        app.append((f"srv/app/node_modules/{name}/package.json",
                    f'{{"name": "{name}", "version": "{version}", "license": "{licence}"}}'))
    app.append(("srv/app/package.json", '{"name": "demo-app", "version": "1.0.0", "private": true}'))
    app.append(("srv/app/lib/log4j-core-2.14.1.jar", jar("org.apache.logging.log4j", "log4j-core", "2.14.1")))
    layer3 = layer_tar(app)
    # A later layer upgrades urllib3 and removes Jinja2: the report shows the final state only.
    layer4 = layer_tar([FileSpec(f"{SITE}/.wh.urllib3-1.24.1.dist-info"), *dist_info("urllib3", "1.26.5", "MIT"),
                        FileSpec(f"{SITE}/.wh.Jinja2-2.10.dist-info")])
    layer5 = layer_tar(planted())
    image = Image([
        Layer(layer1, "ADD rootfs.tar.xz / # debian:12"),
        Layer(layer2, "RUN apt-get install -y curl python3.11"),
        Layer(layer3, "COPY app /srv/app && pip install -r requirements.txt", compression="zstd"),
        Layer(layer4, "RUN pip install urllib3==1.26.5 && pip uninstall -y Jinja2"),
        Layer(layer5, "RUN curl -fsSL https://get.example.sh | sh && cp -r ops/ /"),
    ], config_extra={"config": {"Cmd": ["python3", "/srv/app/main.py"], "ExposedPorts": {"22/tcp": {}},
                                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "DB_PASSWORD=hunter2hunter2"]}})
    shutil.rmtree(OUT, ignore_errors=True)
    return write_oci_layout(OUT / "oci", image, tag="demo")


def main() -> int:
    layout = build()
    exe = str(Path(sys.executable).with_name("hullscan"))
    db = OUT / "vuln.db"
    # The vulnerability database comes from real OSV records shipped in demo/osv (see PROVENANCE.md), with the CISA
    # KEV entries and the CVE record extracts the tests keep (tests/vulndb/data, see PROVENANCE.md there) added as
    # enrichment: findings are rated from their CVE records, with the source shown, and listed by risk.
    test_data = HERE.parent / "tests" / "vulndb" / "data"
    subprocess.run([exe, "db", "import", str(HERE / "osv"), "--kev", str(test_data / "kev.json"), "--db", str(db)],
                   check=True)
    subprocess.run([exe, "db", "import", str(test_data / "cve"), "--db", str(db)], check=True)
    print(f"\nbuilt a 5-layer sample image at {layout}; scanning it (--sort risk: known exploited first):\n",
          flush=True)
    code = subprocess.call([exe, "scan", f"oci:{layout}:demo", "--cache-dir", str(OUT / "cache"), "--db", str(db),
                            "--skip-db-update", "--list-packages", "--sort", "risk"],
                           env={**os.environ, "HULLSCAN_DATA_DIR": str(OUT / "data")})
    if code != 0:
        return code
    print("\nNow the same image through the service: hullscan serve, a local registry, a push, an automatic scan, "
          "and the pull gate refusing it until its findings are allowlisted.",
          flush=True)
    small = write_oci_layout(OUT / "small", Image([Layer(layer_tar([("etc/os-release", "ID=alpine\n"
                                                                                        "VERSION_ID=3.20.3\n")]))]),
                             tag="latest")
    return service.run(layout, small, db, OUT / "service")


if __name__ == "__main__":
    raise SystemExit(main())
