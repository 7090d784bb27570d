"""Q-networks by name: `build_q_network` picks the MLP, the Nature CNN or the MinAtar CNN for an observation,
or the one named (also DER's data-efficient CNN).

The networks themselves live in `mlp.py` (QNetwork) and `cnn.py` (NatureCNN, DataEfficientCNN,
MinAtarCNN); all are importable from here, beside the function that chooses among them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.cnn import (
    DATA_EFFICIENT_LAYERS,
    NATURE_LAYERS,
    NATURE_MIN_FRAME,
    DataEfficientCNN,
    MinAtarCNN,
    NatureCNN,
    min_frame,
)
from dqn_lightning.learner.mlp import QNetwork

__all__ = ["NETWORKS", "DataEfficientCNN", "MinAtarCNN", "NatureCNN", "NetworkName", "QNetwork", "build_q_network"]

NetworkName = Literal["auto", "mlp", "nature-cnn", "data-efficient-cnn", "minatar-cnn"]
NETWORKS: tuple[str, ...] = ("auto", "mlp", "nature-cnn", "data-efficient-cnn", "minatar-cnn")
FRAME_NETWORKS = {  # the Atari-sized CNNs: class and convolutions, whose smallest frame is checked up front
    "nature-cnn": (NatureCNN, NATURE_LAYERS),
    "data-efficient-cnn": (DataEfficientCNN, DATA_EFFICIENT_LAYERS),
}


def build_q_network(
    obs_shape: Sequence[int],
    n_actions: int,
    hidden_sizes: Sequence[int],
    dueling: bool = False,
    network: NetworkName = "auto",
    atoms: int = 1,
    noisy: bool = False,
) -> QNetwork | NatureCNN | DataEfficientCNN | MinAtarCNN:
    """The Q-network for an observation shape, or the one `network` names.

    `auto`: frames `(C, H, W)` of at least 36x36 (Atari) get the Nature CNN, smaller frames
    (MinAtar) the MinAtar CNN, anything else an MLP on the flattened observation. A network that
    cannot take the observation raises a one-line `ConfigError`. `atoms` and `noisy` go to the
    fully connected layers (see `QNetwork`).
    """
    head: dict[str, Any] = {"dueling": dueling, "atoms": atoms, "noisy": noisy}
    obs_shape = tuple(int(d) for d in obs_shape)
    image = len(obs_shape) == 3
    if network == "auto" and not image:
        network = "mlp"
    elif network == "auto":
        network = "nature-cnn" if min(obs_shape[1:]) >= NATURE_MIN_FRAME else "minatar-cnn"
    if network == "mlp":
        return QNetwork(math.prod(obs_shape), n_actions, hidden_sizes, **head)
    if network not in NETWORKS:
        raise ConfigError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
    if not image:
        raise ConfigError(
            f"--network {network} needs image observations (channels, height, width), but they have shape "
            f"{obs_shape}: use --network mlp or auto"
        )
    if network in FRAME_NETWORKS:
        cls, layers = FRAME_NETWORKS[network]
        smallest = min_frame(layers)
        if min(obs_shape[1:]) < smallest:
            raise ConfigError(
                f"--network {network} needs frames of at least {smallest}x{smallest}, but these are "
                f"{obs_shape[1]}x{obs_shape[2]}: use --network minatar-cnn (or auto) for small frames"
            )
        return cls(obs_shape, n_actions, hidden_sizes, **head)
    if min(obs_shape[1:]) < 3:
        raise ConfigError(f"--network minatar-cnn needs frames of at least 3x3, got {obs_shape[1]}x{obs_shape[2]}")
    return MinAtarCNN(obs_shape, n_actions, hidden_sizes, **head)
