"""Hashes for what people present: passwords (Argon2id, a current memory-hard KDF) and random tokens
(API tokens, login sessions, inbound-hook tokens: 256 random bits, so a plain SHA-256 is enough and fast)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2-cffi's defaults follow RFC 9106's second recommendation
TOKEN_PREFIX = "hs_"
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
