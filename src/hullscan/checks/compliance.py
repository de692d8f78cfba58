"""Software compliance: licence classification, a licence policy, and (via checks.eol) OS end-of-life.

Every licence is put in one of the categories of Google's licenseclassifier, which Trivy uses too:

    forbidden     may not be used at all (AGPL, non-commercial Creative Commons, Commons Clause, SSPL, ...)
    restricted    strong copyleft: distributing the product requires its source (GPL, LGPL, CC-BY-SA, ...)
    reciprocal    file-level copyleft: changes to the component itself must be published (MPL, EPL, CDDL)
    notice        keep the copyright notice (MIT, BSD, Apache-2.0, ISC, ...)
    permissive    not even a notice is required (MIT-0, FSFAP, ...)
    unencumbered  public domain or "free for any use" (CC0-1.0, Unlicense, 0BSD)
    unknown       not recognised: needs a person to look

An SPDX expression is classified by its structure: for `A OR B` the recipient may pick, so the most
permissive option counts; for `A AND B` both apply, so the most restrictive counts; `A WITH exception`
counts as A. Ordered from least to most restrictive: unencumbered < permissive < notice < reciprocal <
restricted < unknown < forbidden (an unknown option never beats a known acceptable one under OR, and an
unknown part makes an AND unknown unless something is known to be forbidden).

A policy file (`--licence-policy FILE`, YAML) turns classifications into findings:

    forbidden: [forbidden, AGPL-3.0-only, "CC-BY-NC-*"]   # SPDX ids (glob with *) or category names
    allowed: [notice, permissive, unencumbered, MPL-2.0]  # when present, everything else is not allowed
    severity: {restricted: MEDIUM, not-allowed: LOW}      # per category of the hit, or "not-allowed"/"unknown"
    unknown: summary                                      # summary (default) | each | ignore
    exceptions: [busybox, "pypi/some-package"]            # packages exempt from the policy

Without a file the default policy forbids the `forbidden` category (HIGH) and reports unknown licences
as one LOW summary finding rather than one per package (a Debian image has hundreds of packages whose
copyright files are not machine-readable).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.checks.eol import EolDetector
from hullscan.detectors import DetectContext
from hullscan.findings import SEVERITIES, CheckFinding
from hullscan.licenses import normalize, one_word, spdx_licensing
from hullscan.model import ImageFacts, Package


class Category(StrEnum):
    FORBIDDEN = "forbidden"
    RESTRICTED = "restricted"
    RECIPROCAL = "reciprocal"
    NOTICE = "notice"
    PERMISSIVE = "permissive"
    UNENCUMBERED = "unencumbered"
    UNKNOWN = "unknown"


CATEGORIES = tuple(c.value for c in Category)
# Least to most restrictive; see the module docstring for where "unknown" sits.
_RANK = {Category.UNENCUMBERED: 0, Category.PERMISSIVE: 1, Category.NOTICE: 2, Category.RECIPROCAL: 3,
         Category.RESTRICTED: 4, Category.UNKNOWN: 5, Category.FORBIDDEN: 6}

# The table: base SPDX ids (GNU ids without -only/-or-later). Mostly Google licenseclassifier's
# license_type.go lists (as ported to Trivy's pkg/licensing/expression/category.go), plus common SPDX
# ids they lack: SSPL/BUSL/Elastic and the JSON licence's "Good, not Evil" clause are field-of-use
# restrictions (forbidden); GFDL, EUPL and CeCILL are strong copyleft (restricted).
_TABLE_TEXT = {
    Category.FORBIDDEN: """
        AGPL-1.0 AGPL-3.0 Commons-Clause Facebook-2-Clause Facebook-3-Clause Facebook-Examples WTFPL
        SSPL-1.0 BUSL-1.1 Elastic-2.0 JSON
        CC-BY-NC-1.0 CC-BY-NC-2.0 CC-BY-NC-2.5 CC-BY-NC-3.0 CC-BY-NC-4.0
        CC-BY-NC-ND-1.0 CC-BY-NC-ND-2.0 CC-BY-NC-ND-2.5 CC-BY-NC-ND-3.0 CC-BY-NC-ND-4.0
        CC-BY-NC-SA-1.0 CC-BY-NC-SA-2.0 CC-BY-NC-SA-2.5 CC-BY-NC-SA-3.0 CC-BY-NC-SA-4.0""",
    Category.RESTRICTED: """
        BCL GPL-1.0 GPL-2.0 GPL-3.0 LGPL-2.0 LGPL-2.1 LGPL-3.0 LGPLLR NPL-1.0 NPL-1.1
        OSL-1.0 OSL-1.1 OSL-2.0 OSL-2.1 OSL-3.0 QPL-1.0 Sleepycat
        GPL-2.0-with-autoconf-exception GPL-2.0-with-bison-exception GPL-2.0-with-classpath-exception
        GPL-2.0-with-font-exception GPL-2.0-with-GCC-exception GPL-3.0-with-autoconf-exception
        GPL-3.0-with-GCC-exception
        CC-BY-ND-1.0 CC-BY-ND-2.0 CC-BY-ND-2.5 CC-BY-ND-3.0 CC-BY-ND-4.0
        CC-BY-SA-1.0 CC-BY-SA-2.0 CC-BY-SA-2.5 CC-BY-SA-3.0 CC-BY-SA-4.0
        GFDL-1.1 GFDL-1.2 GFDL-1.3 GFDL-1.1-invariants GFDL-1.1-no-invariants GFDL-1.2-invariants
        GFDL-1.2-no-invariants GFDL-1.3-invariants GFDL-1.3-no-invariants
        EUPL-1.0 EUPL-1.1 EUPL-1.2 CECILL-1.0 CECILL-1.1 CECILL-2.0 CECILL-2.1""",
    Category.RECIPROCAL: """
        APSL-1.0 APSL-1.1 APSL-1.2 APSL-2.0 CDDL-1.0 CDDL-1.1 CPL-1.0 EPL-1.0 EPL-2.0 FreeImage IPL-1.0
        MPL-1.0 MPL-1.1 MPL-2.0 MPL-2.0-no-copyleft-exception Ruby MS-RL ErlPL-1.1 CPAL-1.0 CECILL-C""",
    Category.NOTICE: """
        AFL-1.1 AFL-1.2 AFL-2.0 AFL-2.1 AFL-3.0 Apache-1.0 Apache-1.1 Apache-2.0
        Artistic-1.0-cl8 Artistic-1.0-Perl Artistic-1.0 Artistic-2.0 BSL-1.0
        BSD-1-Clause BSD-2-Clause BSD-2-Clause-FreeBSD BSD-2-Clause-NetBSD BSD-2-Clause-Patent BSD-2-Clause-Views
        BSD-3-Clause BSD-3-Clause-Attribution BSD-3-Clause-Clear BSD-3-Clause-LBNL BSD-3-Clause-Modification
        BSD-3-Clause-No-Nuclear-License BSD-3-Clause-No-Nuclear-Warranty BSD-3-Clause-Open-MPI
        BSD-4-Clause BSD-4-Clause-UC BSD-Protection BSD-Source-Code
        CC-BY-1.0 CC-BY-2.0 CC-BY-2.5 CC-BY-3.0 CC-BY-4.0 FTL ISC ImageMagick Libpng libpng-2.0 Lil-1.0
        Linux-OpenIB LPL-1.02 LPL-1.0 MS-PL MIT MIT-CMU MIT-Modern-Variant MIT-open-group NCSA OpenSSL
        PHP-3.01 PHP-3.0 PIL Python-2.0 Python-2.0.1 Python-2.0-complete PSF-2.0 PostgreSQL
        SGI-B-1.0 SGI-B-1.1 SGI-B-2.0 Unicode-DFS-2015 Unicode-DFS-2016 Unicode-TOU Unicode-3.0 UPL-1.0
        W3C-19980720 W3C-20150513 W3C X11 Xnet Zend-2.0 zlib-acknowledgement Zlib ZPL-1.1 ZPL-2.0 ZPL-2.1
        curl HPND HPND-sell-variant bzip2-1.0.5 bzip2-1.0.6 OFL-1.0 OFL-1.1 ICU NTP Vim Beerware IJG MirOS
        Spencer-86 Spencer-94 Spencer-99 TCL SMLNJ Info-ZIP OLDAP-2.8 NAIST-2003 X11-distribute-modifications-variant
        GD Boehm-GC""",
    Category.PERMISSIVE: """
        MIT-0 FSFAP FSFUL FSFULLR FSFULLRWD""",
    Category.UNENCUMBERED: """
        CC0-1.0 Unlicense 0BSD PDDL-1.0 blessing CC-PDDC SAX-PD LicenseRef-public-domain public-domain""",
}
TABLE: dict[str, Category] = {lic.lower(): cat for cat, text in _TABLE_TEXT.items() for lic in text.split()}
# Families not spelled out above, by prefix (order matters: NC before ND/SA before plain CC-BY).
_PREFIXES = (("cc-by-nc-", Category.FORBIDDEN), ("cc-by-nd-", Category.RESTRICTED), ("cc-by-sa-", Category.RESTRICTED),
             ("cc-by-", Category.NOTICE), ("agpl-", Category.FORBIDDEN), ("lgpl-", Category.RESTRICTED),
             ("gpl-", Category.RESTRICTED), ("gfdl-", Category.RESTRICTED), ("mpl-", Category.RECIPROCAL),
             ("epl-", Category.RECIPROCAL), ("bsd-", Category.NOTICE), ("apache-", Category.NOTICE))


def base_id(spdx_id: str) -> str:
    """`GPL-2.0-or-later` -> `GPL-2.0`; `LGPL-2.1+` -> `LGPL-2.1`; other ids unchanged."""
    s = spdx_id.strip()
    for suffix in ("-or-later", "-only", "+"):
        if s.lower().endswith(suffix):
            return s[: -len(suffix)]
    return s


def classify_id(spdx_id: str) -> Category:
    """The category of one licence id (no operators)."""
    key = base_id(spdx_id).lower()
    hit = TABLE.get(key)
    if hit is not None:
        return hit
    for prefix, cat in _PREFIXES:
        if key.startswith(prefix):
            return cat
    return Category.UNKNOWN


# --- expressions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    id: str  # the licence id (for "X WITH e", X)
    text: str  # the whole term as written ("GPL-2.0-only WITH Classpath-exception-2.0")
    category: Category


@dataclass(frozen=True)
class Node:
    op: str  # "AND" | "OR"
    args: tuple[Expr, ...]


Expr = Leaf | Node


def _symbol(key: str) -> str:
    """One term of an expression the normaliser could not take whole ("GPLv2+ and ... with exceptions")."""
    single = normalize(key)
    return single if single and " " not in single else key


def _convert(parsed: Any) -> Expr:
    from license_expression import AND, OR

    if isinstance(parsed, AND | OR):
        return Node("AND" if isinstance(parsed, AND) else "OR", tuple(_convert(a) for a in parsed.args))
    inner = getattr(parsed, "license_symbol", None)
    if inner is not None:  # LicenseWithExceptionSymbol
        key = _symbol(str(inner.key))
        return Leaf(key, f"{key} WITH {parsed.exception_symbol.key}", classify_id(key))
    key = _symbol(str(getattr(parsed, "key", parsed)))
    return Leaf(key, key, classify_id(key))


@functools.lru_cache(maxsize=8192)
def parse(expression: str) -> Expr:
    """An expression tree for a (normalised where possible) licence string; junk becomes one unknown leaf."""
    text = normalize(expression) or expression.strip()
    word = one_word(text)
    if word is not None:  # one key (or one unknown word): what the parser would make of it
        key = _symbol(word)
        return Leaf(key, key, classify_id(key))
    try:
        parsed = spdx_licensing().parse(text, validate=False, strict=False)
    except Exception:  # the parser raises several unrelated types on free text
        parsed = None
    if parsed is None:
        return Leaf(text, text, classify_id(text) if " " not in text else Category.UNKNOWN)
    return _convert(parsed)


def category_of(expr: Expr) -> Category:
    if isinstance(expr, Leaf):
        return expr.category
    cats = [category_of(a) for a in expr.args]
    pick = min if expr.op == "OR" else max
    return pick(cats, key=lambda c: _RANK[c])


def classify(expression: str) -> Category:
    """The category of a licence expression: OR takes the most permissive option, AND the most restrictive."""
    if not expression.strip():
        return Category.UNKNOWN
    return category_of(parse(expression))


def classify_package(pkg: Package) -> Category | None:
    """All of a package's declared licences apply together (AND); None when it declares none."""
    cats = [classify(lic) for lic in pkg.licenses if lic.strip()]
    return max(cats, key=lambda c: _RANK[c]) if cats else None


