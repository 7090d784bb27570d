"""Action masks in the env loop, evaluation and export, on Taxi-v4 (which reports them), and
Discrete observations one-hot encoded."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from dqn_lightning.acting.envs import make_env, make_vector_env
from dqn_lightning.acting.evaluation import evaluate
from dqn_lightning.errors import ConfigError
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config

TAXI = ["--env", "Taxi-v4", "--total-timesteps", "1500", "--learning-starts", "300", "--train-freq", "16",
        "--gradient-steps", "4", "--eval-interval", "750", "--eval-episodes", "2", "--hidden-sizes", "32"]  # fmt: skip


def test_discrete_observations_become_one_hot_vectors() -> None:
    env = make_env("FrozenLake-v1")
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (16,), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.sum() == 1.0 and obs[0] == 1.0  # FrozenLake starts in state 0
    obs, *_ = env.step(2)  # right: state 1, unless the ice slips
    assert obs.sum() == 1.0


def test_with_masks_on_the_agent_never_takes_an_illegal_action(tmp_path: Path) -> None:
    masked = train(parse_config([*TAXI, "--action-masks", "--logdir", str(tmp_path)]))
    assert masked["illegal_actions"] == 0 and masked["env_steps"] == 1500
    # the same run without masks: Taxi still reports them, so the loop counts the illegal moves
    free = train(parse_config([*TAXI, "--no-action-masks", "--logdir", str(tmp_path)]))  # the taxi preset has them on
    assert free["illegal_actions"] > 100  # random warm-up alone: about half of Taxi's actions are illegal


def test_masks_on_for_an_env_without_them_is_refused_in_one_line(tmp_path: Path) -> None:
    flags = ["--env", "CartPole-v1", "--action-masks", "--total-timesteps", "600", "--learning-starts", "100",
             "--logdir", str(tmp_path)]  # fmt: skip
    with pytest.raises(ConfigError, match=r"--action-masks is on but CartPole-v1 gives no info\['action_mask'\]"):
        train(parse_config(flags))


def test_masked_evaluation_hands_the_policy_each_states_legal_actions() -> None:
    env = make_vector_env("Taxi-v4", num_envs=2)
    seen: list[np.ndarray] = []

    def first_legal(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        seen.append(mask.copy())
        return np.argmax(mask, axis=1)  # the first legal action

    try:
        evaluate(first_legal, env, [0, 1], masked=True)
    finally:
        env.close()
    assert seen and all(m.shape == (2, 6) and m.any(axis=1).all() for m in seen)
    assert any(not m.all() for m in seen)  # Taxi forbids something in some states


def test_a_dict_observation_with_an_action_mask_is_unpacked_into_obs_and_info(tmp_path: Path) -> None:
    env_id = "tests.toy_envs:dqn-test/MaskedDictObs-v0"
    env = make_env(env_id)
    assert env.observation_space == gym.spaces.Box(-1e6, 1e6, (2,), np.float32)
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0.0, 0.0] and info["action_mask"].tolist() == [1, 0]  # action 1 illegal at t = 0
    flags = ["--env", env_id, "--total-timesteps", "600", "--learning-starts", "100", "--eval-episodes", "2",
             "--eval-interval", "300", "--logdir", str(tmp_path)]  # fmt: skip
    assert train(parse_config([*flags, "--action-masks"]))["illegal_actions"] == 0
    assert train(parse_config(flags))["illegal_actions"] > 0
