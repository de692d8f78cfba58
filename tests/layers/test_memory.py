"""The walker asks the C allocator to return large buffers when they are freed (layers/memory.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
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


# Allocates and frees 2 MiB buffers (below the mmap threshold: from the heap) and prints the page faults the second
# round took. The control fixes the mmap threshold alone, as the walker once did: glibc then keeps its 128 KiB trim
# threshold, each free hands the pages back and each allocation faults them in again (some 500 faults a buffer).
_CHURN = """
import ctypes, resource, sys
from hullscan.layers import memory
if sys.argv[1] == "mmap-only":
    assert ctypes.CDLL(None).mallopt(memory.M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD)
else:
    assert memory.release_large_buffers()
def churn():
    for _ in range(40):
        buf = b"x" * (2 << 20)
        del buf
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's M_TRIM_THRESHOLD is glibc's")
def test_freed_stream_chunks_are_not_faulted_in_again() -> None:
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert faults("mmap-only") > 40 * 256
    assert faults("walker") < 1000
