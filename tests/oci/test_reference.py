from __future__ import annotations

import pytest

from hullscan.errors import InvalidReference
from hullscan.oci.reference import Reference, is_loopback, parse_reference, split_host_port

D256 = "sha256:" + "a" * 64
D512 = "sha512:" + "b" * 128


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("library/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("index.docker.io/ubuntu:latest", "docker.io", "library/ubuntu", "latest", None),
        ("index.docker.io/foo/bar", "docker.io", "foo/bar", None, None),
        ("registry-1.docker.io/library/alpine", "docker.io", "library/alpine", None, None),
        ("localhost/foo", "localhost", "foo", None, None),
        ("localhost:5000/foo/bar:1.0", "localhost:5000", "foo/bar", "1.0", None),
        ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", None, None),
        ("ghcr.io/org/team/app:v1.2.3-rc.1", "ghcr.io", "org/team/app", "v1.2.3-rc.1", None),
        ("myhost:443/app", "myhost:443", "app", None, None),
        ("Registry.Example.com/app", "Registry.Example.com", "app", None, None),
        ("MYHOST/app", "MYHOST", "app", None, None),
        (f"quay.io/a/b@{D256}", "quay.io", "a/b", None, D256),
        (f"quay.io/a/b:t@{D256}", "quay.io", "a/b", "t", D256),
        (f"alpine@{D512}", "docker.io", "library/alpine", None, D512),
        ("[::1]:5000/app:x", "[::1]:5000", "app", "x", None),
        ("a.b/c__d/e-f.g_h--i", "a.b", "c__d/e-f.g_h--i", None, None),
        ("foo:_tag", "docker.io", "library/foo", "_tag", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    # str() is the full form and parses back to the same value.
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref


def test_properties() -> None:
    r = parse_reference("ubuntu")
    assert r.ref == "latest" and r.api_host == "registry-1.docker.io" and r.is_docker_hub
    assert str(r) == "docker.io/library/ubuntu" and r.familiar == "ubuntu"
    r = parse_reference("docker.io/foo/bar:1")
    assert r.familiar == "foo/bar:1" and r.name == "docker.io/foo/bar"
    r = parse_reference(f"localhost:5000/app:1@{D256}")
    assert r.ref == D256 and r.api_host == "localhost:5000" and str(r) == f"localhost:5000/app:1@{D256}"
    assert r.with_tag("2") == Reference("localhost:5000", "app", "2", None)
    assert parse_reference("x").with_digest(D256).digest == D256
    assert parse_reference("gcr.io/p/i:3").familiar == "gcr.io/p/i:3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Ubuntu", "must be lowercase"),
        ("docker.io/Library/ubuntu", "must be lowercase"),
        ("ghcr.io/Org/app", "must be lowercase"),
        ("ubuntu:", "tag after ':' is empty"),
        ("ubuntu:-bad", "tag '-bad' is not valid"),
        ("ubuntu:" + "a" * 129, "at most 128"),
        ("ubuntu@sha256:abc", "64 lowercase hexadecimal"),
        ("ubuntu@sha256:" + "A" * 64, "64 lowercase hexadecimal"),
        ("ubuntu@md5:" + "a" * 32, "not supported"),
        ("ubuntu@" + "a" * 64, "must be algorithm:hex"),
        ("ubuntu@sha256:" + "a" * 64 + "@sha256:" + "a" * 64, "more than one '@'"),
        ("foo//bar", "empty path component"),
        ("foo/bar/", "empty path component"),
        ("-foo", "not valid"),
        ("foo-/bar", "not valid"),
        ("foo..bar", "not valid"),
        ("foo___bar", "not valid"),
        ("my host/app", "whitespace"),
        (" ubuntu", "whitespace"),
        ("-host.com/app", "not a valid host name"),
        ("host.com:99999/app", "port '99999'"),
        ("host.com:/app", "port ''"),
        ("host.com:\u00b9/app", "port '\u00b9'"),  # a digit to str.isdigit(), not to int()
        ("[zz::1]:5000/app", "not a valid IPv6"),
        ("a" * 64, "image ID"),
        (":tag", "repository name is missing"),
        ("example.com/" + "a" * 250, "longer than 255"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert message in str(info.value)
    assert info.value.code == "INVALID_REFERENCE"


def test_loopback_and_host_port() -> None:
    assert is_loopback("localhost") and is_loopback("localhost:5000") and is_loopback("127.0.0.1:5000")
    assert is_loopback("127.1.2.3") and is_loopback("[::1]:5000") and is_loopback("[::1]")
    assert not is_loopback("example.com") and not is_loopback("10.0.0.1:5000") and not is_loopback("[::2]:1")
    assert split_host_port("[::1]:5000") == ("[::1]", "5000")
    assert split_host_port("h:1") == ("h", "1")
    assert split_host_port("h") == ("h", None)
