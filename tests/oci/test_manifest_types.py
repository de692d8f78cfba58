"""Manifests, indexes and configs with fields of the wrong JSON type are refused with a catalogue error.

Each image is an OCI layout written by code: real JSON documents, edited where a test needs one no tool
would write, and re-hashed along the chain (config -> manifest -> index) so only the edit is wrong.
A property test edits random fields of all three documents and asserts that reading the image and running
the detectors that read its config raise a HullscanError or nothing, never another exception.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.checks.baseline import BaselineDetector
from hullscan.detectors import DetectContext
from hullscan.errors import HullscanError
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_docker_archive
from hullscan.model import ImageFacts
from hullscan.oci import media
from hullscan.oci.local import DockerArchiveSource, OCILayoutSource
from hullscan.oci.reference import parse_reference
from hullscan.oci.registry import RegistryClient
from hullscan.oci.registry_source import RegistrySource
from hullscan.secrets.detector import SecretDetector
from tests.support.proxy import FaultProxy
from tests.support.registry import FAST_RETRY, RegistryServer

pytestmark = pytest.mark.timeout(300)

KeyPath = tuple[str | int, ...]
DELETE = object()


def base_image() -> Image:
    layer = Layer(layer_tar([FileSpec("etc/", type="d"), ("etc/os-release", "ID=debian\nVERSION_ID=12\n")]),
                  created_by="/bin/sh -c #(nop) ADD file:abc in /")
    return Image([layer], config_extra={
        "config": {"Env": ["PATH=/usr/bin", "API_TOKEN=hunter2hunter2"], "User": "app", "Cmd": ["/bin/sh"],
                   "Labels": {"maintainer": "someone"}, "ExposedPorts": {"22/tcp": {}},
                   "Healthcheck": {"Test": ["CMD", "true"]}},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
                    {"created_by": "/bin/sh -c #(nop) ENV API_TOKEN=hunter2hunter2", "empty_layer": True}],
    }, annotations={"org.opencontainers.image.base.name": "debian:12"})


def documents(image: Image) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[bytes]]:
    """(index, manifest, config, layer blobs) as JSON-ready documents."""
    manifest_bytes, config_bytes, _ = image.blobs()
    manifest = json.loads(manifest_bytes)
    index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": "", "size": 0,
         "platform": {"os": "linux", "architecture": "amd64"},
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    return index, manifest, json.loads(config_bytes), [layer.blob for layer in image.layers]


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put(doc: Any, path: KeyPath, value: Any) -> Any:
    """A copy of doc with the node at path replaced by value (or removed, for DELETE)."""
    if not path:
        return value
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def write_layout(root: Path, image: Image, edit: tuple[str, KeyPath, Any] | None = None) -> Path:
    """Write the layout with one edit applied to 'index', 'manifest' or 'config'; digests follow the edit."""
    index, manifest, config, blobs = documents(image)
    target, path, value = edit or ("", (), None)
    blob_dir = root / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)

    def write(data: bytes) -> None:
        (blob_dir / digest(data).split(":")[1]).write_bytes(data)

    for blob in blobs:
        write(blob)
    if target == "config":
        config = put(config, path, value)
    config_bytes = json.dumps(config).encode()
    write(config_bytes)
    manifest["config"]["digest"], manifest["config"]["size"] = digest(config_bytes), len(config_bytes)
    if target == "manifest":
        manifest = put(manifest, path, value)
    manifest_bytes = json.dumps(manifest).encode()
    write(manifest_bytes)
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = digest(manifest_bytes), len(manifest_bytes)
    if target == "index":
        index = put(index, path, value)
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


def read_image(root: Path) -> ImageFacts:
    """What a scan does with the image's documents: resolve, read every layer, run the config detectors."""
    source = OCILayoutSource(root)
    try:
        resolved = source.resolve(None)
        for layer in resolved.layers:
            stream = source.open_layer(layer)
            while stream.read(1 << 16):
                pass
            stream.close()
    finally:
        source.close()
    facts = ImageFacts(resolved.reference, resolved.manifest_digest, resolved.config_digest, resolved.platform,
                       resolved.config, resolved.layers, annotations=dict(resolved.annotations))
    SecretDetector().detect(facts, DetectContext())
    BaselineDetector().detect(facts, DetectContext())
    return facts


