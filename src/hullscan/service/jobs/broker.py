"""The Celery application of a fleet: one per process, made from the settings (HULLSCAN_BROKER_URL).

A scan travels as one task, `hullscan.scan(scan_id, holder)`, on the queue named after its registry's cluster, so
only the worker group beside that registry takes it. The task is only a hand-over: the scan's row in the database
already counts against the caps (a dispatcher claimed it, see jobs/dispatch.py) and the worker takes it from the
row's holder (jobs/worker.py); a delivery that finds another holder is dropped. So Celery may deliver a task
twice (acknowledged late, re-delivered after the visibility timeout) without a scan running or storing twice.

Priorities: the Redis transport keeps one list per priority step and reads the lowest step first; the steps are
the service's own priorities (manual 0 ... re-evaluation 4), so a manual scan overtakes scheduled ones in a queue.
"""

from __future__ import annotations

from typing import Any

from hullscan.settings import Settings

SCAN_TASK = "hullscan.scan"
PRIORITY_STEPS = list(range(10))


def make_app(settings: Settings) -> Any:
    """A Celery application on the settings' broker (typed Any: Celery ships no type information)."""
    from celery import Celery

    if not settings.broker_url:
        raise ValueError("fleet mode needs a broker: set HULLSCAN_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("hullscan", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # a task is acknowledged when it ends: a worker killed mid-scan leaves it to another
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker reserves no more scans than it runs
        task_ignore_result=True,  # outcomes live in the database
        task_serializer="json", accept_content=["json"],
        task_default_queue="default",
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout,
                                  "queue_order_strategy": "priority", "priority_steps": PRIORITY_STEPS},
        worker_hijack_root_logger=False,  # hullscan's structured logs, no secrets (service/logs.py)
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def send_scan(app: Any, scan_id: int, holder: str, cluster: str, priority: int) -> None:
    """Hand a claimed scan to the workers of `cluster`."""
    app.send_task(SCAN_TASK, args=[scan_id, holder], queue=cluster, routing_key=cluster,
                  priority=max(0, min(priority, PRIORITY_STEPS[-1])))
