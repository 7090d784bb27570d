"""Value heads: what the Q-network's outputs mean, and the Bellman target and loss that go with them.

- `ExpectedValue` (DQN): one value per action; TD target and MSE or Huber loss.
- `Categorical` (C51, Bellemare et al. 2017): a probability per atom of a fixed support; the
  Bellman-updated distribution projected back onto the support; cross-entropy loss.
- `Quantile` (QR-DQN, Dabney et al. 2018): N quantile estimates; quantile Huber loss.

Each head maps the network's raw output to Q-values for acting (`q_values`), builds the bootstrap
target from the next state's outputs (`target`), and gives the loss with a per-sample term that is
also prioritized replay's priority (`loss`). `categorical_projection` and `quantile_huber_loss`
are the pure pieces, for tests with hand-made tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.td import TD_LOSSES, double_td_target, legal_q, q_of_actions, td_target

HEADS = ("expected", "c51", "qr")


def apply_keeping_dtype(module: nn.Module, names: tuple[str, ...], apply: Callable[[], object]) -> None:
    """Runs `apply` (nn.Module._apply: a move or a cast) but keeps the named buffers' dtype.

    `bf16-true` casts every floating buffer with the weights: a C51 support rounded by up to
    0.03, quantile midpoints rounded, a running count that stops at 256. These are constants
    and counters, not weights: they keep their float32 values under every precision, and still
    follow the module to its device.
    """
    kept = {name: getattr(module, name) for name in names}
    apply()
    for name, before in kept.items():
        after = getattr(module, name)
        if after.dtype != before.dtype:
            setattr(module, name, before.to(after.device))


class ValueHead(nn.Module):
    """The interface: `outputs_per_action` raw values per action, and the three methods below."""

    outputs_per_action = 1
    float32_buffers: tuple[str, ...] = ()  # constants that stay float32 under every precision

    def _apply(self, fn: Any, recurse: bool = True) -> ValueHead:
        apply_keeping_dtype(self, self.float32_buffers, lambda: super(ValueHead, self)._apply(fn, recurse))
        return self

    def q_values(self, out: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` from the network's output."""
        raise NotImplementedError

    def target(
        self,
        reward: Tensor,
        terminated: Tensor,
        gamma: float | Tensor,
        next_out: Tensor,
        next_online: Tensor | None,
        next_mask: Tensor | None = None,
    ) -> Tensor:
        """The bootstrap target per row from the next state's outputs (`next_online`: Double DQN's
        chooser; `next_mask` `(batch, n_actions)` bool: the next state's legal actions, or None)."""
        raise NotImplementedError

    def loss(self, out: Tensor, action: Tensor, target: Tensor, weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """(the loss to minimise, Q(s, a) `(batch,)` for logging, the per-sample priority signal `(batch,)`)."""
        raise NotImplementedError

    def _next_action(self, next_out: Tensor, next_online: Tensor | None, next_mask: Tensor | None) -> Tensor:
        chooser = next_out if next_online is None else next_online
        return legal_q(self.q_values(chooser), next_mask).argmax(dim=1)


class ExpectedValue(ValueHead):
    """DQN's head: the output is Q itself; `loss` is `mse` or `huber`; the priority is the TD error."""

    def __init__(self, loss: str = "mse") -> None:
        super().__init__()
        self.loss_fn = TD_LOSSES[loss]

    def q_values(self, out: Tensor) -> Tensor:
        return out

    def target(
        self,
        reward: Tensor,
        terminated: Tensor,
        gamma: float | Tensor,
        next_out: Tensor,
        next_online: Tensor | None,
        next_mask: Tensor | None = None,
    ) -> Tensor:
        if next_online is None:
            return td_target(reward, terminated, next_out, gamma, next_mask)
        return double_td_target(reward, terminated, next_out, next_online, gamma, next_mask)

    def loss(self, out: Tensor, action: Tensor, target: Tensor, weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        q_taken = q_of_actions(out, action)
        # a custom loss_fn without a weight argument still works for uniform replay
        loss = self.loss_fn(q_taken, target) if weight is None else self.loss_fn(q_taken, target, weight)
        return loss, q_taken, target - q_taken.detach()


class Categorical(ValueHead):
    """C51: logits over `atoms` values evenly spaced on [v_min, v_max]; Q is the distribution's mean."""

    float32_buffers = ("support",)

    def __init__(self, atoms: int = 51, v_min: float = -10.0, v_max: float = 10.0) -> None:
        super().__init__()
        check_bounds(atoms=atoms, v_min=v_min, v_max=v_max)
        if not v_min < v_max:
            raise ConfigError(f"C51's support needs v_min below v_max, got {v_min} and {v_max}")
        self.outputs_per_action = atoms
        self.support: Tensor
        self.register_buffer("support", torch.linspace(v_min, v_max, atoms), persistent=False)
        # the support's ends as Python floats, read once here: on a GPU, reading them from the
        # support at every target would wait for the device (twice per batch)
        self.bounds = (float(self.support[0]), float(self.support[-1]))

    def q_values(self, out: Tensor) -> Tensor:
        return (F.softmax(out, dim=-1) * self.support).sum(dim=-1)

    def target(
        self,
        reward: Tensor,
        terminated: Tensor,
        gamma: float | Tensor,
        next_out: Tensor,
        next_online: Tensor | None,
        next_mask: Tensor | None = None,
    ) -> Tensor:
        picked = self._next_action(next_out, next_online, next_mask)
        next_probs = F.softmax(next_out[torch.arange(len(picked), device=picked.device), picked], dim=-1)
        return categorical_projection(next_probs, reward, terminated, gamma, self.support, self.bounds)

    def loss(self, out: Tensor, action: Tensor, target: Tensor, weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        logits = out[torch.arange(len(action), device=action.device), action.long()]
        per_sample = -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1)
        loss = per_sample.mean() if weight is None else (weight * per_sample).mean()
        q_taken = (F.softmax(logits.detach(), dim=-1) * self.support).sum(dim=-1)
        return loss, q_taken, per_sample.detach()


class Quantile(ValueHead):
    """QR-DQN: `quantiles` estimates at the midpoints `tau_i = (2i + 1) / 2N`; Q is their mean."""

    float32_buffers = ("tau",)

    def __init__(self, quantiles: int = 200, kappa: float = 1.0) -> None:
        super().__init__()
        check_bounds(quantiles=quantiles)
        self.outputs_per_action = quantiles
        self.kappa = kappa
        self.tau: Tensor
        self.register_buffer("tau", (2 * torch.arange(quantiles) + 1) / (2.0 * quantiles), persistent=False)

    def q_values(self, out: Tensor) -> Tensor:
        return out.mean(dim=-1)

    def target(
        self,
        reward: Tensor,
        terminated: Tensor,
        gamma: float | Tensor,
        next_out: Tensor,
        next_online: Tensor | None,
        next_mask: Tensor | None = None,
    ) -> Tensor:
        picked = self._next_action(next_out, next_online, next_mask)
        next_quantiles = next_out[torch.arange(len(picked), device=picked.device), picked]
        return _rows(reward) + _rows(gamma) * (1.0 - _rows(terminated)) * next_quantiles

    def loss(self, out: Tensor, action: Tensor, target: Tensor, weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        quantiles = out[torch.arange(len(action), device=action.device), action.long()]
        per_sample = quantile_huber_loss(quantiles, target, self.tau, self.kappa)
        loss = per_sample.mean() if weight is None else (weight * per_sample).mean()
        return loss, quantiles.detach().mean(dim=-1), per_sample.detach()


def categorical_projection(
    next_probs: Tensor,
    reward: Tensor,
    terminated: Tensor,
    gamma: float | Tensor,
    support: Tensor,
    bounds: tuple[float, float] | None = None,
    dense: bool | None = None,
) -> Tensor:
    """Projects the distribution of `r + gamma * (1 - terminated) * Z'` onto `support`: `(batch, atoms)`.

    `next_probs` `(batch, atoms)` are Z' probabilities on `support` (evenly spaced); shifted atoms
    outside `[support[0], support[-1]]` are clipped to the ends; each shifted atom's mass is split
    between its two neighbours in proportion to closeness (all of it when it lands on an atom), so
    every row still sums to 1. n-step rows pass their `gamma ** k` as `gamma` `(batch,)`.
    `bounds`: `(support[0], support[-1])` as floats, when the caller has them (no device read).
    `dense`: spread the mass with one `(batch, atoms, atoms)` weight product instead of `scatter_add_`,
    whose CUDA kernel adds in a varying order (atomics); None: dense on CUDA under
    `torch.use_deterministic_algorithms` (`--deterministic`), scatter elsewhere (the CPU's results stay).
    """
    # the support is float32 under every precision: project at least in float32 (bf16 weights)
    next_probs = next_probs.to(torch.promote_types(next_probs.dtype, support.dtype))
    v_min, v_max = bounds if bounds is not None else (float(support[0]), float(support[-1]))
    delta = (v_max - v_min) / (len(support) - 1)
    shifted = _rows(reward) + _rows(gamma) * (1.0 - _rows(terminated)) * support
    position = (shifted.clamp(v_min, v_max) - v_min) / delta  # fractional atom index in [0, atoms - 1]
    if dense is None:
        dense = next_probs.is_cuda and torch.are_deterministic_algorithms_enabled()
    if dense:  # each atom's mass goes to atom j in proportion max(0, 1 - |position - j|): plain sums
        atoms = torch.arange(len(support), device=position.device, dtype=position.dtype)
        share = (1.0 - (position.unsqueeze(-1) - atoms).abs()).clamp(min=0.0)  # (batch, atoms, atoms)
        return (next_probs.unsqueeze(-1) * share).sum(dim=1)
    lower, upper = position.floor(), position.ceil()
    lower_mass = next_probs * (upper - position)
    upper_mass = next_probs * (position - lower)
    lower_mass = torch.where(upper == lower, next_probs, lower_mass)  # on an atom: all of it there
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(1, lower.long(), lower_mass)
    projected.scatter_add_(1, upper.long(), upper_mass)
    return projected


def quantile_huber_loss(quantiles: Tensor, target: Tensor, tau: Tensor, kappa: float = 1.0) -> Tensor:
    """QR-DQN's loss per sample `(batch,)`: sum over the N predicted quantiles of the mean over targets.

    `quantiles` `(batch, N)` at fractions `tau` `(N,)`, `target` `(batch, M)` samples of the target
    distribution. For `u = target_j - quantile_i`: `|tau_i - 1{u < 0}| * huber_kappa(u) / kappa`.
    """
    u = target.detach().unsqueeze(1) - quantiles.unsqueeze(2)  # (batch, N, M)
    huber = torch.where(u.abs() <= kappa, 0.5 * u.pow(2), kappa * (u.abs() - 0.5 * kappa))
    weight = (tau.view(1, -1, 1) - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * huber / kappa).mean(dim=2).sum(dim=1)


def _rows(value: float | Tensor) -> Any:
    """A per-row value as a column `(batch, 1)` that broadcasts over atoms (floats pass through)."""
    if isinstance(value, Tensor):
        return value.reshape(-1, 1).to(value.dtype if value.is_floating_point() else torch.float32)
    return value


def build_value_head(spec: str | Mapping[str, Any] | None, loss: str = "mse") -> ValueHead:
    """The head a spec names: `expected` (None), or `{"kind": "c51", "atoms", "v_min", "v_max"}` /
    `{"kind": "qr", "quantiles"}`. Impossible settings are a one-line `ConfigError`."""
    options: dict[str, Any] = {"kind": spec} if isinstance(spec, str) or spec is None else dict(spec)
    kind = options.pop("kind", None) or "expected"
    if kind == "expected":
        return ExpectedValue(loss)
    if kind == "c51":  # the constructors hold the defaults and check the values
        return Categorical(**{key: options[key] for key in ("atoms", "v_min", "v_max") if key in options})
    if kind == "qr":
        return Quantile(**{key: options[key] for key in ("quantiles",) if key in options})
    raise ConfigError(f"unknown value head {kind!r}; choose one of {', '.join(HEADS)}")
