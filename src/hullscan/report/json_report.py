"""hullscan's own JSON report of an image's software inventory.

The document is stable: fields are only ever added under a new ``schema`` value. Shape of
``hullscan/report/v1``::

    {
      "schema": "hullscan/report/v1",
      "tool": {"name": "hullscan", "version": "0.1.0"},
      "artifact": {
        "reference": "docker.io/library/debian:12",
        "manifest_digest": "sha256:...",          # "" when unknown (e.g. a root filesystem)
        "config_digest": "sha256:...",
        "platform": "linux/amd64",
        "os": {"family": "debian", "version": "12", "codename": "bookworm", "name": "Debian GNU/Linux 12"}
              # or null when no OS was identified
      },
      "layers": [
        {"index": 0, "diff_id": "sha256:...", "digest": "sha256:...", "size": 1234,
         "media_type": "application/vnd.oci.image.layer.v1.tar+gzip", "created_by": "ADD file:... in /"}
      ],
      "packages": [                                  # sorted by (ecosystem, name, version, path)
        {"name": "openssl", "version": "3.0.11-1", "ecosystem": "deb", "purl": "pkg:deb/debian/openssl@...",
         "licenses": ["Apache-2.0"], "path": "var/lib/dpkg/status",
         "source_name": "openssl", "source_version": "3.0.11-1", "arch": "amd64",
         "epoch": null,                              # an integer for rpm/dpkg epochs
         "release": "", "vendor": "",
         "layer": {"index": 0, "diff_id": "sha256:...", "created_by": "..."}}   # index null when unknown
      ],
      "notes": [{"code": "...", "message": "...", "path": "...", "layer": 2}],  # layer null when unknown
      "summary": {"packages": 1, "by_ecosystem": {"deb": 1}}
    }

Empty strings stand for "not known"; keys are always present.
"""

from __future__ import annotations

import json
from typing import Any

from hullscan.model import ImageFacts, LayerInfo, Note, OSInfo, Package
from hullscan.report import ecosystem_counts, sorted_packages, tool_version

SCHEMA = "hullscan/report/v1"


def _os(os_info: OSInfo | None) -> dict[str, str] | None:
    if os_info is None:
        return None
    return {
        "family": os_info.family,
        "version": os_info.version,
        "codename": os_info.codename,
        "name": os_info.name,
    }


def _layer(layer: LayerInfo) -> dict[str, Any]:
    return {
        "index": layer.index,
        "diff_id": layer.diff_id,
        "digest": layer.descriptor.digest,
        "size": layer.descriptor.size,
        "media_type": layer.descriptor.media_type,
        "created_by": layer.created_by,
    }


def _package(pkg: Package) -> dict[str, Any]:
    return {
        "name": pkg.name,
        "version": pkg.version,
        "ecosystem": pkg.ecosystem,
        "purl": pkg.purl,
        "licenses": list(pkg.licenses),
        "path": pkg.path,
        "source_name": pkg.source_name,
        "source_version": pkg.source_version,
        "arch": pkg.arch,
        "epoch": pkg.epoch,
        "release": pkg.release,
        "vendor": pkg.vendor,
        "layer": {
            "index": pkg.layer_index if pkg.layer_index >= 0 else None,
            "diff_id": pkg.layer_diff_id,
            "created_by": pkg.layer_created_by,
        },
    }


def _note(note: Note) -> dict[str, Any]:
    return {
        "code": note.code,
        "message": note.message,
        "path": note.path,
        "layer": note.layer_index if note.layer_index >= 0 else None,
    }


def to_dict(facts: ImageFacts) -> dict[str, Any]:
    """The report as plain JSON-compatible data (see the module docstring for its shape)."""
    return {
        "schema": SCHEMA,
        "tool": {"name": "hullscan", "version": tool_version()},
        "artifact": {
            "reference": facts.reference,
            "manifest_digest": facts.manifest_digest,
            "config_digest": facts.config_digest,
            "platform": str(facts.platform),
            "os": _os(facts.os),
        },
        "layers": [_layer(layer) for layer in sorted(facts.layers, key=lambda la: la.index)],
        "packages": [_package(p) for p in sorted_packages(facts)],
        "notes": [_note(n) for n in facts.notes],
        "summary": {"packages": len(facts.packages), "by_ecosystem": ecosystem_counts(facts)},
    }


def render(facts: ImageFacts, *, indent: int | None = 2) -> str:
    """The report as a JSON document (UTF-8 text, non-ASCII characters kept as they are)."""
    return json.dumps(to_dict(facts), indent=indent, ensure_ascii=False) + "\n"
