"""What a scan could not check is impossible to miss, and the CI gate says (and lets the user choose) what it gates
on: driven through the CLI on the demo image and real OSV records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from tests.support.cli import ROOT, hullscan, in_terminal

ALPINE_ONLY = ROOT / "tests" / "vulndb" / "data" / "osv" / "Alpine" / "ALPINE-CVE-2016-0682.json"


def _scan(layout: Path, db: Path, *extra: str, env: dict[str, str], tag: str = "demo") -> tuple[int, str, str]:
    result = hullscan("scan", f"oci:{layout}:{tag}", "--db", str(db), "--skip-db-update", *extra, env=env)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def alpine_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real data, but for no package of the demo image: nothing matches and nothing can be checked."""
    src = tmp_path_factory.mktemp("alpine-records")
    shutil.copy(ALPINE_ONLY, src)
    db = src / "alpine.db"
    assert hullscan("db", "import", str(src), "--db", str(db)).returncode == 0
    return db


# -- coverage -------------------------------------------------------------------------------------------------------


def test_unchecked_packages_in_the_header_and_the_summary(demo_layout: Path, demo_db: Path,
                                                          user_env: dict[str, str]) -> None:
    code, screen = in_terminal(["scan", f"oci:{demo_layout}:demo", "--db", str(demo_db), "--skip-db-update",
                                "--scanners", "vuln"], columns=100, env=user_env)
    assert code == 0, screen
    head = screen[:screen.index("Package ")]
    gap = "27 of 35 packages (Debian:12: 27, no vulnerability data)"
    assert f"Not checked       {gap}" in head  # beside the database's age, before any finding
    assert f"Not checked for vulnerabilities: {gap}" in screen[screen.index("Total: "):]


def test_unchecked_packages_are_a_property_of_every_machine_format(demo_layout: Path, demo_db: Path,
                                                                   user_env: dict[str, str]) -> None:
    gap = {"scope": "Debian:12", "packages": 27, "reason": "no vulnerability data"}
    args = ["--scanners", "vuln"]
    _, out, _ = _scan(demo_layout, demo_db, *args, "-f", "json", env=user_env)
    coverage = json.loads(out)["coverage"]
    assert coverage == {"complete": False, "packages": 35, "checked": 8, "unchecked": 27, "gaps": [gap]}
    _, out, _ = _scan(demo_layout, demo_db, *args, "-f", "sarif", env=user_env)
    assert json.loads(out)["runs"][0]["properties"]["coverage"] == coverage
    _, out, _ = _scan(demo_layout, demo_db, *args, "-f", "cyclonedx", env=user_env)
    props = {p["name"]: p["value"] for p in json.loads(out)["metadata"]["properties"]}
    assert props["hullscan:vulnerabilities:complete"] == "false"
    assert props["hullscan:vulnerabilities:unchecked"] == "27"
    assert props["hullscan:vulnerabilities:unchecked:Debian:12"] == "27 (no vulnerability data)"
    _, out, _ = _scan(demo_layout, demo_db, *args, "-f", "html", env=user_env)
    assert "Not checked" in out and "27 of 35 packages" in out


def test_fail_on_unchecked(demo_layout: Path, demo_db: Path, tmp_path: Path, user_env: dict[str, str]) -> None:
    code, _, _ = _scan(demo_layout, demo_db, "--scanners", "vuln", "-q", env=user_env)
    assert code == 0  # no gate asked for
    code, _, _ = _scan(demo_layout, demo_db, "--scanners", "vuln", "--fail-on-unchecked", env=user_env)
    assert code == 1
    # With --exit-code the gate's code is used, and unchecked packages trip it whatever the findings.
    code, _, _ = _scan(demo_layout, demo_db, "--scanners", "vuln", "--severity", "CRITICAL", "--ignore-unfixed",
                       "--exit-code", "5", "--fail-on-unchecked", env=user_env)
    assert code == 5
    # An image whose every package could be checked passes.
    meta = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n"
    layout = write_oci_layout(tmp_path / "oci", Image([Layer(layer_tar([
        ("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", meta)]))]), tag="py")
    code, out, _ = _scan(layout, demo_db, "--scanners", "vuln", "--fail-on-unchecked", "-f", "json", env=user_env,
                         tag="py")
    assert json.loads(out)["coverage"]["complete"] is True and code == 0


