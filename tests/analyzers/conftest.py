"""Fixtures shared by the analyzer tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.analyzers.debs import Debs


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("needs apt-get and dpkg-deb (a Debian machine)")
    cache = os.environ.get("HULLSCAN_TEST_DEB_CACHE")
    return Debs(Path(cache) if cache else tmp_path_factory.mktemp("debs"))
