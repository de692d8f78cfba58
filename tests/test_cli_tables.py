"""Tables as a user sees them: on an 80-column terminal and in a pipe with COLUMNS=100, no version, package name, id
or path is broken across lines; an advisory found in several places of an image is one row naming the places."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout
from tests.report import assert_fits
from tests.support.cli import ROOT, hullscan, in_terminal


def _scan(layout: Path, db: Path, *extra: str, tag: str = "demo") -> list[str]:
    return ["scan", f"oci:{layout}:{tag}", "--db", str(db), "--skip-db-update", *extra]


def _tokens(doc: dict[str, Any]) -> set[str]:
    """Every name, version, id and path the table shows, from the JSON report of the same scan."""
    tokens: set[str] = set()
    for v in doc["vulnerabilities"]:
        tokens |= {v["package"]["name"], v["installed_version"], v["id"], *v["fixed_versions"]}
    for c in doc["checks"]:
        tokens |= {c["id"], f"{c['path']}:{c['line']}" if c["line"] else c["path"]}
    return {t for t in tokens if t}


def _json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = hullscan(*args, "-f", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_an_80_column_terminal_gets_every_token_whole(demo_layout: Path, demo_db: Path,
                                                     user_env: dict[str, str]) -> None:
    args = _scan(demo_layout, demo_db)
    doc = _json(args, user_env)
    assert len(doc["vulnerabilities"]) > 20 and len(doc["checks"]) > 10  # a table with long names and titles
    code, screen = in_terminal(args, columns=80, env=user_env)
    assert code == 0, screen
    assert_fits(screen, 80, _tokens(doc))
    assert "Traceback" not in screen


def test_a_pipe_honours_columns(demo_layout: Path, demo_db: Path, user_env: dict[str, str]) -> None:
    args = _scan(demo_layout, demo_db)
    tokens = _tokens(_json(args, user_env))
    narrow = hullscan(*args, env={**user_env, "COLUMNS": "100"})
    assert narrow.returncode == 0, narrow.stderr
    assert_fits(narrow.stdout, 100, tokens)
    assert max(len(line) for line in narrow.stdout.splitlines()) > 80  # the room is used, not 80 columns
    # Without COLUMNS a pipe has no width: 160, so paths and purls rarely leave their row.
    wide = hullscan(*args, env=user_env)
    assert_fits(wide.stdout, 160, tokens)
    assert max(len(line) for line in wide.stdout.splitlines()) > 100


def _three_venvs(tmp: Path) -> Path:
    """requests 2.19.0 in two virtualenvs of one layer and a third of the next (real metadata fields)."""
    def dist(venv: str) -> tuple[str, str]:
        return (f"opt/{venv}/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\nLicense: Apache 2.0\n")

    image = Image([Layer(layer_tar([dist("api"), dist("worker")]), "COPY venvs /opt"),
                   Layer(layer_tar([dist("tools")]), "RUN python -m venv /opt/tools")])
    return write_oci_layout(tmp / "oci", image, tag="venvs")


def test_an_advisory_in_several_places_is_one_row_with_its_paths(tmp_path: Path, user_env: dict[str, str]) -> None:
    records = tmp_path / "records"
    records.mkdir()
    for rid in ("PYSEC-2018-28", "PYSEC-2023-74"):  # real OSV records for requests < 2.20 and < 2.31
        shutil.copy(ROOT / "demo" / "osv" / "PyPI" / f"{rid}.json", records)
    db = tmp_path / "vuln.db"
    assert hullscan("db", "import", str(records), "--db", str(db), env=user_env).returncode == 0
    layout = _three_venvs(tmp_path)
    args = _scan(layout, db, "--scanners", "vuln", tag="venvs")
    doc = _json(args, user_env)
    assert len(doc["vulnerabilities"]) == 6  # the JSON keeps one finding per place
    assert {v["package"]["path"].split("/")[1] for v in doc["vulnerabilities"]} == {"api", "worker", "tools"}

    code, screen = in_terminal(args, columns=80, env=user_env)
    assert code == 0, screen
    rows = [line for line in screen.splitlines() if line.startswith("requests  ")]
    # One row per advisory, not per place, saying how many places and which layers.
    assert [re.findall(r"CVE-\d+-\d+", row) for row in rows] == [["CVE-2018-18074"], ["CVE-2023-32681"]]
    assert all(row.split()[-3:] == ["3", "places", "0,1"] for row in rows), rows
    block = screen[screen.index("requests 2.19.0 is in 3 places:"):].split("\n\n")[0]
    places = re.findall(r"^  (\S+)\s+\(layer\s(\d+)\)", block, re.MULTILINE)  # the layer may wrap to its own line
    expected = [("opt/api/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA", "0"),
                ("opt/tools/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA", "1"),
                ("opt/worker/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA", "0")]
    assert places == expected
    assert "6 findings in 2 rows" in screen.replace("\n", " ")
    assert_fits(screen, 80, _tokens(doc) | {path for path, _ in expected})
