"""Reading VEX documents: OpenVEX (v0.2.0 and the earlier v0.0.x) and CycloneDX VEX (1.4+).

OpenVEX: `statements[]` with `vulnerability` (an object with `name`/`@id` and `aliases`, or in older documents a
string), `products[]` (objects with `@id` and `subcomponents[]`, or strings), `status`, `justification`,
`impact_statement`, `timestamp` (else the document's). A subcomponent narrows the product to that package.

CycloneDX: `vulnerabilities[]` with `id`, `references[].id` (aliases), `analysis.state` (not_affected and
false_positive -> not_affected; resolved and resolved_with_pedigree -> fixed; exploitable -> affected; in_triage
-> under_investigation), `analysis.justification`, `analysis.detail`, and `affects[].ref`: a purl, or a bom-ref
(also as `urn:cdx:...#bom-ref`) of a component in the same document, whose purl is used.

A document that is neither is refused with VEX_INVALID naming it; a statement missing its vulnerability or
status is skipped and counted (a half-read statement must not suppress anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.errors import HullscanError
from hullscan.vex.model import STATUSES, VexStatement, statement

MAX_VEX_SIZE = 32 << 20
_CDX_STATE = {
    "not_affected": "not_affected", "false_positive": "not_affected", "resolved": "fixed",
    "resolved_with_pedigree": "fixed", "exploitable": "affected", "in_triage": "under_investigation",
}


class VexError(HullscanError):
    code = "VEX_INVALID"


@dataclass
class VexDocument:
    source: str
    format: str  # "openvex" | "cyclonedx"
    statements: list[VexStatement] = field(default_factory=list)
    skipped: int = 0


def _openvex_ids(vuln: Any) -> tuple[str, tuple[str, ...]]:
    if isinstance(vuln, str):
        return vuln, ()
    if not isinstance(vuln, dict):
        return "", ()
    name = vuln.get("name") or vuln.get("@id") or ""
    aliases = tuple(a for a in vuln.get("aliases") or () if isinstance(a, str))
    return (name if isinstance(name, str) else ""), aliases


def _openvex_products(items: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in items or ():
        if isinstance(item, str):
            out.append(item)
            continue
        if not isinstance(item, dict):
            continue
        raw_subs = [s.get("@id") if isinstance(s, dict) else s for s in item.get("subcomponents") or ()]
        subs = [s for s in raw_subs if isinstance(s, str) and s]
        if subs:
            out.extend(subs)  # the product narrowed to these packages
        elif isinstance(item.get("@id"), str):
            out.append(item["@id"])
            ids = item.get("identifiers")
            if isinstance(ids, dict) and isinstance(ids.get("purl"), str):
                out.append(ids["purl"])
    return tuple(dict.fromkeys(out))


def parse_openvex(doc: dict[str, Any], source: str, start: int = 0) -> VexDocument:
    out = VexDocument(source, "openvex")
    default_time = str(doc.get("timestamp") or "")
    for n, raw in enumerate(doc.get("statements") or ()):
        if not isinstance(raw, dict):
            out.skipped += 1
            continue
        name, aliases = _openvex_ids(raw.get("vulnerability"))
        status = raw.get("status")
        products = _openvex_products(raw.get("products"))
        if not name or status not in STATUSES:
            out.skipped += 1
            continue
        out.statements.append(statement(
            name, status, aliases=aliases, products=products, justification=str(raw.get("justification") or ""),
            impact=str(raw.get("impact_statement") or raw.get("status_notes") or ""),
            timestamp=str(raw.get("timestamp") or default_time), source=source, order=start + n))
    return out


def _cdx_components(doc: dict[str, Any]) -> dict[str, str]:
    """bom-ref -> purl of every component (nested ones too) and the metadata component."""
    refs: dict[str, str] = {}
    stack: list[Any] = list(doc.get("components") or [])
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("component"), dict):
        stack.append(meta["component"])
    while stack:
        c = stack.pop()
        if not isinstance(c, dict):
            continue
        if isinstance(c.get("bom-ref"), str) and isinstance(c.get("purl"), str):
            refs[c["bom-ref"]] = c["purl"]
        stack.extend(c.get("components") or [])
    return refs


def parse_cyclonedx(doc: dict[str, Any], source: str, start: int = 0) -> VexDocument:
    out = VexDocument(source, "cyclonedx")
    components = _cdx_components(doc)
    meta = doc.get("metadata")
    default_time = str(meta.get("timestamp") or "") if isinstance(meta, dict) else ""
    for n, raw in enumerate(doc.get("vulnerabilities") or ()):
        analysis = raw.get("analysis") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or not isinstance(analysis, dict):
            out.skipped += 1
            continue
        vid, status = raw.get("id"), _CDX_STATE.get(str(analysis.get("state") or ""))
        if not isinstance(vid, str) or not vid or status is None:
            out.skipped += 1
            continue
        aliases = tuple(r["id"] for r in raw.get("references") or () if isinstance(r, dict)
                        and isinstance(r.get("id"), str))
        products: list[str] = []
        for affect in raw.get("affects") or ():
            ref = affect.get("ref") if isinstance(affect, dict) else None
            if not isinstance(ref, str):
                continue
            if ref.startswith("pkg:"):
                products.append(ref)
            else:
                key = ref.rsplit("#", 1)[-1] if ref.startswith("urn:cdx:") else ref
                if key in components:
                    products.append(components[key])
        if not products:
            out.skipped += 1  # a statement about nothing hullscan can identify
            continue
        out.statements.append(statement(
            vid, status, aliases=aliases, products=tuple(products),
            justification=str(analysis.get("justification") or ""), impact=str(analysis.get("detail") or ""),
            timestamp=str(analysis.get("lastUpdated") or analysis.get("firstIssued") or default_time),
            source=source, order=start + n))
    return out


def parse_vex(data: bytes | str, source: str, start: int = 0) -> VexDocument:
    try:
        doc = safejson.loads(data, what=source)
    except safejson.DocumentError as exc:
        raise VexError(str(exc)) from None
    if isinstance(doc, dict) and isinstance(doc.get("statements"), list) and "openvex" in str(doc.get("@context", "")):
        return parse_openvex(doc, source, start)
    if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
        return parse_cyclonedx(doc, source, start)
    raise VexError(f"{source} is neither an OpenVEX document (@context openvex, statements) nor a CycloneDX BOM")


def load_vex(path: Path, start: int = 0) -> VexDocument:
    try:
        size = path.stat().st_size
        if size > MAX_VEX_SIZE:
            raise VexError(f"{path} is {size:,} bytes; a VEX document may be at most {MAX_VEX_SIZE:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise VexError(f"cannot read the VEX document {path}: {exc.strerror or exc}") from None
    return parse_vex(data, str(path), start)
