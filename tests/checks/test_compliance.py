"""Licence classification, expressions, the licence policy file and the compliance detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from hullscan.checks.compliance import (
    Category,
    ComplianceDetector,
    LicenceDetector,
    LicencePolicy,
    PolicyError,
    categories_summary,
    classify,
    classify_id,
    classify_package,
)
from hullscan.checks.eol import EolDetector
from hullscan.detectors import DetectContext
from hullscan.model import ImageFacts, OSInfo, Package

TABLE = {
    Category.FORBIDDEN: ["AGPL-3.0-only", "AGPL-3.0-or-later", "AGPL-1.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-3.0",
                         "Commons-Clause", "SSPL-1.0", "WTFPL"],
    Category.RESTRICTED: ["GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0+", "LGPL-2.1-only", "LGPL-3.0-or-later",
                          "CC-BY-SA-4.0", "OSL-3.0", "Sleepycat", "GFDL-1.3-only", "EUPL-1.2"],
    Category.RECIPROCAL: ["MPL-2.0", "MPL-1.1", "EPL-2.0", "EPL-1.0", "CDDL-1.0", "CDDL-1.1", "Ruby"],
    Category.NOTICE: ["MIT", "BSD-3-Clause", "BSD-2-Clause", "Apache-2.0", "ISC", "Zlib", "PSF-2.0",
                      "PostgreSQL", "OpenSSL", "CC-BY-4.0", "BSL-1.0"],
    Category.PERMISSIVE: ["MIT-0", "FSFAP"],
    Category.UNENCUMBERED: ["CC0-1.0", "Unlicense", "0BSD"],
    Category.UNKNOWN: ["LicenseRef-proprietary", "Foo-License", "see COPYING"],
}


@pytest.mark.parametrize(("licence", "category"),
                         [(lic, cat) for cat, ids in TABLE.items() for lic in ids])
def test_classification_table(licence: str, category: Category) -> None:
    assert classify(licence) is category


def test_ids_are_case_insensitive_and_aliases_normalised() -> None:
    assert classify_id("mit") is Category.NOTICE
    assert classify("apache license 2.0") is Category.NOTICE
    assert classify("GPLv2+") is Category.RESTRICTED
    assert classify("public domain") is Category.UNENCUMBERED
    assert classify("") is Category.UNKNOWN


@pytest.mark.parametrize(("expression", "category"), [
    ("MIT OR GPL-2.0-only", Category.NOTICE),  # the recipient may pick MIT
    ("MIT AND GPL-2.0-only", Category.RESTRICTED),  # both apply
    ("GPL-2.0-or-later OR AGPL-3.0-only", Category.RESTRICTED),
    ("Apache-2.0 AND AGPL-3.0-only", Category.FORBIDDEN),
    ("MIT OR AGPL-3.0-only", Category.NOTICE),
    ("CC0-1.0 OR MIT", Category.UNENCUMBERED),
    ("(MIT OR Apache-2.0) AND MPL-2.0", Category.RECIPROCAL),
    ("MIT AND (GPL-3.0-only OR MPL-2.0)", Category.RECIPROCAL),
    ("GPL-2.0-only WITH Classpath-exception-2.0", Category.RESTRICTED),
    ("MIT OR Foo-License", Category.NOTICE),  # a known acceptable option beats an unknown one
    ("MIT AND Foo-License", Category.UNKNOWN),  # an unknown part needs a look
    ("AGPL-3.0-only AND Foo-License", Category.FORBIDDEN),
    ("AGPL-3.0-only OR Foo-License", Category.UNKNOWN),
    ("mit and bsd-3-clause", Category.NOTICE),  # rpm-style lower-case operators
    ("GPLv2+ and LGPLv2+ with exceptions", Category.RESTRICTED),  # rpm text that is not quite SPDX
    ("perl", Category.NOTICE),  # Artistic-1.0-Perl OR GPL-1.0-or-later
])
def test_expressions(expression: str, category: Category) -> None:
    assert classify(expression) is category


def test_package_licences_all_apply() -> None:
    assert classify_package(Package("p", "1", "deb", licenses=["MIT", "GPL-2.0-only"])) is Category.RESTRICTED
    assert classify_package(Package("p", "1", "deb", licenses=[])) is None


def _pkg(name: str, licence: str, layer: int = 1, eco: str = "pypi") -> Package:
    return Package(name, "1.0", eco, path=f"usr/lib/python3/site-packages/{name}.dist-info/METADATA",
                   licenses=[licence], layer_index=layer, layer_diff_id=f"sha256:{layer:064d}",
                   layer_created_by=f"RUN pip install {name}")


def _facts(*pkgs: Package) -> ImageFacts:
    return ImageFacts(reference="test", packages=list(pkgs))


def test_default_policy_reports_forbidden_with_layer_and_path() -> None:
    facts = _facts(_pkg("agpl-thing", "AGPL-3.0-only", layer=2), _pkg("mit-thing", "MIT"),
                   _pkg("dual", "MIT OR AGPL-3.0-only"), _pkg("gpl-thing", "GPL-2.0-only"))
    findings = LicenceDetector().detect(facts, DetectContext())
    assert [(f.id, f.metadata["package"]) for f in findings] == [("licence-forbidden", "agpl-thing")]
    f = findings[0]
    assert f.item == "compliance" and f.severity == "HIGH"
    assert f.layer_index == 2 and f.layer_diff_id == f"sha256:{2:064d}" and "pip install" in f.layer_created_by
    assert f.path.endswith("agpl-thing.dist-info/METADATA")
    assert f.metadata["licence"] == "AGPL-3.0-only" and f.metadata["category"] == "forbidden"
    # every package gets its category
    assert {p.name: p.metadata["licence_category"] for p in facts.packages} == {
        "agpl-thing": "forbidden", "mit-thing": "notice", "dual": "notice", "gpl-thing": "restricted"}


def test_policy_file_forbidden_and_allowed(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("""
forbidden:
  - GPL-3.0          # the whole family: -only and -or-later
  - forbidden
