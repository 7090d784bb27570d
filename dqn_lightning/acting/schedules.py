"""Exploration schedule: epsilon as a function of env steps."""

from __future__ import annotations


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """Linear from `start` at step 0 to `end` at `duration` env steps, then flat at `end`."""
    if duration <= 0:
        return end
    fraction = min(step / duration, 1.0)
    return start + fraction * (end - start)
