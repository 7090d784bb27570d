"""What one round of updates computes: Bellman targets from the bootstrap network, the value
head's loss, and one gradient step per minibatch, for `DQN` (which builds the networks)."""

from __future__ import annotations

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor

from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.learner.optimizer_steps import OptimizerSteps
from dqn_lightning.learner.rng_state import OwnGenerators
from dqn_lightning.learner.value_heads import ValueHead
from dqn_lightning.replay.batch import ReplayBatch


class TDUpdates(OptimizerSteps):
    """Targets, losses and one round's gradient steps for the subclass (`DQN`), which sets the
    attributes below."""

    q_network: torch.nn.Module
    value_head: ValueHead
    gamma: float
    noisy: bool
    _generators: OwnGenerators
    _lean_updates: bool

    def _learn(
        self,
        batch: ReplayBatch,
        optimizer: LightningOptimizer,
        last_round: bool,
        losses: list[Tensor],
        sums: tuple[Tensor, Tensor],
    ) -> Tensor | None:
        """One gradient step per minibatch of one round; appends each loss to `losses`, adds the
        round's loss and Q(s, a) mean to the running `sums`, and returns the new priorities
        `(gradient_steps, batch_size)` when the batch has PER slots."""
        n_minibatches = batch.action.shape[0]
        lean = self._lean_updates
        td_errors, round_losses, q_means = [], [], []
        step = self.gradient_step  # a local count: nn.Module's setattr costs microseconds per update
        sync_every = self.target_update_interval if self.target_network is not None else 0
        start = 0
        while start < n_minibatches:
            # the bootstrap network stays fixed until the next target copy, so the targets of
            # all minibatches before it come from one batched forward pass
            end = min(n_minibatches, start + self._updates_before_target_changes(step))
            part = batch if (start, end) == (0, n_minibatches) else _minibatches(batch, start, end)
            if self.double_q:  # the online network's choice changes with every update: its pass per update
                next_out = self._bootstrap_pass(part.next_obs)
            else:
                targets = self.td_targets(part.reward, part.terminated, part.next_obs, part.steps, part.next_mask)
            for k in range(start, end):
                if self.double_q:
                    one = _minibatches(part, k - start, k - start + 1)
                    target = self.td_targets(
                        one.reward, one.terminated, one.next_obs, one.steps, one.next_mask, next_out=next_out[k - start]
                    )[0]
                else:
                    target = targets[k - start]
                weight = batch.weight[k] if batch.weight is not None else None
                if self.noisy:  # fresh noise for each update
                    resample_noise(self.q_network, self._generators.noise)
                loss, q_taken, priority = self._loss(batch.obs[k], batch.action[k], target, weight)
                through_lightning = not lean or (last_round and k == n_minibatches - 1)
                self._update(optimizer, loss, through_lightning=through_lightning)
                step += 1
                if sync_every and step % sync_every == 0:
                    self.sync_target()
                round_losses.append(loss.detach())
                q_means.append(q_taken.detach())
                if batch.slot is not None:
                    td_errors.append(priority)
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
    def td_targets(
        self,
        reward: Tensor,
        terminated: Tensor,
        next_obs: Tensor,
        steps: Tensor | None = None,
        next_mask: Tensor | None = None,
        next_out: Tensor | None = None,
    ) -> Tensor:
        """Bellman targets for stacked minibatches: `(k, batch)` (distributional: `(k, batch, atoms)`)
        from `(k, batch)` rewards and flags and `(k, batch, *obs_shape)` next observations.

        `steps` `(k, batch)`: rewards summed per row (n-step returns), which bootstrap with
        `gamma ** steps`; None for 1-step rows. `next_mask` `(k, batch, n_actions)` bool: the next
        states' legal actions (action masks), which alone the bootstrap may pick; None: all.
        `next_out`: the bootstrap network's outputs for `next_obs` `(k * batch, ...)`, when a pass
        over more minibatches made them already (see `_bootstrap_pass`).
        """
        if next_out is None:
            next_out = self._bootstrap_pass(next_obs).flatten(0, 1)
        gamma: float | torch.Tensor = self.gamma if steps is None else self.gamma ** steps.flatten()
        online = self.q_network(next_obs.flatten(0, 1)) if self.double_q else None
        mask = next_mask.flatten(0, 1) if next_mask is not None else None
        target = self.value_head.target(reward.flatten(), terminated.flatten(), gamma, next_out, online, mask)
        return target.view(*reward.shape, *target.shape[1:])

    @torch.no_grad()
    def _bootstrap_pass(self, next_obs: Tensor) -> Tensor:
        """The bootstrap network's outputs `(k, batch, ...)` for `(k, batch, *obs_shape)` next observations,
        in one pass (the target network's noise redrawn for it)."""
        bootstrap = self.target_network if self.target_network is not None else self.q_network
        if self.noisy and bootstrap is self.target_network:
            resample_noise(bootstrap, self._generators.noise)
        out = bootstrap(next_obs.flatten(0, 1))
        return out.view(*next_obs.shape[:2], *out.shape[1:])

    def td_loss(self, batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The value head's loss (DQN: MSE or Huber TD loss) on one minibatch, and Q(s, a) `(batch,)`."""
        steps = batch.steps[None] if batch.steps is not None else None
        mask = batch.next_mask[None] if batch.next_mask is not None else None
        target = self.td_targets(batch.reward[None], batch.terminated[None], batch.next_obs[None], steps, mask)[0]
        return self._loss(batch.obs, batch.action, target, batch.weight)[:2]

    def _loss(
        self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, Q(s, a), the per-sample priority signal), from the value head."""
        return self.value_head.loss(self.q_network(obs), action, target, weight)


def _minibatches(batch: ReplayBatch, start: int, end: int) -> ReplayBatch:
    """The target inputs of minibatches `start:end` of a stacked batch (the rest left out)."""
    return batch._replace(
        reward=batch.reward[start:end],
        terminated=batch.terminated[start:end],
        next_obs=batch.next_obs[start:end],
        steps=batch.steps[start:end] if batch.steps is not None else None,
        next_mask=batch.next_mask[start:end] if batch.next_mask is not None else None,
    )
