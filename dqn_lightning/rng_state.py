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
