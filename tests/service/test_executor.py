"""The in-process executor hands claimed scans back when it shuts down, even a claim in flight at that moment."""

from __future__ import annotations

import threading

from sqlalchemy import select

from hullscan.service.core import Service
from hullscan.service.jobs.executor import InProcessExecutor
from hullscan.service.jobs.runner import ScanRunner
from hullscan.service.storage.models import QUEUED, Image, Scan
from tests.service.conftest import seed_images


def test_a_shutdown_during_a_claim_leaves_no_scan_running(idle_service: Service) -> None:
    svc = idle_service
    seed_images(svc)
    with svc.db.session() as session:
        image = session.scalars(select(Image).where(Image.tag.is_not(None)).limit(1)).one()
        scan, _ = svc.jobs.enqueue(session, image, "manual", ["secret"])
        scan_id = scan.id
    executor = InProcessExecutor(ScanRunner(svc.settings, svc.db, svc.box, svc.engine), svc.limits)
    claim = executor.jobs.claim

    stopper = threading.Thread(target=executor.shutdown)

    def claim_then_shut_down(*args: object, **kwargs: object) -> list[int]:
        claimed = claim(*args, **kwargs)  # type: ignore[arg-type]
        stopper.start()  # the service stops while the dispatcher holds a claim it has not started yet
        assert executor._stopping.wait(30)
        return claimed

    executor.jobs.claim = claim_then_shut_down  # type: ignore[method-assign]
    executor.start()
    dispatcher = executor._threads[0]
    dispatcher.join(timeout=60)
    stopper.join(timeout=60)
    with svc.db.session() as session:
        row = session.get(Scan, scan_id)
        assert row is not None and (row.state, row.worker) == (QUEUED, None)
    svc.engine.close()
