"""The walker asks the C allocator to return large buffers when they are freed (layers/memory.py)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from hullscan.layers import memory
from hullscan.layers.walker import LayerWalker
from hullscan.oci.source import Limits


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's M_MMAP_THRESHOLD is glibc's")
def test_a_walker_fixes_the_mmap_threshold_once_per_process(tmp_path: Path) -> None:
    memory.release_large_buffers.cache_clear()
    LayerWalker([], Limits(), tmp_path)
    LayerWalker([], Limits(), tmp_path)
    info = memory.release_large_buffers.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert memory.release_large_buffers() is True  # glibc accepted the threshold
