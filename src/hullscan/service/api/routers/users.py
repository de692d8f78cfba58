"""/api/v1/users: local users, their roles per namespace and their passwords.

Admins manage users (create, change, disable, delete, reset a password, set memberships); every user may read
their own account (`/users/me`) and change their own password, given the current one. The service keeps at least
one enabled admin: the last one cannot be deleted, disabled or demoted.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hullscan.service import audit
from hullscan.service.api.auth import Principal, admin, db_session, principal
from hullscan.service.api.errors import ApiError, not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.schemas import (
    MAX_ID,
    MembershipIn,
    MembershipOut,
    PasswordChange,
    PasswordSet,
    Role,
    UserIn,
    UserOut,
    UserPatch,
)
from hullscan.service.passwords import acceptable, check_password, hash_password
from hullscan.service.storage.models import LoginSession, Membership, Namespace, User, now

router = APIRouter(prefix="/api/v1/users", tags=["users"])
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]


def memberships_of(session: Session, user_id: int) -> list[MembershipOut]:
    rows = session.execute(select(Membership.namespace_id, Namespace.registry_id, Namespace.name, Membership.role)
                           .join(Namespace, Membership.namespace_id == Namespace.id)
                           .where(Membership.user_id == user_id)
                           .order_by(Namespace.registry_id, Namespace.name)).all()
    return [MembershipOut(namespace_id=ns_id, registry=reg, namespace=name, role=role)
            for ns_id, reg, name, role in rows]


def user_out(session: Session, user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin, disabled=user.disabled,
                   created_at=user.created_at, password_changed_at=user.password_changed_at,
                   memberships=memberships_of(session, user.id))


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise not_found(f"user {user_id}")
    return user


def _set_memberships(session: Session, user: User, items: list[MembershipIn]) -> None:
    ids = [m.namespace_id for m in items]
    if len(ids) != len(set(ids)):
        raise ApiError("INVALID_REQUEST", "a namespace is named twice in memberships")
    known = set(session.scalars(select(Namespace.id).where(Namespace.id.in_(ids)))) if ids else set()
    missing = sorted(set(ids) - known)
    if missing:
        raise ApiError("NAMESPACE_UNKNOWN", f"no namespace has the id {', '.join(map(str, missing))}")
    session.execute(delete(Membership).where(Membership.user_id == user.id))
    session.add_all(Membership(user_id=user.id, namespace_id=m.namespace_id, role=m.role) for m in items)
    session.flush()
    session.expire(user, ["memberships"])


def _keeps_an_admin(session: Session, user: User) -> None:
    """Refuse a change that would leave no enabled admin (`user` is about to stop being one)."""
    others = session.scalar(select(func.count()).select_from(User)
                            .where(User.is_admin, User.disabled.is_(False), User.id != user.id)) or 0
    if user.is_admin and not user.disabled and others == 0:
        raise ApiError("CONFLICT", f"{user.username} is the last enabled admin; make another admin first")


def _end_sessions(session: Session, user_id: int, keep: int | None = None) -> None:
    """A changed password logs the user out of every console session (but the one that changed it)."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    session.execute(query)


