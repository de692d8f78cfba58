"""/api/v1/tokens: API tokens for scripts and CI (`Authorization: Bearer hs_...`).

A token acts with its owner's roles. It is shown once, when created; the service keeps its SHA-256 only (a token is
256 random bits, so no slow KDF is needed) and a short prefix to tell tokens apart in lists. Tokens are made by a
person (password or console session), never by another token, so a leaked token cannot mint more. Users see and
revoke their own tokens; admins see and revoke anyone's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan.service import audit
from hullscan.service.api.auth import Principal, db_session, principal
from hullscan.service.api.errors import ApiError, not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.schemas import MAX_ID, TokenIn, TokenOut
from hullscan.service.passwords import new_token, token_hash
from hullscan.service.storage.models import ApiToken, User, now

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])
TokenId = Annotated[int, Path(ge=1, le=MAX_ID)]
PREFIX_LENGTH = 10  # "hs_" and 7 random characters: enough to tell a user's tokens apart, useless to guess with


def token_out(t: ApiToken, token: str | None = None) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, prefix=t.prefix, user_id=t.user_id, username=t.user.username,
                    created_at=t.created_at, expires_at=t.expires_at, last_used_at=t.last_used_at, token=token)


@router.get("", response_model=list[TokenOut], summary="Your API tokens (an admin: anyone's, with ?user=)")
def list_tokens(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
                user: int | None = Query(None, ge=1, le=MAX_ID, description="Whose tokens (admins only; default: "
                                         "yours)"),
                name: str | None = Query(None, max_length=128),
                expired: bool | None = Query(None, description="Only tokens that have expired (or not)"),
                who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    owner = who.user_id if user is None else user
    if owner != who.user_id:
        who.require_admin()
    query = select(ApiToken).join(User, ApiToken.user_id == User.id).where(ApiToken.user_id == owner)
    if name is not None:
        query = query.where(ApiToken.name == name)
    if expired is True:
        query = query.where(ApiToken.expires_at.is_not(None), ApiToken.expires_at <= now())
    elif expired is False:
        query = query.where(ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now()))
    sortable = {"id": ApiToken.id, "name": ApiToken.name, "created_at": ApiToken.created_at,
                "last_used_at": ApiToken.last_used_at, "expires_at": ApiToken.expires_at}
    rows = paginate(session, query, page, sortable, [ApiToken.id], request, response)
    return [token_out(t) for t in rows]


@router.post("", status_code=201, response_model=TokenOut, summary="Create an API token (shown once)")
def create_token(body: TokenIn, who: Principal = Depends(principal),  # noqa: B008
                 session: Session = Depends(db_session)) -> Any:  # noqa: B008
    if who.via == "token":
        raise ApiError("FORBIDDEN", "an API token cannot create tokens: log in with your password")
    if body.expires_at is not None and body.expires_at <= now():
        raise ApiError("INVALID_REQUEST", "expires_at is in the past")
    secret = new_token()
    token = ApiToken(user_id=who.user_id, name=body.name, token_hash=token_hash(secret),
                     prefix=secret[:PREFIX_LENGTH], expires_at=body.expires_at)
    session.add(token)
    session.flush()
    audit.record(session, who.username, "token.create", f"token:{token.id}",
                 {"name": body.name, "prefix": token.prefix,
                  "expires_at": body.expires_at.isoformat() if body.expires_at else None})
    session.commit()
    return token_out(token, secret)


@router.get("/{token_id}", response_model=TokenOut, summary="One API token (never the token itself)")
def get_token(token_id: TokenId, who: Principal = Depends(principal),  # noqa: B008
              session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return token_out(_visible(session, who, token_id))


@router.delete("/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: TokenId, who: Principal = Depends(principal),  # noqa: B008
                 session: Session = Depends(db_session)) -> Response:  # noqa: B008
    token = _visible(session, who, token_id)
    audit.record(session, who.username, "token.revoke", f"token:{token.id}",
                 {"name": token.name, "prefix": token.prefix, "owner": token.user.username})
    session.delete(token)
    session.commit()
    return Response(status_code=204)


def _visible(session: Session, who: Principal, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != who.user_id and not who.is_admin):
        raise not_found(f"token {token_id}")
    return token