# -- what the gate gates on -----------------------------------------------------------------------------------------


def test_exit_code_counts_every_item_unless_told(demo_layout: Path, alpine_db: Path,
                                                  user_env: dict[str, str]) -> None:
    """The issue's CI user: no vulnerability at all, yet an end-of-life (compliance) finding failed the gate."""
    base = ["--scanners", "vuln,compliance", "--exit-code", "7", "-q"]
    code, out, _ = _scan(demo_layout, alpine_db, *base, "-f", "json", env=user_env)
    doc = json.loads(out)
    assert doc["vulnerabilities"] == [] and {c["item"] for c in doc["checks"]} == {"compliance"}
    assert code == 7  # the documented default: every item that ran counts, as with Trivy
    code, _, _ = _scan(demo_layout, alpine_db, *base, "--exit-code-scanners", "vuln", env=user_env)
    assert code == 0
    code, _, _ = _scan(demo_layout, alpine_db, *base, "--exit-code-scanners", "vuln,compliance", env=user_env)
    assert code == 7


def test_exit_code_scanners_mistakes_fail_before_the_scan(demo_layout: Path, alpine_db: Path,
                                                          user_env: dict[str, str]) -> None:
    code, _, err = _scan(demo_layout, alpine_db, "--scanners", "vuln", "--exit-code", "1",
                         "--exit-code-scanners", "secret", env=user_env)
    assert code == 2 and "secret does not run in this scan" in err
    code, _, err = _scan(demo_layout, alpine_db, "--exit-code-scanners", "vuln", env=user_env)
    assert code == 2 and "--exit-code" in err
    code, _, err = _scan(demo_layout, alpine_db, "--exit-code", "1", "--exit-code-scanners", "vulns", env=user_env)
    assert code == 2 and "unknown scanner vulns" in err
    assert not Path(user_env["HULLSCAN_CACHE_DIR"]).exists()  # no layer was read


def test_help_says_what_the_gate_counts() -> None:
    text = " ".join(hullscan("scan", "--help", env={"COLUMNS": "80"}).stdout.split())
    assert "Every scan item's findings count" in text and "--exit-code-scanners" in text
    assert "--fail-on-unchecked" in text


# -- routine warnings -----------------------------------------------------------------------------------------------


def _hard_linked(tmp: Path) -> Path:
    """A layer with a hard link whose target no analyzer read, as Debian images have: the copyright file of one
    package linked to a file elsewhere."""
    copyright_text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nLicense: MIT\n"
    files = [("etc/os-release", "ID=debian\nVERSION_ID=12\n"), ("usr/share/common-licenses/Expat", copyright_text),
             FileSpec("usr/share/doc/libfoo1/copyright", type="h", linkname="usr/share/common-licenses/Expat")]
    return write_oci_layout(tmp / "oci", Image([Layer(layer_tar(files))]), tag="links")


def test_routine_warnings_only_in_verbose_mode(tmp_path: Path, user_env: dict[str, str]) -> None:
    layout = _hard_linked(tmp_path)
    args = ["scan", f"oci:{layout}:links", "--scanners", "file"]
    plain = hullscan(*args, env=user_env)
    assert plain.returncode == 0, plain.stderr
    assert "HARDLINK_SKIPPED: hard link" not in plain.stdout and "Warnings" not in plain.stdout
    assert "1 routine warning (HARDLINK_SKIPPED) not shown; --verbose shows them" in plain.stdout
    verbose = hullscan(*args, "--verbose", env=user_env)
    assert "Warnings (1)" in verbose.stdout
    assert "! HARDLINK_SKIPPED: hard link to usr/share/common-licenses/Expat was not analysed" in verbose.stdout
    doc: dict[str, Any] = json.loads(hullscan(*args, "-f", "json", env=user_env).stdout)
    assert [n["code"] for n in doc["notes"]] == ["HARDLINK_SKIPPED"]  # programs always get every warning
