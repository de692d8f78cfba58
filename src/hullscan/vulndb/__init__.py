"""Vulnerability data: OSV import, the local store, version ordering and matching."""
