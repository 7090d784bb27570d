"""Sequence replay for recurrent learners (R2D2): fixed-length windows of one env's steps that never
cross an episode's end, each with the recurrent state acting had at its first step."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.batch import unstacked

if TYPE_CHECKING:
    from dqn_lightning.replay.buffer import ReplayBuffer


class SequenceBatch(NamedTuple):
    """Sequences as CPU tensors; `ReplayDataset` may stack several batches on a leading axis.

    Step t of a row is a transition `(obs[t], action[t], reward[t], obs[t + 1])` when `valid[t]`;
    the steps after an episode's end (or after the newest stored step) are padding: `valid`
    False and zero observations, except `obs[last + 1]`, the last step's next observation.
    """

    obs: Tensor  # (batch, length + 1, *obs_shape)
    action: Tensor  # (batch, length) int64
    reward: Tensor  # (batch, length) float32, 1-step rewards
    terminated: Tensor  # (batch, length) float32, 1.0 at a step that really ended the episode
    valid: Tensor  # (batch, length) bool
    state: Tensor  # (batch, state_size) float32: the acting state before obs[0]
    prev_action: Tensor  # (batch,) int64: the action before obs[0], -1 at an episode's start
    prev_reward: Tensor  # (batch,) float32: the reward before obs[0], 0 at an episode's start
    weight: Tensor | None = None  # (batch,) importance weights (prioritized replay)
    slot: Tensor | None = None  # (batch,) int64 buffer slots of the first steps (prioritized replay)

    def minibatches(self) -> list[SequenceBatch]:
        """The minibatches of a stacked batch `(k, batch, ...)` as k batches of views `(batch, ...)`."""
        return unstacked(self)

    def to_device(self, device: torch.device) -> SequenceBatch:
        """The batch on `device`."""
        device = torch.device(device)
        if device.type == "cpu":
            return self
        non_blocking = device.type == "cuda"
        return SequenceBatch._make(
            [value.to(device, non_blocking=non_blocking) if value is not None else None for value in self]
        )


class Sequences:
    """What a `ReplayBuffer` keeps for sequence sampling, slot by slot, and how it draws sequences.

    Each slot keeps the acting state before its step, and the step's place in its episode. A
    sequence starts at an episode's first step and every `length - overlap` steps after it
    (R2D2: length 80, overlap 40), so consecutive sequences of an episode share `overlap` steps.
    A sequence is drawn only once it is complete: all its steps stored, or its episode ended
    within it (R2D2 adds a sequence to replay when it is whole): drawn earlier, its missing steps
    would give it no loss and a stale low priority. The previous action and reward are read from
    the env's previous slot.

    Args:
        length: steps per sequence (burn-in included).
        overlap: steps a sequence shares with the next one of its episode (`0 <= overlap < length`).
        state_size: floats per recurrent state (an LSTM of 128 units: 256).
        capacity: the buffer's slots.
    """

    def __init__(self, length: int, overlap: int, state_size: int, capacity: int) -> None:
        if length < 1 or not 0 <= overlap < length:
            raise ConfigError(
                f"sequences need length >= 1 and 0 <= overlap < length, got length {length}, overlap {overlap}"
            )
        if state_size < 1:
            raise ConfigError(f"sequences need a recurrent state of at least 1 float, got {state_size}")
        self.length, self.overlap, self.period = length, overlap, length - overlap
        self.state = np.zeros((capacity, state_size), dtype=np.float32)
        self.episode_step = np.zeros(capacity, dtype=np.int64)  # the step's index in its episode
        self.complete = np.zeros(capacity, dtype=bool)  # a sequence starts here and has all its steps
        self.completed_now = np.zeros(0, dtype=np.int64)  # the starts the last write completed

    def write(self, buffer: ReplayBuffer, state: ArrayLike | None, ended: np.ndarray) -> None:
        """Keeps the acting states `(n, state_size)` of the steps the buffer is adding (before it moves
        on: one step per env), their places in their episodes, and which
        sequence starts they complete (`completed_now`); `ended` `(n,)`: the steps that end an episode."""
        if state is None:
            raise ValueError("a sequence buffer keeps each step's recurrent state: pass state=")
        n, capacity = buffer.num_envs, buffer.capacity
        slots = (buffer.pos + np.arange(n)) % capacity
        prev = (slots - n) % capacity  # each env's previous step
        continues = ~buffer.episode_end[prev] if buffer.size >= n else np.zeros(n, dtype=bool)
        step = np.where(continues, self.episode_step[prev] + 1, 0)
        self.episode_step[slots] = step
        self.state[slots] = np.asarray(state, dtype=np.float32)
        self.complete[slots] = False
        done: list[np.ndarray] = []
        first = step - (self.length - 1)  # a window ending at this step is whole
        whole = (first >= 0) & (first % self.period == 0)
        done.append((slots[whole] - (self.length - 1) * n) % capacity)
        for i in np.flatnonzero(ended).tolist():  # the episode's open windows end here
            lowest = max(0, int(step[i]) - self.length + 2)
            starts = np.arange(-(-lowest // self.period) * self.period, int(step[i]) + 1, self.period)
            done.append((slots[i] - (step[i] - starts) * n) % capacity)
        self.completed_now = np.concatenate(done).astype(np.int64)
        self.complete[self.completed_now] = True

    def start_slots(self, buffer: ReplayBuffer) -> np.ndarray:
        """The slots a sequence may begin at: stored, sampleable, and a complete sequence's start."""
        slots = np.flatnonzero(self.complete[: buffer.size])  # a write clears the flag of the slot it reuses
        if buffer.size == buffer.capacity:
            age = (slots - buffer.pos) % buffer.capacity  # 0: the oldest slot
            # the oldest frames' stacks are broken (FrameStore); the oldest steps' previous steps are
            # overwritten, so only an episode's first step may start there (its previous step is not read)
            keep = (age >= buffer.store.excluded) & ((age >= buffer.num_envs) | (self.episode_step[slots] == 0))
            slots = slots[keep]
        return slots

    def gather(self, buffer: ReplayBuffer, idx: np.ndarray) -> SequenceBatch:
        """The sequences starting at slots `idx` (any shape), as a batch of that shape."""
        n, capacity, rows = buffer.num_envs, buffer.capacity, idx.reshape(-1)
        offsets = np.arange(self.length) * n
        window = (rows[:, None] + offsets) % capacity  # (rows, length): one env's consecutive steps
        stored = ((buffer.pos - 1 - rows) % capacity)[:, None] >= offsets  # written yet (the ring's newest last)
        ends = buffer.episode_end[window]
        ended_before = np.cumsum(ends, axis=1) - ends > 0  # an earlier step of the window ended the episode
        valid = stored & ~ended_before
        valid[:, 0] = True
        last = valid.sum(axis=1) - 1  # the last real step of each window
        every = np.arange(len(rows))
        obs = np.zeros((len(rows), self.length + 1, *buffer.obs_shape), dtype=buffer.obs_dtype)
        obs[:, : self.length][valid] = buffer.store.get_obs(window[valid])
        obs[every, last + 1] = buffer.store.get_next_obs(window[every, last])  # the last step's next observation
        first_step = self.episode_step[rows] == 0
        prev = (rows - n) % capacity
        shape = idx.shape
        return SequenceBatch(
            obs=torch.from_numpy(obs.reshape(*shape, *obs.shape[1:])),
            action=torch.from_numpy(np.where(valid, buffer.action[window], 0).reshape(*shape, -1)),
            reward=_floats(np.where(valid, buffer.reward[window], 0.0), shape),
            terminated=_floats(np.where(valid, buffer.terminated[window], 0.0), shape),
            valid=torch.from_numpy(valid.reshape(*shape, -1)),
            state=torch.from_numpy(self.state[rows].reshape(*shape, -1)),
            prev_action=torch.from_numpy(np.where(first_step, -1, buffer.action[prev]).reshape(shape)),
            prev_reward=_floats(np.where(first_step, 0.0, buffer.reward[prev]), shape),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-slot arrays, by name, saved with the buffer's."""
        return {"sequence_state": self.state, "episode_step": self.episode_step, "sequence_complete": self.complete}


def _floats(values: np.ndarray, shape: tuple[int, ...]) -> Tensor:
    """`values` as a float32 tensor with the leading `shape` (and its own last axis, if any)."""
    values = values.astype(np.float32)
    return torch.from_numpy(values.reshape(*shape, *values.shape[1:]))
