"""The update machinery around `DQN.td_target` and `DQN.td_loss`: one round's gradient steps, when the
targets are computed (one batched pass, or per minibatch), and the running sums of the log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor

from dqn_lightning.acting.interface import StepOutput
from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.private_api import writes_logs_now
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.dataset import DeferredBatch, Rounds

if TYPE_CHECKING:
    from dqn_lightning.learner.module import DQN


class UpdateRounds:
    """Runs a round's minibatches `(gradient_steps, batch_size, ...)` through a `DQN`'s hooks, one
    gradient step each, in the order of one env-step-then-update loop.

    `target_pass` says how `td_target` is called (see `target_pass_of`). `lean`: all updates but a
    batch's last skip Lightning's optimizer wrapper (set at fit start: one process, no gradient
    scaler), so its per-update hook calls are paid once per batch.
    """

    def __init__(self, target_pass: str) -> None:
        self.target_pass = target_pass
        self.lean = False

    def train_batch(self, dqn: DQN, batch: DeferredBatch | ReplayBatch) -> StepOutput:
        """`DQN.training_step`: each round of a `DeferredBatch` (the env loop's steps, then the draw)
        moved to the module's device and learned from; the priorities written back, the non-finite
        check and the log's running means once per batch. A `ReplayBatch` is one round."""
        optimizer = dqn.optimizers()
        assert isinstance(optimizer, LightningOptimizer)  # one optimizer: configure_optimizers
        rounds: Rounds | None = None
        if isinstance(batch, DeferredBatch):
            rounds = batch.rounds(pin=dqn.device.type == "cuda")
        losses: list[Tensor] = []
        output: StepOutput = {}
        # the running sums as views, taken once per batch (an index op costs as much as an add)
        sums = (dqn._log_sums[0], dqn._log_sums[1])
        # on the CPU the drawn batch is where the module is: Lightning's transfer call is skipped
        # unless a subclass hooks into it
        move = rounds is not None and (dqn.device.type != "cpu" or dqn._transfer_hooked)
        follow_lr = dqn.hparams.get("lr_end") is not None
        drawn: ReplayBatch
        for drawn, last in rounds if rounds is not None else ((batch, True),):  # type: ignore[assignment]
            if follow_lr:  # per round: the env-step count moved
                dqn.optimizer_steps.follow_lr_schedule(dqn, optimizer.optimizer)
            host_slot = drawn.slot  # PER slots go back to the buffer from the host copy: no sync
            minibatches = dqn.trainer.strategy.batch_to_device(drawn) if move else drawn
            priority = self.learn(dqn, minibatches, optimizer, last, losses, sums)
            if priority is None:
                continue
            if rounds is not None:  # written before the next round draws
                rounds.write_priorities(host_slot, priority)  # type: ignore[arg-type]  # PER batches have slots
            else:  # the env loop writes them into its prioritized buffer
                output["slot"], output["priority"] = drawn.slot, priority  # type: ignore[typeddict-item]
        dqn._log_sums[2] += len(losses)  # a Python number: no host-to-device copy
        fault = dqn.optimizer_steps.first_non_finite(torch.stack(losses), dqn.gradient_step)
        if fault is not None:
            output["fault"] = fault
        if writes_logs_now(dqn.trainer):
            # self.log costs about as much as a gradient step, so it runs only when Lightning will
            # write; the values are means over every update since the last write, plotted
            # against gradient steps (a logged "step" is the x-axis of its flush).
            loss_sum, q_sum, count = dqn._log_sums
            dqn.log_dict(
                {"train/loss": loss_sum / count, "train/q_mean": q_sum / count, "step": float(dqn.gradient_step)},
                batch_size=1,
            )
            dqn._log_sums.zero_()
        return output

    def learn(
        self,
        dqn: DQN,
        batch: ReplayBatch,
        optimizer: LightningOptimizer,
        last_round: bool,
        losses: list[Tensor],
        sums: tuple[Tensor, Tensor],
    ) -> Tensor | None:
        """One gradient step per minibatch, each with `td_target` and `td_loss`; appends each loss to
        `losses`, adds the round's loss and Q(s, a) mean to the running `sums`, and returns the
        `td_error`s `(gradient_steps, batch_size)` as the new priorities when the batch has PER slots."""
        if dqn.augmentation is not None:  # the whole round's minibatches in one call, before any target
            batch = dqn.augmentation(batch, dqn._generators.noise)
        n_minibatches = batch.action.shape[0]
        mode = self.target_pass
        minibatches = batch.minibatches()
        td_errors, round_losses, q_means = [], [], []
        step = dqn.gradient_step  # a local count: nn.Module's setattr costs microseconds per update
        sync_every = dqn.target_update_interval if dqn.target_network is not None else 0
        start = 0
        while start < n_minibatches:
            # the bootstrap network stays fixed until the next target copy, so the targets of
            # all minibatches before it can come from one batched forward pass
            end = min(n_minibatches, start + dqn.optimizer_steps.updates_before_target_changes(dqn, step))
            if mode != "each":  # (an override called per minibatch needs no stacked part)
                part = batch if (start, end) == (0, n_minibatches) else stacked_slice(batch, start, end)
                if mode == "builtin" and dqn.double_q:  # the online choice changes with every update
                    next_out = dqn.bootstrap_pass(part.next_obs)
                else:
                    targets = dqn.td_target(part) if mode == "stacked" else dqn.bellman_target(part)
            for k in range(start, end):
                minibatch = minibatches[k]
                if mode == "each":  # the override sees the networks as of this update
                    target = dqn.td_target(minibatch)
                elif mode == "builtin" and dqn.double_q:
                    target = dqn.bellman_target(minibatch, next_out[k - start])
                else:
                    target = targets[k - start]
                if dqn.noisy:  # fresh noise for each update
                    resample_noise(dqn.q_network, dqn._generators.noise)
                loss, q_taken, td_error = dqn.td_loss(minibatch, target)
                through_lightning = not self.lean or (last_round and k == n_minibatches - 1)
                dqn.optimizer_steps.step(dqn, optimizer, loss, through_lightning=through_lightning)
                step += 1
                if sync_every and step % sync_every == 0:
                    dqn.sync_target()
                round_losses.append(loss.detach())
                q_means.append(q_taken.detach())
                if batch.slot is not None:
                    td_errors.append(td_error.detach())
            start = end
        dqn.gradient_step = step
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
