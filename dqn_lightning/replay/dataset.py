"""The replay buffer seen by Lightning: an endless stream of ready-made batches, and a DataModule around it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from dqn_lightning.bounds import check_bounds
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.sequences import SequenceBatch

Drawn = ReplayBatch | SequenceBatch  # what a draw returns: transitions, or sequences (a sequence buffer)


class Collector(Protocol):
    """What fills the buffer between draws (the `EnvLoop`): one round's env steps per `collect()`."""

    def collect(self) -> None:
        """Takes one round's env steps (every env `train_freq` times), adding each transition."""

    @property
    def budget_spent(self) -> bool:
        """True once no further round may start (the run's budget is spent)."""


class DeferredBatch:
    """A Lightning batch not drawn yet: its `rounds()`, iterated by `DQN.training_step`, collect
    and draw each round just before its updates.

    Lightning fetches one batch ahead of the one it trains on. Sampled at fetch time, batch
    i+1 would be drawn before the env steps of batch i, and a checkpoint would hold a sampler
    state one draw ahead of its data, so a resumed run would sample differently. Deferring the
    draw to just before the batch is used makes sampling happen at a fixed point of each step.
    """

    __slots__ = ("dataset",)

    def __init__(self, dataset: ReplayDataset) -> None:
        self.dataset = dataset

    def draw(self, pin: bool = False) -> Drawn:
        """One round's minibatches drawn now, with no env steps first."""
        return self.dataset.draw(pin)

    def rounds(self, pin: bool = False) -> Rounds:
        """This batch's rounds (observations in pinned memory with `pin`, for a GPU)."""
        return Rounds(self.dataset, pin)

    def one_round(self, pin: bool = False) -> Drawn:
        """One round now (the collector's env steps, then the draw), for a plain `training_step`:
        one minibatch `(batch_size, ...)`, or `(gradient_steps, batch_size, ...)` when a round has more."""
        drawn, _ = next(iter(self.rounds(pin)))
        return drawn.minibatches()[0] if self.dataset.gradient_steps == 1 else drawn


class Rounds:
    """One Lightning batch's rounds. Each round lets the dataset's collector take its env steps,
    then draws `(gradient_steps, batch_size, ...)` minibatches: act, step, add, sample, update,
    so M rounds in one batch run exactly as M one-round batches would, while
    Lightning's per-batch cost is paid once.

    Iterating yields `(minibatches, last)`: `last` marks the batch's final round, which ends
    early once the collector's budget is spent. After a round's updates, `write_priorities`
    gives a prioritized buffer its new priorities, before the next round draws.
    """

    __slots__ = ("dataset", "pin")

    def __init__(self, dataset: ReplayDataset, pin: bool = False) -> None:
        self.dataset, self.pin = dataset, pin

    def __iter__(self) -> Iterator[tuple[Drawn, bool]]:
        collector, count = self.dataset.collector, self.dataset.rounds_per_batch
        for i in range(count):
            if collector is not None:
                collector.collect()
            last = i == count - 1 or (collector is not None and collector.budget_spent)
            yield self.dataset.draw(self.pin), last
            if last:
                return

    def write_priorities(self, slot: Tensor, priority: Tensor) -> None:
        """A round's new priorities `(gradient_steps, batch_size)` for the buffer `slot`s it drew."""
        buffer = self.dataset.buffer
        if not hasattr(buffer, "update_priorities"):
            raise RuntimeError("the training step returned priorities, but the replay buffer is not prioritized")
        buffer.update_priorities(np.asarray(slot.cpu()), priority.float().cpu().numpy())


