"""hullscan's CLI against a real registry (Debian's docker-registry) fed with skopeo."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))
import run as demo  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo.OUT = tmp_path_factory.mktemp("demo")
    return demo.build()


def _inventory(doc: dict) -> set[tuple[str, str, str, int]]:  # type: ignore[type-arg]
    return {(p["ecosystem"], p["name"], p["version"], p["layer"]["index"]) for p in doc["packages"]}


def _scan(target: str, cache: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["sbom", target, "-f", "json", "--cache-dir", str(cache), *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_basic_auth_registry_scan_equals_layout_scan(basic_registry: RegistryServer, demo_layout: Path,
                                                     tmp_path: Path) -> None:
    basic_registry.push(demo_layout, "e2e/demo:1", src_tag="demo")
    assert basic_registry.creds is not None
    user, password = basic_registry.creds
    code, out, err = _scan(basic_registry.ref("e2e/demo:1"), tmp_path / "c1", "-u", user, "--password-stdin",
                           stdin=password + "\n")
    assert code == 0, err
    from_registry = json.loads(out)
    code, out, err = _scan(f"oci:{demo_layout}:demo", tmp_path / "c2")
    assert code == 0, err
    assert _inventory(from_registry) == _inventory(json.loads(out))
    assert from_registry["artifact"]["manifest_digest"].startswith("sha256:")


def test_wrong_password_fails_clearly_without_echoing_it(basic_registry: RegistryServer, demo_layout: Path,
                                                         tmp_path: Path) -> None:
    basic_registry.push(demo_layout, "e2e/demo:2", src_tag="demo")
    assert basic_registry.creds is not None
    secret = "not-the-password-4711"
    code, out, err = _scan(basic_registry.ref("e2e/demo:2"), tmp_path, "-u", basic_registry.creds[0],
                           "--password-stdin", stdin=secret + "\n")
    assert code == 3
    assert "AUTH_FAILED" in err
    assert secret not in out + err


def test_token_registry_with_docker_config(token_registry: RegistryServer, demo_layout: Path, tmp_path: Path) -> None:
    token_registry.push(demo_layout, "e2e/demo:3", src_tag="demo")
    assert token_registry.creds is not None
    auth = base64.b64encode(":".join(token_registry.creds).encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    code, out, err = _scan(token_registry.ref("e2e/demo:3"), tmp_path / "c", "--docker-config", str(config))
    assert code == 0, err
    names = {p["name"] for p in json.loads(out)["packages"]}
    assert {"bash", "urllib3", "lodash", "org.apache.logging.log4j:log4j-core"} <= names


def test_warm_rescan_downloads_no_layers(registry: RegistryServer, demo_layout: Path, tmp_path: Path,
                                         fault_proxy: Callable[..., FaultProxy]) -> None:
    registry.push(demo_layout, "e2e/demo:4", src_tag="demo")
    proxy = fault_proxy(registry)
    ref = f"{proxy.host}/e2e/demo:4"
    code, cold, err = _scan(ref, tmp_path)
    assert code == 0, err
    blob_gets = proxy.count("/blobs/", method="GET")
    assert blob_gets == 6  # the config and five layers
    proxy.clear()
    code, warm, err = _scan(ref, tmp_path)
    assert code == 0, err
    assert proxy.count("/blobs/", method="GET") == 1  # only the config
    assert json.loads(cold)["packages"] == json.loads(warm)["packages"]
