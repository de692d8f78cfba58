"""Work measured without a clock: how many lines of Python a call executes (a busy machine changes none of it)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def python_lines(fn: Callable[[], T]) -> tuple[T, int]:
    """`fn()`'s result and the number of Python lines it executed (sys.settrace line events, this thread)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        result = fn()
    finally:
        sys.settrace(previous)
    return result, count
