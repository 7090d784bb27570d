"""The episode bookkeeping of `EnvLoop`: hand-worked returns, seeds that move per episode, its state."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_lightning import ConfigError
from dqn_lightning.acting.episodes import Episodes


def test_two_envs_by_hand() -> None:
    episodes = Episodes(num_envs=2, window=2)
    episodes.step(np.array([1, 0]), np.array([1.0, -0.5]))
    episodes.step(np.array([0, 2]), np.array([2.0, 0.5]))
    assert episodes.actions == [[1, 0], [0, 2]] and episodes.returns.tolist() == [3.0, 0.0]
    assert episodes.end(0) == (3.0, 2)  # env 0 done after 2 steps, return 1 + 2
    episodes.step(np.array([1, 1]), np.array([4.0, 1.0]))
    assert episodes.end(1) == (1.0, 3) and episodes.end(0) == (4.0, 1)
    # the window keeps the last 2 finished; the count keeps all 3; ended envs start empty
    assert episodes.finished == 3 and list(episodes.recent_returns) == [1.0, 4.0]
    assert list(episodes.recent_lengths) == [3, 1] and episodes.mean_return() == 2.5
    assert episodes.index.tolist() == [2, 1] and episodes.actions == [[], []] and episodes.lengths.tolist() == [0, 0]
    assert np.isnan(Episodes(1).mean_return())


def test_each_episode_of_each_env_gets_its_own_reproducible_seed() -> None:
    episodes = Episodes(num_envs=2)
    first = [episodes.seed(7, 0), episodes.seed(7, 1)]
    assert first[0] != first[1] and episodes.seed(8, 0) != first[0]
    episodes.end(0)
    assert episodes.seed(7, 0) != first[0] and episodes.seed(7, 1) == first[1]  # only env 0 moved on
    assert Episodes(num_envs=2).seed(7, 0) == first[0]


def test_state_round_trip_and_a_checkpoint_of_other_num_envs() -> None:
    episodes = Episodes(num_envs=2)
    episodes.step(np.array([1, 0]), np.array([1.0, 2.0]))
    episodes.end(1)
    episodes.step(np.array([0, 1]), np.array([0.5, 3.0]))
    restored = Episodes(num_envs=2)
    restored.load_state_dict(episodes.state_dict())
    assert restored.state_dict() == episodes.state_dict()
    assert restored.actions == [[1, 0], [1]] and restored.returns.tolist() == [1.5, 3.0] and restored.finished == 1
    with pytest.raises(ConfigError, match="the checkpoint ran 2 envs, this run has num_envs=3"):
        Episodes(num_envs=3).load_state_dict(episodes.state_dict())
    restored.start_afresh()  # a DDP rank the checkpoint did not have
    assert restored.actions == [[], []] and restored.index.tolist() == [0, 0] and restored.finished == 1
