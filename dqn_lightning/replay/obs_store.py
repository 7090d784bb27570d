"""How the replay ring keeps observations: as (obs, next_obs) pairs, or every image frame once.

`ReplayBuffer` owns the ring's slots and the scalar arrays; one of these stores holds the
observations of each slot. `PairStore` is the plain way. `FrameStore` is for frame-stacked
images (Atari): a stack `(K, H, W)` shares K-1 frames with the next one, and `obs` of step t+1 is
`next_obs` of step t, so pairs hold every frame 2K times; `FrameStore` holds it once, which puts a
100,000-transition Atari buffer at 0.7 GB instead of 5.6 GB.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from dqn_lightning.errors import ConfigError


class PairStore:
    """`obs` and `next_obs` of every slot, in two preallocated arrays `(capacity, *obs_shape)`."""

    excluded = 0  # slots that cannot be sampled (see FrameStore.excluded)

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: DTypeLike) -> None:
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)

    def write(self, slots: Any, obs: Any, next_obs: Any, continues: np.ndarray | None = None) -> None:
        """Stores the observations of the transitions at `slots` (a slice or an index array)."""
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs

    def get_obs(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """`obs` of slots `idx`, `(*idx.shape, *obs_shape)`, written into `out` if given."""
        return self.obs[idx] if out is None else np.take(self.obs, idx, axis=0, out=out, mode="clip")

    def get_next_obs(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.next_obs[idx] if out is None else np.take(self.next_obs, idx, axis=0, out=out, mode="clip")

    def slot_arrays(self) -> dict[str, np.ndarray]:
        """Arrays with one row per slot (saved and loaded with the buffer's own)."""
        return {"obs": self.obs, "next_obs": self.next_obs}

    def extra_arrays(self) -> dict[str, np.ndarray]:
        """Arrays of other lengths that a saved buffer needs."""
        return {}

    def load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        pass


class FrameStore:
    """Frame stacks `(K, *frame_shape)` kept as one frame per slot, plus each episode's first stack.

    Slot i keeps the newest frame of `next_obs_i`. A stack is rebuilt from the frames of the
    same env's earlier slots (`stride` = envs per step apart); the frames from before an
    episode's first step come from that step's `obs`, kept whole (`starts`). So the store relies
    on `next_obs[:-1] == obs[1:]` (checked on every write) and on `obs` of a step being the
    `next_obs` of the env's previous step unless an episode ended (checked too: a step that does
    not continue is stored as a new start, so an env restored on resume stays correct).

    When the ring is full, the `excluded` oldest slots cannot be sampled: their stacks reach
    back into frames already overwritten.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: DTypeLike, num_envs: int = 1) -> None:
        if len(obs_shape) < 2:
            raise ConfigError(f"frame storage needs stacked frames (K, *frame_shape), got observations {obs_shape}")
        self.stack = int(obs_shape[0])
        self.capacity, self.stride = capacity, num_envs
        if capacity <= (self.stack + 1) * num_envs:
            raise ConfigError(
                f"capacity {capacity} cannot hold {self.stack + 1} frame-stacked steps of {num_envs} envs: raise it"
            )
        self.frames = np.zeros((capacity, *obs_shape[1:]), dtype=obs_dtype)
        # env steps since the episode's first stored step, capped at K (beyond it, all frames are in the ring)
        self.depth = np.zeros(capacity, dtype=np.int8)
        self.starts: dict[int, np.ndarray] = {}  # slot -> obs stack (K, ...) of an episode's first step

    @property
    def excluded(self) -> int:
        return self.stack * self.stride

    def write(self, slots: Any, obs: Any, next_obs: Any, continues: np.ndarray | None = None) -> None:
        """Stores one step of every env. `continues[e]`: env e's previous step sits `stride` slots
        back and did not end an episode (None: nothing stored before)."""
        if isinstance(slots, slice):
            slots = np.arange(slots.start, slots.stop)
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        if not np.array_equal(next_obs[:, :-1], obs[:, 1:]):
            raise ValueError(
                "observations are not frame stacks (next_obs[:-1] differs from obs[1:]); "
                "store them as pairs (ReplayBuffer(..., store_frames=False))"
            )
        n = slots.shape[0]
        prev = (slots - self.stride) % self.capacity
        cont = np.zeros(n, dtype=bool) if continues is None else np.asarray(continues, dtype=bool).copy()
        if cont.any():  # continues only if obs really is the previous next_obs
            rebuilt = self.get_next_obs(prev[cont])
            cont[cont] = (rebuilt == obs[cont]).reshape(int(cont.sum()), -1).all(axis=1)
        depth = np.where(cont, np.minimum(self.depth[prev].astype(np.int64) + 1, self.stack), 0)
        for slot in slots:
            self.starts.pop(int(slot), None)
        self.frames[slots] = next_obs[:, -1]
        self.depth[slots] = depth
        for e in np.flatnonzero(~cont):
            self.starts[int(slots[e])] = obs[e].copy()

    def get_obs(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self._stacks(idx, newest=1, length=self.stack, out=out)

    def get_next_obs(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self._stacks(idx, newest=0, length=self.stack, out=out)

    def get_windows(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The K + 1 frames of slot idx's transition, `(*idx.shape, K + 1, ...)`: `obs` is the first K,
        `next_obs` the last K. Half the bytes of both stacks, for the gather and the device copy."""
        return self._stacks(idx, newest=0, length=self.stack + 1, out=out)

    def _stacks(self, idx: np.ndarray, newest: int, length: int, out: np.ndarray | None = None) -> np.ndarray:
        """`length` frames (K: a stack) whose newest is `newest` env steps before slot idx's own frame,
        `(*idx.shape, length, ...)`, written into `out` if given."""
        flat = np.asarray(idx).ravel()
        k = self.stack
        shape = (flat.size, length, *self.frames.shape[1:])
        rows = np.empty(shape, dtype=self.frames.dtype) if out is None else out.reshape(shape)
        back = [newest + length - 1 - p for p in range(length)]  # env steps back from slot i, per position
        for p, m in enumerate(back):
            rows[:, p] = self.frames[(flat - m * self.stride) % self.capacity]
        depth = self.depth[flat].astype(np.int64)
        # rows reaching before their episode's first step take those frames from its first obs
        # (m - d <= K: a window reaches at most K frames before the first step's next_obs frame)
        for row in np.flatnonzero(depth < back[0]):
            d = int(depth[row])
            first = self.starts[int((flat[row] - d * self.stride) % self.capacity)]
            for p, m in enumerate(back):
                if m > d:
                    rows[row, p] = first[k - (m - d)]
        return rows.reshape(*np.shape(idx), *rows.shape[1:])

    def slot_arrays(self) -> dict[str, np.ndarray]:
        return {"frames": self.frames, "depth": self.depth}

    def extra_arrays(self) -> dict[str, np.ndarray]:
        slots = sorted(self.starts)
        empty = np.zeros((0, self.stack, *self.frames.shape[1:]), dtype=self.frames.dtype)
        stacks = np.stack([self.starts[s] for s in slots]) if slots else empty
        return {"start_slots": np.asarray(slots, dtype=np.int64), "start_stacks": stacks}

    def load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        self.starts = {int(s): stack for s, stack in zip(arrays["start_slots"], arrays["start_stacks"], strict=True)}

    @property
    def starts_nbytes(self) -> int:
        return sum(a.nbytes for a in self.starts.values())