def leaves(expr: Expr) -> list[Leaf]:
    if isinstance(expr, Leaf):
        return [expr]
    return [leaf for a in expr.args for leaf in leaves(a)]


# --- policy ----------------------------------------------------------------------------------------


class PolicyError(ValueError):
    """A licence policy file that cannot be used; the message says which key is wrong."""


def _term_matches(term: str, leaf: Leaf) -> bool:
    t = term.strip().lower()
    if t in CATEGORIES:
        return leaf.category.value == t
    names = {leaf.text.lower(), leaf.id.lower(), base_id(leaf.id).lower()}
    if any(ch in t for ch in "*?["):
        return any(fnmatch.fnmatchcase(n, t) for n in names)
    # "GPL-3.0" names the family (-only and -or-later); "GPL-3.0-only" only itself
    return t in names


@dataclass
class LicencePolicy:
    forbidden: list[str] = field(default_factory=lambda: [Category.FORBIDDEN.value])
    allowed: list[str] = field(default_factory=list)  # empty: no allow-list
    severity: dict[str, str] = field(default_factory=dict)
    unknown: str = "summary"  # summary | each | ignore
    exceptions: list[str] = field(default_factory=list)
    source: str = "default policy"

    @classmethod
    def load(cls, path: Path) -> LicencePolicy:
        try:
            doc = safejson.yaml_loads(path.read_text(encoding="utf-8"), what=f"licence policy {path}")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"licence policy {path}: {exc}") from None
        except safejson.DocumentError as exc:
            raise PolicyError(str(exc)) from None
        return cls.from_dict(doc if doc is not None else {}, str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "licence policy") -> LicencePolicy:
        if not isinstance(doc, dict):
            raise PolicyError(f"{source}: a licence policy is a mapping with forbidden/allowed/severity keys")
        known = {"forbidden", "allowed", "severity", "unknown", "exceptions"}
        extra = sorted(set(map(str, doc)) - known)
        if extra:
            raise PolicyError(f"{source}: unknown key(s) {', '.join(extra)}; use {', '.join(sorted(known))}")

        def strings(key: str) -> list[str] | None:
            value = doc.get(key)
            if value is None:
                return None
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
                raise PolicyError(f"{source}: '{key}' must be a list of licence ids or categories")
            return [str(v) for v in value]

        policy = cls(source=source)
        forbidden = strings("forbidden")
        if forbidden is not None:
            policy.forbidden = forbidden
        policy.allowed = strings("allowed") or []
        policy.exceptions = strings("exceptions") or []
        sev = doc.get("severity") or {}
        if not isinstance(sev, dict):
            raise PolicyError(f"{source}: 'severity' maps a category (or not-allowed, unknown) to a severity")
        for k, v in sev.items():
            if str(k).lower() not in (*CATEGORIES, "not-allowed") or str(v).upper() not in SEVERITIES:
                raise PolicyError(f"{source}: severity {k}: {v} - keys are {', '.join(CATEGORIES)} or not-allowed; "
                                  f"values {', '.join(SEVERITIES)}")
            policy.severity[str(k).lower()] = str(v).upper()
        unknown = str(doc.get("unknown", "summary")).lower()
        if unknown not in ("summary", "each", "ignore"):
            raise PolicyError(f"{source}: 'unknown' is summary, each or ignore, not {unknown!r}")
        policy.unknown = unknown
        return policy

    def forbidden_hits(self, expr: Expr) -> list[Leaf]:
        """The forbidden licences the package cannot avoid (empty when some OR option is not forbidden)."""
        if isinstance(expr, Leaf):
            return [expr] if any(_term_matches(t, expr) for t in self.forbidden) else []
        parts = [self.forbidden_hits(a) for a in expr.args]
        if expr.op == "OR":
            return [h for p in parts for h in p] if all(parts) else []
        return [h for p in parts for h in p]

    def is_allowed(self, expr: Expr) -> bool:
        if not self.allowed:
            return True
        if isinstance(expr, Leaf):
            return any(_term_matches(t, expr) for t in self.allowed)
        results = [self.is_allowed(a) for a in expr.args]
        return any(results) if expr.op == "OR" else all(results)

    def exempt(self, pkg: Package) -> bool:
        names = {pkg.name.lower(), f"{pkg.ecosystem}/{pkg.name}".lower()}
        return any(e.lower() in names for e in self.exceptions)

    def severity_for(self, key: str, default: str) -> str:
        return self.severity.get(key, default)


