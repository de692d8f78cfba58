"""Account files and the caches, through the whole engine on an image built by code with real hashes (the system's
libcrypt): the layer cache keeps no hash, the scan store keeps no secret, the other baseline checks see what they
saw in the clear text, and the weak-password verdicts come from their own cache on a warm scan (zero hashes
computed) or, when that cache is gone, from reading the one layer again."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import zstandard
from rich.console import Console

from hullscan import reportcodec
from hullscan.checks.baseline import BaselineDetector
from hullscan.checks.crypt import system_crypt
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding, ScanReport
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from hullscan.items.baseline import BaselineOptions
from hullscan.model import LayerInfo
from hullscan.pipeline import Engine, ScanRequest
from hullscan.report import json_report, sarif, table
from hullscan.scan import NoProgress
from hullscan.scanstore import ScanStore, StoredScan, scan_key
from hullscan.settings import Settings

pytestmark = pytest.mark.timeout(600)
CRYPT = system_crypt()
PASSWD = ("root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/bash\n"
          "svc:x:1001:1001::/srv:/usr/sbin/nologin\nold:x:1002:1002::/home/old:/bin/sh\n"
          "nopw:x:1003:1003::/home/nopw:/bin/bash\nguest:x:1004:1004::/home/guest:/bin/bash\n"
          "carol:x:1005:1005::/home/carol:/bin/bash\n")
SHADOW_BASE = "root:*:19700:0:99999:7:::\napp:!:19700:0:99999:7:::\n"


@dataclasses.dataclass
class Planted:
    layout: str
    shadow: str
    passwd: str
    group: str
    secrets: list[str]  # every hash and password planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """A base layer with locked accounts, then a layer that sets passwords as an image build would (useradd,
    chpasswd): sha512crypt, yescrypt, locked md5crypt, DES, an empty field, a hash in /etc/passwd and a group
    password."""
    root = CRYPT.make("changeme", "$6$")  # in the wordlist (distribution defaults)
    app = CRYPT.make("app123", "$y$")  # a user-name variant
    svc = CRYPT.make(secrets.token_urlsafe(12), "$1$")
    old = CRYPT.hash(secrets.token_urlsafe(6), "Qx") or ""
    carol = CRYPT.make(secrets.token_urlsafe(12), "$1$")
    legacy = CRYPT.make("legacy1", "$1$")
    wheel = CRYPT.make(secrets.token_urlsafe(12), "$1$")
    shadow = (f"root:{root}:19700:0:99999:7:::\napp:{app}:19700:0:99999:7:::\nsvc:!{svc}:19700:0:99999:7:::\n"
              f"old:{old}:19700:0:99999:7:::\nnopw::19700:0:99999:7:::\nguest:*:19700:0:99999:7:::\n"
              f"carol:{carol}:19700:0:99999:7:::\n")
    passwd = PASSWD + f"legacy:{legacy}:1006:1006::/home/legacy:/bin/bash\n"
    group = f"root:x:0:\nshadow:x:42:\nwheel:{wheel}:10:root\napp:x:1000:\n"
    base = Layer(layer_tar([
        FileSpec("etc", type="d"), FileSpec("etc/passwd", PASSWD.encode()),
        FileSpec("etc/group", b"root:x:0:\nshadow:x:42:\napp:x:1000:\n"),
        FileSpec("etc/shadow", SHADOW_BASE.encode(), mode=0o640, gid=42),
        FileSpec("etc/login.defs", b"PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nENCRYPT_METHOD SHA512\n"),
    ]), "ADD rootfs.tar.xz / # buildkit")
    users = Layer(layer_tar([
        FileSpec("etc/passwd", passwd.encode()), FileSpec("etc/group", group.encode()),
        FileSpec("etc/shadow", shadow.encode(), mode=0o640, gid=42),
        FileSpec("etc/ssh/sshd_config", b"PermitRootLogin yes\nPermitEmptyPasswords yes\n"),
    ]), "RUN /bin/sh -c useradd -m app && chpasswd < /run/secrets/users # buildkit")
    path = tmp_path_factory.mktemp("planted") / "img"
    write_oci_layout(path, Image([base, users], config_extra={"config": {"Env": ["DB_PASSWORD=SEKRIT-VALUE"]}}))
    return Planted(f"oci:{path}:latest", shadow, passwd, group,
                   [root, app, svc, old, carol, legacy, wheel, "changeme", "app123", "legacy1"])


class Recorder(NoProgress):
    def __init__(self) -> None:
        self.cached: list[bool] = []
        self.details: list[tuple[str, float | None, float | None, str]] = []

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        self.cached.append(cached)

    def phase_progress(self, detail: str, done: float | None = None, total: float | None = None,
                       unit: str = "") -> None:
        self.details.append((detail, done, total, unit))


def settings(tmp: Path) -> Settings:
    return Settings(data_dir=tmp / "data", cache_dir=tmp / "cache", work_dir=tmp / "work", pool_workers=0)


def scan(planted: Planted, tmp: Path, *, budget: float = 60.0, show: bool = True, use_cache: bool = True,
         items: tuple[str, ...] = ("baseline",)) -> tuple[ScanReport, Recorder, int]:
    """A scan through the engine; returns the report, what the progress saw and the hashes computed."""
    progress = Recorder()
    before = CRYPT.calls
    request = ScanRequest(planted.layout, items=items, use_cache=use_cache,
                          options={"baseline": BaselineOptions(budget, show)})
    with Engine(settings(tmp)) as engine:
        report = engine.scan(request, progress)
    return report, progress, CRYPT.calls - before


def weak(report: ScanReport) -> dict[str, str]:
    return {c.metadata["user"]: c.metadata["test"] for c in report.checks if c.id == "weak-password"}


def others(checks: list[CheckFinding]) -> list[CheckFinding]:
    return [c for c in checks if c.item == "baseline" and c.id not in ("weak-password", "weak-password-incomplete")]


def cache_text(tmp: Path) -> str:
    """Every layer-cache entry, decompressed."""
    entries = sorted((tmp / "cache" / "layers").rglob("*.json.zst"))
    assert len(entries) == 2
    return "\n".join(zstandard.ZstdDecompressor().stream_reader(p.read_bytes()).read().decode() for p in entries)


def test_layer_cache_keeps_no_hash_and_the_other_checks_see_the_same(planted: Planted, tmp_path: Path) -> None:
    # every item whose analyzers read files (the secret analyzer reads /etc/shadow too)
    report, _, _ = scan(planted, tmp_path, budget=0, show=False,
                        items=("secret", "malware", "file", "baseline", "compliance"))
    kept = cache_text(tmp_path)
    for secret in planted.secrets:
        assert secret not in kept
    assert "$6$<redacted>" in kept and "!$1$<redacted>" in kept and "<redacted-descrypt>" in kept
    assert "nopw::19700" in kept and "guest:*:19700" in kept  # what names no secret stays as it was
    facts = report.facts
    assert not any(s in repr(facts) or s in repr(report) for s in planted.secrets)

    # The same image with its account files in clear (what the cache held before): same findings but weak passwords.
    clear = dataclasses.replace(facts, config_files={**facts.config_files, "etc/shadow": planted.shadow,
                                                     "etc/passwd": planted.passwd, "etc/group": planted.group},
                                config_digests={}, private={})
    assert clear.config_files != facts.config_files
    expected = others(BaselineDetector().detect(clear, DetectContext(password_budget_seconds=0)))
    got = others(report.checks)
    assert got == expected
    assert {c.id for c in got} >= {"empty-password", "weak-password-hash", "sshd-permit-root-login",
                                   "sshd-permit-empty-passwords", "login-defs-password-ageing"}
    assert {c.metadata["user"] for c in got if c.id == "weak-password-hash"} == {"svc", "old", "carol", "legacy"}


def test_scan_store_keeps_no_hash_and_no_secret_value(planted: Planted, tmp_path: Path) -> None:
    report, _, _ = scan(planted, tmp_path, budget=0)
    assert report.facts.private  # this scan read the hashes ...
    store = ScanStore(tmp_path / "scans")
    store.save(StoredScan(scan_key(report.facts), report.facts))
    (path,) = (tmp_path / "scans").glob("*.json.zst")
    kept = zstandard.ZstdDecompressor().decompress(path.read_bytes()).decode()
    for secret in [*planted.secrets, "SEKRIT-VALUE"]:  # ... and the store has none of them
        assert secret not in kept
    assert "DB_PASSWORD=***" in kept


def test_stored_reports_keep_no_hash_and_no_secret_value(planted: Planted, tmp_path: Path) -> None:
    """What the service stores for every finished scan (hullscan.reportcodec)."""
    report, _, _ = scan(planted, tmp_path, budget=0, show=False)
    assert report.facts.private and report.password_check is not None
    data = reportcodec.encode(report)
    kept = zstandard.ZstdDecompressor().stream_reader(data).read().decode()
    for secret in [*planted.secrets, "SEKRIT-VALUE"]:
        assert secret not in kept
    back = reportcodec.decode(data)
    assert back.password_check == report.password_check and back.facts.private == {}


def test_cold_warm_and_warm_without_verdicts(planted: Planted, tmp_path: Path) -> None:
    expected = {"root": "wordlist", "app": "username", "legacy": "username"}
    cold, progress, calls = scan(planted, tmp_path)
    assert not any(progress.cached) and calls > 0
    assert weak(cold) == expected
    shown = {c.metadata["user"]: c.metadata.get("password") for c in cold.checks if c.id == "weak-password"}
    assert shown == {"root": "changeme", "app": "app123", "legacy": "legacy1"}  # found in this run, asked for
    # the check said how far it was while it ran
    assert any(d.startswith("Weak passwords: empty and user-name tests") and u == "guesses" for d, _, _, u in
               progress.details)
    verdicts = list((tmp_path / "cache" / "passwords").rglob("*.json"))
    assert len(verdicts) == 2  # one per account file with hashes: etc/shadow, etc/passwd
    kept = "\n".join(p.read_text() for p in verdicts)
    for secret in planted.secrets:
        assert secret not in kept

    # warm: layers and verdicts from the caches, not a single hash computed, no password shown
    warm, progress, calls = scan(planted, tmp_path)
    assert progress.cached == [True, True] and calls == 0
    assert weak(warm) == expected and others(warm.checks) == others(cold.checks)
    assert all("password" not in c.metadata for c in warm.checks)
    assert warm.password_check is not None and all(v.cached for v in warm.password_check.verdicts)
    assert [dataclasses.replace(v, cached=False) for v in warm.password_check.verdicts] == \
        (cold.password_check.verdicts if cold.password_check else None)

    # the verdict cache is gone, the layer cache is not: the layer holding /etc/shadow is read again for that file
    layers_before = cache_text(tmp_path)
    for p in verdicts:
        p.unlink()
    again, progress, calls = scan(planted, tmp_path, show=False)
    assert progress.cached == [True, True] and calls > 0
    assert any("reading the layer of /etc/shadow again" in d for d, _, _, _ in progress.details)
    assert weak(again) == expected and others(again.checks) == others(cold.checks)
    assert cache_text(tmp_path) == layers_before  # the re-read wrote nothing into the layer cache
    assert len(list((tmp_path / "cache" / "passwords").rglob("*.json"))) == 2


def test_no_cache_searches_afresh_and_keeps_no_verdict(planted: Planted, tmp_path: Path) -> None:
    report, _, calls = scan(planted, tmp_path, use_cache=False, budget=0)
    assert calls > 0 and weak(report) == {"app": "username", "legacy": "username"}
    assert not (tmp_path / "cache").exists()


def test_reports_state_the_budget_and_what_was_tried(planted: Planted, tmp_path: Path) -> None:
    report, _, _ = scan(planted, tmp_path, budget=0.5, show=False)
    check = report.password_check
    assert check is not None and check.budget_seconds == 0.5
    users = {v.user: v for v in check.verdicts}
    assert set(users) == {"root", "app", "svc", "old", "carol", "legacy"}

    doc = json.loads(json_report.render_report(report))["password_check"]
    assert doc["budget_seconds"] == 0.5 and doc["stages"] == ["empty", "username", "wordlist"]
    assert doc["crypt_calls"] == check.crypt_calls > 0 and doc["wordlist"]["size"] > 10_000
    by_user: dict[str, Any] = {a["user"]: a for a in doc["accounts"]}
    assert by_user["app"]["weak"] and by_user["app"]["test"] == "username"
    assert by_user["carol"]["tried"] == users["carol"].tried and by_user["carol"]["total"] == users["carol"].total

    props = json.loads(sarif.render(report))["runs"][0]["properties"]["passwordCheck"]
    assert props["budgetSeconds"] == 0.5 and props["accounts"][0]["fromCache"] is False

    console = Console(file=io.StringIO(), width=200, record=True)
    table.render_report(report, console)
    text = console.export_text()
    # How many the wordlist stage finds within 0.5 s depends on the machine's load; the empty and user-name tests
    # (two accounts here) do not.
    line = re.search(r"Weak passwords: 6 hash\(es\) \(descrypt, md5crypt, sha512crypt, yescrypt\); empty and "
                     r"user-name tests, then the wordlist for up to 0.5 s: ([0-9]) weak, ([0-9]) not found after "
                     r"[0-9,]+ (to [0-9,]+ )?of [0-9,]+ candidates each", " ".join(text.split()))
    assert line is not None, text
    weak, not_found = int(line.group(1)), int(line.group(2))
    assert weak + not_found == 6 and weak >= 2
    for out in (text, json_report.render_report(report), sarif.render(report)):
        for secret in planted.secrets:
            assert secret not in out