def refused(root: Path, code: str = "MANIFEST_INVALID") -> str:
    with pytest.raises(HullscanError) as info:
        read_image(root)
    assert info.value.code == code, info.value
    return str(info.value)


def test_the_unedited_image_reads(tmp_path: Path) -> None:
    facts = read_image(write_layout(tmp_path, base_image()))
    assert facts.annotations["org.opencontainers.image.base.name"] == "debian:12"
    assert facts.config["config"]["User"] == "app"


@pytest.mark.parametrize(("target", "path", "value", "message"), [
    ("manifest", ("annotations",), ["a", "b"], "manifest: annotations is a list, not an object of strings"),
    ("manifest", ("annotations",), "x=y", "manifest: annotations is a string, not an object of strings"),
    ("manifest", ("annotations", "k"), {"nested": 1}, "manifest: annotations['k'] is an object, not a string"),
    ("manifest", ("layers", 0, "annotations"), [["k", "v"]], "layer 0: annotations is a list"),
    ("manifest", ("layers", 0, "urls"), 7, "layer 0: urls is a number, not a list of strings"),
    ("manifest", ("layers", 0, "urls"), [7], "layer 0: urls[0] is a number, not a string"),
    ("manifest", ("config", "mediaType"), 3, "manifest config: mediaType is a number, not a string"),
    ("manifest", ("mediaType",), ["x"], "manifest: mediaType is a list, not a string"),
    ("manifest", ("schemaVersion",), [2], "unsupported schemaVersion a list"),
    ("index", ("annotations",), ["x"], None),  # the index's own annotations are not read: no error needed
    ("index", ("manifests", 0, "annotations"), ["x"], "index.json entry 0: annotations is a list"),
    ("index", ("manifests", 0, "platform"), "linux/amd64", "index.json entry 0: platform is a string, not an object"),
    ("index", ("manifests", 0, "platform", "os"), 1, "index.json entry 0 platform: os is a number, not a string"),
    ("config", ("history",), 5, "image config: history is a number, not a list"),
    ("config", ("history", 0), "ADD x", "image config: history[0] is a string, not an object"),
    ("config", ("history", 0, "created_by"), ["sh"], "image config: history[0]: created_by is a list"),
    ("config", ("history", 1, "empty_layer"), "false", "history[1]: empty_layer is a string, not a boolean"),
    ("config", ("os",), ["linux"], "image config: os is a list, not a string"),
    ("config", ("architecture",), 64, "image config: architecture is a number, not a string"),
    ("config", ("config",), [], "image config: config is a list, not an object"),
    ("config", ("config", "Env"), "A=b", "image config: config: Env is a string, not a list of strings"),
    ("config", ("config", "Env", 0), 1, "image config: config: Env[0] is a number, not a string"),
    ("config", ("config", "Labels"), ["a=b"], "image config: config: Labels is a list, not an object of strings"),
    ("config", ("config", "User"), 0, "image config: config: User is a number, not a string"),
    ("config", ("config", "Cmd"), {"sh": 1}, "image config: config: Cmd is an object, not a list of strings"),
    ("config", ("config", "ExposedPorts"), ["22/tcp"], "image config: config: ExposedPorts is a list"),
    ("config", ("config", "Healthcheck", "Test"), "true", "Healthcheck: Test is a string, not a list of strings"),
    ("config", ("rootfs", "diff_ids"), "sha256:x", "image config has no rootfs.diff_ids"),
])
def test_wrong_types_are_refused_naming_the_field(tmp_path: Path, target: str, path: KeyPath, value: Any,
                                                  message: str | None) -> None:
    root = write_layout(tmp_path, base_image(), (target, path, value))
    if message is None:
        read_image(root)
    else:
        assert message in refused(root)


