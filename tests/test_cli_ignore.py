"""The ignore file applies to every scan item's findings (secret rule ids, malware rule ids, check ids, not only
vulnerability ids), optionally only at some paths, and says which entries matched nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli import hullscan

SCANNERS = "vuln,secret,malware,baseline"


def _scan(layout: Path, db: Path, env: dict[str, str], cwd: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = hullscan("scan", f"oci:{layout}:demo", "--db", str(db), "--skip-db-update", "--scanners", SCANNERS,
                      "-f", "json", *extra, env=env, cwd=cwd)
    return result.returncode, json.loads(result.stdout) if result.stdout.startswith("{") else {}, result.stderr


def _ids(doc: dict[str, Any]) -> set[str]:
    return {c["id"] for c in doc["checks"]} | {v["id"] for v in doc["vulnerabilities"]}


def test_hullscanignore_is_read_and_applies_to_every_item(demo_layout: Path, demo_db: Path, tmp_path: Path,
                                                         user_env: dict[str, str]) -> None:
    _, before, _ = _scan(demo_layout, demo_db, user_env, tmp_path)
    assert {"aws-secret-access-key", "aws-access-key-id", "image-no-healthcheck", "CVE-2021-44228"} <= _ids(before)
    (tmp_path / ".hullscanignore").write_text(
        "aws-secret-access-key               # rotated; the image is a fixture\n"
        "image-no-healthcheck exp:2999-01-01 # Kubernetes probes it\n"
        "aws-access-key-id path:other/*      # another place: does not apply here\n"
        "CVE-2021-44228 path:srv/app/lib/*   # log4j is not reachable\n"
        "CVE-2099-0001                       # a typo\n")
    code, doc, err = _scan(demo_layout, demo_db, user_env, tmp_path)
    assert code == 0, err
    assert _ids(before) - _ids(doc) == {"aws-secret-access-key", "image-no-healthcheck", "CVE-2021-44228"}
    assert "aws-access-key-id" in _ids(doc)
    ignored = {c["id"]: c for c in doc["ignored_checks"]}
    assert ignored["aws-secret-access-key"]["reason"] == "rotated; the image is a fixture"
    assert ignored["aws-secret-access-key"]["path"] == "srv/app/.env"
    assert ignored["image-no-healthcheck"]["expires"] == "2999-01-01"
    assert [v["id"] for v in doc["ignored"]] == ["CVE-2021-44228"]
    unused = sorted(n["message"] for n in doc["notes"] if n["code"] == "IGNORE_UNUSED")
    assert unused == [
        "ignore entry AWS-ACCESS-KEY-ID at other/* matched no finding of the scan items that ran (vuln, secret, "
        "malware, baseline); check the id",
        "ignore entry CVE-2099-0001 matched no finding of the scan items that ran (vuln, secret, malware, baseline); "
        "check the id",
    ]
    table = hullscan("scan", f"oci:{demo_layout}:demo", "--db", str(demo_db), "--skip-db-update", "--scanners",
                     SCANNERS, env={**user_env, "COLUMNS": "120"}, cwd=tmp_path).stdout
    assert "Ignored: 3" in table
    assert "aws-secret-access-key at srv/app/.env (sensitive information; rotated; the image is a fixture)" in table
    assert "! IGNORE_UNUSED: ignore entry CVE-2099-0001" in table


def test_yaml_ignore_file_by_item_and_path(demo_layout: Path, demo_db: Path, tmp_path: Path,
                                           user_env: dict[str, str]) -> None:
    ignore = tmp_path / "waivers.yaml"
    ignore.write_text(
        "secrets:\n"
        "  - id: aws-access-key-id\n"
        "    paths: [/srv/app/.env]\n"
        "    statement: test fixture\n"
        "malware:\n"
        "  - id: mal-eicar-test-file\n"
        "misconfigurations:\n"
        "  - id: sshd-permit-root-login\n"
        "    expired_at: 2001-01-01\n"
        "vulnerabilities:\n"
        "  - id: image-no-healthcheck   # a check id in the vulnerabilities section matches nothing\n")
    code, doc, err = _scan(demo_layout, demo_db, user_env, tmp_path, "--ignore-file", str(ignore))
    assert code == 0, err
    ids = _ids(doc)
    assert "aws-access-key-id" not in ids and "mal-eicar-test-file" not in ids
    assert {"sshd-permit-root-login", "image-no-healthcheck", "aws-secret-access-key"} <= ids
    assert {c["id"]: c["reason"] for c in doc["ignored_checks"]} == {"aws-access-key-id": "test fixture",
                                                                     "mal-eicar-test-file": ""}
    notes = {n["code"]: n for n in doc["notes"] if n["code"].startswith("IGNORE_")}
    assert "SSHD-PERMIT-ROOT-LOGIN expired on 2001-01-01" in notes["IGNORE_EXPIRED"]["message"]
    assert notes["IGNORE_UNUSED"]["message"].startswith("ignore entry IMAGE-NO-HEALTHCHECK matched no finding")
    assert notes["IGNORE_UNUSED"]["path"] == f"{ignore} (vulnerabilities entry 1)"


def test_ignore_file_mistakes_name_the_file_and_line(demo_layout: Path, demo_db: Path, tmp_path: Path,
                                                     user_env: dict[str, str]) -> None:
    bad = tmp_path / ".hullscanignore"
    bad.write_text("CVE-2021-44228\naws-access-key-id until:2025-01-01\n")
    code, _, err = _scan(demo_layout, demo_db, user_env, tmp_path)
    assert code == 2
    assert f"ignore file {bad.name}, line 2: unexpected 'until:2025-01-01'" in err
    bad.unlink()
    wrong = tmp_path / "ignore.yaml"
    wrong.write_text("secret:\n  - id: aws-access-key-id\n")
    code, _, err = _scan(demo_layout, demo_db, user_env, tmp_path, "--ignore-file", str(wrong))
    assert code == 2 and "unknown section 'secret'" in err and "secrets" in err
    assert not Path(user_env["HULLSCAN_CACHE_DIR"]).exists()  # checked before any layer is read
