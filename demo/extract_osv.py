"""Copy the real OSV records that concern the demo image's packages out of ../shared/vulndata.

Run once by a developer (`python demo/extract_osv.py`); its output, demo/osv/, is committed so that
`make demo` works offline on a fresh machine. Records are copied byte for byte.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "vulndata" / "osv"
WANTED = {
    "PyPI": {"requests", "urllib3", "django", "pyyaml", "jinja2"},
    "npm": {"lodash", "minimist"},
    "Maven": {"org.apache.logging.log4j:log4j-core"},
}


def main() -> None:
    out = HERE / "osv"
    for ecosystem, names in WANTED.items():
        with zipfile.ZipFile(SHARED / ecosystem / "all.zip") as z:
            for member in z.namelist():
                data = z.read(member)
                doc = json.loads(data)
                if any(a.get("package", {}).get("name", "").lower() in names for a in doc.get("affected", [])):
                    target = out / ecosystem / member
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)


if __name__ == "__main__":
    main()
