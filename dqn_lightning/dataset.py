"""The replay buffer seen by Lightning: an endless stream of ready-made batches."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader, IterableDataset

from dqn_lightning.buffer import ReplayBatch, ReplayBuffer


class ReplayDataset(IterableDataset[ReplayBatch]):
    """Yields batches sampled from a live replay buffer, forever.

    Each item stacks `gradient_steps` independent minibatches: tensors have shape
    `(gradient_steps, batch_size, ...)`, and `DQN.training_step` takes one gradient step per
    minibatch, so Lightning's per-step cost is paid once per `gradient_steps` updates.

    Use it with `DataLoader(batch_size=None, num_workers=0)` (see `replay_dataloader`): the
    batches are already made, and a worker process would read a stale copy of the buffer.
    """

    def __init__(self, buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1) -> None:
        if batch_size < 1 or gradient_steps < 1:
            raise ValueError(f"batch_size and gradient_steps must be >= 1, got {batch_size} and {gradient_steps}")
        self.buffer = buffer
        self.batch_size = batch_size
        self.gradient_steps = gradient_steps

    def __iter__(self) -> Iterator[ReplayBatch]:
        if len(self.buffer) < self.batch_size:
            raise RuntimeError(
                f"the replay buffer holds {len(self.buffer)} transitions, fewer than one batch of "
                f"{self.batch_size}: add the EnvLoop callback, which fills the buffer at fit start, "
                f"with learning_starts >= {self.batch_size}"
            )
        while True:
            yield self.buffer.sample(self.batch_size, num_batches=self.gradient_steps)


def replay_dataloader(buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1) -> DataLoader[ReplayBatch]:
    """The DataLoader to pass as `trainer.fit(model, train_dataloaders=...)`."""
    return DataLoader(ReplayDataset(buffer, batch_size, gradient_steps), batch_size=None, num_workers=0)
