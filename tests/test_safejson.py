"""safejson: untrusted JSON and YAML parse or fail with DocumentError; never RecursionError, never slowly."""

from __future__ import annotations

import json
import pickle

import pytest

from hullscan import safejson
from hullscan.safejson import MAX_DEPTH, DocumentError

DEPTH = 100_000


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("text", [nested_arrays(DEPTH), nested_objects(DEPTH), '{"x": ' + nested_arrays(DEPTH) + "}",
                                  "[" * DEPTH])  # unterminated, too
def test_deep_json_is_refused(text: str) -> None:
    for data in (text, text.encode(), text.encode("utf-16")):
        with pytest.raises(DocumentError) as info:
            safejson.loads(data, what="the manifest")
        assert str(info.value) == f"the manifest is not valid JSON: it nests deeper than {MAX_DEPTH} levels"


def test_the_limit_is_exact() -> None:
    assert safejson.loads(nested_arrays(MAX_DEPTH)) == json.loads(nested_arrays(MAX_DEPTH))
    with pytest.raises(DocumentError):
        safejson.loads(nested_arrays(MAX_DEPTH + 1))


def test_brackets_inside_strings_do_not_count() -> None:
    doc = {"a": "[" * DEPTH, "b": ['\\"[{', "{" * 1000], "c": [[[1]]]}
    assert safejson.loads(json.dumps(doc)) == doc


def test_scan_stays_linear_on_hostile_strings() -> None:
    # An unterminated string of escaped quotes: a naive string pattern restarts at every quote (quadratic).
    text = "[" * (MAX_DEPTH + 1) + '"' + '\\"' * 2_000_000
    with pytest.raises(DocumentError, match="nests deeper"):
        safejson.loads(text)
    with pytest.raises(DocumentError, match="Unterminated string"):
        safejson.loads('"' + '\\"' * 2_000_000)


@pytest.mark.parametrize(("data", "reason"), [
    (b"{", "Expecting property name"),
    (b"\xff\xfe\x00", "codec can't decode"),
    (b'{"size": ' + b"9" * 5000 + b"}", "Exceeds the limit"),  # Python's integer digit limit: a ValueError
], ids=["truncated", "bad-encoding", "huge-int"])
def test_every_failure_is_a_document_error(data: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason) as info:
        safejson.loads(data, what="x")
    assert isinstance(info.value, ValueError)  # callers mapping ValueError keep working


def test_document_error_pickles() -> None:
    """Analyzers may raise it in a worker process: it must cross back intact."""
    err = DocumentError("deps.json", "JSON", "it nests deeper than 128 levels")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.reason == err.reason


@pytest.mark.parametrize("text", [
    "a: " + "[" * DEPTH,  # flow style
    "".join("  " * i + "- \n" for i in range(2 * MAX_DEPTH)).replace("- \n", "-\n"),  # block style
    "a:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(2 * MAX_DEPTH)),  # nested mappings
])
def test_deep_yaml_is_refused(text: str) -> None:
    with pytest.raises(DocumentError, match=f"the policy is not valid YAML: it nests deeper than {MAX_DEPTH}"):
        safejson.yaml_loads(text, what="the policy")


def test_yaml_failures_are_document_errors() -> None:
    assert safejson.yaml_loads("forbidden: [GPL-3.0]\nunknown: each\n") == {"forbidden": ["GPL-3.0"], "unknown": "each"}
    with pytest.raises(DocumentError, match="month must be in 1..12"):
        safejson.yaml_loads("when: 2024-13-45")
    with pytest.raises(DocumentError, match="not valid YAML"):
        safejson.yaml_loads("a: [1, 2")
    with pytest.raises(DocumentError, match="could not determine a constructor"):
        safejson.yaml_loads("!!python/object/apply:os.system ['true']")
