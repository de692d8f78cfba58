"""Image references, parsed the way Docker parses them.

    [registry[:port]/]path/name[:tag][@digest]

A first path component is a registry when it contains a dot or a colon, is `localhost`, or has upper-case
letters; otherwise the image lives on Docker Hub (`docker.io`), and a one-component name there gets the
`library/` prefix. `index.docker.io` is an alias of `docker.io`, whose API is served by
`registry-1.docker.io`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from hullscan.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*")
_IPV6 = re.compile(r"\[([a-fA-F0-9:.%a-zA-Z]+)\]")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_HEX = {"sha256": 64, "sha512": 128}
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference. `str()` gives the full form and parses back to an equal value."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def ref(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (default `latest`)."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host[:port] serving the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB

    @property
    def familiar(self) -> str:
        """The short form Docker prints: `ubuntu:22.04` rather than `docker.io/library/ubuntu:22.04`."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/") if self.repository.count("/") == 1 else self.repository
        return name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        _check_tag(tag, tag)
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        _check_digest(digest, digest)
        return Reference(self.registry, self.repository, self.tag, digest)

    def _suffix(self) -> str:
        out = ""
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse_reference(text: str) -> Reference:
    """Parse an image reference, raising InvalidReference with the exact reason when it is not valid."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("the image reference is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"{text!r}: an image reference cannot contain whitespace")
    if _IDENTIFIER.fullmatch(text):
        raise InvalidReference(
            f"{text!r}: a 64-character hexadecimal string is an image ID, not a reference; "
            f"use name@sha256:{text} to pin a digest")

    name_tag, at, digest = text.partition("@")
    if at:
        if "@" in digest:
            raise InvalidReference(f"{text!r}: more than one '@' in the reference")
        _check_digest(digest, text)
    tag: str | None = None
    last_slash = name_tag.rfind("/")
    colon = name_tag.rfind(":")
    name = name_tag
    if colon > last_slash:
        name, tag = name_tag[:colon], name_tag[colon + 1:]
        _check_tag(tag, text)
    if not name:
        raise InvalidReference(f"{text!r}: the repository name is missing")

    registry, path = _split_registry(name)
    _check_registry(registry, text)
    if registry in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    _check_path(path, text)
    if len(registry) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReference(f"{text!r}: the repository name is longer than {MAX_NAME_LENGTH} characters")
    return Reference(registry, path, tag, digest if at else None)


def _split_registry(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if not slash:
        return DOCKER_HUB, name
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        return first, rest
    return DOCKER_HUB, name


def _check_registry(registry: str, text: str) -> None:
    host, port = split_host_port(registry)
    if port is not None and (not port.isdecimal() or not 0 < int(port) < 65536):
        raise InvalidReference(f"{text!r}: registry port {port!r} is not a number between 1 and 65535")
    if host.startswith("["):
        m = _IPV6.fullmatch(host)
        try:
            ok = m is not None and ipaddress.ip_address(m.group(1)).version == 6
        except ValueError:
            ok = False
        if not ok:
            raise InvalidReference(f"{text!r}: registry {registry!r} is not a valid IPv6 address")
        return
    if not _DOMAIN_NAME.fullmatch(host):
        raise InvalidReference(f"{text!r}: registry {registry!r} is not a valid host name")


def _check_path(path: str, text: str) -> None:
    if path.lower() != path:
        raise InvalidReference(f"{text!r}: repository name {path!r} must be lowercase")
    for component in path.split("/"):
        if not component:
            raise InvalidReference(f"{text!r}: repository name {path!r} has an empty path component")
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"{text!r}: repository path component {component!r} is not valid (lowercase letters, "
                f"digits and single '.', '_', '__' or '-' separators, starting and ending alphanumeric)")


def _check_tag(tag: str, text: str) -> None:
    if not tag:
        raise InvalidReference(f"{text!r}: the tag after ':' is empty")
    if not _TAG.fullmatch(tag):
        raise InvalidReference(
            f"{text!r}: tag {tag!r} is not valid (letters, digits, '_', '.' and '-', starting with a letter, "
            f"digit or '_', at most 128 characters)")


def _check_digest(digest: str, text: str) -> None:
    algo, colon, hexpart = digest.partition(":")
    if not colon or not algo or not hexpart:
        raise InvalidReference(f"{text!r}: digest {digest!r} must be algorithm:hex, e.g. sha256:<64 hex digits>")
    if algo not in _DIGEST_HEX:
        raise InvalidReference(f"{text!r}: digest algorithm {algo!r} is not supported (use sha256 or sha512)")
    want = _DIGEST_HEX[algo]
    if len(hexpart) != want or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidReference(f"{text!r}: a {algo} digest must be {want} lowercase hexadecimal digits")


def split_host_port(registry: str) -> tuple[str, str | None]:
    """('host', 'port' or None) from `host[:port]`, `[v6]` or `[v6]:port`."""
    if registry.startswith("["):
        end = registry.find("]")
        if end == -1:
            return registry, None
        rest = registry[end + 1:]
        return registry[: end + 1], rest[1:] if rest.startswith(":") else None
    host, colon, port = registry.rpartition(":")
    if not colon:
        return registry, None
    return host, port


def is_loopback(registry: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port): plain HTTP is allowed there."""
    host, _port = split_host_port(registry)
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
