"""VEX (Vulnerability Exploitability eXchange): statements that a vulnerability does or does not affect a product.

- `model`: one statement, whatever the format it came in.
- `parse`: OpenVEX (https://github.com/openvex/spec) and CycloneDX VEX (a BOM's `vulnerabilities[].analysis`).
- `apply`: not_affected and fixed statements suppress the findings they name; affected and under_investigation
  change nothing.
- `analyzer`: VEX documents shipped inside the image (`/*.vex.json`).
- `openvex`: writes an OpenVEX document for the findings a user's ignore file suppressed (their triage).
"""
