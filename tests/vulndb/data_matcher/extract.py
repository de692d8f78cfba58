"""Rebuild this folder's OSV extract from ../shared/vulndata (see PROVENANCE.md).

    python tests/vulndb/data_matcher/extract.py [/path/to/shared/vulndata]

Keeps every record whose `affected` names one of the packages below (the packages of examples.json plus
the extra ones the matcher tests use), with the record's other fields unchanged and only the affected
entries of those packages. Writes `records.zip`: one member `<Ecosystem>.json` per ecosystem holding the
list of its records sorted by id (one member compresses the repetitive records ~4x better than one member
per record), fixed timestamps, so a rerun gives the same bytes.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTRA = {
    # PYSEC-2022-43059 is withdrawn; PYSEC-2021-871/872 are one vulnerability (CVE-2021-42343)
    "PyPI": {"aiohttp", "distributed"},
    # <unfixed> lines of DSA-880-1, DSA-866-1, DSA-746-1; DLA-3331-1 and its regression update DLA-3331-2
    "Debian": {"phpmyadmin", "mozilla", "phpgroupware", "python-cryptography"},
    "Alpine": set(),
    "Go": set(),
    "npm": set(),
    "Maven": set(),
}


def _norm(ecosystem: str, name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "PyPI" else name


def main(vulndata: Path) -> None:
    examples = json.loads((vulndata / "examples.json").read_text())
    wanted: dict[str, set[str]] = {k: set(v) for k, v in EXTRA.items()}
    for item in examples["flag"] + examples["do_not_flag"]:
        base = item["ecosystem"].split(":", 1)[0]
        wanted.setdefault(base, set()).add(_norm(base, item["package"]))
    members: dict[str, bytes] = {}
    for base, names in sorted(wanted.items()):
        out: dict[str, dict[str, object]] = {}
        with zipfile.ZipFile(vulndata / "osv" / base / "all.zip") as src:
            for member in src.namelist():
                doc = json.loads(src.read(member))
                keep = [a for a in doc.get("affected") or [] if _norm(base, a["package"]["name"]) in names]
                if not keep:
                    continue
                doc["affected"] = keep
                out[str(doc["id"])] = doc
        members[f"{base}.json"] = json.dumps([out[k] for k in sorted(out)], separators=(",", ":"),
                                             ensure_ascii=False).encode()
        print(f"{base}: {len(out)} records")
    target = HERE / "records.zip"
    with zipfile.ZipFile(target, "w") as dst:
        for member in sorted(members):
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, members[member], compresslevel=9)
    print(f"{target}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[3] / "shared" / "vulndata")
