"""End to end: an image built by code with secrets in several layers, scanned through the real pipeline;
every finding is where it belongs, and no renderer, cache entry or log line shows a planted secret."""

from __future__ import annotations

import importlib
import io
import json
import logging
from pathlib import Path

import pytest
import zstandard
from rich.console import Console

from hullscan.analyzers import default_analyzers
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding, ScanReport
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from hullscan.model import ImageFacts
from hullscan.scan import Scanner, ScanOptions
from hullscan.secrets import SecretDetector, secret_analyzer
from tests.secrets.keys import pem, service_account
from tests.secrets.samples import B32, SAMPLES, r

AWS_ID = "AKIA" + r(16, B32)
AWS_SECRET = r(40)
GHP = "ghp_" + r(36)
DOC_TOKEN = "ghp_" + r(36)
FIXTURE_TOKEN = "glpat-" + r(20)
BINARY_TOKEN = "npm_" + r(36)
RSA = SAMPLES["private-key-rsa"]
DB_PASSWORD = "Zq7" + r(13)
HISTORY_TOKEN = "glpat-" + r(22)
BUILD_ARG = "Xy9" + r(12)
PLANTED = [AWS_ID, AWS_SECRET, GHP, DOC_TOKEN, FIXTURE_TOKEN, BINARY_TOKEN, RSA.secret.splitlines()[1], DB_PASSWORD,
           HISTORY_TOKEN, BUILD_ARG]


