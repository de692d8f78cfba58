"""How a scanning process tunes Python's cycle collector.

A scan allocates hundreds of thousands of small objects that live until its report is written (file entries,
package records), on top of the 200,000 or so the interpreter holds for its modules. The default collector keeps
examining both: a cold `hullscan sbom` of a 74 MB image spent about 0.12 s in it (two full collections of 35-55 ms
each, stopping every layer thread), and a resident engine's re-scans 20-40 ms each time a full collection fell
on them. Nearly none of it finds garbage: the objects are alive until the scan ends or for the process's life.
"""

from __future__ import annotations

import gc

# Container objects allocated (net) before the youngest generation is examined; Python's default is 700.
YOUNG_THRESHOLD = 20_000


def hold() -> None:
    """No collections while a command line process loads its modules and reads its arguments: what that makes
    lives as long as the process, and examining it freed nothing (some 120 collections, 20 ms of a cold
    `hullscan sbom`). `release` or `settle` turns the collector back on."""
    gc.disable()


def release() -> None:
    gc.enable()


def settle() -> None:
    """Leave what the process holds now out of every later collection (it lives as long as the process), and
    let the youngest generation grow before it is examined; the collector runs from here on. Once per process: a
    second call changes nothing."""
    if not gc.get_freeze_count():
        gc.freeze()
        young, *older = gc.get_threshold()
        gc.set_threshold(max(young, YOUNG_THRESHOLD), *older)
    gc.enable()


def settle_collected() -> None:
    """`settle`, after a full collection: for a process that runs on, so no garbage is kept for good."""
    if gc.get_freeze_count():
        return
    gc.collect()
    settle()
