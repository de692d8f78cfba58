"""The adapter's error answers: the spec's `ErrorResponse` (`{"error": {"message": ...}}`) in its own media type.

Harbor shows `error.message` in the scan job's log, so the message carries the failure catalogue's cause, what
exactly happened and the solution; `code` and `solution` ride along for clients that read them (the spec's
`Error` object allows more properties).
"""

from __future__ import annotations

import json

from fastapi.responses import Response

from hullscan.errors import CATALOGUE
from hullscan.service.harbor_adapter.mediatypes import ERROR


def message(code: str, detail: str | None) -> str:
    """`<cause>: <what happened>. Solution: <what to do>` from the catalogue."""
    cause = CATALOGUE.get(code) or CATALOGUE["INTERNAL_ERROR"]
    said = (detail or "").strip().rstrip(".")
    head = cause.title if not said or said == cause.title else f"{cause.title}: {said}"
    return f"{head}. Solution: {cause.solution}"


class AdapterError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def response(self) -> Response:
        return error_response(self.status, self.code, self.detail)


def error_response(status: int, code: str, detail: str | None) -> Response:
    cause = CATALOGUE.get(code) or CATALOGUE["INTERNAL_ERROR"]
    body = {"error": {"message": message(code, detail), "code": code, "solution": cause.solution}}
    return Response(json.dumps(body), status_code=status, media_type=ERROR)


def bad_request(detail: str) -> AdapterError:
    """400: not JSON, or JSON of the wrong shape."""
    return AdapterError(400, "INVALID_REQUEST", detail)


def invalid_field(detail: str) -> AdapterError:
    """422: well-formed, but a field's value cannot be used."""
    return AdapterError(422, "INVALID_REQUEST", detail)


def not_capable(detail: str) -> AdapterError:
    """501: a kind of artifact or report hullscan does not produce."""
    return AdapterError(501, "UNSUPPORTED_MEDIA_TYPE", detail)
