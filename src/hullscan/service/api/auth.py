"""Who is calling, and what they may do.

Callers authenticate with HTTP Basic (a user and password), `Authorization: Bearer <API token>`, or the console's
session cookie (with its CSRF token on every unsafe request). Roles: an admin may do anything; in a namespace, a
maintainer may read, scan and change its settings, a viewer may read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan.service.api.errors import ApiError
from hullscan.service.api.throttle import LoginThrottle
from hullscan.service.core import Service
from hullscan.service.passwords import MAX_PASSWORD, check_password, hash_password, needs_rehash, same, token_hash
from hullscan.service.storage.models import ApiToken, LoginSession, Membership, User, now

SESSION_COOKIE = "hullscan_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL = dt.timedelta(hours=12)
MAINTAINER, VIEWER = "maintainer", "viewer"
_RANK = {VIEWER: 1, MAINTAINER: 2}
# Checked against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("hullscan-no-such-user")


@dataclass
class Principal:
    user_id: int
    username: str
    is_admin: bool
    via: str  # basic | token | session
    roles: dict[int, str] = field(default_factory=dict)  # namespace id -> role
    token_id: int | None = None  # the API token presented (via token)
    session_id: int | None = None  # the login session (via session)

    def may(self, namespace_id: int, role: str = VIEWER) -> bool:
        return self.is_admin or _RANK.get(self.roles.get(namespace_id, ""), 0) >= _RANK[role]

    def require(self, namespace_id: int, role: str = VIEWER) -> None:
        if not self.may(namespace_id, role):
            raise ApiError("FORBIDDEN", f"this needs the {role} role in the namespace")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ApiError("FORBIDDEN", "this needs the admin role")


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def db_session(svc: Service = Depends(service)) -> Iterator[Session]:  # noqa: B008
    """A session per request; routes that write commit before they answer, so nothing is lost after."""
    session = svc.db.sessions()
    try:
        yield session
    finally:
        session.close()


def _unauthorized(why: str) -> ApiError:
    return ApiError("UNAUTHORIZED", why)


def _user_principal(session: Session, user: User, via: str) -> Principal:
    if user.disabled:
        raise _unauthorized("the account is disabled")
    roles = {m.namespace_id: m.role for m in session.scalars(select(Membership).where(Membership.user_id == user.id))}
    return Principal(user.id, user.username, user.is_admin, via, roles)


class BasicCache:
    """Recently verified Basic credentials, so a client sending them on every call (CI, the pull gate) pays the
    deliberately slow KDF once a minute rather than per request. Keys are HMACs under a key of this process only,
    so the cache holds nothing a password could be guessed from offline. Each entry is bound to the stored hash it
    was checked against: once the password is changed or reset, the old one is refused at once."""

    TTL = 60.0

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._seen: dict[bytes, tuple[int, bytes, float]] = {}
        self._lock = threading.Lock()

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).digest()

    def get(self, user: User, password: str) -> bool:
        with self._lock:
            found = self._seen.get(self._mac(user.username, password))
        return (found is not None and found[0] == user.id and hmac.compare_digest(found[1], self._mac(
            user.password_hash)) and found[2] > time.monotonic())

    def put(self, user: User, password: str) -> None:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[self._mac(user.username, password)] = (user.id, self._mac(user.password_hash),
                                                               time.monotonic() + self.TTL)


def verify_user(session: Session, cache: BasicCache, username: str, password: str) -> User:
    """The user these credentials name, or UNAUTHORIZED. A missing user costs as long as a wrong password; a hash
    made with older parameters is renewed."""
    if len(password) > MAX_PASSWORD:
        raise _unauthorized("wrong username or password")
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is not None and cache.get(user, password):
        return user
    if not check_password(user.password_hash if user else _DUMMY_HASH, password) or user is None:
        raise _unauthorized("wrong username or password")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    cache.put(user, password)
    return user


def login_user(request: Request, session: Session, username: str, password: str) -> User:
    """`verify_user`, counted against the failed log-ins of this user name from this client's address (see
    throttle.py): refused with LOGIN_THROTTLED, without looking at the password, once there were too many."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else ""
    attempts = throttle.check(username, client, session)
    if attempts.wait is not None:
        seconds = math.ceil(attempts.wait)
        raise ApiError("LOGIN_THROTTLED", f"too many failed log-ins with this user name from your address; try again "
                       f"in {seconds} s", headers={"Retry-After": str(seconds)})
    try:
        user = verify_user(session, request.app.state.basic_cache, username, password)
    except ApiError as exc:
        if exc.code == "UNAUTHORIZED":
            throttle.failed(username, client)
        raise
    if attempts.failures:  # a write only after failures: Basic authenticates every request
        throttle.succeeded(username, client)
    return user


def authenticate(request: Request, session: Session) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("the Basic credentials are not base64 of user:password") from None
        user = login_user(request, session, username, password)
        return _user_principal(session, user, "basic")
    if scheme.lower() == "bearer":
        token = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(value.strip()))).first()
        if token is None or (token.expires_at is not None and token.expires_at <= now()):
            raise _unauthorized("the API token is unknown or expired")
        if token.last_used_at is None or now() - token.last_used_at > dt.timedelta(minutes=1):
            token.last_used_at = now()
            session.commit()
        who = _user_principal(session, token.user, "token")
        who.token_id = token.id
        return who
    if header:
        raise _unauthorized(f"unsupported authorization scheme {scheme!r}")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
        who, _ = cookie_principal(session, cookie, request.headers.get(CSRF_HEADER, "") if unsafe else None)
        return who
    raise _unauthorized("no credentials were sent")


def cookie_principal(session: Session, cookie: str, csrf: str | None) -> tuple[Principal, LoginSession]:
    """Who a console session cookie belongs to, and its session. `csrf` is what an unsafe request presented as its
    CSRF token (the API's header, or the console's form field); None for a safe request."""
    login = session.scalars(select(LoginSession).where(LoginSession.token_hash == token_hash(cookie))).first()
    if login is None or login.expires_at <= now():
        raise _unauthorized("the session has ended; log in again")
    if csrf is not None and not same(csrf, login.csrf_token):
        raise ApiError("FORBIDDEN", f"a request made with a session cookie needs its CSRF token (the {CSRF_HEADER} "
                       "header, or the form's hidden field)")
    who = _user_principal(session, login.user, "session")
    who.session_id = login.id
    return who, login


def principal(request: Request, session: Session = Depends(db_session)) -> Principal:  # noqa: B008
    return authenticate(request, session)


def admin(who: Principal = Depends(principal)) -> Principal:  # noqa: B008
    who.require_admin()
    return who
