"""/api/v1/session: logging in and out of the console.

`POST` with a username and password sets the `hullscan_session` cookie (HttpOnly, SameSite=Strict, Secure when the
request came over HTTPS) and answers with a CSRF token: every unsafe request made with the cookie must carry it as
`X-CSRF-Token`. The cookie's value is 256 random bits of which the service keeps only the SHA-256. `GET` tells who
the caller is (whatever the credentials); `DELETE` ends the session.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete
from sqlalchemy.orm import Session

from hullscan.service.api.auth import (
    SESSION_COOKIE,
    SESSION_TTL,
    Principal,
    db_session,
    login_user,
    principal,
)
from hullscan.service.api.errors import ApiError
from hullscan.service.api.routers.users import memberships_of
from hullscan.service.api.schemas import LoginIn, SessionOut
from hullscan.service.passwords import token_hash
from hullscan.service.storage.models import LoginSession, now

router = APIRouter(prefix="/api/v1/session", tags=["session"])
log = logging.getLogger("hullscan.service.session")


def _out(session: Session, who: Principal, login: LoginSession | None) -> SessionOut:
    return SessionOut(user_id=who.user_id, username=who.username, is_admin=who.is_admin, via=who.via,
                      memberships=memberships_of(session, who.user_id),
                      csrf_token=login.csrf_token if login else None, expires_at=login.expires_at if login else None)


@router.post("", status_code=201, response_model=SessionOut,
             summary="Log in: sets the session cookie and returns its CSRF token",
             responses={401: {"description": "Wrong username or password, or a disabled account"},
                        429: {"description": "Too many failed log-ins of this user name from this address "
                              "(LOGIN_THROTTLED); Retry-After says when to try again"}})
def login(body: LoginIn, request: Request, response: Response,
          session: Session = Depends(db_session)) -> Any:  # noqa: B008
    user = login_user(request, session, body.username, body.password)
    if user.disabled:
        raise ApiError("UNAUTHORIZED", "the account is disabled")
    session.execute(delete(LoginSession).where(LoginSession.expires_at <= now()))  # housekeeping, on the way
    cookie, expires = secrets.token_urlsafe(32), now() + SESSION_TTL
    login_row = LoginSession(token_hash=token_hash(cookie), csrf_token=secrets.token_urlsafe(32), user_id=user.id,
                             expires_at=expires)
    session.add(login_row)
    session.commit()
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(SESSION_TTL.total_seconds()), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    log.info("user %s logged in (session %s)", user.id, login_row.id)
    who = Principal(user.id, user.username, user.is_admin, "session", session_id=login_row.id)
    return _out(session, who, login_row)


@router.get("", response_model=SessionOut, summary="Who you are: user, roles and (with the cookie) the CSRF token")
def whoami(who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    login_row = session.get(LoginSession, who.session_id) if who.session_id is not None else None
    return _out(session, who, login_row)


@router.delete("", status_code=204, summary="Log out: ends the session and clears its cookie")
def logout(request: Request, who: Principal = Depends(principal),  # noqa: B008
           session: Session = Depends(db_session)) -> Response:  # noqa: B008
    if who.session_id is not None:
        session.execute(delete(LoginSession).where(LoginSession.id == who.session_id))
        session.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
