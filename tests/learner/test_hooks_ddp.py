"""The hooks under Lightning's DDP strategy with 2 CPU processes (gloo): the override is what trains on
every rank, and each rank's prioritized buffer gets the override's td_error as its priorities."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.learner.hook_variants import CONSTANT

PROBE = Path(__file__).resolve().parent / "ddp_hooks_probe.py"


def _ranks(tmp_path: Path, name: str) -> list[dict]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, str(PROBE), str(tmp_path), name], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return [torch.load(tmp_path / f"{name}-rank-{rank}.pt") for rank in (0, 1)]


def test_under_ddp_a_zero_loss_moves_nothing_and_a_constant_target_and_td_error_are_what_train(
    tmp_path: Path,
) -> None:
    for rank in _ranks(tmp_path, "ZeroLoss"):
        # (1000 - 200) env steps over 2 ranks, 4 per round each: 100 rounds of 4 updates
        assert rank["gradient_step"] == 400
        assert all(torch.equal(a, b) for a, b in zip(rank["before"], rank["after"], strict=True))
    ranks = _ranks(tmp_path, "ConstantTargetAndPriority")
    for rank in ranks:
        assert (rank["q_taken"] - CONSTANT).abs().mean() < 0.3
        assert torch.allclose(rank["priorities"], torch.tensor(rank["expected_priority"], dtype=torch.float64))
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["after"], ranks[1]["after"], strict=True))
