from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from hullscan.model import Package
from hullscan.report import cyclonedx

from . import DIFF, MANIFEST, SCRIPT_NAME, UNICODE_NAME, VENV1, VENV2, empty_facts, sample_facts


def _valid(text: str) -> None:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    assert errors is None, [str(e) for e in errors]


def _doc() -> dict[str, Any]:
    text = cyclonedx.render(sample_facts())
    _valid(text)
    return json.loads(text)  # type: ignore[no-any-return]


def _component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in doc["components"] if c["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def _props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def test_validates_against_the_1_6_schema() -> None:
    doc = _doc()
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    _valid(cyclonedx.render(empty_facts()))


def test_the_validator_does_reject_broken_documents() -> None:
    doc = _doc()
    doc["components"][0]["type"] = "not-a-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is not None


def test_metadata_component_is_the_image() -> None:
    doc = _doc()
    image = doc["metadata"]["component"]
    assert image["type"] == "container"
    assert image["name"] == "registry.example.com:5000/team/app:1.4"
    assert image["version"] == MANIFEST
    assert image["purl"].startswith("pkg:oci/app@sha256")
    assert MANIFEST.split(":")[1] in image["purl"]
    assert "repository_url=registry.example.com:5000/team/app" in image["purl"]
    assert "tag=1.4" in image["purl"] and "arch=arm64" in image["purl"]
    assert {"name": "hullscan"}.items() <= doc["metadata"]["tools"]["components"][0].items()


def test_every_package_is_a_library_with_its_purl() -> None:
    facts = sample_facts()
    doc = _doc()
    libraries = [c for c in doc["components"] if c["type"] == "library"]
    assert len(libraries) == len(facts.packages)
    assert sorted(c["purl"] for c in libraries) == sorted(p.purl for p in facts.packages)
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(set(refs)) == len(refs)
    names = {c["name"] for c in libraries}
    assert {"@angular/core", SCRIPT_NAME, UNICODE_NAME} <= names


def test_shared_purl_gets_distinct_bom_refs() -> None:
    doc = _doc()
    requests = [c for c in doc["components"] if c["name"] == "requests"]
    assert len(requests) == 2
    assert requests[0]["purl"] == requests[1]["purl"] == "pkg:pypi/requests@2.31.0"
    base = "pkg:pypi/requests@2.31.0"
    assert {c["bom-ref"] for c in requests} == {f"{base}|{VENV1}", f"{base}|{VENV2}"}
    assert {_props(c)["hullscan:package:path"] for c in requests} == {VENV1, VENV2}
    # a purl used once is its own bom-ref
    assert _component(doc, "openssl")["bom-ref"] == _component(doc, "openssl")["purl"]


def test_licences() -> None:
    doc = _doc()
    assert _component(doc, "openssl")["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert _component(doc, "musl")["licenses"] == [{"license": {"id": "MIT"}}]  # "mit" fixed up
    assert _component(doc, "glibc")["licenses"] == [{"license": {"name": "GPLv2+ and weird"}}]
    assert _component(doc, "org.apache.logging.log4j:log4j-core")["licenses"] == [{"expression": "Apache-2.0 OR MIT"}]
    assert _component(doc, "six")["licenses"] == [{"expression": "MIT AND (Apache-2.0 OR BSD-2-Clause)"}]
    bash = _component(doc, "bash")["licenses"]
    assert sorted(li["license"]["id"] for li in bash) == ["BSD-4-Clause-UC", "GPL-3.0-or-later"]
    # an expression next to a non-SPDX name: all names (the schema forbids mixing)
    chardet = _component(doc, "chardet")["licenses"]
    assert sorted(li["license"]["name"] for li in chardet) == [
        "Custom Licence v1", "GPL-2.0-only WITH Classpath-exception-2.0"
    ]
    assert "licenses" not in _component(doc, UNICODE_NAME)


def test_licence_mapping_unit() -> None:
    assert cyclonedx.licences([]) == []
    assert cyclonedx.licences(["  ", "MIT", "MIT"]) == cyclonedx.licences(["MIT"])
    assert cyclonedx.spdx_expression("mit or apache-2.0") == "MIT OR Apache-2.0"
    assert cyclonedx.spdx_expression("GPLv2+ and weird") is None
    assert cyclonedx.spdx_expression("((((") is None


def test_layer_and_package_properties() -> None:
    doc = _doc()
    glibc = _props(_component(doc, "glibc"))
    assert glibc["hullscan:package:path"] == "var/lib/rpm/rpmdb.sqlite"
    assert glibc["hullscan:layer:diff_id"] == DIFF[0]
    assert glibc["hullscan:layer:index"] == "0"
    assert glibc["hullscan:layer:created_by"] == "/bin/sh -c #(nop) ADD file:0a1b in / "
    assert glibc["hullscan:package:epoch"] == "2"
    assert glibc["hullscan:package:source_name"] == "glibc"
    assert _component(doc, "glibc")["supplier"] == {"name": "Red Hat, Inc. (Raleigh)"}
    stdlib = _props(_component(doc, "stdlib"))
    assert "hullscan:layer:index" not in stdlib and stdlib["hullscan:package:ecosystem"] == "golang"


def test_operating_system_and_dependencies() -> None:
    doc = _doc()
    os_component = next(c for c in doc["components"] if c["type"] == "operating-system")
    assert os_component["name"] == "debian" and os_component["version"] == "12"
    root_ref = doc["metadata"]["component"]["bom-ref"]
    root = next(d for d in doc["dependencies"] if d["ref"] == root_ref)
    assert sorted(root["dependsOn"]) == sorted(c["bom-ref"] for c in doc["components"])
    assert len(root["dependsOn"]) == len(sample_facts().packages) + 1


def test_serial_and_timestamp() -> None:
    first, second = cyclonedx.render(sample_facts()), cyclonedx.render(sample_facts())
    assert json.loads(first)["serialNumber"] != json.loads(second)["serialNumber"]
    a = cyclonedx.render(sample_facts(), deterministic=True)
    b = cyclonedx.render(sample_facts(), deterministic=True)
    assert a == b
    assert json.loads(a)["metadata"]["timestamp"].startswith("1970-01-01T00:00:00")
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    c = json.loads(cyclonedx.render(sample_facts(), deterministic=True, timestamp=when))
    assert c["metadata"]["timestamp"].startswith("2024-05-06T07:08:09")
    other = sample_facts()
    other.manifest_digest = "sha256:" + "ef" * 32
    assert json.loads(cyclonedx.render(other, deterministic=True))["serialNumber"] != json.loads(a)["serialNumber"]


@pytest.mark.parametrize("reference", ["/tmp/rootfs", "archive:/x/y.tar"])
def test_no_image_purl_without_a_registry_reference(reference: str) -> None:
    facts = sample_facts()
    facts.reference = reference
    text = cyclonedx.render(facts)
    _valid(text)
    assert "purl" not in json.loads(text)["metadata"]["component"]


def test_unparseable_purl_is_kept_as_a_property() -> None:
    facts = sample_facts()
    facts.packages[0].purl = "not a purl"
    text = cyclonedx.render(facts)
    _valid(text)
    openssl = _component(json.loads(text), "openssl")
    assert "purl" not in openssl
    assert _props(openssl)["hullscan:package:purl"] == "not a purl"


def test_odd_packages_still_validate() -> None:
    facts = empty_facts()
    facts.packages = [
        Package("", "", "npm"),
        Package("x", "1", "npm", purl="not a purl", licenses=["(", "MIT AND", "LicenseRef-a b", ""]),
        Package("x", "1", "npm", purl="not a purl", vendor="()"),
        Package("x", "1", "npm", purl="not a purl", vendor="()"),
    ]
    text = cyclonedx.render(facts)
    _valid(text)
    refs = [c["bom-ref"] for c in json.loads(text)["components"]]
    assert len(set(refs)) == 4
    assert "not a purl||2" in refs
