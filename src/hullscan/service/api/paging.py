"""Lists: `page` and `page_size` in, a JSON array out with `X-Total-Count` and `Link` headers (as Harbor and GitHub
do); `sort=field` or `sort=-field` among the fields each list allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request, Response
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from hullscan.service.api.errors import ApiError

T = TypeVar("T")
MAX_PAGE_SIZE = 500


@dataclass
class Page:
    page: int
    page_size: int
    sort: str | None


def page_params(page: int = Query(1, ge=1, le=1_000_000, description="Page number, from 1"),
                page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE, description="Items per page"),
                sort: str | None = Query(None, max_length=64, description="A field to sort by; `-field` descends"),
                ) -> Page:
    return Page(page, page_size, sort)


def paginate(session: Session, query: Select[Any], page: Page, sortable: dict[str, Any], default: list[Any],
             request: Request, response: Response) -> list[Any]:
    """Rows of one page of `query`, sorted as asked (an unknown sort field is a 422), headers set."""
    order = list(default)
    if page.sort:
        name = page.sort.lstrip("-")
        column = sortable.get(name)
        if column is None:
            raise ApiError("INVALID_REQUEST", f"cannot sort by {name!r}; sort by one of {', '.join(sorted(sortable))}")
        order = [column.desc() if page.sort.startswith("-") else column.asc(), *default]
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(session.scalars(query.order_by(*order).offset((page.page - 1) * page.page_size)
                                .limit(page.page_size)))
    response.headers["X-Total-Count"] = str(total)
    links = []
    params = dict(request.query_params)
    if page.page * page.page_size < total:
        links.append(f'<{request.url.path}?{urlencode({**params, "page": page.page + 1})}>; rel="next"')
    if page.page > 1:
        links.append(f'<{request.url.path}?{urlencode({**params, "page": page.page - 1})}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return rows
