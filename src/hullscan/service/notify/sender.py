"""The notifier: a thread that posts due deliveries from the outbox, signs them, and retries with backoff.

Several processes may each run one (the API, a separate scheduler): a delivery is claimed by moving its next
attempt a lease into the future in one conditional UPDATE, so only one process posts it; a process that dies
mid-post leaves it to be posted again once the lease ends (at least once; receivers dedupe by delivery id).

Network errors, 5xx, 408 and 429 are tried again after `webhook_retry_delay` seconds, doubled each time (a 429's
Retry-After when longer), up to `webhook_attempts` tries; any other answer (a 4xx, a redirect) means the receiver
refuses the event, and trying again would give the same answer: the delivery is given up at once, with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass

import httpx
from sqlalchemy import select, update

from hullscan import __version__
from hullscan.service.notify.signing import SIGNATURE_HEADER, sign
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import DELIVERED, GAVE_UP, PENDING, Delivery, Webhook, now
from hullscan.settings import Settings

log = logging.getLogger("hullscan.service.notify")
POLL_EVERY = 1.0  # seconds between looks at the outbox when nobody says there is something
BATCH = 20
MAX_DELAY = 3600.0
RETRYABLE = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool  # worth another try
    status: int | None
    error: str | None
    retry_after: float | None = None


class Notifier:
    def __init__(self, db: Database, box: SecretBox, settings: Settings) -> None:
        self.db = db
        self.box = box
        self.settings = settings
        self.lease = dt.timedelta(seconds=settings.webhook_timeout + 30)
        timeout = httpx.Timeout(settings.webhook_timeout)
        headers = {"User-Agent": f"hullscan/{__version__}"}
        self._clients = {verify: httpx.Client(verify=verify, timeout=timeout, follow_redirects=False, headers=headers)
                         for verify in (True, False)}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hullscan-notify", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.webhook_timeout + 5)
        for client in self._clients.values():
            client.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                while self.deliver_due() and not self._stopping.is_set():
                    pass
            except Exception:  # noqa: BLE001 - a database hiccup must not end notifying
                log.exception("delivering webhooks failed; trying again")
            self._wake.wait(POLL_EVERY)
            self._wake.clear()

    def deliver_due(self) -> int:
        """Post the deliveries that are due (up to a batch); how many were tried."""
        stamp = now()
        with self.db.session() as session:
            due = list(session.scalars(select(Delivery.id).where(Delivery.state == PENDING,
                                                                 Delivery.next_attempt_at <= stamp)
                                       .order_by(Delivery.next_attempt_at, Delivery.id).limit(BATCH)))
        tried = 0
        for delivery_id in due:
            if self._stopping.is_set():
                break
            if self._claim(delivery_id, stamp):
                self.attempt(delivery_id)
                tried += 1
        return tried

    def _claim(self, delivery_id: int, stamp: dt.datetime) -> bool:
        with self.db.session() as session:
            done = session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.state == PENDING,
                                                          Delivery.next_attempt_at <= stamp)
                                   .values(next_attempt_at=now() + self.lease)
                                   .execution_options(synchronize_session=False))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    # -- one attempt -------------------------------------------------------------------------------------------

    def attempt(self, delivery_id: int, *, retry: bool = True) -> Delivery | None:
        """Post one delivery now and record how it went (`retry=False`: a test ping, tried once)."""
        with self.db.session() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.state != PENDING:
                return delivery
            hook = session.get(Webhook, delivery.webhook_id)
            if hook is None:
                return None
            number = delivery.attempts + 1
            sent_at = now()
            doc = {**delivery.payload, "delivery_id": delivery.id, "attempt": number, "sent_at": sent_at.isoformat()}
            body = json.dumps(doc, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", "X-Hullscan-Event": delivery.event_type,
                       "X-Hullscan-Delivery": str(delivery.id), "X-Hullscan-Timestamp": str(int(sent_at.timestamp()))}
            if hook.secret_encrypted:
                headers[SIGNATURE_HEADER] = sign(self.box.open(hook.secret_encrypted), body)
            if hook.auth_header_encrypted:
                headers["Authorization"] = self.box.open(hook.auth_header_encrypted)
            url, verify = hook.url, not hook.skip_cert_verify
        outcome = self._post(url, body, headers, verify)
        with self.db.session() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None:
                return None
            delivery.attempts = number
            delivery.last_attempt_at = sent_at
            delivery.last_status = outcome.status
            delivery.last_error = outcome.error
            if outcome.delivered:
                delivery.state, delivery.delivered_at, delivery.next_attempt_at = DELIVERED, now(), None
            elif outcome.retry and retry and number < self.settings.webhook_attempts:
                delay = min(self.settings.webhook_retry_delay * 2 ** (number - 1), MAX_DELAY)
                if outcome.retry_after is not None:
                    delay = min(max(delay, outcome.retry_after), MAX_DELAY)
                delivery.next_attempt_at = now() + dt.timedelta(seconds=delay)
            else:
                delivery.state, delivery.next_attempt_at = GAVE_UP, None
                if outcome.retry and retry:
                    delivery.last_error = f"gave up after {number} attempts; the last: {outcome.error}"
            log.info("webhook delivery %s (%s) attempt %d: %s", delivery_id, delivery.event_type, number,
                     "delivered" if outcome.delivered else outcome.error)
            return delivery

    def _post(self, url: str, body: bytes, headers: dict[str, str], verify: bool) -> Outcome:
        try:
            response = self._clients[verify].post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome(False, True, None, f"the receiver did not answer within {self.settings.webhook_timeout:g} s")
        except httpx.UnsupportedProtocol as exc:
            return Outcome(False, False, None, f"the webhook's URL cannot be used: {exc}"[:500])
        except httpx.TransportError as exc:
            return Outcome(False, True, None, f"cannot reach the receiver: {type(exc).__name__}: {exc}"[:500])
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # never leave a delivery claimed forever
            return Outcome(False, False, None, f"the webhook's URL cannot be used: {type(exc).__name__}: {exc}"[:500])
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(True, False, status, None)
        # Only the status: what an address answers stays out of the log, so the test button cannot be used to
        # read a service inside the network.
        error = f"the receiver answered HTTP {status}"
        if 300 <= status < 400:
            error = f"the receiver redirected to {response.headers.get('location', '?')} (HTTP {status}); webhooks " \
                    "do not follow redirects: give the final URL"
        retry = status >= 500 or status in RETRYABLE
        return Outcome(False, retry, status, error, _retry_after(response) if status == 429 else None)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
