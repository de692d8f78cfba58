"""`db import PATH...`: sort the inputs into OSV advisories and enrichment, then build or enrich.

Each path is one of: an EPSS CSV (plain or gzipped), CVE severity data (a CVE JSON 5 record or NVD 2.0 JSON, a
directory of them, flat or in the CVE List V5 layout `cves/YYYY/NNxxx/`, or a zip of them), or OSV data
(all.zip files, directories, JSON files). With OSV inputs the database is rebuilt from them and the enrichment
is added to the new file; with enrichment alone it is added to the existing database, next to its OSV data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hullscan.vulndb.cverecords import CveImportStats, CveRecord, iter_cve_path, sniff_cve_path
from hullscan.vulndb.epss import EpssData, load_epss, sniff_epss
from hullscan.vulndb.osv import load_kev
from hullscan.vulndb.store import BuildResult, EnrichResult, build_from_paths, enrich_database


@dataclass
class Inputs:
    osv: list[Path] = field(default_factory=list)
    cve: list[Path] = field(default_factory=list)
    epss: list[Path] = field(default_factory=list)


def classify(paths: Sequence[Path]) -> Inputs:
    out = Inputs()
    for path in paths:
        if path.is_file() and sniff_epss(path):
            out.epss.append(path)
        elif sniff_cve_path(path):
            out.cve.append(path)
        else:
            out.osv.append(path)
    return out


@dataclass
class ImportOutcome:
    build: BuildResult | None = None
    enrich: EnrichResult | None = None
    cve_stats: CveImportStats = field(default_factory=CveImportStats)
    epss: EpssData | None = None


def import_paths(target: Path, paths: Sequence[Path], *, kev_path: Path | None = None) -> ImportOutcome:
    inputs = classify(paths)
    outcome = ImportOutcome()
    if inputs.osv:
        outcome.build = build_from_paths(target, inputs.osv, kev_path=kev_path)
    epss: EpssData | None = None
    for path in inputs.epss:  # the last one given wins: each is a whole daily snapshot
        epss = load_epss(path)
    outcome.epss = epss
    kev = load_kev(kev_path) if kev_path is not None and not inputs.osv else None
    if inputs.cve or epss is not None or kev is not None:

        def records() -> Iterator[CveRecord]:
            for path in inputs.cve:
                yield from iter_cve_path(path, outcome.cve_stats)

        outcome.enrich = enrich_database(target, cve_records=records(),
                                         cve_source=", ".join(map(str, inputs.cve)), epss=epss, kev=kev)
    return outcome
