"""Throwaway private keys, generated when the tests run (never checked in), in the formats images carry them."""

from __future__ import annotations

import functools
import json

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


@functools.cache
def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def pem(kind: str) -> str:
    """A PEM (or OpenSSH) private key; `kind` names the format, the rule that must find it follows it."""
    plain, pkcs8, trad, openssh = (ser.NoEncryption(), ser.PrivateFormat.PKCS8, ser.PrivateFormat.TraditionalOpenSSL,
                                   ser.PrivateFormat.OpenSSH)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = _rsa()
    fmt, enc = pkcs8, plain
    if kind == "rsa-traditional":
        fmt = trad
    elif kind == "rsa-traditional-encrypted":
        fmt, enc = trad, ser.BestAvailableEncryption(b"throwaway")
    elif kind == "rsa-pkcs8-encrypted":
        enc = ser.BestAvailableEncryption(b"throwaway")
    elif kind == "ec-sec1":
        key, fmt = ec.generate_private_key(ec.SECP256R1()), trad
    elif kind == "ed25519-openssh":
        key, fmt = ed25519.Ed25519PrivateKey.generate(), openssh
    elif kind != "rsa-pkcs8":
        raise ValueError(kind)
    return key.private_bytes(ser.Encoding.PEM, fmt, enc).decode()


RULE_OF = {
    "rsa-pkcs8": "private-key-pkcs8", "rsa-traditional": "private-key-rsa",
    "rsa-traditional-encrypted": "private-key-pem-encrypted", "rsa-pkcs8-encrypted": "private-key-pkcs8-encrypted",
    "ec-sec1": "private-key-ec", "ed25519-openssh": "private-key-openssh",
}


def service_account(key: str) -> str:
    """A GCP service-account key file as the console downloads it (the key with escaped newlines)."""
    return json.dumps({
        "type": "service_account", "project_id": "acme-prod", "private_key_id": "0" * 40, "private_key": key,
        "client_email": "deployer@acme-prod.iam.gserviceaccount.com", "client_id": "1" * 21,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
    }, indent=2) + "\n"
