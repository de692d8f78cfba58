"""Running one claimed scan: the engine's one call, its progress into the database, its outcome stored.

Both executors call `ScanRunner.run`; so does nothing else. A re-evaluation runs the same way but starts from the
facts of the image's last successful scan, so it downloads no layer.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan import items as scan_items
from hullscan.cancel import CancelToken
from hullscan.errors import HullscanError
from hullscan.findings import SEVERITIES, ScanReport
from hullscan.items.vuln import VulnOptions
from hullscan.model import ImageFacts, LayerInfo
from hullscan.oci.credentials import from_authorization
from hullscan.oci.source import Limits
from hullscan.pipeline import Engine, ScanRequest
from hullscan.scan import NoProgress, RegistryOptions
from hullscan.service import reportstore
from hullscan.service.connectors import connector_for
from hullscan.service.jobs.queue import JobStore
from hullscan.service.reevaluation import data_version
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import FAILED, QUEUED, STOPPED, SUCCEEDED, Image, Registry, Scan
from hullscan.settings import Settings
from hullscan.vulndb.distribution import refresh_database

log = logging.getLogger("hullscan.service.scan")
PROGRESS_EVERY = 2.0  # seconds between progress writes
# Failures that may be gone a little later (the registry down or overloaded past the client's own retries): the
# scan is queued again with a growing delay. Everything else (refused credentials, a missing image, a limit) fails
# at once: trying again would give the same answer.
TRANSIENT = frozenset({"REGISTRY_UNREACHABLE", "REGISTRY_ERROR"})


class ScanRunner:
    def __init__(self, settings: Settings, db: Database, box: SecretBox, engine: Engine) -> None:
        self.settings = settings
        self.db = db
        self.box = box
        self.engine = engine
        self.jobs = JobStore(db)

    def run(self, scan_id: int, worker: str, cancel: CancelToken) -> str:
        """Run a claimed scan to its end; the state it ended in."""
        with self.db.session() as session:
            scan = session.get(Scan, scan_id)
            if scan is None:
                return FAILED
            image = session.get(Image, scan.image_id)
            registry = session.get(Registry, scan.registry_id)
            assert image is not None and registry is not None
            kind, wanted, attempts = scan.kind, list(scan.items), scan.attempts
            pull_authorization = scan.pull_authorization
        log.info("scan %s started: %s %s:%s (%s)", scan_id, registry.name, image.repository, image.reference, kind)
        self._take_published_database()
        progress = _DbProgress(self.jobs, scan_id)
        try:
            if kind == "reevaluate":
                report = self._reevaluate(image, progress, cancel)
            else:
                report = self._scan(registry, image, wanted, progress, cancel, pull_authorization)
        except HullscanError as exc:
            code, detail = exc.code, exc.detail
            if code in TRANSIENT and attempts < self.settings.scan_attempts:
                delay = self.settings.retry_delay * 2 ** (attempts - 1)
                if self.jobs.retry_later(scan_id, worker, delay, detail):
                    log.info("scan %s met %s (try %d); retrying in %g s", scan_id, code, attempts, delay)
                    return QUEUED
            if code == "NOT_FOUND" and not progress.resolved:
                # The manifest itself is gone: the image was deleted or its tag moved since hullscan listed it.
                code = "IMAGE_NOT_FOUND"
                detail = f"{image.repository}:{image.reference} ({image.digest or 'no digest'}) is no longer in " \
                         f"the registry: {detail}"
            state = STOPPED if code == "STOPPED" else FAILED
            self.jobs.finish(scan_id, worker, state, code=code, message=detail)
            log.info("scan %s %s: %s", scan_id, state, code)
            return state
        except Exception as exc:  # noqa: BLE001 - a bug must not wedge the job
            log.exception("scan %s failed unexpectedly", scan_id)
            self.jobs.finish(scan_id, worker, FAILED, code="INTERNAL_ERROR", message=f"{type(exc).__name__}: {exc}")
            return FAILED
        if not self._store(scan_id, worker, image.id, report):
            log.info("scan %s finished elsewhere; this result was dropped", scan_id)
            return FAILED
        log.info("scan %s succeeded", scan_id)
        return SUCCEEDED

    def _take_published_database(self) -> None:
        """In a fleet, the newest build the scheduler published, installed between scans (a scan already running
        keeps the file it opened); on one machine nothing happens. A store that cannot be reached costs a warning,
        not the scan: it runs with the database in place."""
        try:
            if refresh_database(self.settings):
                log.info("installed the fleet's newest vulnerability database")
        except HullscanError as exc:
            log.warning("the fleet's newest vulnerability database was not installed (%s); scanning with the one "
                        "in place", exc.code)

    def _scan(self, registry: Registry, image: Image, wanted: list[str], progress: _DbProgress,
              cancel: CancelToken, pull_authorization: bytes | None = None) -> ScanReport:
        connector = connector_for(registry, self.box)
        reference = connector.reference(image.repository, image.digest or image.reference)
        with tempfile.TemporaryDirectory(prefix="hullscan-ca-") as tmp:
            ca: Path | None = None
            if registry.ca_cert:
                ca = Path(tmp) / "ca.pem"
                ca.write_text(registry.ca_cert)
            password = self.box.open(registry.password_encrypted) if registry.password_encrypted else None
            # A scan that came with its own credentials (a Harbor scan request) pulls with those alone.
            credentials = from_authorization(self.box.open(pull_authorization), "the scan request") \
                if pull_authorization else None
            options = RegistryOptions(username=registry.username, password=password, insecure=registry.insecure,
                                      ca_cert=ca, use_docker_config=False, credentials=credentials)
            # The database is updated by the scheduler, once for the whole service, never by a scan.
            limits = Limits(max_image_size=self.settings.max_image_size, max_layer_size=self.settings.max_layer_size)
            request = ScanRequest(reference, items=tuple(i for i in wanted if i in scan_items.REGISTRY),
                                  registry=options, limits=limits, options={"vuln": VulnOptions(update=False)})
            return self.engine.scan(request, progress, cancel)

    def _reevaluate(self, image: Image, progress: _DbProgress, cancel: CancelToken) -> ScanReport:
        """The last successful report of the image, its vulnerabilities matched again against today's database."""
        from hullscan.detect import match
        from hullscan.vulndb.store import open_default

        with self.db.session() as session:
            last = session.scalars(select(Scan).where(Scan.image_id == image.id, Scan.state == SUCCEEDED,
                                                      Scan.kind == "scan").order_by(Scan.id.desc()).limit(1)).first()
            if last is None:
                raise HullscanError("the image has no successful scan to re-evaluate", code="IMAGE_NOT_FOUND")
            report = reportstore.load(session, last.id)
        cancel.check()
        progress.phase("Vulnerabilities")
        with open_default(self.settings.db_path) as store:
            fresh = match(report.facts, store)
        report.vulnerabilities, report.database = fresh.vulnerabilities, fresh.database
        report.notes = [n for n in report.notes if not n.code.startswith("vuln-")] + fresh.notes
        return report

    def _store(self, scan_id: int, worker: str, image_id: int, report: ScanReport) -> bool:
        def apply(session: Session, scan: Scan) -> None:
            reportstore.save(session, scan_id, report)
            scan.counts = summary_counts(report)
            scan.digest = report.facts.manifest_digest or scan.digest
            scan.progress = 1.0
            scan.database_built_at = report.database.built_at if report.database else None
            scan.database_version = data_version(report.database) if report.database else None
            image = session.get(Image, image_id)
            if image is not None:
                image.last_scan_id = scan_id
                if report.facts.manifest_digest and not image.digest:
                    image.digest = report.facts.manifest_digest
                size = manifest_size(report.facts)
                if image.size is None and size is not None and image.digest == report.facts.manifest_digest:
                    image.size = size  # an image known from a push hook has none; a registry's own figure is kept

        # False: another delivery of this scan finished first, or it was given up on; one result only.
        return self.jobs.finish(scan_id, worker, SUCCEEDED, apply=apply)


