"""What of a replay buffer is saved and restored: its ring position and sampler in a checkpoint,
its transitions in an `.npz` file beside it (see `ReplayFiles`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dqn_lightning.replay.obs_store import FrameStore, PairStore
from dqn_lightning.replay.sequences import Sequences


class BufferState:
    """Saving and loading for `ReplayBuffer`, which sets the attributes below."""

    capacity: int
    pos: int
    size: int
    rng: np.random.Generator
    store: FrameStore | PairStore
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    episode_end: np.ndarray
    next_mask: np.ndarray | None
    sequences: Sequences | None

    def state_dict(self) -> dict[str, Any]:
        """Ring position and sampler RNG state (not the arrays: those are large and saved separately)."""
        return {"pos": self.pos, "size": self.size, "rng": self.rng.bit_generator.state}

    def _arrays(self) -> dict[str, np.ndarray]:
        """The per-transition arrays, by name (what `save` writes and `nbytes` counts)."""
        return (
            {
                **self.store.slot_arrays(),
                "action": self.action,
                "reward": self.reward,
                "terminated": self.terminated,
                "episode_end": self.episode_end,
            }
            | ({"next_mask": self.next_mask} if self.next_mask is not None else {})
            | (self.sequences.arrays() if self.sequences is not None else {})
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos, self.size = int(state["pos"]), int(state["size"])
        self.rng.bit_generator.state = state["rng"]

    @property
    def nbytes(self) -> int:
        """Memory held by the stored transitions, in bytes."""
        extra = self.store.starts_nbytes if isinstance(self.store, FrameStore) else 0
        return sum(a.nbytes for a in self._arrays().values()) + extra

    def save(self, path: str | Path) -> None:
        """Writes the stored transitions to an `.npz` file, atomically (temp file, then rename).

        Plain arrays only (loadable with `allow_pickle=False`), so a crash mid-save leaves the
        previous file intact and loading the file can never run code.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        n = self.size
        with open(tmp, "wb") as f:
            arrays: dict[str, Any] = {key: a[:n] for key, a in self._arrays().items()}
            arrays.update(self.store.extra_arrays())
            np.savez(f, pos=np.int64(self.pos), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        """Reads transitions written by `save` into this buffer (same capacity and observation shape)."""
        targets = self._arrays()
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in [*targets, *self.store.extra_arrays(), "pos"]}
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise ValueError(f"{path} is not a readable replay buffer file ({err})") from None
        n = arrays["action"].shape[0]
        for key, target in targets.items():
            if n > self.capacity or arrays[key].shape != (n, *target.shape[1:]):
                raise ValueError(
                    f"{path} holds {key} of shape {arrays[key].shape}; this buffer takes up to "
                    f"{self.capacity} rows of shape {target.shape[1:]} (same capacity and observation shape)"
                )
        for key, target in targets.items():
            target[:n] = arrays[key]
        self.store.load_extra(arrays)
        self.size, self.pos = n, int(arrays["pos"])
