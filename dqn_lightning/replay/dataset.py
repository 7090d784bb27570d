"""The replay buffer seen by Lightning: an endless stream of ready-made batches, and a DataModule around it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, IterableDataset

from dqn_lightning.bounds import check_bounds
from dqn_lightning.replay.buffer import ReplayBatch, ReplayBuffer


class DeferredBatch:
    """A batch not drawn yet: `draw()` samples it. `DQN.on_before_batch_transfer` calls it.

    Lightning fetches one batch ahead of the one it trains on. Sampled at fetch time, batch
    i+1 would be drawn before the env steps of batch i, and a checkpoint would hold a sampler
    state one draw ahead of its data, so a resumed run would sample differently. Deferring the
    draw to just before the batch is used makes sampling happen at a fixed point of each step.
    """

    __slots__ = ("dataset",)

    def __init__(self, dataset: ReplayDataset) -> None:
        self.dataset = dataset

    def draw(self, pin: bool = False) -> ReplayBatch:
        return self.dataset.draw(pin)


class ReplayDataset(IterableDataset[DeferredBatch]):
    """Yields batches from a live replay buffer, forever.

    Each batch stacks `gradient_steps` independent minibatches: tensors have shape
    `(gradient_steps, batch_size, ...)`, and `DQN.training_step` takes one gradient step per
    minibatch, so Lightning's per-step cost is paid once per `gradient_steps` updates.
    Items are `DeferredBatch`es that `DQN` draws just before use (see there for why).

    Use it with `DataLoader(batch_size=None, num_workers=0)` (see `replay_dataloader`): the
    batches are already made, and a worker process would read a stale copy of the buffer.
    """

    def __init__(self, buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1) -> None:
        check_bounds(batch_size=batch_size, gradient_steps=gradient_steps)
        self.buffer = buffer
        self.batch_size = batch_size
        self.gradient_steps = gradient_steps

    def __iter__(self) -> Iterator[DeferredBatch]:
        deferred = DeferredBatch(self)  # stateless: one instance serves every step
        while True:
            yield deferred

    def draw(self, pin: bool = False) -> ReplayBatch:
        """Samples one stacked batch now (observations in pinned memory with `pin`, for a GPU)."""
        if len(self.buffer) < self.batch_size:
            raise RuntimeError(
                f"the replay buffer holds {len(self.buffer)} transitions, fewer than one batch of "
                f"{self.batch_size}: add the EnvLoop callback, which fills the buffer at fit start, "
                f"with learning_starts >= {self.batch_size}"
            )
        return self.buffer.sample(self.batch_size, num_batches=self.gradient_steps, pin=pin)


def replay_dataloader(buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1) -> DataLoader[DeferredBatch]:
    """The DataLoader to pass as `trainer.fit(model, train_dataloaders=...)`."""
    return DataLoader(ReplayDataset(buffer, batch_size, gradient_steps), batch_size=None, num_workers=0)


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
        gradient_steps: minibatches per Lightning batch, one update each.
    """

    def __init__(self, buffer: ReplayBuffer, batch_size: int = 64, gradient_steps: int = 1) -> None:
        super().__init__()
        check_bounds(batch_size=batch_size, gradient_steps=gradient_steps)
        self.buffer, self.batch_size, self.gradient_steps = buffer, batch_size, gradient_steps

    def train_dataloader(self) -> DataLoader[DeferredBatch]:
        return replay_dataloader(self.buffer, self.batch_size, self.gradient_steps)

    def val_dataloader(self) -> Any:
        # evaluation plays greedy episodes in the module's own env: Lightning asks the datamodule
        # once one is given, so hand it the module's loader (one item per evaluation)
        return self.trainer.lightning_module.val_dataloader()  # type: ignore[union-attr]
