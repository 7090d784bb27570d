"""The partially observed tasks: CueRecall's rules, CartPole without velocities, our frame stack,
and POPGym's structured spaces made flat for DQN."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dqn_lightning.acting.envs import env_spaces, make_env
from dqn_lightning.errors import ConfigError


def test_cue_recall_shows_the_cue_once_and_pays_for_naming_it() -> None:
    env = make_env("CueRecall-v0", delay=3)
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        cue = int(np.argmax(obs[:2]))
        assert obs[2] == 0 and obs[:2].sum() == 1
        for _ in range(3):  # the delay: blank, nothing paid, whatever the action
            obs, reward, terminated, _, _ = env.step(1 - cue)
            assert not obs.any() and reward == 0 and not terminated
        obs, reward, terminated, _, _ = env.step(0)
        assert obs.tolist() == [0, 0, 1] and reward == 0 and not terminated  # the question
        _, reward, terminated, _, _ = env.step(cue if seed % 2 else 1 - cue)
        assert terminated and reward == (1.0 if seed % 2 else -1.0)
    env.close()


def test_cartpole_without_velocities_observes_the_positions() -> None:
    hidden, full = make_env("CartPoleNoVelocity-v1"), gym.make("CartPole-v1")
    obs, _ = hidden.reset(seed=7)
    full_obs, _ = full.reset(seed=7)
    assert obs.shape == (2,) and obs.tolist() == full_obs[[0, 2]].tolist()
    for action in (0, 1, 1, 0):
        obs, *_ = hidden.step(action)
        full_obs, *_ = full.step(action)
        assert obs.tolist() == full_obs[[0, 2]].tolist()
    assert hidden.spec is not None and hidden.spec.max_episode_steps == 500  # CartPole-v1's time limit
    assert env_spaces("CartPoleNoVelocity-v1").obs_shape == (2,)


def test_frame_stack_keeps_the_last_k_observations() -> None:
    env = make_env("CueRecall-v0", frame_stack=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 3) and (obs == obs[-1]).all()  # padded with the first observation
    obs, *_ = env.step(0)
    assert obs[-2].sum() == 1 and not obs[-1].any()  # the cue one step back, then a blank
    with pytest.raises(ConfigError, match="frame_stack"):
        make_env("CueRecall-v0", frame_stack=-2)


def test_a_multi_discrete_action_space_becomes_its_combinations() -> None:
    from tests import toy_envs  # noqa: F401  # registers dqn-test/MultiDiscreteAction-v0

    env = make_env("dqn-test/MultiDiscreteAction-v0")
    assert env.action_space.n == 6  # type: ignore[attr-defined]
    assert [env.action(k).tolist() for k in range(6)] == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]  # type: ignore[attr-defined]


def test_popgym_spaces_become_a_flat_box_and_one_discrete_action() -> None:
    pytest.importorskip("popgym")  # the optional extra; the dev install has it
    count = make_env("popgym-CountRecallEasy-v0")  # MultiDiscrete([2, 2]) observations: two one-hots
    obs, _ = count.reset(seed=0)
    assert obs.shape == (4,) and obs.dtype == np.float32 and obs[:2].sum() == 1 and obs[2:].sum() == 1
    mines = make_env("popgym-MineSweeperEasy-v0")  # MultiDiscrete([4, 4]) actions: 16 cells
    assert isinstance(mines.action_space, gym.spaces.Discrete) and mines.action_space.n == 16
    assert mines.unwrapped.action_space.contains(mines.action(6))  # type: ignore[attr-defined]
    assert mines.action(6).tolist() == [1, 2]  # row-major: 6 = 1 * 4 + 2
