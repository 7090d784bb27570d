"""n-step returns from the replay buffer, against numbers worked out by hand and a naive reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_lightning import DQN, ConfigError, ReplayBatch, ReplayBuffer


def test_two_interleaved_envs_hand_worked() -> None:
    # gamma 0.5, n 3, two envs. obs encode (env, time): env A = 0.., env B = 100..
    # A: rewards 1, 2, 3, terminated at its 3rd step, then a new episode (reward 4).
    # B: rewards 10, 20, truncated at its 2nd step, then a new episode (rewards 30, 40).
    buffer = ReplayBuffer(16, (1,), n_step=3, gamma=0.5, num_envs=2)
    steps = [  # (obs A, r A, next A, term A, trunc A), the same for B
        ((0, 1, 1, 0, 0), (100, 10, 101, 0, 0)),
        ((1, 2, 2, 0, 0), (101, 20, 102, 0, 1)),
        ((2, 3, 3, 1, 0), (110, 30, 111, 0, 0)),
        ((10, 4, 11, 0, 0), (111, 40, 112, 0, 0)),
    ]
    for a, b in steps:
        obs, reward, nxt, term, trunc = (np.array(v, dtype=np.float32) for v in zip(a, b, strict=True))
        buffer.add(obs[:, None], [0, 1], reward, nxt[:, None], term, trunc)
    batch = buffer.gather(np.arange(8))  # slot 2t is A's step t, slot 2t + 1 is B's
    # by hand, slot by slot:
    #  A t0: 1 + .5*2 + .25*3 = 2.75, bootstraps from nothing (A terminated at t2), k 3
    #  B t0: 10 + .5*20 = 20, truncated at t1: bootstraps from 102 with gamma^2, k 2
    #  A t1: 2 + .5*3 = 3.5, terminated, k 2      B t1: 20, next 102, k 1
    #  A t2: 3, terminated, k 1                   B t2: 30 + .5*40 = 50, newest data at t3, k 2
    #  A t3: 4, newest, k 1                       B t3: 40, k 1
    assert batch.reward.tolist() == [2.75, 20.0, 3.5, 20.0, 3.0, 50.0, 4.0, 40.0]
    assert batch.next_obs[:, 0].tolist() == [3, 102, 3, 102, 3, 112, 11, 112]
    assert batch.terminated.tolist() == [1, 0, 1, 0, 1, 0, 0, 0]
    assert batch.steps is not None and batch.steps.tolist() == [3, 2, 2, 1, 1, 2, 1, 1]
    assert batch.obs[:, 0].tolist() == [0, 100, 1, 101, 2, 110, 10, 111]  # obs and action stay the first step's


def test_window_wraps_around_the_ring() -> None:
    buffer = ReplayBuffer(6, (1,), n_step=3, gamma=0.5)
    for t in range(8):  # one long episode, rewards 1..8; slots keep t = 2..7
        buffer.add([[t]], [0], [t + 1.0], [[t + 1]], [0])
    slot_of = {t: t % 6 for t in range(2, 8)}
    batch = buffer.gather(np.array([slot_of[2], slot_of[5], slot_of[6], slot_of[7]]))
    # t2: 3 + .5*4 + .25*5 = 6.25;  t5: 6 + .5*7 + .25*8 = 11.5;  t6: 7 + .5*8 = 11;  t7: 8
    assert batch.reward.tolist() == [6.25, 11.5, 11.0, 8.0]
    assert batch.next_obs[:, 0].tolist() == [5, 8, 8, 8]
    assert batch.steps is not None and batch.steps.tolist() == [3, 3, 2, 1]


def test_n_step_targets_use_gamma_to_the_steps() -> None:
    model = DQN((1,), 2, hidden_sizes=(4,), gamma=0.5, target_update_interval=0, eval_episodes=0)
    next_obs = torch.zeros(3, 1)
    with torch.no_grad():
        best_next = model.q_network(next_obs).max(1).values
    batch = ReplayBatch(
        next_obs, torch.zeros(3, dtype=torch.long), torch.tensor([2.75, 20.0, 4.0]), next_obs,
        torch.tensor([1.0, 0.0, 0.0]), steps=torch.tensor([3.0, 2.0, 1.0]),
    )  # fmt: skip
    target = model.td_target(batch)
    # terminated: no bootstrap; k=2: gamma^2 = 0.25; k=1: gamma = 0.5
    expected = torch.tensor([2.75, 20.0 + 0.25 * best_next[1].item(), 4.0 + 0.5 * best_next[2].item()])
    assert torch.allclose(target, expected)


def test_add_of_the_wrong_env_count_is_an_error() -> None:
    buffer = ReplayBuffer(10, (1,), n_step=2, num_envs=2)
    with pytest.raises(ValueError, match="num_envs=2"):
        buffer.add([[0]], [0], [0.0], [[1]], [0])
    with pytest.raises(ConfigError, match="n_step"):
        ReplayBuffer(10, (1,), n_step=0)


def naive_n_step(log: list[list[tuple[float, bool, bool, int]]], env: int, t: int, n: int, gamma: float):
    """By definition: walk env's own step list from t; stop after n rewards, at an episode end or the newest."""
    total, k = 0.0, 0
    for j in range(t, min(t + n, len(log[env]))):
        reward, terminated, truncated, next_id = log[env][j]
        total += gamma**k * reward
        k += 1
        if terminated or truncated:
            break
    _, terminated, _, next_id = log[env][t + k - 1]
    return total, k, terminated, next_id


@settings(max_examples=120, deadline=None)
@given(
    num_envs=st.integers(1, 3),
    n=st.integers(1, 4),
    capacity_steps=st.integers(4, 9),
    steps=st.integers(1, 20),
    data=st.data(),
)
def test_n_step_matches_the_naive_reference(num_envs: int, n: int, capacity_steps: int, steps: int, data) -> None:  # type: ignore[no-untyped-def]
    gamma = 0.9
    capacity = capacity_steps * num_envs + data.draw(st.integers(0, num_envs - 1))  # not always a multiple
    buffer = ReplayBuffer(capacity, (1,), n_step=n, gamma=gamma, num_envs=num_envs)
    log: list[list[tuple[float, bool, bool, int]]] = [[] for _ in range(num_envs)]
    for t in range(steps):
        rewards = data.draw(st.lists(st.integers(-3, 3), min_size=num_envs, max_size=num_envs))
        ends = data.draw(st.lists(st.sampled_from(["", "term", "trunc"]), min_size=num_envs, max_size=num_envs))
        obs = np.array([[e * 1000 + t] for e in range(num_envs)], dtype=np.float32)
        buffer.add(obs, np.zeros(num_envs, dtype=np.int64), np.array(rewards, np.float32), obs + 0.5,
                   [e == "term" for e in ends], [e == "trunc" for e in ends])  # fmt: skip
        for e in range(num_envs):
            log[e].append((float(rewards[e]), ends[e] == "term", ends[e] == "trunc", e * 1000 + t))
    slots = np.arange(len(buffer))
    batch = buffer.gather(slots)
    for slot in slots:
        env, t = divmod(int(batch.obs[slot, 0]), 1000)
        reward, k, terminated, next_id = naive_n_step(log, env, t, n, gamma)
        assert batch.reward[slot].item() == pytest.approx(reward, abs=1e-4)
        assert batch.next_obs[slot, 0].item() == next_id + 0.5
        assert batch.terminated[slot].item() == float(terminated)
        assert (batch.steps[slot].item() if batch.steps is not None else 1) == k
