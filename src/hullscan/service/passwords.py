"""Hashes for what people present: passwords (Argon2id, a current memory-hard KDF) and random tokens
(API tokens, login sessions, inbound-hook tokens: 256 random bits, so a plain SHA-256 is enough and fast)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hullscan.errors import HullscanError

_HASHER = PasswordHasher()  # Argon2id; argon2-cffi's defaults follow RFC 9106's second recommendation
TOKEN_PREFIX = "hs_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 hashes any length, but a megabyte "password" is a way to burn CPU


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash it at the next login)."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def acceptable(username: str, password: str) -> None:
    """Refuse passwords anyone would guess first (too short, the user's own name); a HullscanError says why."""
    if len(password) < MIN_PASSWORD:
        raise HullscanError(f"a password needs at least {MIN_PASSWORD} characters", code="INVALID_REQUEST")
    if len(password) > MAX_PASSWORD:
        raise HullscanError(f"a password may have at most {MAX_PASSWORD} characters", code="INVALID_REQUEST")
    if password.strip().lower() == username.strip().lower():
        raise HullscanError("the password may not be the username", code="INVALID_REQUEST")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