# --- the detector ----------------------------------------------------------------------------------


def _package_meta(pkg: Package, licence: str, category: Category) -> dict[str, str]:
    meta = {"package": pkg.name, "version": pkg.version, "ecosystem": pkg.ecosystem, "licence": licence,
            "category": category.value}
    if pkg.purl:
        meta["purl"] = pkg.purl
    return meta


def _finding(pkg: Package, **kw: Any) -> CheckFinding:
    return CheckFinding(item="compliance", path=pkg.path, layer_index=pkg.layer_index,
                        layer_diff_id=pkg.layer_diff_id, layer_created_by=pkg.layer_created_by, **kw)


class LicenceDetector:
    """Classifies every package's licences (stamped as `metadata["licence_category"]` on the package)
    and reports what the policy forbids or does not allow. `policy` wins over `context.licence_policy`."""

    item = "compliance"

    def __init__(self, policy: LicencePolicy | None = None) -> None:
        self.policy = policy

    def _policy(self, context: DetectContext | None) -> LicencePolicy:
        if self.policy is not None:
            return self.policy
        if context is not None and context.licence_policy is not None:
            return LicencePolicy.load(context.licence_policy)
        return LicencePolicy()

    def detect(self, facts: ImageFacts, context: DetectContext | None = None) -> list[CheckFinding]:
        policy = self._policy(context)
        out: list[CheckFinding] = []
        unknown: list[Package] = []
        for pkg in facts.packages:
            overall = classify_package(pkg)
            if overall is None:
                continue
            pkg.metadata["licence_category"] = overall.value
            if policy.exempt(pkg):
                continue
            reported = False
            for lic in dict.fromkeys(x for x in pkg.licenses if x.strip()):
                expr = parse(lic)
                cat = category_of(expr)
                hits = policy.forbidden_hits(expr)
                if hits:
                    worst = max(hits, key=lambda h: _RANK[h.category])
                    ids = ", ".join(dict.fromkeys(h.text for h in hits))
                    out.append(_finding(
                        pkg, id="licence-forbidden", severity=policy.severity_for(worst.category.value, "HIGH"),
                        title=f"{pkg.name} {pkg.version}: forbidden licence {ids}",
                        description=(f"{pkg.name} {pkg.version} ({pkg.ecosystem}) is licensed under '{lic}'; "
                                     f"{ids} ({worst.category.value}) is forbidden by the {policy.source}."),
                        remediation=(f"Remove {pkg.name} or replace it with an alternative under an allowed "
                                     "licence; if its use has been approved, list it under 'exceptions' in the "
                                     "licence policy."),
                        evidence=lic, metadata={**_package_meta(pkg, lic, cat), "matched": ids}))
                    reported = True
                elif not policy.is_allowed(expr):
                    out.append(_finding(
                        pkg, id="licence-not-allowed", severity=policy.severity_for("not-allowed", "MEDIUM"),
                        title=f"{pkg.name} {pkg.version}: licence {lic} is not on the allowed list",
                        description=(f"{pkg.name} {pkg.version} ({pkg.ecosystem}) is licensed under '{lic}' "
                                     f"({cat.value}), which the {policy.source} does not allow."),
                        remediation=(f"Replace {pkg.name}, or add its licence to 'allowed' in the licence policy "
                                     "once it has been reviewed."),
                        evidence=lic, metadata=_package_meta(pkg, lic, cat)))
                    reported = True
                elif cat is Category.UNKNOWN and policy.unknown == "each":
                    out.append(_finding(
                        pkg, id="licence-unknown", severity=policy.severity_for("unknown", "LOW"),
                        title=f"{pkg.name} {pkg.version}: unrecognised licence {lic}",
                        description=f"{pkg.name} {pkg.version} declares '{lic}', which is not a known SPDX licence.",
                        remediation="Review the licence by hand.", evidence=lic,
                        metadata=_package_meta(pkg, lic, cat)))
                    reported = True
            if not reported and overall is Category.UNKNOWN:
                unknown.append(pkg)
        if unknown and policy.unknown == "summary":
            out.append(_unknown_summary(unknown, policy))
        return out


