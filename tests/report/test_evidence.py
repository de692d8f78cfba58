"""Evidence in the reports: which file and which method produced each package, and the dev-dependency flag.

The image is a root filesystem built from real metadata (tests/fixtures/inventory): a status.d entry, a pnpm
lock file with its package manager's document, a jar without pom.properties and a wheel with only a RECORD.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from hullscan.model import ImageFacts, Package
from hullscan.report import cyclonedx, json_report
from tests.analyzers.debs import scan_root

INVENTORY = Path(__file__).parent.parent / "fixtures" / "inventory"


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> ImageFacts:
    tmp = tmp_path_factory.mktemp("evidence")
    root = tmp / "root"
    (root / "var/lib/dpkg/status.d").mkdir(parents=True)
    shutil.copy(INVENTORY / "dpkg/status.d/deinstall", root / "var/lib/dpkg/status.d/kernel")
    (root / "srv/app").mkdir(parents=True)
    shutil.copy(INVENTORY / "pnpm-multi-doc/pnpm-lock.yaml", root / "srv/app/pnpm-lock.yaml")
    shutil.copytree(INVENTORY / "python/usr", root / "usr")
    jar = root / "srv/app/lib/jackson-core.jar"
    jar.parent.mkdir(parents=True)
    meta = INVENTORY / "java/jackson-core-2.15.2"
    with zipfile.ZipFile(jar, "w") as zf:
        for p in sorted(meta.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(meta).as_posix())
    found = scan_root(root, tmp / "work")
    found.packages.append(Package("redis", "7.0.15", "binary", path="usr/local/bin/redis-server",
                                  purl="pkg:generic/redis@7.0.15",
                                  cpe="cpe:2.3:a:redis:redis:7.0.15:*:*:*:*:*:*:*", method="binary-signature"))
    return found


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items}


def test_json_says_which_file_and_method(facts: ImageFacts) -> None:
    doc = json.loads(json_report.render(facts))
    got = by_name(doc["packages"])
    assert got["linux-image-6.14.0-1012-aws"]["evidence"] == {"path": "var/lib/dpkg/status.d/kernel",
                                                              "method": "package-database"}
    assert got["minimist"]["evidence"] == {"path": "srv/app/pnpm-lock.yaml", "method": "lock-file"}
    assert got["com.fasterxml.jackson.core:jackson-core"]["evidence"]["method"] == "pom-xml"
    assert got["six"]["evidence"]["method"] == "record"
    assert got["redis"]["evidence"]["method"] == "binary-signature"
    assert got["redis"]["cpe"] == "cpe:2.3:a:redis:redis:7.0.15:*:*:*:*:*:*:*"
    assert all(p["evidence"]["method"] for p in doc["packages"])


def test_json_carries_the_dev_flag(facts: ImageFacts) -> None:
    got = by_name(json.loads(json_report.render(facts))["packages"])
    assert got["pnpm"]["dev"] is True and got["minimist"]["dev"] is False


def test_cyclonedx_evidence_scope_and_cpe(facts: ImageFacts) -> None:
    text = cyclonedx.render(facts)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    components = by_name(json.loads(text)["components"])
    kernel = components["linux-image-6.14.0-1012-aws"]["evidence"]
    assert kernel["occurrences"] == [{"location": "var/lib/dpkg/status.d/kernel"}]
    [identity] = kernel["identity"]
    assert identity["confidence"] == 1 and identity["methods"][0]["technique"] == "manifest-analysis"
    redis = components["redis"]
    assert redis["cpe"] == "cpe:2.3:a:redis:redis:7.0.15:*:*:*:*:*:*:*"
    [method] = redis["evidence"]["identity"][0]["methods"]
    assert (method["technique"], method["confidence"]) == ("binary-analysis", 0.5)
    # a weak identification is visibly weaker than a strong one
    jar = components["com.fasterxml.jackson.core:jackson-core"]["evidence"]["identity"][0]
    assert jar["confidence"] < identity["confidence"]
    assert components["pnpm"]["scope"] == "optional" and "scope" not in components["minimist"]
