"""The one test that trains for real: the agent must actually learn CartPole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from train import train

from dqn_lightning import DQN, evaluate, make_vector_env
from dqn_lightning.config import parse_config


def test_cartpole_preset_learns_to_balance(tmp_path: Path) -> None:
    config = parse_config(
        ["--total-timesteps", "30000", "--seed", "0", "--logdir", str(tmp_path), "--accelerator", "cpu"]
    )
    summary = train(config)
    # judge the kept best policy on 20 fresh greedy episodes that no training evaluation saw
    model = DQN.load_from_checkpoint(summary["best_checkpoint"])
    returns = evaluate(model.act, make_vector_env("CartPole-v1", 20), list(range(500_000, 500_020)))
    assert returns.mean() >= 195, f"greedy mean return {returns.mean():.1f} after {summary['env_steps']} steps"
    # and the untrained network really is worse: learning, not luck
    untrained = DQN.from_env("CartPole-v1", hidden_sizes=(256, 256))
    assert evaluate(untrained.act, make_vector_env("CartPole-v1", 20), list(range(500_000, 500_020))).mean() < 100
    assert np.isfinite(summary["return_mean_last_100"])
