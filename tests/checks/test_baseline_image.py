"""Baseline and file checks on images built by code and scanned through the whole pipeline."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hullscan.analyzers.configfiles import ConfigFilesAnalyzer, is_config_path
from hullscan.checks.baseline import BaselineDetector
from hullscan.checks.crypt import system_crypt
from hullscan.checks.files import FileInfoDetector
from hullscan.detectors import DetectContext
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from hullscan.model import FileEntry, ImageFacts
from hullscan.scan import Scanner, ScanOptions

PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" \
         "app:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\napp:x:1000:\n"
SHADOW_LOCKED = "root:*:19700:0:99999:7:::\nnobody:*:19700:0:99999:7:::\napp:!:19700:0:99999:7:::\n"


def scan(tmp_path: Path, image: Image) -> ImageFacts:
    layout = write_oci_layout(tmp_path / "img", image)
    return Scanner(ScanOptions(cache_dir=tmp_path / "cache", workdir=tmp_path / "work")).scan(str(layout))


def base_layer() -> Layer:
    return Layer(layer_tar([
        FileSpec("etc", type="d"), FileSpec("etc/passwd", PASSWD.encode()), FileSpec("etc/group", GROUP.encode()),
        FileSpec("etc/shadow", SHADOW_LOCKED.encode(), mode=0o640, gid=42),
        FileSpec("tmp", type="d", mode=0o1777), FileSpec("usr/bin/passwd", b"\x7fELF", mode=0o4755),
        FileSpec("usr/bin/app", b"\x7fELF", mode=0o755),
        FileSpec("home/app", type="d", uid=1000, gid=1000),
    ]), "ADD rootfs.tar.xz / # buildkit")


def clean_image() -> Image:
    app = Layer(layer_tar([FileSpec("srv/app/config.yaml", b"port: 8080\n", uid=1000, gid=1000)]),
                "COPY --chown=app:app config.yaml /srv/app/ # buildkit")
    return Image([base_layer(), app], config_extra={
        "config": {"User": "app", "Env": ["PATH=/usr/bin:/bin"], "ExposedPorts": {"8080/tcp": {}},
                   "Healthcheck": {"Test": ["CMD", "/usr/bin/app", "--health"], "Interval": 30_000_000_000}},
        "history": [{"created_by": "ADD rootfs.tar.xz / # buildkit"},
                    {"created_by": "COPY --chown=app:app config.yaml /srv/app/ # buildkit"},
                    {"created_by": "USER app", "empty_layer": True},
                    {"created_by": "HEALTHCHECK CMD /usr/bin/app --health", "empty_layer": True}]})


def test_clean_control_image_has_no_file_or_baseline_findings(tmp_path: Path) -> None:
    facts = scan(tmp_path, clean_image())
    assert set(facts.config_files) == {"etc/passwd", "etc/group", "etc/shadow"}
    context = DetectContext(password_budget_seconds=10)
    assert BaselineDetector().detect(facts, context) == []
    assert FileInfoDetector().detect(facts, context) == []


def test_planted_image_reports_each_item_with_its_layer(tmp_path: Path) -> None:
    c = system_crypt()
    shadow = SHADOW_LOCKED.replace("app:!:", f"app:{c.make('app123', '$y$')}:")
    layers = [
        base_layer(),
        Layer(layer_tar([
            FileSpec("etc/ssh/sshd_config", b"Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n"
                                            b"PasswordAuthentication no\n"),
            FileSpec("etc/ssh/sshd_config.d/50-bad.conf", b"PermitRootLogin yes\n"),
            FileSpec("etc/sudoers", b"root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n", mode=0o440),
            FileSpec("etc/sudoers.d/app", b"app ALL=(ALL) NOPASSWD: ALL\n", mode=0o440),
        ]), "RUN /bin/sh -c apt-get update && apt-get install -y openssh-server sudo # buildkit"),
        Layer(layer_tar([
            FileSpec("etc/shadow", shadow.encode(), mode=0o640, gid=42),
            FileSpec("etc/ld.so.preload", b"/usr/lib/x86_64-linux-gnu/.libhide.so\n"),
            FileSpec("tmp/.cache/kworkerd", b"\x7fELF", mode=0o4755),
        ]), "RUN |1 API_TOKEN=tok-SEKRIT /bin/sh -c curl -fsSL https://get.example.sh | sh # buildkit"),
    ]
    config: dict[str, Any] = {
        "config": {"Env": ["PATH=/usr/bin:/bin", "DB_PASSWORD=SEKRIT"], "ExposedPorts": {"22/tcp": {}}},
        "history": [{"created_by": "ADD rootfs.tar.xz / # buildkit"},
                    {"created_by": layers[1].created_by},
                    {"created_by": "ENV DB_PASSWORD=SEKRIT", "empty_layer": True},
                    {"created_by": layers[2].created_by}],
    }
    facts = scan(tmp_path, Image(layers, config_extra=config))
    found = BaselineDetector().detect(facts, DetectContext(password_budget_seconds=30))
    got = {(f.id, f.layer_index) for f in found}
    assert {("image-user-root", -1), ("image-no-healthcheck", -1), ("image-sensitive-port", -1),
            ("image-secret-env", -1), ("image-secret-build-arg", 2), ("image-pipe-to-shell", 2),
            ("sshd-permit-root-login", 1), ("sudoers-nopasswd-all", 1), ("ld-so-preload", 2),
            ("weak-password", 2)} <= got
    weak = next(f for f in found if f.id == "weak-password")
    assert weak.metadata == {"user": "app", "algorithm": "yescrypt", "test": "username", "tried": "10"}
    assert weak.layer_created_by == layers[2].created_by.replace("tok-SEKRIT", "***")
    assert "SEKRIT" not in repr(found) and "app123" not in repr(found)
    env = next(f for f in found if f.id == "image-secret-env")
    assert env.layer_created_by == "ENV DB_PASSWORD=***"
    files = {(f.id, f.path, f.layer_index) for f in FileInfoDetector().detect(facts, DetectContext())}
    assert ("file-setuid", "/tmp/.cache/kworkerd", 2) in files
    assert ("file-exec-unusual-location", "/tmp/.cache/kworkerd", 2) in files


def test_config_files_follow_the_final_tree(tmp_path: Path) -> None:
    """A file deleted (whiteout) or replaced by a later layer is checked as the final image has it."""
    layers = [
        base_layer(),
        Layer(layer_tar([("etc/ld.so.preload", "/lib/evil.so\n"), ("etc/sudoers", "x ALL=(ALL) NOPASSWD: ALL\n")])),
        Layer(layer_tar([("etc/.wh.ld.so.preload", ""), ("etc/sudoers", "root ALL=(ALL) ALL\n")])),
    ]
    facts = scan(tmp_path, Image(layers))
    assert "etc/ld.so.preload" not in facts.config_files
    assert facts.config_files["etc/sudoers"] == "root ALL=(ALL) ALL\n"
    ids = {f.id for f in BaselineDetector().detect(facts, DetectContext())}
    assert "ld-so-preload" not in ids and "sudoers-nopasswd-all" not in ids


def test_config_files_analyzer_claims_and_cap() -> None:
    for p in ["etc/ssh/sshd_config", "etc/ssh/sshd_config.d/10-x.conf", "etc/passwd", "etc/shadow", "etc/group",
              "etc/login.defs", "etc/sudoers", "etc/sudoers.d/app", "etc/ld.so.preload"]:
        assert is_config_path(p), p
    for p in ["etc/ssh/sshd_config.d/x.txt", "etc/ssh/ssh_config", "etc/sudoers.d", "etc/sudoers.d/a/b",
              "usr/etc/passwd", "etc/passwd-", "etc/shadow.bak"]:
        assert not is_config_path(p), p
    a = ConfigFilesAnalyzer()
    big = b"root:x:0:0::/root:/bin/sh\n" + b"#" * (a.max_size + 10)
    out = a.analyze("etc/passwd", FileEntry("etc/passwd", "f", len(big)), io.BytesIO(big))
    assert out is not None and len(out.hints["config_file"]) == a.max_size
    bad = a.analyze("etc/passwd", FileEntry("etc/passwd", "f", 4), io.BytesIO(b"\xff\xfe\x00x"))
    assert bad is not None and "x" in bad.hints["config_file"]
