"""Harbor's Scanner Adapter API v1.2 (../shared/specs/harbor-scanner-adapter/api/spec/), as a validator of real
HTTP exchanges: `SPEC.check(response)` raises unless the response's status, media type, headers and body are what
the OpenAPI document declares for that request (openapi-core does the validating).

The published document does not pass OpenAPI 3.0 validation as it stands; three errata are corrected here, each
the evident intent of its authors, and nothing else is changed:

1. status codes are written as YAML integers (`200:`), which a YAML loader reads as numbers, not the strings
   OpenAPI requires;
2. the `sbom_media_type` parameter lists its `enum` beside `schema` rather than inside it;
3. `ScannerCapability.additional_attributes` spells `description` as `descriptions`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = "specs/harbor-scanner-adapter/api/spec/scanner-adapter-openapi-v1.2.yaml"


def spec_path() -> Path:
    for shared in (ROOT.parent / "shared", Path("/work/shared")):
        if (shared / SPEC_FILE).is_file():
            return shared / SPEC_FILE
    raise FileNotFoundError(f"../shared/{SPEC_FILE} is missing: the adapter tests validate against it")


def _string_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


def corrected(document: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = _string_keys(document)
    for parameter in doc["paths"]["/scan/{scan_request_id}/report"]["get"]["parameters"]:
        if "enum" in parameter:
            parameter["schema"]["enum"] = parameter.pop("enum")
    attributes = doc["components"]["schemas"]["ScannerCapability"]["properties"]["additional_attributes"]
    if "descriptions" in attributes:
        attributes["description"] = attributes.pop("descriptions")
    return doc


def _json(value: bytes, **parameters: str) -> Any:
    return json.loads(value)


def _text(value: bytes, **parameters: str) -> str:
    return value.decode("utf-8")


def deserializers(doc: dict[str, Any]) -> dict[str, Any]:
    """Every media type the document names is JSON (its `version` parameters aside), except the raw report, whose
    schema is a string; openapi-core knows none of these vendor types by itself."""
    found: dict[str, Any] = {}
    for operations in doc["paths"].values():
        for operation in operations.values():
            bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
            for body in bodies:
                for media_type, content in body.get("content", {}).items():
                    essence = media_type.split(";")[0].strip().lower()
                    found[essence] = _text if content.get("schema", {}).get("type") == "string" else _json
    return found


class _Request:
    """An httpx request as openapi-core reads one."""

    def __init__(self, request: httpx.Request) -> None:
        url = request.url
        self.host_url = f"{url.scheme}://{url.netloc.decode()}"
        self.path = url.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(query=ImmutableMultiDict(list(url.params.multi_items())),
                                            header=Headers(list(request.headers.items())))
        self.content_type = request.headers.get("content-type", "")
        self.body = request.content or None


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content or None


class AdapterSpec:
    @cached_property
    def openapi(self) -> OpenAPI:
        doc = corrected(yaml.safe_load(spec_path().read_text()))
        # from_dict validates the document itself first
        return OpenAPI.from_dict(doc, config=Config(extra_media_type_deserializers=deserializers(doc)))

    def check(self, response: httpx.Response) -> httpx.Response:
        """Raise (openapi-core's validation error) unless the response is one the spec allows; the response."""
        self.openapi.validate_response(_Request(response.request), _Response(response))
        return response


SPEC = AdapterSpec()
