"""Licence strings as packages declare them, normalised to SPDX where the expression is recognisable."""

from __future__ import annotations

import functools
import re
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

# Common non-SPDX spellings seen in package metadata (rpm specs, Python classifiers, dpkg copyright).
_ALIASES = {
    "gplv2": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later", "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later", "lgplv2": "LGPL-2.0-only", "lgplv2+": "LGPL-2.0-or-later",
    "lgplv2.1": "LGPL-2.1-only", "lgplv2.1+": "LGPL-2.1-or-later", "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later", "gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later", "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later", "lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later", "gfdl-1.2": "GFDL-1.2-only",
    "gfdl-1.3": "GFDL-1.3-only", "gfdl-1.2+": "GFDL-1.2-or-later", "gfdl-1.3+": "GFDL-1.3-or-later",
    "bsd": "BSD-3-Clause", "bsd-3-clause": "BSD-3-Clause", "bsd-2-clause": "BSD-2-Clause",
    "bsd-4-clause": "BSD-4-Clause", "mit/x11": "MIT", "expat": "MIT", "asl 2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0", "apache-2": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "mit license": "MIT", "bsd license": "BSD-3-Clause", "zlib": "Zlib", "psf": "PSF-2.0",
    "python software foundation license": "PSF-2.0", "mpl-2.0": "MPL-2.0", "mpl 2.0": "MPL-2.0",
    "isc license": "ISC", "public domain": "LicenseRef-public-domain", "openssl": "OpenSSL",
    "artistic": "Artistic-1.0", "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
}


_GPL_FAMILY = re.compile(r"^(AGPL|LGPL|GPL|GFDL)-?v?(\d)(?:\.(\d))?(\+)?$", re.IGNORECASE)


def _token(tok: str) -> str:
    """One licence word to its SPDX id: aliases first, then the GPL family's many spellings."""
    alias = _ALIASES.get(tok.lower())
    if alias:
        return alias
    m = _GPL_FAMILY.match(tok)
    if m:
        family, major, minor, plus = m.groups()
        return f"{family.upper()}-{major}.{minor or 0}-{'or-later' if plus else 'only'}"
    return tok


@functools.lru_cache(maxsize=1)
def spdx_licensing() -> Any:
    """license_expression's SPDX licensing, built once per process (building it takes a few tenths of a second;
    the analyzers, the compliance check and the SBOM writers share it)."""
    return get_spdx_licensing()


_ONE_WORD = re.compile(r"[A-Za-z0-9.+\-_:]+")


@functools.lru_cache(maxsize=1)
def _keys() -> dict[str, str]:
    """Every SPDX licence key and alias the licensing knows, lower-cased, to its key."""
    table: dict[str, str] = {}
    symbols = spdx_licensing().known_symbols
    for key, symbol in symbols.items():
        table.setdefault(key.lower(), symbol.key)
    for symbol in symbols.values():
        for alias in getattr(symbol, "aliases", ()) or ():
            table.setdefault(alias.lower(), symbol.key)
    return table


def one_word(text: str) -> str | None:
    """For a licence string of one word, its SPDX key (itself when unknown): what parsing it would say, a
    dictionary lookup instead of a parse (a few milliseconds each, hundreds per image). None for anything else."""
    if not _ONE_WORD.fullmatch(text):
        return None
    return _keys().get(text.lower(), text)


@functools.lru_cache(maxsize=4096)
def normalize(raw: str) -> str:
    """Return an SPDX expression for `raw` when it is one (or a known alias), else `raw` trimmed."""
    text = " ".join(raw.split()).strip()
    if not text:
        return ""
    single = _token(text)
    if single != text:
        return single
    word = one_word(text)
    if word is not None:
        return word
    # rpm and dpkg write "and"/"or" in lower case; SPDX wants upper case operators.
    candidate = re.sub(r"\b(and|or|with)\b", lambda m: m.group(1).upper(), text)
    candidate = " ".join(_token(tok) for tok in candidate.split(" "))
    try:
        parsed = spdx_licensing().parse(candidate, validate=True, strict=False)
    except (ExpressionError, Exception):  # the parser raises several unrelated types on junk
        return text
    if parsed is None:
        return text
    return str(parsed.render("{symbol.key}"))


def normalize_all(raws: list[str]) -> list[str]:
    out: list[str] = []
    for raw in raws:
        n = normalize(raw)
        if n and n not in out:
            out.append(n)
    return out
