"""End-of-life detection for the image's operating system release.

The dates come from a bundled table, `checks/data/eol.json` (every distribution cites its source in a
`_source` field). A date is the LAST day of support: a release is end-of-life from the day after.

How support is counted (what "no longer receives security updates" means for a container):

- `eol` is the end of the distribution's regular security support.
- `lts` is free long-term support delivered through the repositories the image already uses (Debian LTS:
  same security archive, a subset of packages). Until it ends the image can still `apt upgrade` to fixes,
  so the release only becomes end-of-life when `lts` ends; while in LTS a LOW `os-lts` finding says so.
- `extended` is paid support (Ubuntu Pro ESM, Freexian ELTS, Red Hat ELS, SUSE LTSS). It does not count,
  except for Ubuntu images that show they are enrolled in ESM (packages with an `+esm` version).

Findings (item "compliance"): `os-eol` HIGH once support has ended, MEDIUM when it ends within 90 days;
`os-lts` LOW while only LTS is left.

Refreshing the table (`hullscan db update` calls `refresh`): hullscan reads, on top of the bundled table,

1. `<data dir>/eol-distro-info.json`, which `refresh` writes from the host's distro-info-data
   (`/usr/share/distro-info/{debian,ubuntu}.csv`, kept current by the host's package manager); it only
   adds releases and dates the bundled table lacks;
2. `<data dir>/eol.json`, a table a user drops there (or passes to `refresh(source=...)`), in the same
   format as the bundled file; its releases override the bundled ones field by field (`null` removes a
   field, e.g. `"lts": null`).

The data dir is $HULLSCAN_DATA_DIR, else the user data dir (`~/.local/share/hullscan` on Linux).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding
from hullscan.model import ImageFacts, OSInfo

FORMAT = 1
USER_TABLE = "eol.json"
DISTRO_INFO_TABLE = "eol-distro-info.json"
DEFAULT_DISTRO_INFO = Path("/usr/share/distro-info")
WARN_DAYS = 90
_DATE_FIELDS = ("released", "eol", "lts", "extended", "legacy")


class EolDataError(ValueError):
    """An end-of-life table that cannot be used (bad JSON, wrong format, malformed dates)."""


@dataclass(frozen=True)
class Release:
    version: str
    codename: str = ""
    released: dt.date | None = None
    eol: dt.date | None = None
    lts: dt.date | None = None
    extended: dt.date | None = None
    lts_release: bool = False

    @property
    def free_until(self) -> dt.date | None:
        """The last day the image can get security fixes without a subscription."""
        return self.lts or self.eol


@dataclass
class Distribution:
    id: str
    name: str
    match: str = "prefix"  # prefix | exact
    aliases: list[str] = field(default_factory=list)
    lts_name: str = "long-term support"
    extended_name: str = "paid extended support"
    source: str = ""
    releases: dict[str, Release] = field(default_factory=dict)

    def find(self, version: str, codename: str = "") -> Release | None:
        version = version.strip()
        if version:
            if version in self.releases:
                return self.releases[version]
            if self.match == "prefix":
                parts = version.split(".")
                for n in range(len(parts) - 1, 0, -1):
                    hit = self.releases.get(".".join(parts[:n]))
                    if hit is not None:
                        return hit
            return None
        if codename:
            for r in self.releases.values():
                if r.codename and r.codename == codename.lower():
                    return r
        return None

    def newest_supported(self, today: dt.date) -> Release | None:
        """The released release supported longest (Ubuntu's newest LTS rather than its newest interim)."""
        live = [r for r in self.releases.values()
                if r.free_until and r.free_until > today + dt.timedelta(days=WARN_DAYS)
                and (r.released is None or r.released <= today)]
        return max(live, key=lambda r: (r.free_until or today, _version_key(r.version)), default=None)


@dataclass
class EolTable:
    distributions: dict[str, Distribution] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # the files the table was read from, in order

    def distribution(self, family: str) -> Distribution | None:
        family = family.lower()
        if family in self.distributions:
            return self.distributions[family]
        for d in self.distributions.values():
            if family in d.aliases:
                return d
        return None

    def lookup(self, os_info: OSInfo) -> tuple[Distribution, Release] | None:
        family = os_info.family.lower()
        if family == "centos" and "stream" in os_info.name.lower():
            family = "centos-stream"
        dist = self.distribution(family)
        if dist is None:
            return None
        release = dist.find(os_info.version, os_info.codename)
        return (dist, release) if release is not None else None


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdecimal() else 0 for p in v.split("."))


