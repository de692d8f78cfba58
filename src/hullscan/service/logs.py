"""Structured logs: one JSON object a line on stderr, with the record's extra fields (`log.info(..., extra={...})`)
as keys of their own. Messages name ids and codes, never credentials; as a second line of defence every line is
passed through `scrub`, which masks what looks like a credential (API and hook tokens, Authorization values,
passwords in URLs, `password=...` pairs) whoever logged it: a library's debug line included.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MASK = "***"
_SECRETS = [
    (re.compile(r"\bhs_[A-Za-z0-9_-]{8,}"), "hs_" + MASK),  # API, session and hook tokens
    (re.compile(r"(?i)\b(authorization|proxy-authorization|x-jfrog-event-auth|x-csrf-token|cookie|set-cookie)"
                r"(['\"]?\s*[:=,]\s*\(?['\"]?)[^'\"\r\n]+"), r"\1\2" + MASK),
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),  # user:password@host
    (re.compile(r"(?i)\b((?:[a-z_]*_)?(?:password|passwd|secret|token)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}&]+"),
     r"\1" + MASK),
]
# LogRecord's own attributes: anything else on a record came from `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return scrub(json.dumps(doc, default=str))


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class AccessLog:
    """One line per request: method, path, status and milliseconds (never the query string, headers or body, which
    may carry credentials)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("hullscan.service.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.log.info("%s %s %s", scope["method"], scope["path"], status,
                          extra={"method": scope["method"], "path": scope["path"], "status": status,
                                 "ms": round((time.perf_counter() - started) * 1000, 2)})