allowed: [notice, unencumbered, MPL-2.0]
severity:
  restricted: CRITICAL
  not-allowed: LOW
exceptions: [pypi/blessed-gpl]
""")
    facts = _facts(_pkg("gpl3", "GPL-3.0-or-later"), _pkg("lgpl", "LGPL-2.1-only"), _pkg("mit", "MIT"),
                   _pkg("mpl", "MPL-2.0"), _pkg("epl", "EPL-2.0"), _pkg("choice", "GPL-3.0-only OR MIT"),
                   _pkg("cc0", "CC0-1.0"), _pkg("blessed-gpl", "GPL-3.0-only"))
    findings = LicenceDetector().detect(facts, DetectContext(licence_policy=policy))
    got = {f.metadata["package"]: (f.id, f.severity) for f in findings}
    assert got == {"gpl3": ("licence-forbidden", "CRITICAL"), "lgpl": ("licence-not-allowed", "LOW"),
                   "epl": ("licence-not-allowed", "LOW")}
    assert "GPL-3.0-or-later" in findings[0].title


def test_policy_exact_id_and_glob() -> None:
    only = LicencePolicy.from_dict({"forbidden": ["GPL-3.0-only"]})
    glob = LicencePolicy.from_dict({"forbidden": ["CC-BY-*"]})
    facts = _facts(_pkg("a", "GPL-3.0-only"), _pkg("b", "GPL-3.0-or-later"), _pkg("c", "CC-BY-SA-4.0"))
    assert [f.metadata["package"] for f in LicenceDetector(only).detect(facts)] == ["a"]
    assert [f.metadata["package"] for f in LicenceDetector(glob).detect(facts)] == ["c"]


def test_empty_forbidden_list_turns_default_off() -> None:
    policy = LicencePolicy.from_dict({"forbidden": [], "unknown": "ignore"})
    assert LicenceDetector(policy).detect(_facts(_pkg("x", "AGPL-3.0-only"), _pkg("y", "Foo"))) == []


def test_unknown_licences_summarised_by_default_and_each_on_request() -> None:
    pkgs = [_pkg(f"u{i}", f"LicenseRef-custom-{i}") for i in range(15)] + [_pkg("no-licence", "")]
    pkgs[-1].licenses = []
    summary = LicenceDetector().detect(_facts(*pkgs))
    assert len(summary) == 1
    assert summary[0].id == "licence-unknown" and summary[0].severity == "LOW"
    assert summary[0].metadata["count"] == "15" and "5 more" in summary[0].description
    each = LicenceDetector(LicencePolicy.from_dict({"unknown": "each"})).detect(_facts(*pkgs))
    assert len(each) == 15 and {f.id for f in each} == {"licence-unknown"}


@pytest.mark.parametrize("text", [
    "forbidden: AGPL\nbanned: [x]\n",
    "severity: {forbidden: SEVERE}\n",
    "severity: {sometimes: HIGH}\n",
    "unknown: loud\n",
    "forbidden: {a: b}\n",
    "- just a list\n",
    "forbidden: [unclosed\n",
])
def test_bad_policy_files_say_what_is_wrong(tmp_path: Path, text: str) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(PolicyError, match=str(p)):
        LicencePolicy.load(p)


def test_empty_policy_file_is_the_default(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("")
    assert LicencePolicy.load(p).forbidden == ["forbidden"]


def test_compliance_detector_adds_end_of_life() -> None:
    import datetime as dt

    facts = _facts(_pkg("agpl", "AGPL-3.0-only"))
    facts.os = OSInfo("debian", "9", "stretch", "Debian GNU/Linux 9 (stretch)", source="etc/os-release")
    det = ComplianceDetector(eol=EolDetector(today=dt.date(2026, 11, 22)))
    assert [f.id for f in det.detect(facts, DetectContext())] == ["os-eol", "licence-forbidden"]


def test_categories_summary() -> None:
    counts = categories_summary([_pkg("a", "MIT"), _pkg("b", "ISC"), _pkg("c", "GPL-2.0-only")])
    assert counts["notice"] == 2 and counts["restricted"] == 1 and counts["forbidden"] == 0


def test_one_word_licences_are_looked_up_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most packages declare one SPDX key: classifying them costs a lookup each, not a parse (a few ms each,
    hundreds per image, on every warm re-scan). The result is the parser's: canonical case, aliases, unknowns."""
    from hullscan import licenses
    from hullscan.checks import compliance

    parses = [0]
    licensing = licenses.spdx_licensing()
    original = licensing.parse

    def counting(*args: object, **kwargs: object) -> object:
        parses[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(licensing, "parse", counting)
    words = ["mit", "Apache-2.0", "bsd-3-clause", "GPL-2.0-ONLY", "LicenseRef-scancode-3dslicer-1.0", "Zlib",
             "SomethingElse-1.0"]
    got = [licenses.normalize.__wrapped__(w) for w in words]  # type: ignore[attr-defined]
    cats = [compliance.parse.__wrapped__(w) for w in words]  # type: ignore[attr-defined]
    assert parses[0] == 0
    assert got == ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-2.0-only", "3D-Slicer-1.0", "Zlib", "SomethingElse-1.0"]
    assert [c.id for c in cats] == got  # type: ignore[union-attr]
    assert licenses.normalize.__wrapped__("MIT OR Apache-2.0") == "MIT OR Apache-2.0" and parses[0] > 0  # type: ignore[attr-defined]