def test_null_fields_read_as_absent(tmp_path: Path) -> None:
    """Go clients read null as the empty value: such images exist and must still scan."""
    root = write_layout(tmp_path / "a", base_image(), ("config", ("config", "Labels", "maintainer"), None))
    read_image(root)
    for path in (("history",), ("config", "Env"), ("config", "Cmd")):
        read_image(write_layout(tmp_path / "-".join(map(str, path)), base_image(), ("config", path, None)))
    read_image(write_layout(tmp_path / "ann", base_image(), ("manifest", ("annotations",), None)))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: [*m, 5], "manifest.json entry 1 in"),
    (lambda m: [{**m[0], "Layers": [3]}], "Layers is not a list of file names"),
    (lambda m: [{**m[0], "RepoTags": "app:1"}], "RepoTags is not a list of strings"),
    (lambda m: [{**m[0], "Config": ["c.json"]}], "lacks Config or Layers"),
    (lambda m: {"Config": m[0]["Config"]}, "is not a docker archive"),
], ids=["entry-not-object", "layers-numbers", "repotags-string", "config-list", "not-a-list"])
def test_docker_archive_wrong_types(tmp_path: Path, edit: Callable[[Any], Any], message: str) -> None:
    archive = write_docker_archive(tmp_path / "image.tar", base_image(), "app:1")
    original = _archive_manifest(archive)
    _rewrite_archive_manifest(archive, json.dumps(edit(original)).encode())
    source = DockerArchiveSource(archive, "app:1")
    try:
        with pytest.raises(HullscanError) as info:
            source.resolve(None)
    finally:
        source.close()
    assert info.value.code == "SOURCE_INVALID" and message in str(info.value)


def test_registry_manifest_with_list_annotations(registry: RegistryServer, fault_proxy: Callable[..., FaultProxy],
                                                 tmp_path: Path) -> None:
    registry.push_images(base_image(), "types/app:1", tmp_path)
    proxy = fault_proxy(registry)
    proxy.rewrite_manifest(r"/manifests/1$", lambda doc: {**doc, "annotations": ["a"]})
    client = RegistryClient(proxy.host, retry=FAST_RETRY)
    with RegistrySource(parse_reference(f"{proxy.host}/types/app:1"), client, owns_client=True) as src, \
            pytest.raises(HullscanError) as info:
        src.resolve(None)
    assert info.value.code == "MANIFEST_INVALID" and "manifest: annotations is a list" in str(info.value)


# -- property: any field, any JSON value ---------------------------------------------------------------


def _paths(doc: Any, prefix: KeyPath = ()) -> Iterator[KeyPath]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


_INDEX, _MANIFEST, _CONFIG, _ = documents(base_image())
_TARGETS = [("index", p) for p in _paths(_INDEX)] + [("manifest", p) for p in _paths(_MANIFEST)] + \
           [("config", p) for p in _paths(_CONFIG)]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(_TARGETS), value=_JSON | st.just(DELETE))
def test_any_edit_is_an_error_or_nothing(target: tuple[str, KeyPath], value: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_layout(Path(tmp), base_image(), (target[0], target[1], value))
        try:
            read_image(root)
        except HullscanError as exc:
            assert exc.render()


def _archive_manifest(archive: Path) -> Any:
    import tarfile

    with tarfile.open(archive) as tf:
        f = tf.extractfile("manifest.json")
        assert f is not None
        return json.load(f)


def _rewrite_archive_manifest(archive: Path, data: bytes) -> None:
    import io
    import tarfile

    with tarfile.open(archive) as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(archive, "w") as tf:
        for m, content in members:
            if m.name == "manifest.json":
                m.size, content = len(data), data
            tf.addfile(m, io.BytesIO(content) if content is not None else None)
