"""What every connector offers, and what they share: where the registry is and how to log in to it."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from hullscan.errors import HullscanError
from hullscan.oci.credentials import Credentials
from hullscan.oci.registry import RegistryClient
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.models import Registry


@dataclass(frozen=True)
class ConnectionInfo:
    url: str  # scheme://host[:port][/path], no trailing slash
    host: str  # host[:port], as image references name it
    scheme: str
    insecure: bool
    username: str | None
    password: str | None
    ca_cert: str | None  # PEM

    @classmethod
    def of(cls, registry: Registry, box: SecretBox) -> ConnectionInfo:
        password = box.open(registry.password_encrypted) if registry.password_encrypted else None
        return cls.parse(registry.url, insecure=registry.insecure, username=registry.username, password=password,
                         ca_cert=registry.ca_cert)

    @classmethod
    def parse(cls, url: str, *, insecure: bool = False, username: str | None = None, password: str | None = None,
              ca_cert: str | None = None) -> ConnectionInfo:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HullscanError(f"{url!r} is not a registry address (http[s]://host[:port])", code="INVALID_REQUEST")
        return cls(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", parts.netloc, parts.scheme, insecure,
                   username or None, password or None, ca_cert or None)

    @property
    def credentials(self) -> Credentials | None:
        if not self.username:
            return None
        return Credentials(self.username, self.password or "", source="the registry's settings in hullscan")


@dataclass
class RemoteImage:
    """A tag of a repository as the registry lists it (digest and size when it says)."""

    namespace: str
    repository: str  # full path, namespace included
    tag: str | None
    digest: str | None = None
    size: int | None = None
    media_type: str | None = None
    pushed_at: dt.datetime | None = None
    platform: str | None = None


class Connector(Protocol):
    info: ConnectionInfo

    def test(self) -> str:
        """Reach the registry and log in; a line saying what worked, or a HullscanError with the precise cause."""
        ...

    def images(self) -> Iterator[RemoteImage]:
        """Every tag of every repository the credentials can see."""
        ...

    def namespace_of(self, repository: str) -> str: ...

    def reference(self, repository: str, ref: str) -> str:
        """The image reference the engine pulls (`ref`: a tag or a digest)."""
        ...

    def close(self) -> None: ...


def parse_time(value: object) -> dt.datetime | None:
    """An RFC 3339 time as registries write it (UTC when it names no zone); None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def first_segment(repository: str) -> str:
    return repository.split("/", 1)[0]


def image_reference(host: str, repository: str, ref: str) -> str:
    return f"{host}/{repository}@{ref}" if ref.startswith(("sha256:", "sha512:")) else f"{host}/{repository}:{ref}"


class ClientHolder:
    """A RegistryClient for a connection, with a private CA written to a temporary file for as long as it lives."""

    def __init__(self, info: ConnectionInfo, host: str | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        ca: Path | None = None
        if info.ca_cert:
            self._tmp = tempfile.TemporaryDirectory(prefix="hullscan-ca-")
            ca = Path(self._tmp.name) / "ca.pem"
            ca.write_text(info.ca_cert)
        self.client = RegistryClient(host or info.host, info.credentials, insecure=info.insecure, ca_cert=ca,
                                     scheme=info.scheme)

    def close(self) -> None:
        self.client.close()
        if self._tmp is not None:
            self._tmp.cleanup()
