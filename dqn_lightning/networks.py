"""Q-networks: map an observation to one Q-value per action (an MLP, the Nature CNN, the MinAtar CNN)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dqn_lightning.errors import ConfigError
from dqn_lightning.noisy import NoisyLinear

NetworkName = Literal["auto", "mlp", "nature-cnn", "minatar-cnn"]
NETWORKS: tuple[str, ...] = ("auto", "mlp", "nature-cnn", "minatar-cnn")
NATURE_MIN_FRAME = 36  # the smallest frame side the Nature CNN's three convolutions fit


class QNetwork(nn.Module):
    """MLP from a flat observation to Q-values, ReLU between layers, no output activation.

    Args:
        obs_dim: length of the flat observation vector.
        n_actions: number of discrete actions (one output per action).
        hidden_sizes: widths of the hidden layers; the tutorial and our default use two.
        dueling: split the head into a state value and per-action advantages (Wang et al. 2016),
            combined as `V + A - mean(A)` so that V and A are identifiable.
        atoms: values per action (a distributional value head's atoms or quantiles); above 1 the
            output is `(batch, n_actions, atoms)`, and dueling combines per atom.
        noisy: noisy linear layers (`noisy.NoisyLinear`) instead of `nn.Linear`.

    Example:
        >>> q = QNetwork(obs_dim=4, n_actions=2, hidden_sizes=(64, 64))
        >>> q(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden_sizes: Sequence[int] = (128, 128),
        dueling: bool = False,
        atoms: int = 1,
        noisy: bool = False,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or n_actions < 1:
            raise ValueError(f"QNetwork needs obs_dim >= 1 and n_actions >= 1, got {obs_dim} and {n_actions}")
        if any(h < 1 for h in hidden_sizes):
            raise ValueError(f"hidden sizes must be positive, got {tuple(hidden_sizes)}")
        linear = NoisyLinear if noisy else nn.Linear
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in hidden_sizes:
            layers += [linear(width, hidden), nn.ReLU()]
            width = hidden
        if dueling:
            # value and advantage streams on the shared trunk: Q = V + A - mean(A)
            self.layers = nn.Sequential(*layers)
            self.value = linear(width, atoms)
            self.advantage = linear(width, n_actions * atoms)
        else:
            layers.append(linear(width, n_actions * atoms))
            self.layers = nn.Sequential(*layers)
        self.dueling, self.atoms, self.noisy = dueling, atoms, noisy
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        # forward calls the layers as functions: for widths this small, nn.Module's per-call
        # machinery costs about as much as the matmuls (submodule hooks are therefore not run)
        self._linears: list[Any] = [m for m in self.layers if isinstance(m, nn.Linear | NoisyLinear)]
        self._views: list[np.ndarray] = []  # NumPy views of the weights (see greedy_numpy)
        self._views_of: tuple[int, ...] = ()

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype: float32, or what a --precision like 64-true made it."""
        first = self._linears[0]
        return first.weight_mu.dtype if self.noisy else first.weight.dtype

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` (or `(batch, n_actions, atoms)`) for observations `(batch, obs_dim)`."""
        dtype = self.dtype
        x = obs if obs.dim() == 2 and obs.dtype == dtype else obs.flatten(1).to(dtype)
        hidden = self._linears if self.dueling else self._linears[:-1]
        for layer in hidden:
            x = torch.relu(F.linear(x, layer.weight, layer.bias))
        if not self.dueling:
            out = self._linears[-1]
            q = F.linear(x, out.weight, out.bias)
            return q if self.atoms == 1 else q.view(-1, self.n_actions, self.atoms)
        advantage = self.advantage(x).view(-1, self.n_actions, self.atoms)
        q = self.value(x).view(-1, 1, self.atoms) + advantage - advantage.mean(dim=1, keepdim=True)
        return q.squeeze(2) if self.atoms == 1 else q

    def greedy_numpy(self, obs: np.ndarray) -> np.ndarray | None:
        """`argmax_a Q(obs, a)` `(n,)` int64 computed by NumPy on the weights' own memory.

        Acting runs once per env step on a handful of observations, where torch's per-op
        dispatch costs several times the arithmetic; NumPy's calls are cheaper. None when the
        weights are not float32 on the CPU, or are noisy or distributional (then use `forward`).
        """
        if self.noisy or self.atoms > 1:
            return None
        params = [p for layer in self._linears for p in (layer.weight, layer.bias)]
        if self.dueling:  # V and mean(A) are the same for every action: argmax Q = argmax A
            params += [self.advantage.weight, self.advantage.bias]
        if params[0].device.type != "cpu" or params[0].dtype != torch.float32:
            return None
        where = tuple(p.data_ptr() for p in params)
        if where != self._views_of:  # the weights moved (first call, .to(), a copy): new views
            self._views, self._views_of = [p.detach().numpy() for p in params], where
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        weights = self._views
        for i in range(0, len(weights) - 2, 2):
            x = np.maximum(x @ weights[i].T + weights[i + 1], 0.0)
        return np.argmax(x @ weights[-2].T + weights[-1], axis=1)


class NatureCNN(nn.Module):
    """The DQN paper's convolutional Q-network (Mnih et al., 2015) for stacked image frames.

    Three conv layers (32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1), then fully connected
    `hidden_sizes` (the paper: one layer of 512), then one output per action (or a dueling head).
    Sizes come from `obs_shape`, so any frame size the convolutions fit works. uint8 pixels stay
    uint8 until here (a quarter of the memory in the buffer and on the way to the device) and are
    scaled to [0, 1] inside `forward`.

    Args:
        obs_shape: `(channels, height, width)`: stacked frames first (Gymnasium's FrameStackObservation).
        n_actions: number of discrete actions.
        hidden_sizes: widths of the fully connected layers after the convolutions.
        dueling: value and advantage streams, as in `QNetwork`.

    Example:
        >>> q = NatureCNN((4, 84, 84), n_actions=6)
        >>> q(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape
        torch.Size([2, 6])
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (512,),
        dueling: bool = False,
        atoms: int = 1,
        noisy: bool = False,
    ) -> None:
        super().__init__()
        channels, height, width = _frame_shape(obs_shape, "NatureCNN", NATURE_MIN_FRAME)
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():  # the flattened size, from the frame size
            features = self.convs(torch.zeros(1, channels, height, width)).shape[1]
        self.head = QNetwork(features, n_actions, hidden_sizes, dueling=dueling, atoms=atoms, noisy=noisy)
        self.n_actions = n_actions

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` for frames `(batch, C, H, W)`: uint8 pixels in 0..255, or floats."""
        return self.head(self.convs(_pixels(obs, self.head.dtype)))


class MinAtarCNN(nn.Module):
    """The MinAtar paper's Q-network (Young & Tian 2019) for small frames such as MinAtar's 10x10.

    One convolution (16 filters 3x3, stride 1, no padding), then fully connected `hidden_sizes`
    (the paper: one layer of 128), then one output per action (or a dueling head). uint8 frames
    are scaled by 1/255 inside `forward`, as in `NatureCNN`.

    Example:
        >>> q = MinAtarCNN((4, 10, 10), n_actions=3)
        >>> q(torch.zeros(2, 4, 10, 10, dtype=torch.uint8)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (128,),
        dueling: bool = False,
        atoms: int = 1,
        noisy: bool = False,
    ) -> None:
        super().__init__()
        channels, height, width = _frame_shape(obs_shape, "MinAtarCNN", 3)
        self.conv = nn.Conv2d(channels, 16, kernel_size=3, stride=1)
        self.head = QNetwork(16 * (height - 2) * (width - 2), n_actions, hidden_sizes, dueling, atoms, noisy)
        self.n_actions = n_actions

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` for frames `(batch, C, H, W)`: uint8 pixels in 0..255, or floats."""
        return self.head(torch.relu(self.conv(_pixels(obs, self.conv.weight.dtype))).flatten(1))


def _frame_shape(obs_shape: Sequence[int], network: str, min_side: int) -> tuple[int, int, int]:
    """`(channels, height, width)` of `obs_shape`; a ValueError when the network's convolutions can't take it."""
    if len(obs_shape) != 3:
        raise ValueError(f"{network} needs (channels, height, width) observations, got shape {tuple(obs_shape)}")
    channels, height, width = (int(d) for d in obs_shape)
    if height < min_side or width < min_side:
        raise ValueError(f"{network} needs frames of at least {min_side}x{min_side}, got {height}x{width}")
    return channels, height, width


def _pixels(obs: Tensor, dtype: torch.dtype) -> Tensor:
    """Frames in the weights' dtype; uint8 pixels scaled from 0..255 to [0, 1]."""
    return obs.to(dtype) / 255.0 if obs.dtype == torch.uint8 else obs.to(dtype)


def build_q_network(
    obs_shape: Sequence[int],
    n_actions: int,
    hidden_sizes: Sequence[int],
    dueling: bool = False,
    network: NetworkName = "auto",
    atoms: int = 1,
    noisy: bool = False,
) -> QNetwork | NatureCNN | MinAtarCNN:
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
    if network == "nature-cnn":
        if min(obs_shape[1:]) < NATURE_MIN_FRAME:
            raise ConfigError(
                f"--network nature-cnn needs frames of at least {NATURE_MIN_FRAME}x{NATURE_MIN_FRAME}, but these are "
                f"{obs_shape[1]}x{obs_shape[2]}: use --network minatar-cnn (or auto) for small frames"
            )
        return NatureCNN(obs_shape, n_actions, hidden_sizes, **head)
    if min(obs_shape[1:]) < 3:
        raise ConfigError(f"--network minatar-cnn needs frames of at least 3x3, got {obs_shape[1]}x{obs_shape[2]}")
    return MinAtarCNN(obs_shape, n_actions, hidden_sizes, **head)
