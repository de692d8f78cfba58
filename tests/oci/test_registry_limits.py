"""A hostile or broken registry cannot hold a scan: deadlines, minimum rates, bounded retries, bad tokens.

Real distribution registries behind the fault proxy (tests/support/proxy.py), which trickles bodies, stalls
and throttles. Limits are shrunk through TransferPolicy/RetryPolicy so a slow server trips them for
certain; no test measures how long anything took.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hullscan.errors import AuthError, RegistryError
from hullscan.imagebuild import Image, Layer, layer_tar, sha256
from hullscan.oci.credentials import Credentials
from hullscan.oci.registry import RegistryClient, RetryPolicy, TransferPolicy
from hullscan.oci.registry_source import RegistrySource
from tests.support.proxy import FaultProxy
from tests.support.registry import FAST_RETRY, RegistryServer

ProxyFactory = Callable[..., FaultProxy]

# Small exchanges get half a second, blobs must move at 64 KiB/s: a byte every 20 ms trips either.
TIGHT = TransferPolicy(idle_timeout=2.0, request_deadline=0.5, min_rate=64 * 1024, rate_window=0.3, rate_grace=0.2)


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Image:
    noise = b"".join(sha256(str(i).encode()).encode() for i in range(200))  # ~14 KB that gzip cannot shrink
    img = Image([Layer(layer_tar([("etc/limits", "limits\n"), ("data/noise.bin", noise)]))])
    registry.push_images(img, "limits/app:1", tmp_path_factory.mktemp("limits"))
    return img


def client(proxy: FaultProxy, **kw: object) -> RegistryClient:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("transfer", TIGHT)
    return RegistryClient(proxy.host, **kw)  # type: ignore[arg-type]


def read_all(stream: object) -> bytes:
    chunks = []
    while chunk := stream.read(4096):  # type: ignore[attr-defined]
        chunks.append(chunk)
    return b"".join(chunks)


# -- deadlines and rates ------------------------------------------------------------------------------


def test_trickled_manifest_misses_its_deadline(registry: RegistryServer, pushed: Image,
                                               fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.trickle(r"/manifests/1$", piece=1, interval=0.02)  # ~50 B/s: the manifest would take many seconds
    with client(proxy) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("limits/app", "1")
    assert info.value.code == "REGISTRY_ERROR"
    assert "did not deliver manifest limits/app:1 within 0.5 s" in str(info.value)
    assert proxy.count(r"/manifests/") == 1  # a trickling registry is not asked again


def test_trickled_config_misses_its_deadline(registry: RegistryServer, pushed: Image,
                                             fault_proxy: ProxyFactory) -> None:
    _manifest, config, _ = pushed.blobs()
    proxy = fault_proxy(registry)
    proxy.trickle(rf"/blobs/{sha256(config)}", piece=1, interval=0.02)
    # A rate any trickle keeps up: only the config's total deadline can stop it.
    lenient_rate = TransferPolicy(request_deadline=0.5, min_rate=1.0, rate_window=0.3, rate_grace=0.2)
    waits: list[str] = []
    # The way a scan opens a registry source: the policy and the wait callback pass through to the client.
    src = RegistrySource.open(f"{proxy.host}/limits/app:1", credentials=Credentials(source="test"),
                              retry=FAST_RETRY, transfer=lenient_rate, on_wait=waits.append)
    with src, pytest.raises(RegistryError, match=r"blob sha256:\w+ from .* did not arrive within 0.5 s"):
        src.resolve(None)
    assert src.client.transfer is lenient_rate and waits == []


def test_trickled_blob_falls_below_the_minimum_rate(registry: RegistryServer, pushed: Image,
                                                    fault_proxy: ProxyFactory) -> None:
    digest = sha256(pushed.layers[0].blob)
    proxy = fault_proxy(registry)
    proxy.trickle(rf"/blobs/{digest}", piece=16, interval=0.02)  # 800 B/s against a minimum of 64 KiB/s
    with client(proxy) as c:
        stream = c.get_blob("limits/app", digest)
        with pytest.raises(RegistryError) as info:
            read_all(stream)
    assert info.value.code == "REGISTRY_ERROR"
    assert f"blob {digest} from {proxy.host} arrived at" in str(info.value)
    assert "below the minimum of 64 KiB/s" in str(info.value)


def test_a_slow_reader_is_not_a_slow_registry(registry: RegistryServer, pushed: Image) -> None:
    """The rate counts time spent waiting on the network only: a scan that pauses between reads to analyse
    (here: a clock the reader moves on by a minute per read) holds the sender back, and is no reason to fail."""
    now = [0.0]
    policy = TransferPolicy(min_rate=1 << 20, rate_window=1.0, rate_grace=0.0)
    digest = sha256(pushed.layers[0].blob)
    with registry.client(transfer=policy, clock=lambda: now[0]) as c:
        stream = c.get_blob("limits/app", digest)
        chunks = []
        while chunk := stream.read(512):
            chunks.append(chunk)
            now[0] += 60.0
    assert b"".join(chunks) == pushed.layers[0].blob


def test_stalled_registry_is_retried_within_the_budget_and_said_so(registry: RegistryServer, pushed: Image,
                                                                 fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.stall(r"/manifests/")
    waits: list[str] = []
    retry = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.01, max_retry_time=0.3)
    policy = TransferPolicy(idle_timeout=0.2, request_deadline=0.2)
    with client(proxy, retry=retry, transfer=policy, on_wait=waits.append) as c, \
            pytest.raises(RegistryError) as info:
        c.get_manifest("limits/app", "1")
    assert "ReadTimeout" in str(info.value)
    attempts = proxy.count(r"/manifests/")
    # Each attempt waits out its 0.2 s timeout, so a 0.3 s budget cannot allow the five attempts it used to.
    assert 1 <= attempts < retry.attempts
    assert len(waits) == attempts - 1
    for n, message in enumerate(waits, 2):
        assert re.fullmatch(rf"waiting 0\.01\d* s for registry {proxy.host} \(ReadTimeout, attempt {n}/5\)", message)


# -- Retry-After and the retry budget -----------------------------------------------------------------


def test_retry_after_beyond_the_cap_fails_at_once(registry: RegistryServer, pushed: Image,
                                                  fault_proxy: ProxyFactory) -> None:
    digest = sha256(pushed.layers[0].blob)
    proxy = fault_proxy(registry)
    proxy.rate_limit(r"/blobs/", retry_after="3600", times=-1)
    sleeps: list[float] = []
    with client(proxy, sleep=sleeps.append) as c, pytest.raises(RegistryError) as info:
        c.get_blob("limits/app", digest)
    assert info.value.code == "REGISTRY_ERROR"
    assert f"registry {proxy.host} asked to wait 3600 s before retrying blob {digest}" in str(info.value)
    assert "HTTP 429 Too Many Requests" in str(info.value) and "at most 2 s" in str(info.value)
    assert sleeps == [] and proxy.count(r"/blobs/") == 1


def test_total_retry_time_is_bounded(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.rate_limit(r"/manifests/", retry_after="30", times=-1)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    waits: list[str] = []
    retry = RetryPolicy(attempts=10, max_retry_after=60.0, max_retry_time=100.0)
    with client(proxy, retry=retry, sleep=sleep, clock=lambda: now[0], on_wait=waits.append) as c, \
            pytest.raises(RegistryError) as info:
        c.get_manifest("limits/app", "1")
    # Three waits of 30 s fit in 100 s; a fourth would not, so the fourth answer is final.
    assert now[0] == 90.0 and proxy.count(r"/manifests/") == 4
    assert "answered HTTP 429 for manifest limits/app:1 after 4 attempts" in str(info.value)
    assert "TOOMANYREQUESTS" in str(info.value)
    assert waits[-1] == f"waiting 30 s for registry {proxy.host} (HTTP 429 Too Many Requests, attempt 4/10)"


# -- tokens -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mangle", "problem"), [
    (lambda t: t[:10] + "é" + t[10:], "non-ASCII character"),
    (lambda t: t + "\r\nX-Injected: 1", "line break"),
    (lambda t: t[:10] + " " + t[10:], "space or a control character"),
], ids=["non-ascii", "crlf", "space"])
def test_invalid_token_from_the_token_service_is_refused_once(
        token_registry: RegistryServer, tmp_path: Path, fault_proxy: ProxyFactory,
        mangle: Callable[[str], str], problem: str) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    token_registry.push_images(Image([Layer(layer_tar([("etc/t", "t\n")]))]), "team/badtoken:1", tmp_path)
    proxy = fault_proxy(token_registry)
    issuer.reset()
    issuer.mangle = mangle
    try:
        with RegistryClient(proxy.host, token_registry.credentials, retry=FAST_RETRY) as c, \
                pytest.raises(AuthError) as info:
            c.get_manifest("team/badtoken", "1")
    finally:
        issuer.mangle = None
    assert info.value.code == "AUTH_FAILED"
    assert f"the token service {issuer.url} returned an invalid token" in str(info.value)
    assert problem in str(info.value)
    assert issuer.count() == 1  # asked once, not retried
    assert proxy.count(r"/manifests/") == 0  # the bad token was never sent


def test_invalid_registry_token_from_docker_config_is_refused(token_registry: RegistryServer) -> None:
    creds = Credentials(registry_token="abc\r\ndef", source="Docker config /x/config.json")
    with RegistryClient(token_registry.host, creds, retry=FAST_RETRY) as c, pytest.raises(AuthError) as info:
        c.get_manifest("team/badtoken", "1")
    assert "the registry token from Docker config /x/config.json is not a valid token" in str(info.value)
    assert "abc" not in str(info.value)  # the token itself is never shown
