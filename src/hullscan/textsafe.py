"""Text from images, registries and files, made safe to print: control characters never reach a terminal."""

from __future__ import annotations


def clean(value: str) -> str:
    """`value` with every non-printable character (controls, escape sequences, bidi overrides, newlines) escaped."""
    if value.isprintable():
        return value
    out: list[str] = []
    for ch in value:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def clean_lines(value: str) -> str:
    """Like `clean`, but line breaks stay line breaks (for multi-line messages such as a cause and its solution)."""
    return "\n".join(clean(line) for line in value.split("\n"))
