"""The MLP Q-network: a flat observation to one Q-value per action (optionally dueling, distributional, noisy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dqn_lightning.bounds import check_bounds
from dqn_lightning.learner.noisy import NoisyLinear


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
        check_bounds(hidden_sizes=tuple(hidden_sizes))
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
        # forward calls the layers' forward directly: for widths this small, nn.Module's per-call
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
            x = torch.relu(layer.forward(x))
        if not self.dueling:
            q = self._linears[-1].forward(x)
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
