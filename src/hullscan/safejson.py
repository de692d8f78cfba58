"""JSON and YAML from untrusted input: parse errors and hostile nesting become one `DocumentError`.

The stdlib JSON decoder and PyYAML's composer recurse once per nesting level, so a document of 100,000
`[` ends in RecursionError (or worse, deep in a C stack) wherever it is read. `loads` refuses documents
nested deeper than `MAX_DEPTH` after a linear scan, before the parser sees them; YAML is limited while it is
composed. Real manifests, OSV records and configuration files nest fewer than 20 levels.

`DocumentError` is a ValueError, so callers that already map ValueError keep working; each caller turns
it into its own catalogue cause (MANIFEST_INVALID, DB_IMPORT_FAILED, ...).
"""

from __future__ import annotations

import array
import itertools
import json
import re
from typing import Any

MAX_DEPTH = 128

_DROP = bytes(b for b in range(256) if b not in b'"[]{}')  # all but quotes and brackets
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
# A string that still holds brackets once everything else is gone; unterminated ones run to the end, so
# the scan stays linear on hostile input.
_QUOTED = re.compile(rb'"[^"]*+(?:"|\Z)')


class DocumentError(ValueError):
    """An untrusted JSON or YAML document could not be read; the message names it and says why."""

    def __init__(self, what: str, kind: str, reason: str) -> None:
        super().__init__(what, kind, reason)  # all three in args, so it pickles across worker processes
        self.what, self.kind, self.reason = what, kind, reason

    def __str__(self) -> str:
        return f"{self.what} is not valid {self.kind}: {self.reason}"


def nesting_exceeds(utf8: bytes, limit: int) -> bool:
    """Whether UTF-8 JSON nests arrays/objects deeper than `limit`, brackets inside strings not counted.

    Linear, and every step but the last runs at C speed: a multi-megabyte layer-cache entry is checked in a
    fraction of its parse time. (UTF-8 never puts an ASCII byte inside a multi-byte character.)
    """
    if b"\\" in utf8:
        # Escaped backslashes first, then escaped quotes: every quote left delimits a string.
        utf8 = utf8.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = utf8.translate(None, _DROP)
    if len(marks) - marks.count(b'"') <= limit:
        return False  # too few brackets to go that deep (the common case)
    # Now only quotes and brackets: `""` is an empty string or the seam of two adjacent ones; removing it
    # moves no bracket into or out of a string. What remains quoted (rare) holds brackets.
    marks = marks.replace(b'""', b"")
    if b'"' in marks:
        marks = _QUOTED.sub(b"", marks)
    if len(marks) <= limit:
        return False
    return max(itertools.accumulate(array.array("b", marks.translate(_STEP)))) > limit


def loads(data: str | bytes | bytearray, *, what: str = "the document", max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` for untrusted data: DocumentError("<what> is not valid JSON: ...") on any failure."""
    try:
        if isinstance(data, str):
            utf8 = data.encode("utf-8", "surrogatepass")
        else:
            data = bytes(data)
            encoding = json.detect_encoding(data)  # as json.loads does: UTF-8, -16 or -32
            utf8 = data if encoding.startswith("utf-8") else data.decode(encoding, "surrogatepass").encode(
                "utf-8", "surrogatepass")
    except UnicodeError as exc:
        raise DocumentError(what, "JSON", str(exc)) from None
    if nesting_exceeds(utf8, max_depth):
        raise DocumentError(what, "JSON", f"it nests deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer over Python's digit limit
        raise DocumentError(what, "JSON", str(exc)) from None
    except RecursionError:  # a caller already deep in its own stack: still a refusal, not a crash
        raise DocumentError(what, "JSON", "it nests too deeply") from None


def yaml_loads(text: str, *, what: str = "the document", max_depth: int = MAX_DEPTH) -> Any:
    """`yaml.safe_load` for untrusted text, refusing nesting deeper than max_depth: DocumentError on any failure."""
    import yaml  # only the commands that read YAML pay for it

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # The composer recurses once per level (block or flow style alike): count it there.
            self.depth += 1
            try:
                if self.depth > max_depth:
                    raise DocumentError(what, "YAML", f"it nests deeper than {max_depth} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DocumentError(what, "YAML", str(exc)) from None
    except DocumentError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a timestamp such as 2024-13-45
        raise DocumentError(what, "YAML", str(exc)) from None
