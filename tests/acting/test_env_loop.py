from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from dqn_lightning import DQN, ConfigError, EnvLoop, ReplayBuffer, replay_dataloader
from tests.helpers import quiet_trainer
from tests.toy_envs import chain, frame_stacked_chain

NO_LOGGING = SimpleNamespace(is_global_zero=True, loggers=[], global_rank=0, world_size=1)


class FirstAction:
    """The smallest module EnvLoop accepts (its `Learner` interface): always action 0."""

    n_actions = 2

    def act(self, obs: np.ndarray, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)

    def close_envs(self) -> None:
        pass


def started_loop(max_steps: int = 4, num_envs: int = 1) -> EnvLoop:
    loop = EnvLoop(
        lambda: chain(max_steps),
        ReplayBuffer(100, (2,)),
        total_timesteps=100,
        learning_starts=0,
        num_envs=num_envs,
        seed=0,
    )
    loop.setup(NO_LOGGING, FirstAction(), "fit")  # type: ignore[arg-type]
    loop.on_train_start(NO_LOGGING, SimpleNamespace())  # type: ignore[arg-type]
    return loop


def test_terminated_and_truncated_transitions_by_hand() -> None:
    loop = started_loop(max_steps=4)
    # episode 0: actions 0,0,0,0 -> truncated by the time limit at t=4 (not terminated)
    # episode 1: actions 0,1     -> terminated at t=2
    for action in [0, 0, 0, 0, 0, 1, 0]:
        loop._step(NO_LOGGING, np.array([action]))  # type: ignore[arg-type]
    b = loop.buffer
    obs, next_obs = b.obs[:7].tolist(), b.next_obs[:7].tolist()
    assert obs == [[0, 0], [1, 0], [2, 0], [3, 0], [0, 1], [1, 1], [0, 2]]
    # the truncated step keeps its true last observation [4, 0], not the reset one [0, 1]
    assert next_obs == [[1, 0], [2, 0], [3, 0], [4, 0], [1, 1], [2, 1], [1, 2]]
    assert b.terminated[:7].tolist() == [0, 0, 0, 0, 0, 1, 0]  # truncation still bootstraps
    assert loop.episodes == 2 and list(loop.recent_returns) == [4.0, 2.0] and list(loop.recent_lengths) == [4, 2]
    assert loop.env_steps == 7


def test_vector_envs_add_one_transition_each_per_step() -> None:
    loop = started_loop(max_steps=3, num_envs=2)
    for _ in range(3):
        loop._step(NO_LOGGING, np.array([0, 0]))  # type: ignore[arg-type]
    assert loop.env_steps == 6 and len(loop.buffer) == 6 and loop.episodes == 2
    assert loop.buffer.next_obs[4:6, 0].tolist() == [3, 3]  # both sub-envs' true last observations


def test_epsilon_follows_env_steps() -> None:
    loop = EnvLoop(
        "CartPole-v1",
        ReplayBuffer(10, (4,)),
        total_timesteps=10_000,
        exploration_fraction=0.1,
        eps_start=1.0,
        eps_end=0.05,
    )
    for steps, expected in [(0, 1.0), (500, 0.525), (1000, 0.05), (9000, 0.05)]:
        loop.env_steps = steps
        assert loop.epsilon == pytest.approx(expected)


def fit_small(tmp_path: Path, total: int = 700, learning_starts: int = 200, train_freq: int = 3) -> tuple[EnvLoop, DQN]:
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(32,), eval_episodes=0)
    buffer = ReplayBuffer(10_000, (4,), seed=0)
    loop = EnvLoop(
        "CartPole-v1", buffer, total_timesteps=total, learning_starts=learning_starts, train_freq=train_freq, seed=0
    )
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 32))
    return loop, model


def test_fills_buffer_counts_episodes_and_stops_at_budget(tmp_path: Path) -> None:
    loop, model = fit_small(tmp_path)
    assert loop.env_steps == 700 and len(loop.buffer) == 700  # exactly the budget
    # 200 warm-up steps, then 3 env steps per training batch: 500 / 3 -> 167 batches
    assert model.global_step == 167
    ended = int(loop.buffer.terminated[:700].sum())  # CartPole's episodes here all end by falling
    assert loop.episodes == ended > 10
    assert sum(loop.recent_lengths) <= 700


def test_state_dict_round_trip(tmp_path: Path) -> None:
    loop, _ = fit_small(tmp_path, total=400)
    state = loop.state_dict()
    fresh = EnvLoop("CartPole-v1", ReplayBuffer(10_000, (4,)), total_timesteps=400, seed=123)
    fresh.load_state_dict(state)
    assert (fresh.env_steps, fresh.episodes) == (loop.env_steps, loop.episodes)
    assert list(fresh.recent_returns) == list(loop.recent_returns)
    assert fresh.rng.random() == loop.rng.random()  # same exploration draws from here on
    assert fresh.buffer.state_dict()["pos"] == loop.buffer.pos


