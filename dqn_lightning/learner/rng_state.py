"""The global random generators' states as checkpoint data (plain lists and ints: weights-only loadable)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng_states() -> dict[str, Any]:
    """torch's, NumPy's and Python's global RNG states, in types `torch.load(weights_only=True)` accepts."""
    np_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": np_state["state"]["pos"]}},
        "python": (version, list(internal), gauss),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Sets the global RNGs back to what `capture_rng_states` saw."""
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    key = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})
    random.setstate((states["python"][0], tuple(states["python"][1]), states["python"][2]))


class OwnGenerators:
    """A module's own random streams, seeded from torch's seed (so `seed_everything` fixes them) on
    first use: NumPy's for exploration draws, a torch CPU generator for noisy layers. Kept apart from
    the global generators, which other code also draws from; their states go into checkpoints.

    `rank` (the DDP rank, set by the module before its first draw) offsets the noise seed: every
    rank starts from the same torch seed, and identical noise on every rank would waste the
    extra samples that more ranks bring."""

    def __init__(self) -> None:
        self.rank = 0
        self._numpy: np.random.Generator | None = None
        self._noise: torch.Generator | None = None

    @property
    def numpy(self) -> np.random.Generator:
        if self._numpy is None:
            self._numpy = np.random.default_rng(torch.initial_seed())
        return self._numpy

    @property
    def noise(self) -> torch.Generator:
        if self._noise is None:
            self._noise = torch.Generator().manual_seed(torch.initial_seed() + 1 + self.rank)
        return self._noise

    def state(self) -> dict[str, Any]:
        """The streams' states for a checkpoint (None for a stream not used yet)."""
        return {
            "module": self._numpy.bit_generator.state if self._numpy is not None else None,
            "noise": self._noise.get_state() if self._noise is not None else None,
        }

    def load_state(self, states: dict[str, Any]) -> None:
        if states.get("module") is not None:
            self.numpy.bit_generator.state = states["module"]
        if states.get("noise") is not None:
            self.noise.set_state(states["noise"])
