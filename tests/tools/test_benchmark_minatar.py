"""The MinAtar benchmark's update floor scales the timed updates to the work unit (speed is never asserted)."""

from __future__ import annotations

import pytest

from tests.helpers import load_script

bench = load_script("benchmark_minatar")


def test_update_floor_scales_the_timed_updates_to_the_units_update_count(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.3])  # the start and the end of the timed loop: 300 updates in 0.3 s, 1 ms each
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    # 20,000 env steps, the first 5,000 random: 15,000 updates of 1 ms take 15 s, so 20,000 / 15 env steps/s
    assert bench.update_floor(20_000, timed=300) == pytest.approx(20_000 / 15)
    # a short unit starts learning after a quarter of its steps: 3,000 of 4,000 steps have an update
    clock = iter([0.0, 0.3])
    assert bench.update_floor(4_000, timed=300) == pytest.approx(4_000 / 3)
