from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_lightning import ReplayBuffer


def fill(buffer: ReplayBuffer, values: list[int]) -> None:
    """Adds one transition per value: obs = [v], next_obs = [v + 0.5], action v % 2, reward v."""
    for v in values:
        buffer.add([[v]], [v % 2], [float(v)], [[v + 0.5]], [0.0])


def test_ring_overwrites_oldest_first() -> None:
    buffer = ReplayBuffer(capacity=5, obs_shape=(1,))
    fill(buffer, [0, 1, 2, 3, 4, 5, 6])
    # slots 0 and 1 were overwritten by 5 and 6; by hand: [5, 6, 2, 3, 4]
    assert buffer.obs[:, 0].tolist() == [5, 6, 2, 3, 4]
    assert buffer.next_obs[:, 0].tolist() == [5.5, 6.5, 2.5, 3.5, 4.5]
    assert buffer.reward.tolist() == [5, 6, 2, 3, 4]
    assert buffer.action.tolist() == [1, 0, 0, 1, 0]
    assert len(buffer) == 5 and buffer.pos == 2


def test_batch_add_wraps_around_the_end() -> None:
    buffer = ReplayBuffer(capacity=4, obs_shape=(1,))
    fill(buffer, [0, 1, 2])
    buffer.add([[10], [11], [12]], [0, 1, 0], [10, 11, 12], [[0], [0], [0]], [1, 0, 1])
    assert buffer.obs[:, 0].tolist() == [11, 12, 2, 10]
    assert buffer.terminated.tolist() == [0, 1, 0, 1]
    assert len(buffer) == 4 and buffer.pos == 2  # (3 + 3) % 4


def test_sample_draws_distinct_stored_transitions_only() -> None:
    buffer = ReplayBuffer(capacity=100, obs_shape=(1,), seed=0)
    fill(buffer, list(range(10)))  # only slots 0..9 hold data
    for _ in range(50):
        batch = buffer.sample(10)
        values = batch.obs[:, 0].tolist()
        assert sorted(values) == list(range(10))  # 10 of 10 without repeats: all of them
        assert torch.equal(batch.next_obs[:, 0], batch.obs[:, 0] + 0.5)  # fields stay aligned
        assert torch.equal(batch.reward, batch.obs[:, 0])
    assert batch.obs.dtype == torch.float32 and batch.action.dtype == torch.int64


def test_sample_is_uniform() -> None:
    buffer = ReplayBuffer(capacity=8, obs_shape=(1,), seed=1)
    fill(buffer, list(range(8)))
    counts = np.bincount(np.concatenate([buffer.sample(2).obs[:, 0].int().numpy() for _ in range(4000)]), minlength=8)
    assert counts.sum() == 8000
    assert np.all(np.abs(counts - 1000) < 120), counts  # ~4 standard deviations


def test_stacked_batches_are_distinct_within_each() -> None:
    buffer = ReplayBuffer(capacity=50, obs_shape=(1,), seed=0)
    fill(buffer, list(range(20)))
    batch = buffer.sample(20, num_batches=3)
    assert batch.obs.shape == (3, 20, 1) and batch.action.shape == (3, 20)
    for k in range(3):
        assert sorted(batch.obs[k, :, 0].tolist()) == list(range(20))


def test_sample_more_than_stored_is_a_clear_error() -> None:
    buffer = ReplayBuffer(capacity=50, obs_shape=(1,))
    fill(buffer, [1, 2])
    with pytest.raises(ValueError, match="holding 2"):
        buffer.sample(3)


def test_seeded_sampler_repeats() -> None:
    a, b = ReplayBuffer(30, (1,), seed=7), ReplayBuffer(30, (1,), seed=7)
    fill(a, list(range(30)))
    fill(b, list(range(30)))
    assert torch.equal(a.sample(8).obs, b.sample(8).obs)


def test_next_state_masks_are_kept_per_slot_and_follow_the_n_step_window(tmp_path: Path) -> None:
    buffer = ReplayBuffer(8, (1,), seed=0, n_step=2, gamma=0.5, action_masks=3)
    masks = [[True, False, True], [False, True, False], [True, True, False]]
    for t, mask in enumerate(masks):  # one episode: steps 0, 1, 2 (the last terminates)
        buffer.add([[t]], [0], [1.0], [[t + 1]], [t == 2], [False], next_mask=[mask])
    batch = buffer.gather(np.array([0, 2]))
    # slot 0's 2-step window ends at step 1: step 1's next-state mask; slot 2 ends at once (terminated)
    assert batch.next_mask is not None and batch.next_mask.tolist() == [masks[1], masks[2]]
    buffer.save(tmp_path / "replay.npz")
    again = ReplayBuffer(8, (1,), seed=0, n_step=2, gamma=0.5, action_masks=3)
    again.load(tmp_path / "replay.npz")
    assert np.array_equal(again.next_mask[:3], np.array(masks))  # type: ignore[index]
    with pytest.raises(ValueError, match="pass next_mask"):
        buffer.add([[9]], [0], [0.0], [[9]], [False])
    with pytest.raises(ValueError, match="keeps no action masks"):
        ReplayBuffer(8, (1,)).add([[9]], [0], [0.0], [[9]], [False], next_mask=[[True]])
