"""Registry credentials encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256, from `cryptography`).

The key comes from the settings (`HULLSCAN_SECRET_KEY`) or from `<data_dir>/secret.key`, which the service creates
on its first start with mode 0600. Losing the key loses the stored credentials, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from hullscan.errors import HullscanError
from hullscan.settings import Settings

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            # Any passphrase: derived into a Fernet key, so operators need not generate one in Fernet's format.
            digest = hashlib.sha256(settings.secret_key.get_secret_value().encode()).digest()
            return cls(base64.urlsafe_b64encode(digest))
        return cls(_key_file(settings.data_dir / KEY_FILE))

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise HullscanError("stored registry credentials cannot be decrypted with this service's key "
                                "(was HULLSCAN_SECRET_KEY or secret.key changed?); enter the password again",
                                code="AUTH_FAILED") from None


def _key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