class ReplayDataset(IterableDataset[DeferredBatch]):
    """Yields batches from a live replay buffer, forever.

    Each item is one Lightning batch of `rounds_per_batch` rounds (a `DeferredBatch`, drawn just before
    use: see there for why). A round first has the `collector` (the `EnvLoop`, which attaches
    itself when training starts) take its env steps, then stacks `gradient_steps` independent
    minibatches, tensors of shape `(gradient_steps, batch_size, ...)`; `DQN.training_step` takes
    one gradient step per minibatch. Lightning's per-step cost is so paid once per
    `rounds_per_batch * gradient_steps` updates, with the updates in the order of one env-step-then-update loop.

    Use it with `DataLoader(batch_size=None, num_workers=0)` (see `replay_dataloader`): the
    batches are already made, and a worker process would read a stale copy of the buffer.
    """

    def __init__(
        self, buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1, rounds_per_batch: int = 1
    ) -> None:
        check_bounds(batch_size=batch_size, gradient_steps=gradient_steps, rounds_per_batch=rounds_per_batch)
        self.buffer = buffer
        self.batch_size = batch_size
        self.gradient_steps = gradient_steps
        self.rounds_per_batch = rounds_per_batch
        self.collector: Collector | None = None  # None: the rounds draw without env steps between

    def __iter__(self) -> Iterator[DeferredBatch]:
        deferred = DeferredBatch(self)  # stateless: one instance serves every step
        while True:
            yield deferred

    def draw(self, pin: bool = False) -> Drawn:
        """Samples one stacked batch now (observations in pinned memory with `pin`, for a GPU)."""
        if len(self.buffer) < self.batch_size:
            raise RuntimeError(
                f"the replay buffer holds {len(self.buffer)} transitions, fewer than one batch of "
                f"{self.batch_size}: add the EnvLoop callback, which fills the buffer at fit start, "
                f"with learning_starts >= {self.batch_size}"
            )
        return self.buffer.sample(self.batch_size, num_batches=self.gradient_steps, pin=pin)


def replay_dataloader(
    buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1, rounds_per_batch: int = 1
) -> DataLoader[DeferredBatch]:
    """The DataLoader to pass as `trainer.fit(model, train_dataloaders=...)`: rounds of
    (the env loop's `train_freq` steps, `gradient_steps` updates of `batch_size`) per batch
    (`rounds_per_batch` of them)."""
    return DataLoader(
        ReplayDataset(buffer, batch_size, gradient_steps, rounds_per_batch), batch_size=None, num_workers=0
    )


class ReplayDataModule(pl.LightningDataModule):
    """The replay side as a `LightningDataModule`: a buffer, and the endless dataloader drawn from it.

    `trainer.fit(model, datamodule=ReplayDataModule(buffer, batch_size=64))`, with
    `EnvLoop(env)` (no buffer of its own) on the Trainer: the loop fills this module's buffer.
    LightningCLI builds it from YAML, the buffer given as `class_path` / `init_args`
    (see scripts/lightning_cli.yaml). The buffer's contents and sampler state are saved by
    the EnvLoop, once per DDP rank, with the replay files beside each checkpoint.

    Args:
        buffer: the replay buffer (`ReplayBuffer` or `PrioritizedReplayBuffer`) the env loop fills.
        batch_size: transitions per minibatch.
        gradient_steps: minibatches per round, one update each.
        rounds_per_batch: rounds per Lightning batch (see `ReplayDataset`).
    """

    def __init__(
        self, buffer: ReplayBuffer, batch_size: int = 64, gradient_steps: int = 1, rounds_per_batch: int = 1
    ) -> None:
        super().__init__()
        check_bounds(batch_size=batch_size, gradient_steps=gradient_steps, rounds_per_batch=rounds_per_batch)
        self.buffer, self.batch_size, self.gradient_steps = buffer, batch_size, gradient_steps
        self.rounds_per_batch = rounds_per_batch

    def train_dataloader(self) -> DataLoader[DeferredBatch]:
        return replay_dataloader(self.buffer, self.batch_size, self.gradient_steps, self.rounds_per_batch)

    def val_dataloader(self) -> Any:
        # evaluation plays greedy episodes in the module's own env: Lightning asks the datamodule
        # once one is given, so hand it the module's loader (one item per evaluation)
        return self.trainer.lightning_module.val_dataloader()  # type: ignore[union-attr]
