"""FrameStore keeps each frame once; every transition it gives back must equal what was added."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_lightning import PrioritizedReplayBuffer, ReplayBuffer

K = 3  # frames per stack in these tests


def episode_stream(rng: np.random.Generator, lengths: list[int], start_label: int) -> list[tuple]:
    """Frame-stacked transitions of consecutive episodes, frames labelled by distinct integers.

    Each episode starts from its own stack of K new frames (not a repeated frame, so a mix-up
    between the start stack and the ring shows), then every step pushes one new frame.
    """
    label = start_label
    out = []
    for length in lengths:
        stack = list(range(label, label + K))
        label += K
        for t in range(length):
            nxt = [*stack[1:], label]
            label += 1
            truncated = t == length - 1 and rng.random() < 0.5
            terminated = t == length - 1 and not truncated
            out.append((np.array(stack), np.array(nxt), terminated, truncated))
            stack = nxt
    return out


def as_frames(labels: np.ndarray) -> np.ndarray:
    """Labels `(..., K)` -> uint8 'frames' `(..., K, 2, 2)` that encode the label in their pixels."""
    labels = np.asarray(labels)
    return (
        np.stack([labels % 256, labels // 256, (labels * 7) % 256, np.full_like(labels, 9)], axis=-1)
        .reshape(*labels.shape, 2, 2)
        .astype(np.uint8)
    )


def fill_both(capacity: int, num_envs: int, seed: int = 0, **kwargs) -> tuple[ReplayBuffer, ReplayBuffer]:
    """The same two-env stream into a pair buffer (the reference) and a frame buffer."""
    rng = np.random.default_rng(seed)
    streams = [
        episode_stream(rng, list(rng.integers(1, 9, size=12)), start_label=10_000 * (e + 1)) for e in range(num_envs)
    ]
    steps = min(len(s) for s in streams)
    pairs = ReplayBuffer(capacity, (K, 2, 2), np.uint8, seed=1, num_envs=num_envs, **kwargs)
    frames = ReplayBuffer(capacity, (K, 2, 2), np.uint8, seed=1, num_envs=num_envs, store_frames=True, **kwargs)
    for t in range(steps):
        obs = as_frames(np.stack([s[t][0] for s in streams]))
        nxt = as_frames(np.stack([s[t][1] for s in streams]))
        action = rng.integers(4, size=num_envs)
        reward = rng.normal(size=num_envs).astype(np.float32)
        term = np.array([s[t][2] for s in streams], dtype=np.float32)
        trunc = np.array([s[t][3] for s in streams])
        for buffer in (pairs, frames):
            buffer.add(obs, action, reward, nxt, term, trunc)
    return pairs, frames


@pytest.mark.parametrize("num_envs", [1, 2])
@pytest.mark.parametrize("n_step", [1, 3])
def test_frames_rebuild_every_sampleable_transition_exactly(num_envs: int, n_step: int) -> None:
    pairs, frames = fill_both(capacity=37, num_envs=num_envs, n_step=n_step, gamma=0.9)
    assert len(frames) == 37  # wrapped round the ring several times
    count, first = frames._sampleable()
    assert count == 37 - K * num_envs  # the K steps per env whose history was overwritten
    slots = (first + np.arange(count)) % 37
    want, got = pairs.gather(slots), frames.gather(slots)
    for name in ("obs", "next_obs", "action", "reward", "terminated", "steps"):
        a, b = getattr(want, name), getattr(got, name)
        assert (a is None and b is None) or bool((a == b).all()), name


def test_sampling_never_draws_the_slots_with_broken_history() -> None:
    _, frames = fill_both(capacity=37, num_envs=2)
    oldest = {(frames.pos + i) % 37 for i in range(K * 2)}
    drawn: set[int] = set()
    gather = frames.gather
    frames.gather = lambda idx, pin=False: (drawn.update(int(i) for i in np.ravel(idx)), gather(idx, pin))[1]  # type: ignore[method-assign]
    for _ in range(100):
        frames.sample(8, num_batches=2)
    assert len(drawn) == 37 - len(oldest)  # every other slot, but none of the oldest
    assert not drawn & oldest


def test_a_step_that_does_not_continue_its_stream_is_stored_as_a_new_start() -> None:
    # as after a resume whose env came back in another state: obs is not the last next_obs
    buffer = ReplayBuffer(20, (K, 2, 2), np.uint8, store_frames=True)
    buffer.add(as_frames([[1, 2, 3]]), [0], [0.0], as_frames([[2, 3, 4]]), [0.0])
    buffer.add(as_frames([[7, 8, 9]]), [1], [1.0], as_frames([[8, 9, 10]]), [0.0])
    buffer.add(as_frames([[8, 9, 10]]), [0], [2.0], as_frames([[9, 10, 11]]), [0.0])
    batch = buffer.gather(np.arange(3))
    assert (batch.obs.numpy() == as_frames([[1, 2, 3], [7, 8, 9], [8, 9, 10]])).all()
    assert (batch.next_obs.numpy() == as_frames([[2, 3, 4], [8, 9, 10], [9, 10, 11]])).all()
    assert sorted(buffer.store.starts) == [0, 1]


def test_observations_that_are_not_frame_stacks_are_refused() -> None:
    buffer = ReplayBuffer(20, (K, 2, 2), np.uint8, store_frames=True)
    with pytest.raises(ValueError, match="not frame stacks"):
        buffer.add(as_frames([[1, 2, 3]]), [0], [0.0], as_frames([[5, 6, 7]]), [0.0])


def test_saved_frame_buffer_loads_back_identically(tmp_path) -> None:
    _, frames = fill_both(capacity=37, num_envs=2, n_step=2)
    frames.save(tmp_path / "replay.npz")
    fresh = ReplayBuffer(37, (K, 2, 2), np.uint8, num_envs=2, n_step=2, store_frames=True)
    fresh.load(tmp_path / "replay.npz")
    fresh.load_state_dict(frames.state_dict())
    count, first = frames._sampleable()
    slots = (first + np.arange(count)) % 37
    a, b = frames.gather(slots), fresh.gather(slots)
    assert (a.obs == b.obs).all() and (a.next_obs == b.next_obs).all() and (a.reward == b.reward).all()


def test_prioritized_frame_buffer_gives_the_broken_slots_no_priority() -> None:
    _, reference = fill_both(capacity=37, num_envs=2)
    rng = np.random.default_rng(0)
    per = PrioritizedReplayBuffer(37, (K, 2, 2), np.uint8, seed=0, num_envs=2, store_frames=True)
    streams = [episode_stream(rng, [9, 9, 9, 9], 10_000 * (e + 1)) for e in range(2)]
    for t in range(30):
        per.add(
            as_frames(np.stack([s[t][0] for s in streams])),
            [0, 1],
            [0.0, 0.0],
            as_frames(np.stack([s[t][1] for s in streams])),
            [float(s[t][2]) for s in streams],
            [s[t][3] for s in streams],
        )
    oldest = (per.pos + np.arange(K * 2)) % 37
    assert (per.tree.get(oldest) == 0).all()
    drawn = per.sample(16, num_batches=50).slot.numpy().ravel()
    assert not np.isin(drawn, oldest).any()
    assert reference.store.excluded == K * 2


def test_a_100k_atari_buffer_fits_in_one_gib() -> None:
    buffer = ReplayBuffer(100_000, (4, 84, 84), np.uint8, store_frames=True)
    pairs_bytes = 2 * 100_000 * 4 * 84 * 84
    assert buffer.nbytes < 2**30 < pairs_bytes  # 0.71 GB instead of 5.6 GB


def test_a_one_step_frame_batch_holds_each_frame_once_and_moves_it_once() -> None:
    rng = np.random.default_rng(0)
    pairs = ReplayBuffer(64, (K, 2, 2), np.uint8)
    frames = ReplayBuffer(64, (K, 2, 2), np.uint8, store_frames=True)
    for obs, nxt, terminated, truncated in episode_stream(rng, [5, 9, 4], 1):
        for buffer in (pairs, frames):
            buffer.add(as_frames(obs)[None], [0], [1.0], as_frames(nxt)[None], [terminated], [truncated])
    slots = np.array([[0, 4, 5], [9, 13, 17]])  # episode starts, their last steps, and steps between
    batch, want = frames.gather(slots), pairs.gather(slots)
    assert batch.frames is not None and batch.frames.shape == (2, 3, K + 1, 2, 2)
    assert np.array_equal(batch.obs, want.obs) and np.array_equal(batch.next_obs, want.next_obs)
    # moved: one copy of the K + 1 frames, obs and next_obs its views again
    moved = batch.to_device(torch.device("meta"))
    assert moved.obs._base is moved.frames and moved.next_obs._base is moved.frames
    assert moved.obs.shape == moved.next_obs.shape == (2, 3, K, 2, 2) and moved.action.device.type == "meta"
    assert pairs.gather(slots).frames is None  # pairs move as they are