def _unknown_summary(pkgs: list[Package], policy: LicencePolicy, shown: int = 10) -> CheckFinding:
    listed = [f"{p.name} ({'; '.join(p.licenses)})" for p in pkgs[:shown]]
    more = f" and {len(pkgs) - shown} more" if len(pkgs) > shown else ""
    return CheckFinding(
        item="compliance", id="licence-unknown", severity=policy.severity_for("unknown", "LOW"),
        title=f"{len(pkgs)} package(s) declare licences that could not be classified",
        description=("These licences are not SPDX identifiers hullscan knows, so no policy could be applied: "
                     + ", ".join(listed) + more + "."),
        remediation="Review these licences by hand; set 'unknown: each' in the licence policy for one finding "
                    "per package.",
        evidence=", ".join(p.name for p in pkgs[:shown]) + more,
        metadata={"count": str(len(pkgs)), "packages": ",".join(p.name for p in pkgs)})


class ComplianceDetector:
    """The whole compliance item: licences under the policy plus the OS end-of-life check."""

    item = "compliance"

    def __init__(self, licences: LicenceDetector | None = None, eol: EolDetector | None = None) -> None:
        self.licences = licences or LicenceDetector()
        self.eol = eol or EolDetector()

    def detect(self, facts: ImageFacts, context: DetectContext | None = None) -> list[CheckFinding]:
        return [*self.eol.detect(facts, context), *self.licences.detect(facts, context)]


def categories_summary(packages: Iterable[Package]) -> dict[str, int]:
    """How many packages fall in each category (packages without licences are not counted)."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for p in packages:
        cat = classify_package(p)
        if cat is not None:
            counts[cat.value] += 1
    return counts
