"""The fleet tests' fixtures: those of tests/support/fleet.py (a plugin), and the service tests' `own_registry`,
a registry of the test's own (here: the second cluster's)."""

from tests.service.conftest import own_registry  # noqa: F401 - a fixture, registered by being imported here