def manifest_size(facts: ImageFacts) -> int | None:
    """The image's size as its manifest declares it (config and layers), as a sync records it; None when the scan
    did not read it from a registry manifest. For an index the scanned manifest is one platform's, whose digest is
    not the image's, so the caller leaves such an image's size alone."""
    if not facts.manifest_digest or not facts.config_size:
        return None
    return facts.config_size + sum(layer.descriptor.size for layer in facts.layers)


def summary_counts(report: ScanReport) -> dict[str, Any]:
    """Findings per severity (vulnerabilities) and per item: what lists and dashboards show without the report."""
    vulns = Counter(f.severity.upper() if f.severity.upper() in SEVERITIES else "UNKNOWN"
                    for f in report.vulnerabilities)
    per_item = Counter(c.item for c in report.checks)
    return {"vulnerabilities": {s: vulns.get(s, 0) for s in SEVERITIES},
            "items": {item: per_item.get(item, 0) for item in report.scanners if item != "vuln"},
            "total": len(report.vulnerabilities) + len(report.checks)}


class _DbProgress(NoProgress):
    """Layer bytes and phases as a fraction and a line of text, written at most every PROGRESS_EVERY seconds."""

    def __init__(self, jobs: JobStore, scan_id: int) -> None:
        self.jobs = jobs
        self.scan_id = scan_id
        self.sizes: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.text = "resolving the image"
        self.resolved = False  # the manifest was found and read
        self._written = 0.0
        self._lock = threading.Lock()

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < PROGRESS_EVERY:
            return
        self._written = now
        total = sum(self.sizes.values()) or 1
        fraction = 0.9 * sum(self.done.values()) / total  # the last tenth is the detectors'
        self.jobs.progress(self.scan_id, fraction, self.text)

    def phase(self, name: str) -> None:
        with self._lock:
            self.done = dict(self.sizes)
            self.text = name
            self._write(force=True)

    def image_resolved(self, layers: list[LayerInfo]) -> None:
        with self._lock:
            self.resolved = True
            self.sizes = {la.index: max(la.descriptor.size, 1) for la in layers}
            self.text = f"reading {len(layers)} layers"
            self._write(force=True)

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None:
        with self._lock:
            self.done[layer.index] = min(compressed_bytes, self.sizes.get(layer.index, compressed_bytes))
            self._write()

    def layer_finished(self, layer: LayerInfo) -> None:
        with self._lock:
            self.done[layer.index] = self.sizes.get(layer.index, 1)
            self._write()
