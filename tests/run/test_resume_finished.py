"""Resuming a run that had spent its budget: one line that says it is done and how to extend it, no batch more."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_train

TINY = ["--total-timesteps", "800", "--learning-starts", "200", "--train-freq", "8", "--gradient-steps", "8",
        "--eval-interval", "300", "--eval-episodes", "2", "--logdir", "logs"]  # fmt: skip


def test_resuming_a_finished_run_ends_at_once_with_one_line_and_a_larger_budget_trains_on(tmp_path: Path) -> None:
    assert run_train(*TINY, cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "logs" / "CartPole-v1" / "version_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 800
    # the best checkpoint too when the last evaluation was the best (its file then names env step 800)
    finished = [
        summary["last_checkpoint"],
        *[summary["best_checkpoint"]] * ("envstep800" in summary["best_checkpoint"]),
    ]
    for checkpoint in finished:
        before = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()}
        result = run_train("--resume", checkpoint, "--logdir", "logs", cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        assert "this run is done: the checkpoint is at 800 env steps, its budget of 800" in lines[0]
        assert "--total-timesteps N, N > 800" in lines[0]
        # nothing trained or written: the checkpoints are as they were
        assert {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()} == before
    extended = run_train("--resume", summary["last_checkpoint"], "--total-timesteps", "1000", "--logdir", "logs",
                         cwd=tmp_path)  # fmt: skip
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 1000
