"""The recurrent Q-network (R2D2's): an encoder, an LSTM or GRU core fed the previous action and reward,
and a Q head; its state is one flat tensor per sequence, which the replay stores with each step."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.cnn import MinAtarCNN, NatureCNN

CoreKind = Literal["lstm", "gru"]
CORES: tuple[str, ...] = ("lstm", "gru")


@runtime_checkable
class RecurrentNetwork(Protocol):
    """What `RecurrentDQN` needs of a recurrent Q-network (state in, state out), yours or ours.

    The state is one float tensor `(batch, state_size)` per sequence (an LSTM's `h` and `c` side by
    side), so that the replay can keep it with each step as acting left it.
    """

    state_size: int

    def initial_state(self, batch: int) -> Tensor:
        """The state at an episode's start, `(batch, state_size)`, on the weights' device."""
        ...

    def unroll(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Q-values `(batch, time, n_actions)` and the state after the last step, for observations
        `(batch, time, *obs_shape)`, the actions and rewards before each of them `(batch, time)`
        (int64, -1 before an episode's first step; float32) and the state before the first."""
        ...


class RecurrentQNetwork(nn.Module):
    """Observation encoder, then an LSTM (or GRU) core, then a (dueling) Q head.

    The core's input at each step is the encoding, the previous action one-hot (zeros before an
    episode's first step) and the previous reward, as in R2D2 (Kapturowski et al. 2019), so the
    core can tell what its last action did. `forward(obs)` is one step from the initial state:
    the shape check and stateless tools use it; acting and learning use `unroll`.

    Args:
        obs_shape: one observation's shape: `(C, H, W)` frames get a CNN encoder (the Nature CNN's
            convolutions from 36x36, else MinAtar's), anything else an MLP on the flat vector.
        n_actions: number of discrete actions.
        hidden_sizes: the encoder's fully connected widths (ReLU after each).
        core: `lstm` or `gru`.
        core_size: the core's hidden units.
        dueling: a dueling head (`V + A - mean(A)`) on the core's output.
        network: `auto`, `mlp`, `nature-cnn` or `minatar-cnn`: the encoder, by our networks' names.

    Example:
        >>> q = RecurrentQNetwork((4,), n_actions=2, core_size=16)
        >>> out, state = q.unroll(torch.zeros(3, 5, 4), torch.full((3, 5), -1), torch.zeros(3, 5), q.initial_state(3))
        >>> tuple(out.shape), tuple(state.shape)
        ((3, 5, 2), (3, 32))
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (128,),
        core: CoreKind = "lstm",
        core_size: int = 128,
        dueling: bool = False,
        network: str = "auto",
    ) -> None:
        super().__init__()
        if core not in CORES:
            raise ConfigError(f"unknown recurrent core {core!r}: choose lstm or gru")
        if core_size < 1:
            raise ConfigError(f"the recurrent core needs core_size >= 1, got {core_size}")
        self.obs_shape, self.n_actions, self.core_kind = tuple(int(d) for d in obs_shape), n_actions, core
        self.encoder, width = build_encoder(self.obs_shape, hidden_sizes, network)
        core_type = nn.LSTM if core == "lstm" else nn.GRU
        self.core = core_type(width + n_actions + 1, core_size, batch_first=True)
        self.core_size = core_size
        self.state_size = 2 * core_size if core == "lstm" else core_size
        self.dueling = dueling
        if dueling:
            self.value, self.advantage = nn.Linear(core_size, 1), nn.Linear(core_size, n_actions)
        else:
            self.q_head = nn.Linear(core_size, n_actions)

    def initial_state(self, batch: int) -> Tensor:
        weight = next(self.core.parameters())
        return torch.zeros(batch, self.state_size, dtype=weight.dtype, device=weight.device)

    def unroll(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        batch, time = obs.shape[:2]
        dtype = next(self.core.parameters()).dtype
        features = self.encoder(obs.flatten(0, 1)).view(batch, time, -1)
        # one-hot of the previous action; -1 (no action yet) gives a row of zeros
        action = torch.nn.functional.one_hot(prev_action.clamp(min=0), self.n_actions).to(dtype)
        action = action * (prev_action >= 0).unsqueeze(-1).to(dtype)
        inputs = torch.cat([features.to(dtype), action, prev_reward.unsqueeze(-1).to(dtype)], dim=-1)
        state = state.to(dtype)
        if self.core_kind == "lstm":
            h, c = state[:, : self.core_size], state[:, self.core_size :]
            out, (h, c) = self.core(inputs, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()))
            new_state = torch.cat([h[0], c[0]], dim=1)
        else:
            out, h = self.core(inputs, state.unsqueeze(0).contiguous())
            new_state = h[0]
        return self._q(out), new_state

    def _q(self, out: Tensor) -> Tensor:
        if not self.dueling:
            return self.q_head(out)
        advantage = self.advantage(out)
        return self.value(out) + advantage - advantage.mean(dim=-1, keepdim=True)

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` of one step from the initial state, for `(batch, *obs_shape)`."""
        batch = obs.shape[0]
        none = torch.full((batch, 1), -1, dtype=torch.int64, device=obs.device)
        q, _ = self.unroll(obs.unsqueeze(1), none, torch.zeros(batch, 1, device=obs.device), self.initial_state(batch))
        return q[:, 0]


def build_encoder(obs_shape: tuple[int, ...], hidden_sizes: Sequence[int], network: str) -> tuple[nn.Module, int]:
    """The encoder `(n, *obs_shape) -> (n, width)` and its width: our CNN's convolutions for frames,
    then the fully connected `hidden_sizes` with ReLU (an MLP for flat observations)."""
    image = len(obs_shape) == 3
    if network == "auto":
        network = ("nature-cnn" if min(obs_shape[1:]) >= 36 else "minatar-cnn") if image else "mlp"
    layers: list[nn.Module] = []
    if network == "mlp":
        layers.append(nn.Flatten())
        width = math.prod(obs_shape)
    elif network in ("nature-cnn", "minatar-cnn") and image:
        cnn = NatureCNN(obs_shape, 1) if network == "nature-cnn" else MinAtarCNN(obs_shape, 1)
        convs = cnn.convs if isinstance(cnn, NatureCNN) else nn.Sequential(cnn.conv, nn.ReLU(), nn.Flatten())
        layers += [PixelScale(), convs]
        width = cnn.head.obs_dim
    else:
        raise ConfigError(
            f"the recurrent Q-network's encoder is auto, mlp, nature-cnn or minatar-cnn (the last two for "
            f"(channels, height, width) frames); got {network!r} for observations of shape {obs_shape}"
        )
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, int(hidden)), nn.ReLU()]
        width = int(hidden)
    return nn.Sequential(*layers), width


class PixelScale(nn.Module):
    """uint8 frames to float32 in [0, 1]; float frames pass as they are."""

    def forward(self, obs: Tensor) -> Tensor:
        return obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()
