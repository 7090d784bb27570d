"""Q-networks: map a flat observation to one Q-value per action."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class QNetwork(nn.Module):
    """MLP from a flat observation to Q-values, ReLU between layers, no output activation.

    Args:
        obs_dim: length of the flat observation vector.
        n_actions: number of discrete actions (one output per action).
        hidden_sizes: widths of the hidden layers; the tutorial and our default use two.
        dueling: split the head into a state value and per-action advantages (Wang et al. 2016),
            combined as `V + A - mean(A)` so that V and A are identifiable.

    Example:
        >>> q = QNetwork(obs_dim=4, n_actions=2, hidden_sizes=(64, 64))
        >>> q(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int] = (128, 128), dueling: bool = False
    ) -> None:
        super().__init__()
        if obs_dim < 1 or n_actions < 1:
            raise ValueError(f"QNetwork needs obs_dim >= 1 and n_actions >= 1, got {obs_dim} and {n_actions}")
        if any(h < 1 for h in hidden_sizes):
            raise ValueError(f"hidden sizes must be positive, got {tuple(hidden_sizes)}")
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        if dueling:
            # value and advantage streams on the shared trunk: Q = V + A - mean(A)
            self.layers = nn.Sequential(*layers)
            self.value = nn.Linear(width, 1)
            self.advantage = nn.Linear(width, n_actions)
        else:
            layers.append(nn.Linear(width, n_actions))
            self.layers = nn.Sequential(*layers)
        self.dueling = dueling
        self.obs_dim = obs_dim
        self.n_actions = n_actions

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` for observations `(batch, obs_dim)`; other float dtypes are cast."""
        features = self.layers(obs.flatten(1).float())
        if not self.dueling:
            return features
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)
