"""The update machinery around `DQN.td_target` and `DQN.td_loss`: one round's gradient steps, the
batched target pass, and the running sums of the log, for `DQN` (which sets the attributes below)."""

from __future__ import annotations

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor

from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.learner.optimizer_steps import OptimizerSteps
from dqn_lightning.learner.rng_state import OwnGenerators
from dqn_lightning.learner.td import TDLoss
from dqn_lightning.learner.value_heads import ValueHead
from dqn_lightning.replay.batch import ReplayBatch


class TDUpdates(OptimizerSteps):
    """One round's gradient steps for the subclass (`DQN`), which defines the hooks `td_target`
    and `td_loss` and sets the attributes below."""

    q_network: torch.nn.Module
    value_head: ValueHead
    gamma: float
    noisy: bool
    _generators: OwnGenerators
    _lean_updates: bool
    _target_pass: str  # "builtin", "stacked" or "each": how td_target is called (see target_pass_of)

    def td_target(self, batch: ReplayBatch) -> Tensor:
        raise NotImplementedError

    def td_loss(self, batch: ReplayBatch, target: Tensor) -> TDLoss:
        raise NotImplementedError

    def _learn(
        self,
        batch: ReplayBatch,
        optimizer: LightningOptimizer,
        last_round: bool,
        losses: list[Tensor],
        sums: tuple[Tensor, Tensor],
    ) -> Tensor | None:
        """One gradient step per minibatch of one round `(gradient_steps, batch_size, ...)`, each with
        `td_target` and `td_loss`; appends each loss to `losses`, adds the round's loss and Q(s, a)
        mean to the running `sums`, and returns the `td_error`s `(gradient_steps, batch_size)` as
        the new priorities when the batch has PER slots."""
        n_minibatches = batch.action.shape[0]
        lean, mode = self._lean_updates, self._target_pass
        minibatches = batch.minibatches()
        td_errors, round_losses, q_means = [], [], []
        step = self.gradient_step  # a local count: nn.Module's setattr costs microseconds per update
        sync_every = self.target_update_interval if self.target_network is not None else 0
        start = 0
        while start < n_minibatches:
            # the bootstrap network stays fixed until the next target copy, so the targets of
            # all minibatches before it can come from one batched forward pass
            end = min(n_minibatches, start + self._updates_before_target_changes(step))
            part = batch if (start, end) == (0, n_minibatches) else stacked_slice(batch, start, end)
            if mode == "builtin" and self.double_q:  # the online choice changes with every update
                next_out = self._bootstrap_pass(part.next_obs)
            elif mode != "each":
                targets = self.td_target(part) if mode == "stacked" else self._builtin_target(part)
            for k in range(start, end):
                minibatch = minibatches[k]
                if mode == "each":  # the override sees the network as of this update
                    target = self.td_target(minibatch)
                elif mode == "builtin" and self.double_q:
                    target = self._builtin_target(minibatch, next_out[k - start])
                else:
                    target = targets[k - start]
                if self.noisy:  # fresh noise for each update
                    resample_noise(self.q_network, self._generators.noise)
                loss, q_taken, td_error = self.td_loss(minibatch, target)
                through_lightning = not lean or (last_round and k == n_minibatches - 1)
                self._update(optimizer, loss, through_lightning=through_lightning)
                step += 1
                if sync_every and step % sync_every == 0:
                    self.sync_target()
                round_losses.append(loss.detach())
                q_means.append(q_taken.detach())
                if batch.slot is not None:
                    td_errors.append(td_error.detach())
            start = end
        self.gradient_step = step
        # added round by round, so that the float sums are the same however many rounds a batch holds
        loss_sum, q_sum = sums
        if len(round_losses) == 1:
            loss_sum.add_(round_losses[0])
            q_sum.add_(q_means[0].mean())
        else:
            loss_sum.add_(torch.stack(round_losses).sum())
            q_sum.add_(torch.stack(q_means).mean(dim=1).sum())
        losses += round_losses
        return torch.stack(td_errors) if td_errors else None

    @torch.no_grad()
    def _builtin_target(self, batch: ReplayBatch, next_out: Tensor | None = None) -> Tensor:
        """The built-in `td_target` for one minibatch `(batch, ...)` or stacked ones `(k, batch, ...)`:
        the value head's target from the bootstrap network's outputs for `next_obs` (`next_out`
        `(batch, ...)`, when one pass over more minibatches made them already)."""
        stacked = batch.action.dim() == 2
        reward = batch.reward if stacked else batch.reward[None]
        next_obs = batch.next_obs if stacked else batch.next_obs[None]
        if next_out is None:
            next_out = self._bootstrap_pass(next_obs).flatten(0, 1)
        gamma: float | Tensor = self.gamma if batch.steps is None else self.gamma ** batch.steps.flatten()
        online = self.q_network(next_obs.flatten(0, 1)) if self.double_q else None
        mask = batch.next_mask.flatten(0, batch.next_mask.dim() - 2) if batch.next_mask is not None else None
        target = self.value_head.target(reward.flatten(), batch.terminated.flatten(), gamma, next_out, online, mask)
        return target.view(*batch.reward.shape, *target.shape[1:])

    @torch.no_grad()
    def _bootstrap_pass(self, next_obs: Tensor) -> Tensor:
        """The bootstrap network's outputs `(k, batch, ...)` for `(k, batch, *obs_shape)` next observations,
        in one pass (the target network's noise redrawn for it)."""
        bootstrap = self.target_network if self.target_network is not None else self.q_network
        if self.noisy and bootstrap is self.target_network:
            resample_noise(bootstrap, self._generators.noise)
        out = bootstrap(next_obs.flatten(0, 1))
        return out.view(*next_obs.shape[:2], *out.shape[1:])


def target_pass_of(cls: type, base: type) -> str:
    """How the update calls `cls.td_target`: `builtin` (not overridden: the batched built-in pass),
    `stacked` (an override whose class, or a class below it, sets `stacked_targets`: given the
    minibatches up to the next target copy at once) or `each` (any other override: one minibatch
    at a time, just before its update). An override is never skipped."""
    if cls.td_target is base.td_target:  # type: ignore[attr-defined]
        return "builtin"
    mro = cls.__mro__
    defines_target = next(i for i, klass in enumerate(mro) if "td_target" in vars(klass))
    declares_stacked = next(i for i, klass in enumerate(mro) if "stacked_targets" in vars(klass))
    return "stacked" if declares_stacked <= defines_target and cls.stacked_targets else "each"  # type: ignore[attr-defined]


def stacked_slice(batch: ReplayBatch, start: int, end: int) -> ReplayBatch:
    """Minibatches `start:end` of a stacked batch, still stacked."""
    return ReplayBatch._make([value[start:end] if value is not None else None for value in batch])
