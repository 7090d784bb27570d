"""What the env loop measures time by: epsilon's schedule over env steps, and the training clock."""

from __future__ import annotations

import time


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """Linear from `start` at step 0 to `end` at `duration` env steps, then flat at `end`."""
    if duration <= 0:
        return end
    fraction = min(step / duration, 1.0)
    return start + fraction * (end - start)


class TrainClock:
    """Wall seconds spent training: it runs between `start()` and `stop()`, so stopping it for
    evaluation leaves evaluation out. `seconds` is the total at the last stop (saved in checkpoints)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self._since: float | None = None

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> None:
        self.seconds = self.elapsed()
        self._since = None

    def elapsed(self) -> float:
        """Seconds so far, the running stretch included."""
        return self.seconds + (time.perf_counter() - self._since if self._since is not None else 0.0)
