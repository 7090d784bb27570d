"""Replay memory: a fixed-capacity ring of transitions in preallocated NumPy arrays, with n-step returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, DTypeLike
from torch import Tensor

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.buffer_state import BufferState
from dqn_lightning.replay.obs_store import FrameStore, PairStore
from dqn_lightning.replay.sequences import SequenceBatch, Sequences


class ReplayBuffer(BufferState):
    """Ring buffer of transitions, written by the env loop and read by the dataset.

    `terminated` cuts the bootstrap; a time-limit truncation is not a terminal state, so its
    transition keeps bootstrapping from `next_obs` (see `td.td_target`). Both end an episode,
    which is where an n-step return stops summing rewards.

    n-step returns are computed when sampling, from the 1-step transitions stored: for a
    transition at time t the batch holds `r_t + gamma r_{t+1} + ... + gamma^(k-1) r_{t+k-1}`,
    the `next_obs` and `terminated` of step t+k-1, and `steps = k`, where k = n, or less when
    the episode ended (terminated or truncated) or the newest stored step came first. Nothing is
    held back outside the buffer, so a saved buffer resumes exactly.

    `add` takes one transition per env of a vector env, always in env order, so the next step
    of the same env sits `num_envs` slots later in the ring.

    Args:
        capacity: maximum number of transitions; the oldest are overwritten first.
        obs_shape: shape of one observation.
        obs_dtype: dtype of observations as the env returns them (float32 for CartPole).
        seed: seed of the sampler's own random generator (reproducible batches).
        n_step: rewards summed per sampled transition (1: plain 1-step Q-learning).
        gamma: discount inside the n-step sum (the learner's gamma); unused when n_step is 1.
        num_envs: transitions per `add` call (envs of the vector env); used by n-step sampling.
        store_frames: keep each frame of frame-stacked image observations `(K, H, W)` once
            (`FrameStore`: Atari) instead of whole `obs` and `next_obs` stacks (`PairStore`).
        action_masks: the action count, to keep each `next_obs`'s legal actions (`add(...,
            next_mask=)`), which the bootstrap max is limited to; None: no masks.
        sequences: sample sequences of each env's steps for a recurrent learner (`Sequences`: their
            length and overlap, and the acting state kept with each step, `add(..., state=)`);
            `sample` then returns a `SequenceBatch`, and `n_step` must be 1 (the learner sums
            rewards inside each sequence). None: single transitions.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: DTypeLike = np.float32,
        seed: int | None = None,
        *,
        n_step: int = 1,
        gamma: float = 0.99,
        num_envs: int = 1,
        store_frames: bool = False,
        action_masks: int | None = None,
        sequences: Sequences | None = None,
    ) -> None:
        check_bounds(buffer_size=capacity, n_step=n_step, num_envs=num_envs, gamma=gamma)
        if sequences is not None and capacity < sequences.length * num_envs:
            raise ConfigError(
                f"capacity {capacity} cannot hold a sequence of {sequences.length} steps of {num_envs} envs"
            )
        if sequences is not None and (n_step > 1 or action_masks is not None):
            raise ConfigError(
                "a sequence buffer keeps 1-step transitions without action masks: the recurrent learner sums "
                "n-step returns itself (leave the buffer's n_step at 1 and action masks off)"
            )
        if n_step > 1 and capacity < n_step * num_envs:
            raise ConfigError(f"capacity {capacity} cannot hold {n_step} steps of {num_envs} envs: raise it")
        self.capacity = capacity
        self.n_step, self.gamma, self.num_envs = n_step, gamma, num_envs
        self.obs_shape, self.obs_dtype = tuple(obs_shape), np.dtype(obs_dtype)
        self.store: PairStore | FrameStore = (
            FrameStore(capacity, self.obs_shape, obs_dtype, num_envs)
            if store_frames
            else PairStore(capacity, self.obs_shape, obs_dtype)
        )
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.episode_end = np.zeros(capacity, dtype=bool)  # terminated or truncated
        self.next_mask = np.ones((capacity, action_masks), dtype=bool) if action_masks is not None else None
        self.pos = 0  # next slot to write
        self.size = 0
        self.rng = np.random.default_rng(seed)
        self.sequences = sequences

    def __len__(self) -> int:
        return self.size

    @property
    def obs(self) -> np.ndarray:
        """Stored observations `(capacity, *obs_shape)`, slot by slot (pair storage only)."""
        return self._pairs().obs

    @property
    def next_obs(self) -> np.ndarray:
        """Stored next observations `(capacity, *obs_shape)` (pair storage only)."""
        return self._pairs().next_obs

    @property
    def env_ordered(self) -> bool:
        """Whether each `add` must hold one transition per env in env order: n-step windows and
        frame stacks find an env's neighbouring steps `num_envs` slots away."""
        return self.n_step > 1 or isinstance(self.store, FrameStore) or self.sequences is not None

    def _pairs(self) -> PairStore:
        if not isinstance(self.store, PairStore):
            raise AttributeError("this buffer keeps frames, not obs arrays: read transitions with gather(slots)")
        return self.store

    def add(
        self,
        obs: ArrayLike,
        action: ArrayLike,
        reward: ArrayLike,
        next_obs: ArrayLike,
        terminated: ArrayLike,
        truncated: ArrayLike | None = None,
        next_mask: ArrayLike | None = None,
        state: ArrayLike | None = None,
    ) -> None:
        """Copies in `n` transitions given as arrays with a leading axis of length `n`.

        `truncated` (default: none) marks time-limit cuts: they bootstrap, but end the n-step sum.
        `next_mask` `(n, n_actions)`: the legal actions in `next_obs` (a buffer built with `action_masks`).
        `state` `(n, state_size)`: the recurrent state acting had before each step (a buffer with `sequences`).
        """
        if (next_mask is None) != (self.next_mask is None):
            raise ValueError(
                "this buffer keeps action masks: pass next_mask" if next_mask is None else
                "next_mask given, but this buffer keeps no action masks: build it with action_masks=n_actions"
            )  # fmt: skip
        action = np.asarray(action)
        n = action.shape[0]
        if self.env_ordered and n != self.num_envs:
            raise ValueError(
                f"n-step sampling and frame storage need one transition per env in each add: got {n}, "
                f"num_envs={self.num_envs}"
            )
        idx = (
            (self.pos + np.arange(n)) % self.capacity if self.pos + n > self.capacity else slice(self.pos, self.pos + n)
        )
        continues = None
        if isinstance(self.store, FrameStore) and self.size >= n:  # each env's previous step sits n slots back
            continues = ~self.episode_end[(self.pos - n + np.arange(n)) % self.capacity]
        ended = np.asarray(terminated, dtype=bool) | (
            np.asarray(truncated, dtype=bool) if truncated is not None else False
        )
        if self.sequences is not None:  # reads each env's previous step: before this step is written
            self.sequences.write(self, state, np.broadcast_to(ended, (n,)))
        self.store.write(idx, obs, next_obs, continues)
        self.action[idx] = action
        self.reward[idx] = reward
        self.terminated[idx] = terminated
        self.episode_end[idx] = ended
        if self.next_mask is not None:
            self.next_mask[idx] = np.asarray(next_mask, dtype=bool)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, num_batches: int | None = None, pin: bool = False) -> ReplayBatch | SequenceBatch:
        """Draws `batch_size` distinct stored transitions (with `sequences`: sequences) uniformly at random.

        With `num_batches`, draws that many independent batches at once, stacked on a leading
        axis: tensors are `(num_batches, batch_size, ...)`. Transitions are distinct within a
        batch, not across batches. `pin`: gather the observations straight into pinned memory
        (needs CUDA), so their copy to the GPU does not hold up the host.
        """
        count, offset = self._sampleable()
        starts = self.sequences.start_slots(self) if self.sequences is not None else None
        if starts is not None:
            count, offset = len(starts), 0
        if batch_size > count:
            what = "sequence starts" if starts is not None else "transitions"
            raise ValueError(
                f"cannot sample {batch_size} distinct {what} from a replay buffer holding {count}: "
                "fill it first (EnvLoop's learning_starts) or ask for a smaller batch"
            )
        if num_batches is None or num_batches == 1:  # one draw: a view, not np.stack's copy of a list
            idx = self.rng.choice(count, size=batch_size, replace=False)
            idx = idx if num_batches is None else idx[None]
        else:
            idx = np.stack([self.rng.choice(count, size=batch_size, replace=False) for _ in range(num_batches)])
        if starts is not None:
            return self.sequences.gather(self, starts[idx])  # type: ignore[union-attr]
        return self.gather((idx + offset) % self.capacity if offset else idx, pin=pin)

    def _sampleable(self) -> tuple[int, int]:
        """How many slots may be drawn, and the first of them (they run on from it round the ring)."""
        if self.size < self.capacity or not self.store.excluded:
            return self.size, 0
        return self.size - self.store.excluded, self.pos + self.store.excluded

    def gather(self, idx: np.ndarray, pin: bool = False) -> ReplayBatch | SequenceBatch:
        """The (n-step) transitions starting at slots `idx` (any shape), as a batch of that shape
        (with `sequences`: the sequences starting there)."""
        if self.sequences is not None:
            return self.sequences.gather(self, idx)
        if self.n_step == 1 and isinstance(self.store, FrameStore):
            k = self.obs_shape[0]
            if pin:
                frames = self._host((*idx.shape, k + 1, *self.obs_shape[1:]), pin)
                self.store.get_windows(idx, out=frames.numpy())
            else:
                frames = torch.from_numpy(self.store.get_windows(idx))
            axis = idx.ndim
            return ReplayBatch(
                obs=frames.narrow(axis, 0, k),
                action=torch.from_numpy(self.action[idx]),
                reward=torch.from_numpy(self.reward[idx]),
                next_obs=frames.narrow(axis, 1, k),
                terminated=torch.from_numpy(self.terminated[idx]),
                next_mask=self._masks(idx),
                frames=frames,
            )
        obs = self._gathered(self.store.get_obs, idx, pin)
        if self.n_step == 1:
            next_obs = self._gathered(self.store.get_next_obs, idx, pin)
            return ReplayBatch(
                obs=obs,
                action=torch.from_numpy(self.action[idx]),
                reward=torch.from_numpy(self.reward[idx]),
                next_obs=next_obs,
                terminated=torch.from_numpy(self.terminated[idx]),
                next_mask=self._masks(idx),
            )
        last, reward, steps = self._n_step_window(idx)
        next_obs = self._gathered(self.store.get_next_obs, last, pin)
        return ReplayBatch(
            obs=obs,
            action=torch.from_numpy(self.action[idx]),
            reward=torch.from_numpy(reward),
            next_obs=next_obs,
            terminated=torch.from_numpy(self.terminated[last]),
            steps=torch.from_numpy(steps),
            next_mask=self._masks(last),
        )

    def _masks(self, slots: np.ndarray) -> Tensor | None:
        return torch.from_numpy(self.next_mask[slots]) if self.next_mask is not None else None

    def _gathered(self, get: Any, idx: np.ndarray, pin: bool) -> Tensor:
        """`get(idx)` as a tensor: straight into pinned memory with `pin`, else NumPy's own array."""
        if not pin:
            return torch.from_numpy(get(idx))
        out = self._host((*idx.shape, *self.obs_shape), pin)
        get(idx, out=out.numpy())
        return out

    def _host(self, shape: tuple[int, ...], pin: bool) -> Tensor:
        """An uninitialised host tensor of the observation dtype, pinned if asked (torch's pinned-memory
        cache reuses blocks, and keeps one until the copies reading it are done)."""
        dtype = torch.from_numpy(np.empty(0, dtype=self.obs_dtype)).dtype
        return torch.empty(shape, dtype=dtype, pin_memory=pin)

    def _n_step_window(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each start slot: the slot of its window's last step, the discounted reward sum, and k.

        One pass per look-ahead step (n - 1 of them), each over the whole batch.
        """
        stride = self.num_envs
        newer = (self.pos - 1 - idx) % self.capacity  # slots written after idx (same env or not)
        last = idx.copy()
        reward = self.reward[idx].astype(np.float64)
        steps = np.ones(idx.shape, dtype=np.float32)
        going = ~self.episode_end[idx]
        for k in range(1, self.n_step):
            going &= newer >= k * stride  # step t+k stored yet?
            nxt = (idx + k * stride) % self.capacity
            reward += np.where(going, self.gamma**k * self.reward[nxt], 0.0)
            last = np.where(going, nxt, last)
            steps += going
            going &= ~self.episode_end[nxt]
        return last, reward.astype(np.float32), steps