@router.get("", response_model=list[UserOut], summary="List users (admin)")
def list_users(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
               username: str | None = Query(None, max_length=128, description="Exact username"),
               is_admin: bool | None = Query(None), disabled: bool | None = Query(None),
               namespace_id: int | None = Query(None, ge=1, le=MAX_ID, description="Members of this namespace"),
               who: Principal = Depends(admin), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    query = select(User)
    for column, value in ((User.username, username), (User.is_admin, is_admin), (User.disabled, disabled)):
        if value is not None:
            query = query.where(column == value)
    if namespace_id is not None:
        query = query.where(User.id.in_(select(Membership.user_id).where(Membership.namespace_id == namespace_id)))
    rows = paginate(session, query, page, {"id": User.id, "username": User.username, "created_at": User.created_at},
                    [User.username], request, response)
    return [user_out(session, u) for u in rows]


@router.post("", status_code=201, response_model=UserOut, summary="Create a user (admin)")
def create_user(body: UserIn, who: Principal = Depends(admin),  # noqa: B008
                session: Session = Depends(db_session)) -> Any:  # noqa: B008
    acceptable(body.username, body.password)
    user = User(username=body.username, password_hash=hash_password(body.password), is_admin=body.is_admin,
                password_changed_at=now())
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise ApiError("CONFLICT", f"a user named {body.username!r} exists already") from None
    _set_memberships(session, user, body.memberships)
    out = user_out(session, user)
    audit.record(session, who.username, "user.create", f"user:{user.id}",
                 {"username": user.username, "is_admin": user.is_admin,
                  "memberships": [m.model_dump() for m in out.memberships]})
    session.commit()
    return out


@router.get("/me", response_model=UserOut, summary="Your own account")
def me(who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return user_out(session, _get(session, who.user_id))


@router.put("/me/password", status_code=204, summary="Change your own password (give the current one)")
def change_own_password(body: PasswordChange, who: Principal = Depends(principal),  # noqa: B008
                        session: Session = Depends(db_session)) -> Response:  # noqa: B008
    user = _get(session, who.user_id)
    if not check_password(user.password_hash, body.current_password):
        raise ApiError("FORBIDDEN", "the current password is wrong")
    acceptable(user.username, body.new_password)
    user.password_hash, user.password_changed_at = hash_password(body.new_password), now()
    _end_sessions(session, user.id, keep=who.session_id)
    audit.record(session, who.username, "user.password", f"user:{user.id}", {"by": "self"})
    session.commit()
    return Response(status_code=204)


@router.get("/{user_id}", response_model=UserOut, summary="A user (admin, or yourself)")
def get_user(user_id: UserId, who: Principal = Depends(principal),  # noqa: B008
             session: Session = Depends(db_session)) -> Any:  # noqa: B008
    if user_id != who.user_id:
        who.require_admin()
    return user_out(session, _get(session, user_id))


@router.patch("/{user_id}", response_model=UserOut, summary="Make admin, disable, or set memberships (admin)")
def patch_user(user_id: UserId, body: UserPatch, who: Principal = Depends(admin),  # noqa: B008
               session: Session = Depends(db_session)) -> Any:  # noqa: B008
    user = _get(session, user_id)
    before = user_out(session, user).model_dump(mode="json")
    if (body.is_admin is False and user.is_admin) or (body.disabled and not user.disabled):
        _keeps_an_admin(session, user)
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    if body.disabled is not None:
        user.disabled = body.disabled
        if body.disabled:
            _end_sessions(session, user.id)
    if body.memberships is not None:
        _set_memberships(session, user, body.memberships)
    session.flush()
    after = user_out(session, user)
    audit.record(session, who.username, "user.update", f"user:{user.id}",
                 {"before": {k: before[k] for k in ("is_admin", "disabled", "memberships")},
                  "after": {k: v for k, v in after.model_dump(mode="json").items()
                            if k in ("is_admin", "disabled", "memberships")}})
    session.commit()
    return after


@router.delete("/{user_id}", status_code=204, summary="Delete a user, their tokens and sessions (admin)")
def delete_user(user_id: UserId, who: Principal = Depends(admin),  # noqa: B008
                session: Session = Depends(db_session)) -> Response:  # noqa: B008
    user = _get(session, user_id)
    if user.id == who.user_id:
        raise ApiError("CONFLICT", "you cannot delete your own account; ask another admin")
    _keeps_an_admin(session, user)
    session.delete(user)
    audit.record(session, who.username, "user.delete", f"user:{user_id}", {"username": user.username})
    session.commit()
    return Response(status_code=204)


@router.put("/{user_id}/password", status_code=204, summary="Set a user's password (admin): a reset")
def reset_password(user_id: UserId, body: PasswordSet, who: Principal = Depends(admin),  # noqa: B008
                   session: Session = Depends(db_session)) -> Response:  # noqa: B008
    user = _get(session, user_id)
    acceptable(user.username, body.password)
    user.password_hash, user.password_changed_at = hash_password(body.password), now()
    _end_sessions(session, user.id, keep=who.session_id if user.id == who.user_id else None)
    audit.record(session, who.username, "user.password", f"user:{user.id}", {"by": "admin"})
    session.commit()
    return Response(status_code=204)


@router.get("/{user_id}/memberships", response_model=list[MembershipOut],
            summary="A user's roles per namespace (admin, or yourself)")
def list_memberships(user_id: UserId, request: Request, response: Response,  # noqa: B008
                     page: Page = Depends(page_params),  # noqa: B008
                     registry: int | None = Query(None, ge=1, le=MAX_ID), role: Role | None = Query(None),
                     who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    if user_id != who.user_id:
        who.require_admin()
    _get(session, user_id)
    query = select(Membership).join(Namespace, Membership.namespace_id == Namespace.id) \
        .where(Membership.user_id == user_id)
    if registry is not None:
        query = query.where(Namespace.registry_id == registry)
    if role is not None:
        query = query.where(Membership.role == role)
    sortable = {"namespace": Namespace.name, "registry": Namespace.registry_id, "role": Membership.role}
    rows = paginate(session, query, page, sortable, [Namespace.registry_id, Namespace.name], request, response)
    return [MembershipOut(namespace_id=m.namespace_id, registry=m.namespace.registry_id, namespace=m.namespace.name,
                          role=m.role) for m in rows]


@router.put("/{user_id}/memberships", response_model=list[MembershipOut],
            summary="Replace a user's roles per namespace (admin)")
def put_memberships(user_id: UserId, body: Annotated[list[MembershipIn], Body(max_length=10000)],
                    who: Principal = Depends(admin),  # noqa: B008
                    session: Session = Depends(db_session)) -> Any:  # noqa: B008
    user = _get(session, user_id)
    before = [m.model_dump() for m in memberships_of(session, user.id)]
    _set_memberships(session, user, body)
    after = memberships_of(session, user.id)
    audit.record(session, who.username, "user.memberships", f"user:{user.id}",
                 {"before": before, "after": [m.model_dump() for m in after]})
    session.commit()
    return after
