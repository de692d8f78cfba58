"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, ``EGG-INFO/PKG-INFO``
and ``*.egg-info`` files (distutils wrote the metadata as a single file).

The metadata is in email-header format (core metadata spec). It is parsed the way
``importlib.metadata`` parses it (``email`` with the compat32 policy) so that what we report is what
Python itself would see. Only the header block is read: the description body can be megabytes long.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.licenses import normalize, normalize_all, spdx_licensing
from hullscan.model import FileEntry, FileFacts, Package

# The header block of real metadata is a few KiB; a licence text pasted into `License:` can make it
# longer, but nothing legitimate comes near this.
_HEADER_LIMIT = 1 << 20
_CHUNK = 64 << 10

_NAME_RUNS = re.compile(r"[-_.]+")

# Trove licence classifiers whose tail `normalize` cannot turn into SPDX on its own.
_CLASSIFIERS = {
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    # No version given: SPDX reads an unversioned GNU licence as "any version".
    "gnu library or lesser general public license (lgpl)": "LGPL-2.0-or-later",
    "gnu general public license (gpl)": "GPL-1.0-or-later",
    "gnu affero general public license (agpl)": "AGPL-3.0-or-later",
    "gnu free documentation license (fdl)": "GFDL-1.1-or-later",
    "mozilla public license 1.0 (mpl)": "MPL-1.0",
    "mozilla public license 1.1 (mpl 1.1)": "MPL-1.1",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "isc license (iscl)": "ISC",
    "mit no attribution license (mit-0)": "MIT-0",
    "the unlicense (unlicense)": "Unlicense",
    "eclipse public license 1.0 (epl-1.0)": "EPL-1.0",
    "eclipse public license 2.0 (epl-2.0)": "EPL-2.0",
    "boost software license 1.0 (bsl-1.0)": "BSL-1.0",
    "zlib/libpng license": "Zlib",
    "historical permission notice and disclaimer (hpnd)": "HPND",
    "universal permissive license (upl)": "UPL-1.0",
    "european union public licence 1.1 (eupl 1.1)": "EUPL-1.1",
    "european union public licence 1.2 (eupl 1.2)": "EUPL-1.2",
    "cc0 1.0 universal (cc0 1.0) public domain dedication": "CC0-1.0",
    "apache software license": "Apache-2.0",
    "python software foundation license": "PSF-2.0",
    "zope public license": "ZPL-2.1",
    "artistic license": "Artistic-2.0",
    "w3c license": "W3C",
    "sun industry standards source license (sissl)": "SISSL",
    "academic free license (afl)": "AFL-3.0",
    "common development and distribution license 1.0 (cddl-1.0)": "CDDL-1.0",
    "blue oak model license (blueoak-1.0.0)": "BlueOak-1.0.0",
}
_UNUSABLE_LICENSE = frozenset({"", "unknown", "none", "n/a", "license", "see license", "other"})


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: lower case, every run of ``-``, ``_`` and ``.`` becomes one ``-``."""
    return _NAME_RUNS.sub("-", name).lower()


def _read_headers(content: IO[bytes]) -> str:
    """Read up to the blank line that ends the header block (or the end, or the limit)."""
    data = b""
    while len(data) < _HEADER_LIMIT:
        chunk = content.read(_CHUNK)
        if not chunk:
            break
        start = max(0, len(data) - 3)
        data += chunk
        end = _header_end(data, start)
        if end >= 0:
            data = data[:end]
            break
    else:
        # Cut at the limit, and drop the partial line there: half a header would be misread.
        data = data[:_HEADER_LIMIT]
        data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8-sig", errors="replace")


def _header_end(data: bytes, start: int) -> int:
    ends = []
    lf = data.find(b"\n\n", start)
    if lf >= 0:
        ends.append(lf + 1)
    crlf = data.find(b"\r\n\r\n", start)
    if crlf >= 0:
        ends.append(crlf + 2)
    return min(ends) if ends else -1


def _recognised(expression: str) -> bool:
    if expression.startswith("LicenseRef-"):
        return True
    try:
        return not spdx_licensing().validate(expression).errors
    except Exception:  # license_expression raises several unrelated types on junk
        return False


def _classifier_licenses(classifiers: list[str]) -> list[str]:
    found: list[str] = []
    for classifier in classifiers:
        parts = [p.strip() for p in classifier.split("::")]
        if len(parts) < 2 or parts[0] != "License":
            continue
        tail = parts[-1]
        if tail in ("OSI Approved", "DFSG approved"):  # says nothing about which licence
            continue
        spdx = _CLASSIFIERS.get(tail.lower()) or normalize(tail)
        if spdx and spdx not in found:
            found.append(spdx)
    return found


def _licenses(expression: str, license_field: str, classifiers: list[str]) -> list[str]:
    """License-Expression, else License, else the licence classifiers.

    `License` is free text: when it is not a recognisable SPDX expression ("BSD-like", "ZPL 2.1", a
    whole licence text) and classifiers say something, the classifiers win.
    """
    if expression.strip():
        return normalize_all([expression])
    from_classifiers = _classifier_licenses(classifiers)
    text = license_field.strip()
    if "\n" not in text and len(text) <= 120 and text.lower() not in _UNUSABLE_LICENSE:
        declared = normalize(text)
        if declared and (_recognised(declared) or not from_classifiers):
            return [declared]
    return from_classifiers


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return "" if value is None else str(value)


# CPython's distutils installs the interpreter's own description as lib/pythonX.Y/lib-dynload/Python-X.Y.egg-info:
# it names the runtime, not a PyPI project (PyPI's "python" is an unrelated placeholder).
_INTERPRETER_EGG_INFO = re.compile(r"(?:^|/)Python-\d+\.\d+[^/]*\.egg-info$")
_DIST_INFO_DIR = re.compile(r"(?:^|/)([^/]+?)-([^/-]+)\.dist-info$")


def record_package(path: str) -> FileFacts | None:
    """A wheel installed without METADATA: its dist-info directory still says `<name>-<version>.dist-info`."""
    m = _DIST_INFO_DIR.search(path[: -len("/RECORD")])
    if not m:
        raise AnalyzerFailure("RECORD in a dist-info directory not named <name>-<version>.dist-info: not reported")
    raw_name, version = m.group(1), m.group(2)
    name = canonical_name(raw_name)
    package = Package(name=name, version=version, ecosystem="pypi", path=path,
                      purl=PackageURL(type="pypi", name=name, version=version).to_string(),
                      metadata={"name_raw": raw_name}, method="record")
    # METADATA, when it is there, is the better source (licences, the project's own spelling).
    return FileFacts(packages=[package], hints={"superseded_by": [path[: -len("RECORD")] + "METADATA"]})


class PythonAnalyzer:
    name = "python"
    version = 2
    max_size = 32 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        if entry.type != "f":
            return False
        if path.endswith("/RECORD"):
            return path.endswith(".dist-info/RECORD")
        if path.endswith("/METADATA"):
            return path.endswith(".dist-info/METADATA")
        if path.endswith("PKG-INFO"):
            return (
                path.endswith(".egg-info/PKG-INFO")
                or path.endswith("/EGG-INFO/PKG-INFO")
                or path == "EGG-INFO/PKG-INFO"
            )
        return path.endswith(".egg-info")

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        if path.endswith("/RECORD"):
            return record_package(path)
        text = _read_headers(content)
        if "\x00" in text:
            raise AnalyzerFailure("Python metadata contains NUL bytes: not a metadata file")
        msg = HeaderParser().parsestr(text)  # its default policy is compat32 (email.policy costs 30 ms to import)
        raw_name = _header(msg, "Name").strip()
        version = _header(msg, "Version").strip()
        if not raw_name or not version:
            raise AnalyzerFailure("Python metadata without Name or Version")
        if "\n" in raw_name or "\n" in version:
            raise AnalyzerFailure("Python metadata with a multi-line Name or Version")
        name = canonical_name(raw_name)
        if name == "python" and _INTERPRETER_EGG_INFO.search(path):
            return FileFacts(hints={"notes": [{"code": "PACKAGE_NOT_REPORTED", "message": f"the Python interpreter's "
                                               f"own metadata (Python {version}), not a PyPI package; the "
                                               "interpreter is reported from its binary"}]})
        classifiers = [str(c) for c in msg.get_all("Classifier") or []]
        licenses = _licenses(_header(msg, "License-Expression"), _header(msg, "License"), classifiers)
        purl = PackageURL(type="pypi", name=name, version=version).to_string()
        package = Package(
            name=name,
            version=version,
            ecosystem="pypi",
            path=path,
            purl=purl,
            licenses=licenses,
            metadata={"name_raw": raw_name},
            method="installed-metadata",
        )
        return FileFacts(packages=[package])


ANALYZERS = [PythonAnalyzer()]
