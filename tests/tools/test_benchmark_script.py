"""The benchmark runs on a tiny budget and writes its files (speed itself is never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_writes_table_json_and_plot(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    speed = report["throughput"]
    one_plus_one = "dqn-lightning, 1 env step + 1 update"
    assert {
        "bare PyTorch loop",
        f"{one_plus_one}, interleaved (50 rounds a batch)",
        f"{one_plus_one}, one round a batch",
    } <= speed.keys()
    assert all(row["sps"] > 0 and len(row["seconds"]) == 1 for row in speed.values())
    assert "vs bare loop" in result.stdout and "time to solve" in result.stdout
    assert (tmp_path / "b" / "benchmark.png").stat().st_size > 10_000
    memory = report["memory"]
    # the quick probe's 2,000-transition Atari buffer holds each 84x84 frame once (about 14 MB)
    assert 2_000 * 84 * 84 <= memory["atari-buffer"]["buffer_bytes"] < 2 * 2_000 * 84 * 84
    assert memory["work-unit"]["peak_rss_bytes"] > memory["imports only"]["peak_rss_bytes"] > 0