def build(tmp_path: Path) -> Path:
    base = layer_tar([
        ("etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n'),
        ("usr/share/doc/tool/README", f"Use a token like {DOC_TOKEN}\n"),
        ("usr/lib/python3/dist-packages/lib/tests/fixture.py", f'TOKEN = "{FIXTURE_TOKEN}"\n'),
        FileSpec("usr/bin/tool", b"\x7fELF\x02\x01\x01\x00\x00\x00" + BINARY_TOKEN.encode(), mode=0o755),
        FileSpec("root/.ssh", type="d", mode=0o700),
        FileSpec("root/.ssh/id_rsa", RSA.text.encode(), mode=0o600),
    ])
    app = layer_tar([
        ("srv/app/.env", f"# app settings\nAWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"),
        ("srv/app/config.json", f'{{\n  "github": {{\n    "token": "{GHP}"\n  }}\n}}\n'),
        FileSpec("srv/app/config-link.json", type="h", linkname="srv/app/config.json"),
    ])
    cleanup = layer_tar([("root/.ssh/.wh.id_rsa", b"")])
    image = Image(
        layers=[Layer(base, "ADD rootfs.tar /"),
                Layer(app, f"|1 DB_PASSWORD={BUILD_ARG} /bin/sh -c echo {HISTORY_TOKEN} > /tmp/t && cp -r . /srv/app"),
                Layer(cleanup, "RUN /bin/sh -c rm /root/.ssh/id_rsa # buildkit")],
        config_extra={"config": {
            "Env": ["PATH=/usr/bin:/bin", f"DATABASE_URL=postgresql://app:{DB_PASSWORD}@db.internal:5432/app"],
            "Labels": {"org.opencontainers.image.title": "app"},
        }},
    )
    return write_oci_layout(tmp_path / "image", image)


def scan(tmp_path: Path, layout: Path) -> ImageFacts:
    options = ScanOptions(analyzers=default_analyzers() + [secret_analyzer(None)], cache_dir=tmp_path / "cache",
                          workdir=tmp_path / "work")
    return Scanner(options).scan(f"oci:{layout}:latest")


def key(f: CheckFinding) -> tuple[str, str, int, int, str]:
    return f.path, f.id, f.line, f.layer_index, f.metadata.get("in_final_image", "")


def test_secrets_across_layers_config_and_history(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    layout = build(tmp_path)
    facts = scan(tmp_path, layout)
    findings = SecretDetector().detect(facts, DetectContext())
    assert sorted(map(key, findings)) == sorted([
        ("root/.ssh/id_rsa", "private-key-rsa", 1, 0, "false"),  # deleted by layer 2, still in layer 0
        ("srv/app/.env", "aws-access-key-id", 2, 1, "true"),
        ("srv/app/.env", "aws-secret-access-key", 3, 1, "true"),
        ("srv/app/config.json", "github-pat", 3, 1, "true"),  # and config-link.json, a hard link: reported once
        ("config:Env[1]", "postgres-url", 0, -1, "true"),  # no history line sets it
        ("history[1]", "env-secret", 0, 1, "true"),  # the build argument
        ("history[1]", "gitlab-pat", 0, 1, "true"),  # the literal token in the RUN line
    ])
    by_key = {(f.path, f.id): f for f in findings}
    rsa = by_key[("root/.ssh/id_rsa", "private-key-rsa")]
    assert rsa.severity == "CRITICAL" and rsa.layer_diff_id == facts.layers[0].diff_id
    assert rsa.layer_created_by == "ADD rootfs.tar /"
    assert by_key[("srv/app/.env", "aws-access-key-id")].evidence == "AKIA" + "*" * 16
    # the walk kept nothing of the skipped files
    assert not [d for d in facts.detections if d.path.startswith(("usr/", "etc/"))]

    # A warm re-scan (layer facts from the cache) finds the same.
    again = SecretDetector().detect(scan(tmp_path, layout), DetectContext())
    assert sorted(map(key, again)) == sorted(map(key, findings))

    # Nothing anywhere shows a planted secret: renderers, the cache, the logs.
    report = ScanReport(facts=facts, scanners=["secret"], checks=findings)
    outputs = {name: text for name, text in render_everything(report).items()}
    for path in (tmp_path / "cache").rglob("*.zst"):
        outputs[str(path)] = zstandard.ZstdDecompressor().decompress(path.read_bytes()).decode()
    outputs["log"] = caplog.text
    assert len(outputs) >= 6
    for name, text in outputs.items():
        leaked = [s for s in PLANTED if s in text]
        assert not leaked, f"{name} shows {leaked}"
    assert "AKIA****" in outputs["json_report.render_report"]


def render_everything(report: ScanReport) -> dict[str, str]:
    """Every renderer the report package has, on this report (or its facts)."""
    out: dict[str, str] = {}
    json_report = importlib.import_module("hullscan.report.json_report")
    out["json_report.render_report"] = json_report.render_report(report)
    out["json_report.render"] = json_report.render(report.facts)
    sarif = importlib.import_module("hullscan.report.sarif")
    out["sarif.render"] = sarif.render(report)
    cyclonedx = importlib.import_module("hullscan.report.cyclonedx")
    out["cyclonedx.render_report"] = cyclonedx.render_report(report, deterministic=True)
    spdx = importlib.import_module("hullscan.report.spdx")
    out["spdx.render"] = spdx.render(report.facts, deterministic=True)
    table = importlib.import_module("hullscan.report.table")
    buf = io.StringIO()
    table.render_report(report, Console(file=buf, width=250, color_system=None))
    out["table.render_report"] = buf.getvalue()
    try:
        html = importlib.import_module("hullscan.report.html")
    except ImportError:
        pass
    else:
        out["html.render"] = html.render(report)
    return out


def test_the_secret_analyzer_runs_only_when_asked_for() -> None:
    """Not a default analyzer: the pipeline adds it when the `secret` item is selected."""
    assert not any(a.name == "secret" for a in default_analyzers())
    assert secret_analyzer(None).name == "secret"


def test_keys_in_strings_and_secrets_left_in_the_build_history(tmp_path: Path) -> None:
    """A real image: keys as images carry them (a GCP service-account file, a key in a JSON string inside JSON, an
    .env value, a key file at line 1), and a history whose ENV, ARG and RUN lines hold credentials that the final
    environment no longer has (a later ENV emptied the variable). Each is its own finding, at the right line, and
    no history line a finding or a layer record shows holds a secret."""
    aws_secret, token, db_password = r(40), "ghp_" + r(36), "Zq7" + r(13)
    sa = service_account(pem("rsa-pkcs8"))
    applied = json.dumps({"data": {"tls.key": pem("ec-sec1")}})
    nested = json.dumps({"metadata": {"annotations": {"last-applied": applied}}})
    files = layer_tar([
        ("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
        ("srv/app/config/gcp-service-account.json", sa),
        ("srv/app/k8s/tls-secret.json", nested),
        ("srv/app/.env", "APP_ENV=production\nTLS_KEY=" + json.dumps(pem("rsa-traditional-encrypted")) + "\n"),
        FileSpec("root/.ssh/id_ed25519", pem("ed25519-openssh").encode(), mode=0o600),
    ])
    history = [
        {"created_by": "ADD rootfs.tar / # buildkit", "comment": "buildkit.dockerfile.v0"},
        {"created_by": f"ENV AWS_SECRET_ACCESS_KEY={aws_secret}", "comment": "buildkit.dockerfile.v0",
         "empty_layer": True},
        {"created_by": f"ARG GITHUB_TOKEN={token}", "comment": "buildkit.dockerfile.v0", "empty_layer": True},
        {"created_by": f"RUN |1 GITHUB_TOKEN={token} /bin/sh -c git clone https://github.com/acme/app /srv/src && "
                       f"mysql -u app -p{db_password} < /srv/src/schema.sql # buildkit",
         "comment": "buildkit.dockerfile.v0"},
        {"created_by": "ENV AWS_SECRET_ACCESS_KEY=", "comment": "buildkit.dockerfile.v0", "empty_layer": True},
    ]
    image = Image(layers=[Layer(files, history[0]["created_by"]), Layer(layer_tar([("srv/src/README", "app\n")]))],
                  config_extra={"history": history,
                                "config": {"Env": ["PATH=/usr/bin:/bin", "AWS_SECRET_ACCESS_KEY="]}})
    facts = scan(tmp_path, write_oci_layout(tmp_path / "image", image))
    findings = SecretDetector().detect(facts, DetectContext())
    assert sorted((f.path, f.id, f.line, f.layer_index) for f in findings) == sorted([
        ("srv/app/config/gcp-service-account.json", "gcp-service-account-key", 5, 0),
        ("srv/app/k8s/tls-secret.json", "private-key-ec", 1, 0),
        ("srv/app/.env", "private-key-pem-encrypted", 2, 0),
        ("root/.ssh/id_ed25519", "private-key-openssh", 1, 0),
        ("history[1]", "aws-secret-access-key", 0, 1),  # the ENV line: attributed to the next layer made
        ("history[2]", "github-pat", 0, 1),  # the ARG line's default value
        ("history[3]", "github-pat", 0, 1),  # the build argument as the RUN line records it
        ("history[3]", "mysql-cli-password", 0, 1),  # the literal password in the RUN line
    ])
    env_line = next(f for f in findings if f.path == "history[1]")
    assert "no longer holds this value" in env_line.description and "secret mount" in env_line.remediation
    assert env_line.layer_created_by == "ENV AWS_SECRET_ACCESS_KEY=***"
    assert env_line.metadata["history_index"] == "1" and env_line.severity == "CRITICAL"
    planted = [aws_secret, token, db_password, *(pem(k).splitlines()[3] for k in ("rsa-pkcs8", "ec-sec1"))]
    shown = [f.layer_created_by for f in findings] + [f.evidence for f in findings] + [f.description for f in findings]
    shown += [la.created_by for la in facts.layers]
    assert not [s for s in planted for text in shown if s in text]
    report = ScanReport(facts=facts, scanners=["secret"], checks=findings)
    for name, text in render_everything(report).items():
        assert not [s for s in planted if s in text], name
