"""Replay memory: a fixed-capacity ring of transitions in preallocated NumPy arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike, DTypeLike
from torch import Tensor


class ReplayBatch(NamedTuple):
    """A batch of transitions as CPU tensors; Lightning moves it to the module's device.

    Shapes below are for one batch; `ReplayDataset` may stack several along a leading axis.
    """

    obs: Tensor  # (batch, *obs_shape), dtype of the observation space
    action: Tensor  # (batch,) int64
    reward: Tensor  # (batch,) float32
    next_obs: Tensor  # (batch, *obs_shape)
    terminated: Tensor  # (batch,) float32, 1.0 where the episode really ended (not a time-limit cut)


class ReplayBuffer:
    """Ring buffer of transitions, written by the env loop and read by the dataset.

    Only `terminated` is stored: a time-limit truncation is not a terminal state, so its
    transition keeps bootstrapping from `next_obs` (see `td.td_target`).

    Args:
        capacity: maximum number of transitions; the oldest are overwritten first.
        obs_shape: shape of one observation.
        obs_dtype: dtype of observations as the env returns them (float32 for CartPole).
        seed: seed of the sampler's own random generator (reproducible batches).
    """

    def __init__(
        self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: DTypeLike = np.float32, seed: int | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0  # next slot to write
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(
        self, obs: ArrayLike, action: ArrayLike, reward: ArrayLike, next_obs: ArrayLike, terminated: ArrayLike
    ) -> None:
        """Copies in `n` transitions given as arrays with a leading axis of length `n`."""
        action = np.asarray(action)
        n = action.shape[0]
        idx = (
            (self.pos + np.arange(n)) % self.capacity if self.pos + n > self.capacity else slice(self.pos, self.pos + n)
        )
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.action[idx] = action
        self.reward[idx] = reward
        self.terminated[idx] = terminated
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, num_batches: int | None = None) -> ReplayBatch:
        """Draws `batch_size` distinct stored transitions uniformly at random.

        With `num_batches`, draws that many independent batches at once, stacked on a leading
        axis: tensors are `(num_batches, batch_size, ...)`. Transitions are distinct within a
        batch, not across batches.
        """
        if batch_size > self.size:
            raise ValueError(
                f"cannot sample {batch_size} distinct transitions from a replay buffer holding {self.size}: "
                "fill it first (EnvLoop's learning_starts) or ask for a smaller batch"
            )
        if num_batches is None:
            idx = self.rng.choice(self.size, size=batch_size, replace=False)
        else:
            idx = np.stack([self.rng.choice(self.size, size=batch_size, replace=False) for _ in range(num_batches)])
        return ReplayBatch(
            obs=torch.from_numpy(self.obs[idx]),
            action=torch.from_numpy(self.action[idx]),
            reward=torch.from_numpy(self.reward[idx]),
            next_obs=torch.from_numpy(self.next_obs[idx]),
            terminated=torch.from_numpy(self.terminated[idx]),
        )

    def state_dict(self) -> dict[str, Any]:
        """Ring position and sampler RNG state (not the arrays: those are large and saved separately)."""
        return {"pos": self.pos, "size": self.size, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos, self.size = int(state["pos"]), int(state["size"])
        self.rng.bit_generator.state = state["rng"]

    @property
    def nbytes(self) -> int:
        """Memory held by the preallocated arrays, in bytes."""
        return sum(a.nbytes for a in (self.obs, self.next_obs, self.action, self.reward, self.terminated))

    def save(self, path: str | Path) -> None:
        """Writes the stored transitions to an `.npz` file, atomically (temp file, then rename).

        Plain arrays only (loadable with `allow_pickle=False`), so a crash mid-save leaves the
        previous file intact and loading the file can never run code.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        n = self.size
        with open(tmp, "wb") as f:
            np.savez(
                f,
                obs=self.obs[:n],
                next_obs=self.next_obs[:n],
                action=self.action[:n],
                reward=self.reward[:n],
                terminated=self.terminated[:n],
                pos=np.int64(self.pos),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        """Reads transitions written by `save` into this buffer (same capacity and observation shape)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in ("obs", "next_obs", "action", "reward", "terminated", "pos")}
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path} is not a readable replay buffer file ({err})") from None
        n = arrays["obs"].shape[0]
        if n > self.capacity or arrays["obs"].shape[1:] != self.obs.shape[1:]:
            raise ValueError(
                f"{path} holds {n} observations of shape {arrays['obs'].shape[1:]}; this buffer takes "
                f"{self.capacity} of shape {self.obs.shape[1:]}"
            )
        for key in ("obs", "next_obs", "action", "reward", "terminated"):
            getattr(self, key)[:n] = arrays[key]
        self.size, self.pos = n, int(arrays["pos"])
