"""The `secret` detector: file detections become findings; the image config and history are scanned too."""

from __future__ import annotations

from hullscan.detectors import DetectContext, Detector
from hullscan.model import Descriptor, Detection, ImageFacts, LayerInfo, Package
from hullscan.secrets import SecretDetector, redact_text
from tests.secrets.samples import B32, r

GHP = "ghp_" + r(36)
AWS_SECRET = r(40)
NPM = "npm_" + r(36)
PASSWORD = "Zq7" + r(13)
LABEL_TOKEN = "glpat-" + r(20)


def image() -> ImageFacts:
    history = [
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},                                   # layer 0
        {"created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]", "empty_layer": True},                 # -> layer 1
        {"created_by": f"/bin/sh -c #(nop)  ENV AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "empty_layer": True},
        {"created_by": f"|1 PASSWORD={PASSWORD} /bin/sh -c echo \"//r/:_authToken={NPM}\" > /root/.npmrc"},  # 1
        {"created_by": f"RUN /bin/sh -c curl -H 'Authorization: token {GHP}' https://api.github.com # buildkit"},  # 2
        {"created_by": f"LABEL ci.token={LABEL_TOKEN}", "empty_layer": True},                     # -> layer 2
    ]
    config = {
        "config": {
            "Env": ["PATH=/usr/bin", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "HOME=/root"],
            "Labels": {"maintainer": "ops@acme.io", "ci.token": LABEL_TOKEN},
            "Cmd": ["app", "--password", "x"],
        },
        "history": history,
    }
    layers = [LayerInfo(i, Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", f"sha256:{i:064x}", 1),
                        f"sha256:{i + 10:064x}", str(h["created_by"]))
              for i, h in enumerate(x for x in history if not x.get("empty_layer"))]
    facts = ImageFacts(reference="acme/app:1", config=config, layers=layers)
    facts.detections = [
        Detection(kind="secret", rule_id="github-pat", title="GitHub personal access token", severity="CRITICAL",
                  path="srv/app/.env", line=3, match="ghp_****************", category="GitHub",
                  remediation="Revoke it.", layer_index=2, layer_diff_id=layers[2].diff_id,
                  layer_created_by=layers[2].created_by, in_final_image=False),
        Detection(kind="malware", rule_id="eicar", title="EICAR", severity="HIGH", path="tmp/eicar.com"),
    ]
    facts.packages = [Package("curl", "8.0", "deb", layer_index=1, layer_created_by=layers[1].created_by)]
    return facts


def test_is_a_detector() -> None:
    detector: Detector = SecretDetector()
    assert detector.item == "secret"


def test_file_detections_become_findings() -> None:
    findings = SecretDetector().detect(image(), DetectContext())
    (f,) = [f for f in findings if f.path == "srv/app/.env"]
    assert (f.item, f.id, f.severity, f.line, f.evidence, f.layer_index) == (
        "secret", "github-pat", "CRITICAL", 3, "ghp_****************", 2)
    assert f.metadata["in_final_image"] == "false" and f.metadata["source"] == "file"
    assert "later layer deleted" in f.description
    assert GHP not in f.layer_created_by and "ghp_" in f.layer_created_by
    assert not any(f.path == "tmp/eicar.com" for f in findings)  # other kinds belong to other items


def test_config_and_history_are_scanned() -> None:
    facts = image()
    findings = SecretDetector().detect(facts, DetectContext())
    where = {(f.path, f.id): f for f in findings}
    assert set(where) == {
        ("srv/app/.env", "github-pat"),
        ("config:Env[1]", "aws-secret-access-key"),
        ("config:Labels[ci.token]", "gitlab-pat"),
        ("history[3]", "env-secret"),  # a build argument, as the classic builder records it
        ("history[3]", "npm-access-token"),
        ("history[4]", "github-pat"),
    }
    env = where[("config:Env[1]", "aws-secret-access-key")]
    # the ENV line that set it is history[2], an empty layer: attributed to the build step that follows it
    assert (env.layer_index, env.metadata["history_index"], env.line) == (1, "2", 0)
    assert env.layer_diff_id == facts.layers[1].diff_id
    assert "image config" in env.description and "ENV" in env.remediation
    assert AWS_SECRET not in env.layer_created_by and "ENV AWS_SECRET_ACCESS_KEY=" in env.layer_created_by
    assert where[("history[4]", "github-pat")].layer_index == 2
    assert where[("history[3]", "env-secret")].layer_index == 1
    assert "secret mount" in where[("history[3]", "env-secret")].remediation
    assert where[("config:Labels[ci.token]", "gitlab-pat")].layer_index == 2
    # the ENV history line itself is not reported a second time
    assert ("history[2]", "aws-secret-access-key") not in where


def test_no_finding_or_fact_keeps_a_secret() -> None:
    facts = image()
    findings = SecretDetector().detect(facts, DetectContext())
    planted = [GHP, AWS_SECRET, NPM, PASSWORD, LABEL_TOKEN]
    for f in findings:
        text = repr(f)
        assert not [s for s in planted if s in text], f
    # layer records (shown by every renderer) are masked in place
    for text in [la.created_by for la in facts.layers] + [p.layer_created_by for p in facts.packages] \
            + [d.layer_created_by for d in facts.detections]:
        assert not [s for s in planted if s in text], text
    assert "ADD file:abc in /" in facts.layers[0].created_by


def test_redact_text() -> None:
    key_id = "AKIA" + r(16, B32)
    text = f"export AWS_ACCESS_KEY_ID={key_id} GITHUB_TOKEN={GHP}"
    masked = redact_text(text)
    assert key_id not in masked and GHP not in masked
    assert masked.startswith("export AWS_ACCESS_KEY_ID=AKIA****") and "GITHUB_TOKEN=ghp_****" in masked
    assert redact_text("nothing to see") == "nothing to see"
    assert redact_text("") == ""


def test_an_image_without_config_is_fine() -> None:
    assert SecretDetector().detect(ImageFacts(reference="x"), DetectContext()) == []
    facts = ImageFacts(reference="x", config={"config": {"Env": "nonsense", "Labels": ["x"]}, "history": [1, "a"]})
    assert SecretDetector().detect(facts, DetectContext()) == []


def test_a_value_the_final_environment_dropped_is_reported_from_the_history() -> None:
    """Classic-builder history: the ENV line keeps the key although a later ENV emptied the variable."""
    history = [
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": f"/bin/sh -c #(nop)  ENV AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "empty_layer": True},
        {"created_by": "/bin/sh -c pip install app"},
        {"created_by": "/bin/sh -c #(nop)  ENV AWS_SECRET_ACCESS_KEY=", "empty_layer": True},
    ]
    facts = ImageFacts(reference="acme/app:2", config={
        "config": {"Env": ["PATH=/usr/bin", "AWS_SECRET_ACCESS_KEY="]}, "history": history})
    (f,) = SecretDetector().detect(facts, DetectContext())
    assert (f.path, f.id, f.layer_index, f.metadata["history_index"]) == ("history[1]", "aws-secret-access-key", 1, "1")
    assert "an ENV line" in f.description and "no longer holds this value" in f.description
    assert f.layer_created_by == "/bin/sh -c #(nop)  ENV AWS_SECRET_ACCESS_KEY=***"
    assert AWS_SECRET not in repr(f)