def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise EolDataError(f"{where}: dates are YYYY-MM-DD strings, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EolDataError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def _check_doc(doc: Any, origin: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("distributions"), dict):
        raise EolDataError(f"{origin}: an end-of-life table is an object with a 'distributions' object")
    if doc.get("format", FORMAT) != FORMAT:
        raise EolDataError(f"{origin}: format {doc.get('format')!r} is not supported (expected {FORMAT})")
    for dist_id, d in doc["distributions"].items():
        if not isinstance(d, dict) or not isinstance(d.get("releases", {}), dict):
            raise EolDataError(f"{origin}: distribution {dist_id!r} must be an object with a 'releases' object")
        for ver, r in d.get("releases", {}).items():
            if not isinstance(r, dict):
                raise EolDataError(f"{origin}: {dist_id} {ver} must be an object")
            for f in _DATE_FIELDS:
                _date(r.get(f), f"{origin}: {dist_id} {ver} {f}")
    return doc


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = safejson.loads(path.read_bytes(), what=str(path))
    except OSError as exc:
        raise EolDataError(f"{path}: {exc}") from None
    except safejson.DocumentError as exc:
        raise EolDataError(str(exc)) from None
    return _check_doc(doc, str(path))


def bundled_doc() -> dict[str, Any]:
    text = resources.files("hullscan.checks").joinpath("data", "eol.json").read_text(encoding="utf-8")
    return _check_doc(json.loads(text), "bundled eol.json")


def _merge(base: dict[str, Any], top: dict[str, Any], *, fill_only: bool = False) -> None:
    """Lay `top`'s distributions over `base`: per release, field by field (fill_only: never replace)."""
    for dist_id, d in top["distributions"].items():
        target = base["distributions"].setdefault(dist_id, {"releases": {}})
        for k, v in d.items():
            if k == "releases":
                continue
            if not fill_only or k not in target:
                target[k] = v
        releases = target.setdefault("releases", {})
        for ver, r in d.get("releases", {}).items():
            cur = releases.setdefault(ver, {})
            for k, v in r.items():
                if v is None and not fill_only:
                    cur.pop(k, None)  # an explicit null in a user's table removes the bundled value
                    continue
                if v in (None, ""):
                    continue
                if not fill_only or cur.get(k) in (None, ""):
                    cur[k] = v


def _build(doc: dict[str, Any], sources: list[str]) -> EolTable:
    table = EolTable(sources=sources)
    for dist_id, d in doc["distributions"].items():
        dist = Distribution(
            id=dist_id, name=str(d.get("name") or dist_id), match=str(d.get("match") or "prefix"),
            aliases=[str(a).lower() for a in d.get("aliases") or []],
            lts_name=str(d.get("lts_name") or "long-term support"),
            extended_name=str(d.get("extended_name") or "paid extended support"), source=str(d.get("_source", "")))
        for ver, r in d.get("releases", {}).items():
            where = f"{dist_id} {ver}"
            dist.releases[str(ver)] = Release(
                version=str(ver), codename=str(r.get("codename") or "").lower(),
                released=_date(r.get("released"), where), eol=_date(r.get("eol"), where),
                lts=_date(r.get("lts"), where), extended=_date(r.get("extended"), where),
                lts_release=bool(r.get("lts_release")))
        table.distributions[dist_id] = dist
    return table


def load_table(data_dir: Path | None = None) -> EolTable:
    """The bundled table, completed by the distro-info import and overridden by a user's `eol.json` (both in
    `data_dir`, the settings' data directory; None: the bundled table alone)."""
    doc = bundled_doc()
    sources = ["bundled"]
    if data_dir is not None:
        distro_info = data_dir / DISTRO_INFO_TABLE
        if distro_info.is_file():
            _merge(doc, _read_doc(distro_info), fill_only=True)
            sources.append(str(distro_info))
        user = data_dir / USER_TABLE
        if user.is_file():
            _merge(doc, _read_doc(user))
            sources.append(str(user))
    return _build(doc, sources)


# --- refresh ---------------------------------------------------------------------------------------


@dataclass
class RefreshResult:
    written: list[Path] = field(default_factory=list)
    distributions: int = 0
    releases: int = 0
    sources: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def _atomic_write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-eol-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _distro_info_doc(directory: Path) -> dict[str, Any] | None:
    """Debian's and Ubuntu's tables from distro-info-data CSV files, in eol.json form."""
    dists: dict[str, Any] = {}
    debian = directory / "debian.csv"
    if debian.is_file():
        rel: dict[str, Any] = {}
        with debian.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                ver = (row.get("version") or "").strip()
                if not ver or not row.get("eol"):
                    continue
                rel[ver] = {"codename": row.get("series", ""), "released": row.get("release", ""),
                            "eol": row.get("eol", ""), "lts": row.get("eol-lts", ""),
                            "extended": row.get("eol-elts", "")}
        dists["debian"] = {"_source": f"distro-info-data on this host ({debian})", "releases": rel}
    ubuntu = directory / "ubuntu.csv"
    if ubuntu.is_file():
        rel = {}
        with ubuntu.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                raw = (row.get("version") or "").strip()
                if not raw or not row.get("eol"):
                    continue
                entry: dict[str, Any] = {"codename": row.get("series", ""), "released": row.get("release", ""),
                                         "eol": row.get("eol", ""), "extended": row.get("eol-esm", ""),
                                         "legacy": row.get("eol-legacy", "")}
                if "LTS" in raw:
                    entry["lts_release"] = True
                rel[raw.replace(" LTS", "")] = entry
        dists["ubuntu"] = {"_source": f"distro-info-data on this host ({ubuntu})", "releases": rel}
    if not dists:
        return None
    return {"format": FORMAT, "_source": "generated by hullscan from distro-info-data", "distributions": dists}


def refresh(data_dir: Path, *, source: Path | None = None,
            distro_info_dir: Path | None = DEFAULT_DISTRO_INFO) -> RefreshResult:
    """Bring the end-of-life table up to date, offline.

    - `source`: a newer table in the bundled format (for example one a fleet publishes); it is checked and
      installed as `<data dir>/eol.json`, which overrides the bundled table.
    - the host's distro-info-data, when present, is converted to `<data dir>/eol-distro-info.json`
      (adds Debian and Ubuntu releases and dates the bundled table does not have yet).
    - an `eol.json` a user dropped into the data dir is validated, so a broken one is reported here rather
      than at scan time.
    """
    root = data_dir
    result = RefreshResult()
    if source is not None:
        doc = _read_doc(source)
        _atomic_write(root / USER_TABLE, doc)
        result.written.append(root / USER_TABLE)
        result.messages.append(f"installed the end-of-life table from {source}")
    elif (root / USER_TABLE).is_file():
        _read_doc(root / USER_TABLE)
        result.messages.append(f"using the end-of-life table {root / USER_TABLE} over the bundled one")
    if distro_info_dir is not None and distro_info_dir.is_dir():
        try:
            di = _distro_info_doc(distro_info_dir)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            di = None
            result.messages.append(f"distro-info-data in {distro_info_dir} could not be read: {exc}")
        if di is not None:
            _check_doc(di, str(distro_info_dir))
            _atomic_write(root / DISTRO_INFO_TABLE, di)
            result.written.append(root / DISTRO_INFO_TABLE)
            result.messages.append(f"imported Debian/Ubuntu dates from {distro_info_dir}")
    table = load_table(root)
    result.sources = table.sources
    result.distributions = len(table.distributions)
    result.releases = sum(len(d.releases) for d in table.distributions.values())
    return result


# --- the detector ----------------------------------------------------------------------------------


_ESM_VERSION = re.compile(r"[+~]esm\d")


def _uses_esm(facts: ImageFacts) -> bool:
    """Ubuntu Pro ESM packages carry versions like 1.1.1f-1ubuntu2.24+esm1."""
    return any(_ESM_VERSION.search(p.version) for p in facts.packages if p.ecosystem == "deb")


def _os_layer(facts: ImageFacts, path: str) -> dict[str, Any]:
    """Where the OS release file came from: the layer that last wrote it, when the file tree is known."""
    for entry, index in facts.files:
        if entry.path == path and 0 <= index < len(facts.layers):
            layer = facts.layers[index]
            return {"layer_index": index, "layer_diff_id": layer.diff_id, "layer_created_by": layer.created_by}
    return {}


def _label(dist: Distribution, rel: Release) -> str:
    text = f"{dist.name} {rel.version}"
    if dist.id == "ubuntu" and rel.lts_release:
        text += " LTS"
    return text + (f" ({rel.codename})" if rel.codename else "")


class EolDetector:
    """`os-eol` / `os-lts` findings for the image's OS release, relative to `today` (UTC date by default)."""

    item = "compliance"

    def __init__(self, table: EolTable | None = None, *, today: dt.date | None = None,
                 data_dir: Path | None = None) -> None:
        self._table = table
        self._data_dir = data_dir
        self.today = today

    @property
    def table(self) -> EolTable:
        if self._table is None:
            self._table = load_table(self._data_dir)
        return self._table

    def detect(self, facts: ImageFacts, context: DetectContext | None = None) -> list[CheckFinding]:
        if facts.os is None:
            return []
        found = self.table.lookup(facts.os)
        if found is None:
            return []
        dist, rel = found
        today = self.today or dt.datetime.now(dt.UTC).date()
        final, how = rel.free_until, ""
        if dist.id == "ubuntu" and rel.extended and _uses_esm(facts):
            final, how = rel.extended, f" ({dist.extended_name}, which this image is enrolled in)"
        if final is None:
            return []
        label = _label(dist, rel)
        meta = {"os": dist.id, "version": rel.version, "codename": rel.codename,
                "eol": rel.eol.isoformat() if rel.eol else "", "support_ends": final.isoformat(),
                "source": dist.source}
        if rel.lts:
            meta["lts"] = rel.lts.isoformat()
        if rel.extended:
            meta["extended"] = rel.extended.isoformat()
        newest = dist.newest_supported(today)
        upgrade = (f"Rebuild the image on a supported release, such as {_label(dist, newest)}."
                   if newest is not None and newest is not rel else "Rebuild the image on a supported release.")
        paid = ""
        if rel.extended and rel.extended > today and final < rel.extended:
            paid = f" {dist.extended_name} (a paid subscription) continues until {rel.extended.isoformat()}."
        path = facts.os.source
        where = _os_layer(facts, path)
        if today > final:
            return [CheckFinding(
                item="compliance", id="os-eol", severity="HIGH",
                title=f"{label} is end-of-life: this OS no longer receives security updates",
                description=(f"Security support for {label}{how} ended on {final.isoformat()}. Vulnerabilities "
                             f"found since then are not fixed in its packages.{paid}"),
                remediation=upgrade, path=path, evidence=f"{facts.os.name or label}", metadata=meta, **where)]
        days = (final - today).days
        if days <= WARN_DAYS:
            return [CheckFinding(
                item="compliance", id="os-eol", severity="MEDIUM",
                title=f"{label} reaches end-of-life on {final.isoformat()} ({days} days)",
                description=(f"Security support for {label}{how} ends on {final.isoformat()}; after that this "
                             f"OS no longer receives security updates.{paid}"),
                remediation=upgrade, path=path, evidence=f"{facts.os.name or label}", metadata=meta, **where)]
        if rel.lts and rel.eol and today > rel.eol:
            return [CheckFinding(
                item="compliance", id="os-lts", severity="LOW",
                title=f"{label} is in {dist.lts_name} until {rel.lts.isoformat()}",
                description=(f"Regular security support for {label} ended on {rel.eol.isoformat()}. "
                             f"{dist.lts_name} fixes a subset of packages, on fewer architectures, until "
                             f"{rel.lts.isoformat()}."),
                remediation=upgrade, path=path, evidence=f"{facts.os.name or label}", metadata=meta, **where)]
        return []
