"""Prioritized replay: the sum tree against brute force, sampling frequencies, importance weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_lightning import (
    DQN,
    ConfigError,
    EnvLoop,
    PrioritizedReplayBuffer,
    SumTree,
    bellman_huber,
    bellman_mse,
    replay_dataloader,
)
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.dataset import Rounds
from tests.helpers import quiet_trainer


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 40),
    updates=st.lists(st.lists(st.tuples(st.integers(0, 39), st.floats(0.0, 100.0)), min_size=1), max_size=10),
    masses=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=10),
)
def test_sum_tree_matches_brute_force(capacity: int, updates: list, masses: list[float]) -> None:  # type: ignore[type-arg]
    tree = SumTree(capacity)
    model = np.zeros(capacity)
    for batch in updates:
        index = [i % capacity for i, _ in batch]
        priority = [p for _, p in batch]
        tree.set(index, priority)
        for i, p in zip(index, priority, strict=True):  # later entries win, as in NumPy assignment
            model[i] = p
    # invariants: every inner node is the sum of its children; the root is the sum of the leaves
    inner = np.arange(1, tree.leaves)
    assert np.allclose(tree.nodes[inner], tree.nodes[2 * inner] + tree.nodes[2 * inner + 1])
    assert tree.total == pytest.approx(model.sum())
    assert np.array_equal(tree.get(np.arange(capacity)), model)
    if model.sum() > 0:
        mass = np.array(masses) * model.sum()
        # brute force: the first leaf whose running sum exceeds the mass
        expected = np.searchsorted(np.cumsum(model), mass, side="right")
        found = tree.find(mass)
        assert np.all(model[found] > 0)
        close = np.isclose(np.cumsum(model)[np.minimum(expected, capacity - 1)], mass)  # ties at a boundary
        assert np.all((found == expected) | close)


def filled(alpha: float, errors: list[float], **kwargs: float) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(len(errors), (1,), seed=0, alpha=alpha, eps=1e-9, **kwargs)  # type: ignore[arg-type]
    for v in range(len(errors)):
        buffer.add([[v]], [0], [0.0], [[v]], [0])
    buffer.update_priorities(np.arange(len(errors)), errors)
    return buffer


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [(1.0, [0.1, 0.2, 0.3, 0.4]), (0.5, np.sqrt([1, 2, 3, 4]) / np.sqrt([1, 2, 3, 4]).sum()), (0.0, [0.25] * 4)],
)
def test_sampling_frequencies_follow_priority_to_the_alpha(alpha: float, expected: list[float]) -> None:
    buffer = filled(alpha, [1.0, -2.0, 3.0, -4.0])  # |TD error| is the priority
    draws = np.concatenate([buffer.sample(50).obs[:, 0].int().numpy() for _ in range(400)])  # 20,000 draws
    freq = np.bincount(draws, minlength=4) / draws.size
    sigma = np.sqrt(np.asarray(expected) * (1 - np.asarray(expected)) / draws.size)
    # stratified sampling has less variance than independent draws: 4 sigma of the latter is generous
    # for a right tree, while uniform sampling (off by 0.05 to 0.15) is 14+ sigma away at alpha 1
    assert np.all(np.abs(freq - expected) < 4 * sigma), (freq, expected)


def test_importance_weights_hand_worked() -> None:
    # alpha 1, beta 1 (beta_steps 0): P = [.1, .2, .3, .4], N = 4, w = 1 / (4 P) = [2.5, 1.25, .833, .625]
    buffer = filled(1.0, [1.0, 2.0, 3.0, 4.0], beta_steps=0)
    batch = buffer.sample(40)
    assert batch.weight is not None and batch.slot is not None
    raw = {0: 2.5, 1: 1.25, 2: 1 / 1.2, 3: 0.625}
    slots = batch.slot.tolist()
    biggest = max(raw[s] for s in slots)
    assert batch.weight.tolist() == pytest.approx([raw[s] / biggest for s in slots], rel=1e-5)
    assert torch.equal(batch.obs[:, 0].long(), batch.slot)  # the batch holds the slots it names


def test_beta_anneals_linearly_to_one() -> None:
    buffer = PrioritizedReplayBuffer(500, (1,), beta_start=0.4, beta_steps=100)
    assert buffer.beta == pytest.approx(0.4)
    for _ in range(5):
        buffer.add(np.zeros((10, 1)), np.zeros(10, dtype=np.int64), np.zeros(10), np.zeros((10, 1)), np.zeros(10))
    assert buffer.beta == pytest.approx(0.7)  # 50 of 100 steps: 0.4 + 0.6 / 2
    for _ in range(10):
        buffer.add(np.zeros((10, 1)), np.zeros(10, dtype=np.int64), np.zeros(10), np.zeros((10, 1)), np.zeros(10))
    assert buffer.beta == 1.0


def test_new_transitions_get_the_largest_priority_seen() -> None:
    buffer = filled(1.0, [1.0, 5.0])
    big = PrioritizedReplayBuffer(4, (1,), alpha=1.0, eps=0.5)
    big.add([[0]], [0], [0.0], [[0]], [0])
    assert big.tree.get([0]).tolist() == [1.0]  # the initial max priority
    big.update_priorities([0], [-3.0])  # |-3| + eps 0.5
    big.add([[1]], [0], [0.0], [[1]], [0])
    assert big.tree.get([0, 1]).tolist() == [3.5, 3.5]
    assert buffer.tree.total == pytest.approx(6.0)


def test_weighted_losses_hand_worked() -> None:
    q, target, weight = torch.tensor([1.0, 2.0, 0.5]), torch.zeros(3), torch.tensor([1.0, 0.5, 2.0])
    # MSE: (1 * 1 + 0.5 * 4 + 2 * 0.25) / 3 = 3.5 / 3
    assert bellman_mse(q, target, weight).item() == pytest.approx(3.5 / 3)
    # Huber: 0.5 * x^2 within 1, |x| - 0.5 beyond: (1 * 0.5 + 0.5 * 1.5 + 2 * 0.125) / 3 = 1.5 / 3
    assert bellman_huber(q, target, weight).item() == pytest.approx(0.5)


def test_save_and_load_keep_the_priorities(tmp_path: Path) -> None:
    buffer = filled(0.7, [1.0, 2.0, 3.0, 4.0])
    buffer.save(tmp_path / "per.npz")
    other = PrioritizedReplayBuffer(4, (1,), alpha=0.7)
    other.load(tmp_path / "per.npz")
    assert np.array_equal(other.tree.nodes, buffer.tree.nodes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"alpha": -1.0}, "per_alpha"), ({"beta_start": 1.5}, "per_beta_start"), ({"eps": 0.0}, "per_eps")],
)
def test_bad_settings_are_one_line_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PrioritizedReplayBuffer(10, (1,), **kwargs)  # type: ignore[arg-type]


def test_training_writes_td_errors_back_as_priorities(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0)
    buffer = PrioritizedReplayBuffer(2_000, (4,), seed=0, alpha=1.0, eps=1e-6, beta_steps=600)

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    update = buffer.update_priorities

    def recording_update(index, td_error):  # type: ignore[no-untyped-def]
        seen.append((np.asarray(index).copy(), np.asarray(td_error).copy()))
        update(index, td_error)

    buffer.update_priorities = recording_update  # type: ignore[method-assign]
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=600, learning_starts=200, seed=0)
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 32, gradient_steps=2))
    assert len(seen) == 400  # one update per training batch: (600 - 200) env steps at train_freq 1
    index, td_error = seen[-1]
    assert index.shape == td_error.shape == (2, 32)
    # the last batch's slots now hold |TD error| + eps (alpha 1); a slot drawn twice keeps the later value
    last = {int(i): abs(float(e)) + 1e-6 for i, e in zip(index.ravel(), td_error.ravel(), strict=True)}
    assert buffer.tree.get(list(last)) == pytest.approx(list(last.values()), rel=1e-6)
    assert buffer.beta == 1.0  # annealed over the 600-step budget


def test_priorities_go_back_with_the_slots_drawn_on_the_host(tmp_path: Path) -> None:
    # a stand-in for a GPU: the transfer hands the step a copy of the batch; the slots written
    # back must be the drawn host tensors, not the moved ones (copying those back syncs)
    pl.seed_everything(0, verbose=False)
    drawn: list[torch.Tensor] = []
    written: list[torch.Tensor] = []

    class MovedDQN(DQN):
        def transfer_batch_to_device(self, batch, device, dataloader_idx):  # type: ignore[no-untyped-def]
            if not isinstance(batch, ReplayBatch):
                return super().transfer_batch_to_device(batch, device, dataloader_idx)
            drawn.append(batch.slot)
            return batch._replace(slot=batch.slot.clone())

    original = Rounds.write_priorities

    def recording(self: Rounds, slot: torch.Tensor, priority: torch.Tensor) -> None:
        written.append(slot)
        original(self, slot, priority)

    Rounds.write_priorities = recording  # type: ignore[method-assign]
    try:
        model = MovedDQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0)
        buffer = PrioritizedReplayBuffer(2_000, (4,), seed=0)
        loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=200, seed=0)
        quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 16, rounds_per_batch=5))
    finally:
        Rounds.write_priorities = original  # type: ignore[method-assign]
    assert len(written) == 100 and all(w is d for w, d in zip(written, drawn, strict=True))
