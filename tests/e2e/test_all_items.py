"""One image planted with one of everything, pushed to the real registry and scanned with every item;
and a clean control image that must yield no finding in the per-file and baseline items."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from tests.support.registry import RegistryServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))
import run as demo  # noqa: E402

ITEMS = "vuln,secret,malware,file,baseline,compliance,base"
runner = CliRunner()


def _scan(ref: str, tmp: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["scan", ref, "--scanners", ITEMS, "--db", str(tmp / "db"), "--skip-db-update",
                                 "-f", "json", "--cache-dir", str(tmp / "cache"), "--base-catalogue",
                                 str(tmp / "catalogue.json"), "--password-budget", "20", *extra])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HULLSCAN_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["db", "import", str(Path(demo.__file__).parent / "osv"), "--db", str(tmp_path / "db")])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_planted_image_reports_each_item_in_the_right_layer(registry: RegistryServer, db: Path) -> None:
    demo.OUT = db / "demo"
    layout = demo.build()
    registry.push(layout, "e2e/planted:1", src_tag="demo")
    doc = _scan(registry.ref("e2e/planted:1"), db)
    found = {(c["item"], c["id"]): c for c in doc["checks"]}
    planted = {
        ("secret", "aws-access-key-id"), ("secret", "aws-secret-access-key"),
        ("malware", "mal-eicar-test-file"), ("malware", "mal-webshell-php-eval"), ("malware", "mal-miner-xmrig-config"),
        ("file", "file-setuid"), ("file", "file-world-writable"),
        ("baseline", "sshd-permit-root-login"), ("baseline", "weak-password"), ("baseline", "sudoers-nopasswd-all"),
        ("baseline", "image-pipe-to-shell"),
    }
    assert planted <= set(found), planted - set(found)
    for key in planted - {("baseline", "image-pipe-to-shell")}:
        assert found[key]["layer"]["index"] == 4, key  # every planted file came with the last layer
    assert found[("baseline", "image-pipe-to-shell")]["layer"]["index"] == 4
    assert ("baseline", "image-user-root") in found and ("baseline", "image-secret-env") in found
    assert found[("baseline", "weak-password")]["metadata"].get("user") == "admin"
    assert "admin123" not in json.dumps(doc)  # the password is only shown with --show-weak-passwords
    env_file = demo.planted()[0]
    assert isinstance(env_file, tuple) and isinstance(env_file[1], str)
    for line in env_file[1].splitlines():
        assert line.split("=", 1)[1] not in json.dumps(doc)  # secrets appear redacted only
    assert any(v["package"]["name"] == "org.apache.logging.log4j:log4j-core" for v in doc["vulnerabilities"])
    assert doc["scanners"] == ITEMS.split(",")


def test_clean_control_image_has_no_findings_in_these_items(registry: RegistryServer, db: Path) -> None:
    status = (Path(demo.__file__).parent / "image" / "1-base" / "status").read_bytes()
    base = layer_tar([FileSpec("etc", type="d"), ("etc/os-release", 'ID=debian\nVERSION_ID="13"\n'
                      'VERSION_CODENAME=trixie\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n'),
                      ("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                                     "app:x:10001:10001::/srv/app:/usr/sbin/nologin\n"),
                      ("etc/group", "root:x:0:\napp:x:10001:\n"),
                      FileSpec("etc/shadow", b"root:*:19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n", mode=0o640),
                      ("etc/login.defs", "PASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\nENCRYPT_METHOD YESCRYPT\n"),
                      ("var/lib/dpkg/status", status),
                      ("srv/app/main.py", "import os\nprint(os.environ.get('GREETING', 'hello'))\n")])
    image = Image([Layer(base, "ADD rootfs.tar /")], config_extra={"config": {
        "User": "10001", "Cmd": ["python3", "/srv/app/main.py"], "Env": ["PATH=/usr/bin:/bin"],
        "Healthcheck": {"Test": ["CMD", "python3", "-c", "print(1)"]}}})
    layout = write_oci_layout(db / "control", image, "latest")
    registry.push(layout, "e2e/control:1")
    doc = _scan(registry.ref("e2e/control:1"), db)
    noisy = [c for c in doc["checks"] if c["item"] in ("secret", "malware", "file", "baseline")]
    assert noisy == []
    assert doc["scanners"] == ITEMS.split(",")
