"""Manifest and index parsing, platform choice, config checks and size limits.

Every source funnels its manifest through here, so schema v1, multi-arch, artifact and limit rules
are applied identically whatever the image came from.
"""

from __future__ import annotations

from typing import Any

from hullscan import safejson
from hullscan.errors import LimitExceeded, ManifestError, UnsupportedImageError
from hullscan.model import Descriptor, LayerInfo, Platform
from hullscan.oci import media
from hullscan.oci.source import Limits, ResolvedImage
from hullscan.redact import redact_history


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = safejson.loads(data, what=what)
    except safejson.DocumentError as exc:
        raise ManifestError(str(exc)) from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return doc


def detect_media_type(doc: dict[str, Any], declared: str = "") -> str:
    """The manifest's media type: the declared one (Content-Type or descriptor), else from its body."""
    declared = declared.split(";")[0].strip()
    body_type = _string(doc, "mediaType", "manifest")
    if doc.get("schemaVersion") == 1:
        return media.DOCKER_SCHEMA1
    for candidate in (declared, body_type):
        if candidate in (*media.IMAGE_MANIFESTS, *media.INDEXES, *media.SCHEMA1):
            return str(candidate)
    if "manifests" in doc:
        return media.OCI_INDEX
    if "config" in doc and "layers" in doc:
        return media.OCI_MANIFEST
    raise ManifestError(f"unrecognised manifest media type {declared or body_type!r}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _field(raw: dict[str, Any], key: str, what: str, kind: type, noun: str) -> Any:
    """An optional field of one JSON type; None when absent or null (null means absent to Go clients)."""
    value = raw.get(key)
    if value is not None and not isinstance(value, kind):
        raise ManifestError(f"{what}: {key} is {_kind(value)}, not {noun}")
    return value


def _string(raw: dict[str, Any], key: str, what: str) -> str:
    return _field(raw, key, what, str, "a string") or ""


def _object(raw: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    return _field(raw, key, what, dict, "an object") or {}


def _string_map(raw: dict[str, Any], key: str, what: str) -> dict[str, str]:
    """A string-to-string object (annotations, labels); null values read as empty strings."""
    value = _field(raw, key, what, dict, "an object of strings") or {}
    for k, v in value.items():
        if v is not None and not isinstance(v, str):
            raise ManifestError(f"{what}: {key}[{str(k)[:80]!r}] is {_kind(v)}, not a string")
    return {str(k): v or "" for k, v in value.items()}


def _string_list(raw: dict[str, Any], key: str, what: str, *, allow_string: bool = False) -> list[str]:
    if allow_string and isinstance(raw.get(key), str):
        return [raw[key]]  # Docker's Cmd/Entrypoint also accept one string
    value: list[Any] = _field(raw, key, what, list, "a list of strings") or []
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise ManifestError(f"{what}: {key}[{i}] is {_kind(v)}, not a string")
    return value


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{what} is {_kind(raw)}, not an object")
    digest, size = raw.get("digest"), raw.get("size")
    if not isinstance(digest, str) or ":" not in digest:
        raise ManifestError(f"{what} has no valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what} has no valid size")
    mt = _string(raw, "mediaType", what)
    plat = None
    if raw.get("platform") is not None:
        p = _object(raw, "platform", what)
        where = f"{what} platform"
        plat = Platform(_string(p, "os", where), _string(p, "architecture", where), _string(p, "variant", where))
    return Descriptor(mt, digest, size, _string_map(raw, "annotations", what), plat,
                      _string_list(raw, "urls", what))


def check_not_schema1(media_type: str) -> None:
    if media_type in media.SCHEMA1:
        raise UnsupportedImageError(
            "schema v1 images cannot be scanned; upgrade the image to schema v2", code="SCHEMA_V1"
        )


def choose_platform(index: dict[str, Any], wanted: Platform | None) -> Descriptor:
    """Pick the manifest for one platform out of an OCI index or Docker manifest list."""
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise ManifestError("index has no manifests list")
    descs = [_descriptor(m, f"index entry {i}") for i, m in enumerate(entries)]
    images = [d for d in descs if d.platform is not None and d.platform.os not in ("unknown", "")]
    available = sorted({str(d.platform) for d in images if d.platform})

    def matches(d: Descriptor, p: Platform) -> bool:
        assert d.platform is not None
        if (d.platform.os, d.platform.architecture) != (p.os, p.architecture):
            return False
        return not p.variant or d.platform.variant == p.variant

    target = wanted or Platform("linux", "amd64")
    found = [d for d in images if matches(d, target)]
    if not found and wanted is None and len(images) == 1:
        found = images  # a one-platform index needs no choice
    if not found:
        listing = ", ".join(available) or "none"
        if wanted is None:
            raise UnsupportedImageError(
                f"this image is a multi-architecture index without linux/amd64; choose one with "
                f"--platform (available: {listing})", code="PLATFORM_REQUIRED")
        raise UnsupportedImageError(
            f"platform {wanted} is not in this index (available: {listing})", code="PLATFORM_REQUIRED")
    return found[0]


def parse_image_manifest(doc: dict[str, Any], media_type: str) -> tuple[Descriptor, list[Descriptor]]:
    if doc.get("schemaVersion") != 2:
        version = doc.get("schemaVersion")
        raise ManifestError(f"unsupported schemaVersion {version if isinstance(version, int) else _kind(version)}")
    config = _descriptor(doc.get("config"), "manifest config")
    layers_raw = doc.get("layers")
    if not isinstance(layers_raw, list):
        raise ManifestError("manifest has no layers list")
    layers = [_descriptor(x, f"layer {i}") for i, x in enumerate(layers_raw)]
    return config, layers


def check_config_type(config: Descriptor) -> None:
    if config.media_type in media.IMAGE_CONFIGS or config.media_type == "":
        return
    what = media.ARTIFACT_NAMES.get(config.media_type)
    if what is None and "helm" in config.media_type:
        what = "a Helm chart"
    detail = f"{what} (config type {config.media_type})" if what else f"config type {config.media_type}"
    raise UnsupportedImageError(f"this artifact is not a container image: {detail}", code="NOT_AN_IMAGE")


def check_limits(layers: list[Descriptor], limits: Limits) -> None:
    """Refuse images over the limits from the manifest alone, before any layer is fetched."""
    if len(layers) > limits.max_layers:
        raise LimitExceeded(
            f"the image has {len(layers)} layers; at most {limits.max_layers} are supported",
            code="TOO_MANY_LAYERS")
    for d in layers:
        if d.size > limits.max_layer_size:
            raise LimitExceeded(
                f"layer {d.digest} is {d.size:,} bytes; the limit is {limits.max_layer_size:,}",
                code="LAYER_TOO_LARGE")
    total = sum(d.size for d in layers)
    if total > limits.max_image_size:
        raise LimitExceeded(
            f"the image totals {total:,} bytes; the limit is {limits.max_image_size:,}", code="IMAGE_TOO_LARGE")


def check_config(config: dict[str, Any]) -> Platform:
    """The image's platform, after checking the type of every config field hullscan reads (detectors and
    reports rely on them: a number where a list belongs must be refused here, not crash there)."""
    what = "image config"
    for key in ("created", "author"):
        _string(config, key, what)
    _check_history(config)
    inner = _object(config, "config", what)
    where = "image config: config"
    for key in ("User", "WorkingDir", "StopSignal"):
        _string(inner, key, where)
    _string_list(inner, "Env", where)
    for key in ("Cmd", "Entrypoint"):
        _string_list(inner, key, where, allow_string=True)
    _string_map(inner, "Labels", where)
    for key in ("ExposedPorts", "Volumes"):
        _object(inner, key, where)
    _string_list(_object(inner, "Healthcheck", where), "Test", f"{where}: Healthcheck")
    os_name = _string(config, "os", what) or "linux"
    if os_name != "linux":
        raise UnsupportedImageError(
            f"this is a {os_name} image; only Linux images can be scanned", code="UNSUPPORTED_PLATFORM")
    return Platform(os_name, _string(config, "architecture", what), _string(config, "variant", what))


def _check_history(config: dict[str, Any]) -> list[dict[str, Any]]:
    history = config.get("history")
    if history is None:
        return []
    if not isinstance(history, list):
        raise ManifestError(f"image config: history is {_kind(history)}, not a list")
    for i, h in enumerate(history):
        where = f"image config: history[{i}]"
        if not isinstance(h, dict):
            raise ManifestError(f"{where} is {_kind(h)}, not an object")
        for key in ("created", "created_by", "author", "comment"):
            _string(h, key, where)
        _field(h, "empty_layer", where, bool, "a boolean")
    return history


def layers_from_config(config: dict[str, Any], blobs: list[Descriptor]) -> list[LayerInfo]:
    """Pair layer blobs with the config's diff_ids and the history lines that created them."""
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ManifestError("image config has no rootfs.diff_ids")
    if len(diff_ids) != len(blobs):
        raise ManifestError(
            f"manifest lists {len(blobs)} layers but the config has {len(diff_ids)} diff_ids")
    history = [h for h in _check_history(config) if not h.get("empty_layer")]
    out = []
    for i, (blob, diff_id) in enumerate(zip(blobs, diff_ids, strict=True)):
        # BuildKit writes build-arg values into created_by; reports show it, so it is redacted here once.
        created_by = redact_history(history[i].get("created_by") or "") if i < len(history) else ""
        out.append(LayerInfo(i, blob, diff_id, created_by))
    return out


def resolve_manifest(
    reference: str,
    manifest_digest: str,
    doc: dict[str, Any],
    media_type: str,
    load_config: Any,  # Callable[[Descriptor], bytes]
    limits: Limits,
) -> ResolvedImage:
    """Turn an image manifest into a ResolvedImage: validates, checks limits, loads the config."""
    check_not_schema1(media_type)
    config_desc, layer_descs = parse_image_manifest(doc, media_type)
    check_config_type(config_desc)
    check_limits(layer_descs, limits)
    config = load_json(load_config(config_desc), "image config")
    platform = check_config(config)
    layers = layers_from_config(config, layer_descs)
    return ResolvedImage(reference, manifest_digest, media_type, config_desc.digest, config, platform, layers,
                         _string_map(doc, "annotations", "manifest"), config_desc.size)
