"""Sequence replay against hand-worked episodes: windows never mix two episodes, padding, the stored
state and previous step, complete sequences only, prioritized sequence starts, and replay files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.prioritized import PrioritizedReplayBuffer
from dqn_lightning.replay.sequences import Sequences

# one env: episode A is steps 0..4 (terminated at its 5th step), episode B steps 5..8 (cut by a time
# limit at its 4th), then C begins at step 9 and is still going at step 11. obs of step i is [i];
# action i % 2; reward 10 + i; the acting state of step i is [i, -i].
ENDS = {4: "terminated", 8: "truncated"}


def fill(buffer: ReplayBuffer, steps: int = 12) -> None:
    for i in range(steps):
        buffer.add(
            obs=[[float(i)]], action=[i % 2], reward=[10.0 + i], next_obs=[[i + 0.5]],
            terminated=[ENDS.get(i) == "terminated"], truncated=[ENDS.get(i) == "truncated"],
            state=[[float(i), -float(i)]],
        )  # fmt: skip


def sequence_buffer(length: int = 4, overlap: int = 2, capacity: int = 50, **kwargs: object) -> ReplayBuffer:
    return ReplayBuffer(capacity, (1,), sequences=Sequences(length, overlap, 2, capacity), **kwargs)  # type: ignore[arg-type]


def test_starts_are_every_period_of_each_episode_and_drawn_only_once_complete() -> None:
    buffer = sequence_buffer()  # length 4, overlap 2: a start every 2 steps of an episode
    fill(buffer)
    # A: starts at its steps 0, 2, 4 (slots 0, 2, 4); B: 0, 2 (slots 5, 7); C: slots 9 and 11.
    # C's start at slot 9 needs steps 9..12 (step 12 not stored yet); slot 11 too: neither is drawn
    assert sorted(buffer.sequences.start_slots(buffer).tolist()) == [0, 2, 4, 5, 7]  # type: ignore[union-attr]
    assert buffer.sequences.episode_step[:12].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2]  # type: ignore[union-attr]


def test_a_window_stops_at_its_episode_end_and_holds_the_last_next_observation() -> None:
    buffer = sequence_buffer()
    fill(buffer)
    batch = buffer.gather(np.array([2, 4, 7]))
    # from slot 2: steps 2, 3, 4 of A, then padding; obs 2, 3, 4, then step 4's next obs 4.5, then 0
    assert batch.valid.tolist() == [[True, True, True, False], [True, False, False, False], [True, True, False, False]]
    assert batch.obs[0, :, 0].tolist() == [2.0, 3.0, 4.0, 4.5, 0.0]
    assert batch.obs[1, :, 0].tolist() == [4.0, 4.5, 0.0, 0.0, 0.0]
    assert batch.obs[2, :, 0].tolist() == [7.0, 8.0, 8.5, 0.0, 0.0]  # B's time-limit cut: its last next obs
    assert batch.action.tolist() == [[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert batch.reward.tolist() == [[12.0, 13.0, 14.0, 0.0], [14.0, 0.0, 0.0, 0.0], [17.0, 18.0, 0.0, 0.0]]
    assert batch.terminated.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]  # a cut is not terminal


def test_the_stored_state_and_previous_step_are_those_of_the_first_step() -> None:
    buffer = sequence_buffer()
    fill(buffer)
    batch = buffer.gather(np.array([2, 5, 7]))
    assert batch.state.tolist() == [[2.0, -2.0], [5.0, -5.0], [7.0, -7.0]]
    # before slot 2: step 1 (action 1, reward 11); slot 5 starts B: none (-1, 0); before 7: step 6
    assert batch.prev_action.tolist() == [1, -1, 0]
    assert batch.prev_reward.tolist() == [11.0, 0.0, 16.0]


def test_two_envs_interleaved_give_each_env_its_own_steps() -> None:
    buffer = ReplayBuffer(40, (1,), num_envs=2, sequences=Sequences(3, 1, 1, 40))
    for t in range(6):  # env 0 observes t, env 1 observes 100 + t; env 1's episode ends at t = 1
        buffer.add(
            obs=[[t], [100 + t]], action=[0, 1], reward=[t, 100 + t], next_obs=[[t + 0.5], [100.5 + t]],
            terminated=[False, t == 1], state=[[t], [100 + t]],
        )  # fmt: skip
    batch = buffer.gather(np.array([0, 1, 5]))  # env 0 from t 0; env 1 from t 0; env 1's next episode (t 2)
    assert batch.obs[0, :, 0].tolist() == [0.0, 1.0, 2.0, 2.5]
    assert batch.obs[1, :, 0].tolist() == [100.0, 101.0, 101.5, 0.0]
    assert batch.obs[2, :, 0].tolist() == [102.0, 103.0, 104.0, 104.5]
    assert batch.state[:, 0].tolist() == [0.0, 100.0, 102.0]


def test_uniform_sampling_draws_stacked_complete_sequences() -> None:
    buffer = sequence_buffer(seed=0)
    fill(buffer)
    batch = buffer.sample(3, num_batches=2)
    assert tuple(batch.obs.shape) == (2, 3, 5, 1) and tuple(batch.valid.shape) == (2, 3, 4)
    assert set(batch.state[..., 0].flatten().tolist()) <= {0.0, 2.0, 4.0, 5.0, 7.0}
    with pytest.raises(ValueError, match="6 distinct sequence starts"):
        buffer.sample(6)


def test_prioritized_sequences_draw_complete_starts_only_and_take_their_priorities() -> None:
    buffer = PrioritizedReplayBuffer(50, (1,), seed=0, alpha=1.0, sequences=Sequences(4, 2, 2, 50))
    fill(buffer)
    leaves = buffer.tree.get(np.arange(12))
    assert np.flatnonzero(leaves).tolist() == [0, 2, 4, 5, 7]  # the complete starts, at the max priority
    batch = buffer.sample(64)
    assert set(batch.slot.tolist()) <= {0, 2, 4, 5, 7} and batch.weight is not None
    buffer.update_priorities(np.array([2, 5]), np.array([3.0, 0.5]))  # a sequence's eta-mixed TD error
    assert buffer.tree.get(np.array([2, 5])) == pytest.approx([3.0 + 1e-6, 0.5 + 1e-6])
    # the step that completes C's first window (step 12) makes slot 9 drawable
    buffer.add(obs=[[12.0]], action=[0], reward=[22.0], next_obs=[[12.5]], terminated=[False], state=[[12.0, -12.0]])
    assert buffer.tree.get(np.array([9]))[0] == pytest.approx(3.0 + 1e-6)  # the largest priority so far


def test_sequence_arrays_survive_a_replay_file(tmp_path: Path) -> None:
    buffer = sequence_buffer()
    fill(buffer)
    buffer.save(tmp_path / "replay.npz")
    other = sequence_buffer()
    other.load(tmp_path / "replay.npz")
    for name in ("obs", "valid", "state", "prev_action", "prev_reward"):
        assert torch.equal(
            getattr(other.gather(np.array([2, 7])), name), getattr(buffer.gather(np.array([2, 7])), name)
        )
    assert other.sequences.start_slots(other).tolist() == buffer.sequences.start_slots(buffer).tolist()  # type: ignore[union-attr]


def test_impossible_sequence_settings_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="overlap < length"):
        Sequences(4, 4, 2, 10)
    with pytest.raises(ConfigError, match="n_step at 1"):
        ReplayBuffer(50, (1,), n_step=3, sequences=Sequences(4, 2, 2, 50))
    with pytest.raises(ValueError, match="pass state="):
        sequence_buffer().add(obs=[[0.0]], action=[0], reward=[0.0], next_obs=[[0.0]], terminated=[False])


@pytest.mark.parametrize("num_envs", [1, 2])
def test_frame_storage_gives_the_same_sequences_as_whole_stacks(num_envs: int) -> None:
    from tests.replay.test_frame_store import K, as_frames, episode_stream

    rng = np.random.default_rng(0)
    streams = [episode_stream(rng, list(rng.integers(1, 9, size=12)), 10_000 * (e + 1)) for e in range(num_envs)]
    made = [
        ReplayBuffer(37, (K, 2, 2), np.uint8, num_envs=num_envs, store_frames=frames, sequences=Sequences(5, 2, 1, 37))
        for frames in (False, True)
    ]
    for t in range(min(len(s) for s in streams)):
        step = [s[t] for s in streams]
        for buffer in made:
            buffer.add(as_frames(np.stack([s[0] for s in step])), np.zeros(num_envs, dtype=np.int64),
                       np.full(num_envs, float(t)), as_frames(np.stack([s[1] for s in step])),
                       [s[2] for s in step], [s[3] for s in step], state=np.full((num_envs, 1), float(t)))  # fmt: skip
    pairs, frames = made
    starts = frames.sequences.start_slots(frames)  # type: ignore[union-attr]
    assert len(frames) == 37 and len(starts) > 5  # wrapped round the ring
    want, got = pairs.gather(starts), frames.gather(starts)
    for name in ("obs", "valid", "reward", "terminated", "state", "prev_reward"):
        assert torch.equal(getattr(want, name), getattr(got, name)), name
