"""Signing a webhook body: HMAC-SHA256 of the exact bytes posted, keyed by the webhook's secret.

The body itself carries the delivery's id and the time it was sent, so a receiver that checks the signature can
trust both: it refuses a body sent too long ago and one whose delivery id it has already seen (replays).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hullscan-Signature"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=<hex>`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (the tests' receiver, and the README's example): compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header)