def test_module_without_env_loop_fails_clearly(tmp_path: Path) -> None:
    model = DQN.from_env("CartPole-v1", eval_episodes=0)
    buffer = ReplayBuffer(100, (4,))
    with pytest.raises(RuntimeError, match="add the env-stepping callback"):
        quiet_trainer(tmp_path, []).fit(model, replay_dataloader(buffer, 8))


def test_empty_buffer_fails_clearly(tmp_path: Path) -> None:
    model = DQN.from_env("CartPole-v1", eval_episodes=0)
    loop = EnvLoop("CartPole-v1", ReplayBuffer(100, (4,)), total_timesteps=100, learning_starts=50)
    other = ReplayBuffer(100, (4,))  # not the loop's buffer: stays empty
    with pytest.raises(RuntimeError, match="fewer than one batch"):
        quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(other, 8))


def test_mismatched_env_is_a_config_error(tmp_path: Path) -> None:
    model = DQN.from_env("Acrobot-v1", eval_episodes=0)  # 3 actions, 6-dim observations
    loop = EnvLoop("CartPole-v1", ReplayBuffer(100, (6,)), total_timesteps=100, learning_starts=50)
    with pytest.raises(ConfigError, match="observations of shape"):
        quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(loop.buffer, 8))


@pytest.mark.parametrize("layout", [{"n_step": 3}, {"store_frames": True}])
def test_env_ordered_buffer_built_for_other_env_count_is_a_config_error(tmp_path: Path, layout: dict) -> None:
    # n-step windows and frame stacks look num_envs slots back: the counts must agree before the first step
    model = DQN((3, 2), 2, hidden_sizes=(8,), eval_episodes=0)
    loop = EnvLoop(
        frame_stacked_chain, ReplayBuffer(100, (3, 2), num_envs=1, **layout), num_envs=2, total_timesteps=100
    )
    with pytest.raises(ConfigError, match="expects 1 envs per step"):
        quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(loop.buffer, 8))


def test_act_is_greedy_at_epsilon_zero_and_random_at_one() -> None:
    torch.manual_seed(0)
    model = DQN((4,), 2, hidden_sizes=(8,))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    greedy = model.q_network(torch.from_numpy(obs)).argmax(1).numpy()
    assert np.array_equal(model.act(obs, 0.0), greedy)
    random_actions = model.act(obs, 1.0, np.random.default_rng(0))
    # one uniform u per row: u < epsilon explores, with action floor(u / epsilon * n_actions)
    u = np.random.default_rng(0).random(64)
    assert np.array_equal(random_actions, (u * 2).astype(int))
    assert 20 < random_actions.sum() < 44  # both actions, about equally often
    mixed = model.act(obs, 0.5, np.random.default_rng(1))
    u = np.random.default_rng(1).random(64)
    explore = u < 0.5
    assert np.array_equal(mixed[~explore], greedy[~explore])  # non-exploring rows stay greedy
    assert np.array_equal(mixed[explore], (u[explore] / 0.5 * 2).astype(int))


@pytest.mark.parametrize("vector", ["sync", "async"])
def test_replay_episode_rebuilds_each_sub_env(vector: str) -> None:
    from dqn_lightning import make_vector_env

    env = make_vector_env("CartPole-v1", 2, vector)  # type: ignore[arg-type]
    try:
        seeds, actions = [11, 22], [[0, 1, 1, 0, 1], [1, 1, 0]]
        obs, _ = env.reset(seed=seeds)
        for t in range(5):  # step env 1 only for its 3 actions: afterwards its state must not move
            step_actions = np.array([actions[0][t], actions[1][t] if t < 3 else 0])
            obs_t, *_ = env.step(step_actions)
            obs = np.stack([obs_t[0], obs_t[1] if t < 3 else obs[1]])
        env.reset(seed=[1, 2])  # scramble both
        rebuilt = np.stack(env.call("replay_episode", [[(seed, a)] for seed, a in zip(seeds, actions, strict=True)]))
        assert np.array_equal(rebuilt, obs)
    finally:
        env.close()


def test_a_module_without_the_learner_interface_is_a_config_error() -> None:
    loop = EnvLoop(lambda: chain(4), ReplayBuffer(100, (2,)), total_timesteps=100, learning_starts=0, seed=0)
    with pytest.raises(ConfigError, match=r"EnvLoop feeds a module with n_actions, act\(obs, epsilon, rng\)"):
        loop.setup(NO_LOGGING, SimpleNamespace(act=lambda obs: obs), "fit")  # type: ignore[arg-type]
    loop.teardown(NO_LOGGING, SimpleNamespace(), "fit")  # type: ignore[arg-type]
