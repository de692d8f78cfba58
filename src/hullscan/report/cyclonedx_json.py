"""CycloneDX 1.6 JSON written in time linear in the number of components and dependencies.

cyclonedx-python-lib's JSON outputter first runs the deprecated ``Bom.validate()``, which looks each component's
dependency entry up with a linear scan of the graph (CycloneDX/cyclonedx-python-lib#1006), then makes bom-refs
unique with a list lookup: both quadratic (about 9 s for 5000 packages). This outputter does the same work in one
pass each (dependency entries for components that lack one, dependencies that name unknown refs, licence
expressions alone, unique bom-refs, restored afterwards) and serialises with the library's own view, so the
document is the one the library writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from json import loads
from typing import Any

from cyclonedx.contrib.bom.utils import BomDependencyGraphFlatMerger
from cyclonedx.exception.model import LicenseExpressionAlongWithOthersException, UnknownComponentDependencyException
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema.schema import SCHEMA_VERSIONS


def to_json(bom: Bom, indent: int = 2) -> str:
    """The CycloneDX 1.6 JSON text of `bom`."""
    return LinearJsonV1Dot6(bom).output_as_string(indent=indent)


class LinearJsonV1Dot6(JsonV1Dot6):
    def generate(self, force_regeneration: bool = False) -> None:
        if self.generated and not force_regeneration:
            return
        bom = self.get_bom()
        _check(bom)
        with _unique_bom_refs(bom), BomDependencyGraphFlatMerger(bom):  # the library's merger is linear
            doc: dict[str, Any] = loads(bom.as_json(view_=SCHEMA_VERSIONS[self.schema_version_enum]))  # type: ignore[attr-defined]
        doc.update({"$schema": self._get_schema_uri(), "bomFormat": "CycloneDX",
                    "specVersion": self.schema_version.to_version()})
        self._bom_json = doc
        self.generated = True


def _check(bom: Bom) -> None:
    """What ``Bom.validate()`` does, each step one pass: register components without a dependency entry, refuse
    dependencies on refs the BOM does not hold and licence expressions beside other licences."""
    components = list(bom._get_all_components())
    dependables = [*([bom.metadata.component] if bom.metadata.component else []), *bom.components, *bom.services]
    registered = {d.ref.value for d in bom.dependencies}
    for item in dependables:
        if item.bom_ref.value not in registered:
            bom.dependencies.add(Dependency(ref=item.bom_ref))
            registered.add(item.bom_ref.value)
    known = {c.bom_ref.value for c in components} | {s.bom_ref.value for s in bom.services}
    unknown = {ref.value for d in bom.dependencies for ref in (d.ref, *d.dependencies_as_bom_refs())} - known
    if unknown:
        raise UnknownComponentDependencyException(
            f"One or more Components have Dependency references to Components/Services that are not known in this "
            f"BOM. They are: {unknown}")
    for elem in chain([bom.metadata], components, bom.services):
        if len(elem.licenses) > 1 and any(isinstance(li, LicenseExpression) for li in elem.licenses):
            raise LicenseExpressionAlongWithOthersException(
                f"Found LicenseExpression along with others licenses in: {elem!r}")


@contextmanager
def _unique_bom_refs(bom: Bom) -> Iterator[None]:
    """Give every empty or repeated bom-ref a fresh value for the output, and put the old values back after."""
    refs: list[BomRef] = [*(c.bom_ref for c in bom._get_all_components()), *(s.bom_ref for s in bom.services),
                          *(v.bom_ref for v in bom.vulnerabilities)]
    originals = [r.value for r in refs]
    seen: set[str] = set()
    try:
        for ref in refs:
            if ref.value is None or ref.value in seen:
                ref.value = f"BomRef.{uuid.uuid4()}"
            seen.add(ref.value)
        yield
    finally:
        for ref, value in zip(refs, originals, strict=True):
            ref.value = value
