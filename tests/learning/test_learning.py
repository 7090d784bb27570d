"""The learning runs: agents trained for real must actually learn (CartPole, MinAtar Breakout, Taxi).

Marked `learning`: `pytest -m "not learning"` runs the unit and integration tests alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dqn_lightning import DQN, evaluate, make_vector_env
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config

pytestmark = pytest.mark.learning


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


def test_minatar_breakout_learns_well_above_random(tmp_path: Path) -> None:
    # a short, fast-learning variant of the minatar-breakout preset (minimal actions, quicker
    # exploration decay, lr 1e-3, half the updates): about a minute on one CPU core
    flags = ["--preset", "minatar-breakout", "--env", "MinAtar/Breakout-v1", "--total-timesteps", "12000"]
    flags += ["--learning-starts", "1000", "--exploration-steps", "6000", "--eps-end", "0.05", "--lr", "0.001"]
    flags += ["--target-update-interval", "250", "--train-freq", "4", "--gradient-steps", "2"]
    flags += ["--eval-interval", "4000", "--eval-episodes", "10", "--seed", "0", "--logdir", str(tmp_path)]
    summary = train(parse_config(flags))
    seeds = list(range(500_000, 500_030))
    env = make_vector_env("MinAtar/Breakout-v1", 10)
    learned = evaluate(DQN.load_from_checkpoint(summary["best_checkpoint"]).act, env, seeds).mean()
    untrained = DQN.from_env("MinAtar/Breakout-v1", hidden_sizes=(128,))
    rng = np.random.default_rng(0)
    random_policy = evaluate(lambda obs: rng.integers(3, size=len(obs)), env, seeds).mean()
    # a uniform random policy scores about 0.5 a game; the untrained network's fixed choices no more
    assert random_policy < 1.0 and evaluate(untrained.act, env, seeds).mean() < 1.0
    assert learned >= 2.0, f"greedy mean {learned:.2f} over 30 games after {summary['env_steps']} env steps"


def test_taxi_with_action_masks_learns_optimal_play_and_never_moves_illegally(tmp_path: Path) -> None:
    # the taxi preset (one-hot states, masks on), stopped at its first greedy evaluation of 7.5:
    # about 21,000 env steps on seed 0 (optimal play scores about 8 per episode, random play -790)
    flags = ["--preset", "taxi", "--seed", "0", "--stop-at-return", "7.5", "--logdir", str(tmp_path)]
    summary = train(parse_config(flags))
    assert summary["env_steps"] < 50_000, "it never reached 7.5 in a greedy evaluation"
    assert summary["illegal_actions"] == 0
    model = DQN.load_from_checkpoint(summary["best_checkpoint"])
    env = make_vector_env("Taxi-v4", 20)
    returns = evaluate(model.act, env, list(range(500_000, 500_020)), masked=True)
    assert returns.mean() >= 7.0, f"greedy mean return {returns.mean():.1f} on 20 fresh episodes"
