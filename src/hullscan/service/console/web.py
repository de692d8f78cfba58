"""What every console page shares: the templates, who is looking, CSRF-checked forms, flash messages, redirects
and error pages.

Pages are server-rendered Jinja2 with autoescaping on for every template, so a value that came from an image (a
package, a path, a tag) always prints as text. Nothing from an image is ever marked safe.

A visitor is identified by the same `hullscan_session` cookie the API accepts. Every form carries the session's
CSRF token in a hidden field (the API takes it as a header instead); a POST without it, or from another origin, is
refused before anything runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.datastructures import FormData

from hullscan.errors import CATALOGUE, HullscanError
from hullscan.findings import SEVERITIES
from hullscan.service.api.auth import SESSION_COOKIE, Principal, cookie_principal, service
from hullscan.service.api.errors import STATUS, ApiError
from hullscan.service.console.apiclient import Api, ApiFailure
from hullscan.service.core import Service

PREFIX = "/ui"
FLASH_COOKIE = "hullscan_flash"
T = TypeVar("T")


# -- templates ----------------------------------------------------------------------------------------------------


def _aware(value: dt.datetime | str) -> dt.datetime | None:
    """A datetime (or the API's ISO text of one) in UTC; None when the text is no time."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def when(value: dt.datetime | str | None) -> str:
    """A time as people read it (UTC)."""
    if not value:
        return "-"
    when = _aware(value)
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else str(value)


def ago(value: dt.datetime | str | None, at: dt.datetime | None = None) -> str:
    """"5 minutes ago", "3 days ago": how long before `at` (now)."""
    when = _aware(value) if value else None
    if when is None:
        return "never" if not value else str(value)
    seconds = int(((at or dt.datetime.now(dt.UTC)) - when).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"


def human_size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def short_digest(value: str | None) -> str:
    if not value:
        return "-"
    algorithm, _, hex_ = value.partition(":")
    return f"{algorithm}:{hex_[:12]}" if hex_ else value[:19]


def sevclass(value: object) -> str:
    """A CSS class for a severity; anything unexpected (it may come from an image) is `unknown`."""
    text = str(value).upper()
    return text.lower() if text in SEVERITIES else "unknown"


def path_quote(value: str) -> str:
    """A repository or namespace name as URL path segments (slashes kept)."""
    return quote(value, safe="/")


def row_count(form: FormData, limit: int = 10_000) -> int:
    """How many rows an editor form says it holds (its hidden `rows` field), within `limit`."""
    text = str(form.get("rows", "0"))
    return min(int(text), limit) if text.isdecimal() and len(text) < 7 else 0


def date_to_api(value: object) -> str | None:
    """A date input's YYYY-MM-DD as the API's timestamp: the start of that day, UTC ("" stays None)."""
    text = str(value or "").strip()
    return f"{text}T00:00:00Z" if text else None


def date_of(value: str | None) -> str:
    """An API timestamp as a date input's YYYY-MM-DD (UTC); "" for none or for text that is no time."""
    when = _aware(value) if value else None
    return when.date().isoformat() if when else ""


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("hullscan.service.console", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, ago=ago, size=human_size, short_digest=short_digest, sevclass=sevclass,
                       pq=path_quote, q=lambda v: quote(str(v), safe=""), date=date_of)
    env.globals.update(severities=SEVERITIES, prefix=PREFIX, urlencode=urlencode)
    return env


TEMPLATES = _environment()


# -- who is looking -----------------------------------------------------------------------------------------------


class LoginRequired(Exception):
    """Raised by pages when the visitor has no (valid) session: answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class Visitor:
    who: Principal
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.who.is_admin

    def api(self, request: Request, *, change: bool = False) -> Api:
        """The API as this visitor; `change`: with the CSRF token, for a form's change."""
        return Api(request, csrf=self.csrf if change else None)


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def _identify(svc: Service, cookie: str, csrf: str | None) -> Visitor:
    with svc.db.session() as session:
        who, login = cookie_principal(session, cookie, csrf)
        return Visitor(who, login.csrf_token)


def visitor(request: Request, svc: Service = Depends(service)) -> Visitor:  # noqa: B008
    """The logged-in visitor of a page (GET); LoginRequired otherwise."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise LoginRequired(_here(request))
    try:
        return _identify(svc, cookie, None)
    except ApiError:
        raise LoginRequired(_here(request)) from None


async def form_data(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=20000)


def same_origin(request: Request) -> bool:
    """A POST must come from a page of this service: browsers send Origin (or at least Referer) on form posts."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


def poster(request: Request, form: FormData = Depends(form_data),  # noqa: B008
           svc: Service = Depends(service)) -> Visitor:  # noqa: B008
    """The visitor behind a form post, once its origin and CSRF token check out (the API checks the token again
    when the console forwards the change to it)."""
    if not same_origin(request):
        raise ApiError("FORBIDDEN", "the form was not sent from a page of this service; open the page and try again")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise LoginRequired(PREFIX + "/")
    try:
        return _identify(svc, cookie, str(form.get("csrf", "")))
    except ApiError as exc:
        if exc.code == "UNAUTHORIZED":
            raise LoginRequired(PREFIX) from None
        raise ApiError("FORBIDDEN", "the form is out of date (its security token does not match your session); "
                       "reload the page and send it again") from None


# -- messages carried over a redirect -----------------------------------------------------------------------------


@dataclass
class Flash:
    kind: str  # ok | error | info
    text: str
    code: str = ""
    solution: str = ""


@dataclass
class Flashes:
    """Messages to show on the next page: kept in a short-lived HttpOnly cookie across the redirect after a post."""

    items: list[Flash] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.items.append(Flash("ok", text))

    def error(self, exc: HullscanError | str) -> None:
        if isinstance(exc, HullscanError):
            self.items.append(Flash("error", exc.detail, exc.code, solution_of(exc)))
        else:
            self.items.append(Flash("error", exc))

    def encode(self) -> str:
        data = json.dumps([[f.kind, f.text[:600], f.code, f.solution[:400]] for f in self.items[:6]])
        return base64.urlsafe_b64encode(data.encode()).decode()

    @classmethod
    def read(cls, request: Request) -> Flashes:
        raw = request.cookies.get(FLASH_COOKIE)
        if not raw:
            return cls()
        try:
            rows = json.loads(base64.urlsafe_b64decode(raw.encode()))
            return cls([Flash(str(k), str(t), str(c), str(s)) for k, t, c, s in rows][:6])
        except (ValueError, TypeError, binascii.Error):
            return cls()


def solution_of(exc: HullscanError) -> str:
    if isinstance(exc, ApiFailure):
        return exc.solution
    cause = CATALOGUE.get(exc.code)
    return cause.solution if cause else ""


async def attempt(flashes: Flashes, action: Awaitable[T]) -> T | None:
    """Await a call made on behalf of a form; its failure (the API's catalogue cause) becomes a message."""
    try:
        return await action
    except HullscanError as exc:
        flashes.error(exc)
    return None


def safe_next(value: object, default: str) -> str:
    """A redirect target from a form: only a path inside the console (never another site)."""
    text = str(value or "")
    inside = text == PREFIX or text.startswith((PREFIX + "/", PREFIX + "?"))
    return text if inside and "\\" not in text and not any(c.isspace() for c in text) else default


def redirect(to: str, flashes: Flashes | None = None) -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    if flashes is not None and flashes.items:
        response.set_cookie(FLASH_COOKIE, flashes.encode(), max_age=60, path=PREFIX, httponly=True,
                            samesite="strict")
    return response


# -- pages --------------------------------------------------------------------------------------------------------


def page(request: Request, template: str, me: Visitor | None, *, status: int = 200, title: str = "",
         nav: str = "", no_store: bool = False, **context: Any) -> HTMLResponse:
    """A whole page: the template with the visitor, the flash messages carried here, and the context."""
    flashes = Flashes.read(request)
    context.setdefault("link", lambda **changes: query_params(request, **changes))  # the page with other params
    body = TEMPLATES.get_template(template).render(me=me, flashes=flashes.items, title=title, nav=nav, **context)
    response = HTMLResponse(body, status_code=status)
    if flashes.items:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX, httponly=True, samesite="strict")
    if no_store or me is not None:
        response.headers["Cache-Control"] = "no-store"  # pages show what only this visitor may see
    return response


def fragment(template: str, **context: Any) -> HTMLResponse:
    """A piece of a page, for the script that refreshes running scans in place."""
    response = HTMLResponse(TEMPLATES.get_template(template).render(**context))
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, exc: HullscanError) -> HTMLResponse:
    status = exc.status if isinstance(exc, ApiError | ApiFailure) else STATUS.get(exc.code, 400)
    if exc.code == "UNAUTHORIZED":
        status = 401
    return page(request, "error.html", None, status=status, title=CATALOGUE[exc.code].title if exc.code in CATALOGUE
                else "Something went wrong", code=exc.code, message=exc.detail, solution=solution_of(exc))


class ConsoleRoute(APIRoute):
    """Console routes answer errors as pages (a catalogue cause with its solution) or a redirect to the login page,
    never the API's JSON body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                target = safe_next(exc.next_path, PREFIX + "/")
                return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303)
            except HullscanError as exc:
                if exc.code == "UNAUTHORIZED" and request.method == "GET":  # the session ended meanwhile
                    return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': _here(request)})}", status_code=303)
                return error_page(request, exc)

        return handle


def query_params(request: Request, **changes: object) -> str:
    """The page's query string with some parameters changed (None removes one), repeated ones (several severities)
    kept: for tab, filter and page links."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v is not None]
    return "?" + urlencode(params)


def page_number(request: Request) -> int:
    """The `page` parameter (1 when absent or not a number)."""
    text = request.query_params.get("page", "1")
    return max(1, min(int(text), 100_000)) if text.isdecimal() and len(text) < 7 else 1
