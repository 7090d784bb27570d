"""What the buffer hands the learner: a batch of transitions as CPU tensors (`ReplayBatch`)."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

Batch = TypeVar("Batch", bound=Any)  # a NamedTuple of tensors (or None): ReplayBatch, SequenceBatch


def unstacked(batch: Batch) -> list[Batch]:
    """A stacked batch `(k, ...)` of any NamedTuple of tensors as k batches of views `(...)`."""
    fields = [value.unbind(0) if value is not None else None for value in batch]
    return [
        type(batch)._make([value[k] if value is not None else None for value in fields])
        for k in range(len(batch.action))
    ]


class ReplayBatch(NamedTuple):
    """A batch of transitions as CPU tensors; Lightning moves it to the module's device.

    Shapes below are for one batch; `ReplayDataset` may stack several along a leading axis.
    """

    obs: Tensor  # (batch, *obs_shape), dtype of the observation space
    action: Tensor  # (batch,) int64
    reward: Tensor  # (batch,) float32
    next_obs: Tensor  # (batch, *obs_shape)
    terminated: Tensor  # (batch,) float32, 1.0 where the episode really ended (not a time-limit cut)
    # (batch,) float32: rewards summed in `reward`, so the bootstrap is discounted by gamma**steps;
    # None means 1 for every row (1-step returns)
    steps: Tensor | None = None
    weight: Tensor | None = None  # (batch,) float32 importance-sampling weights (prioritized replay)
    next_mask: Tensor | None = None  # (batch, n_actions) bool: next_obs's legal actions (action masks)
    slot: Tensor | None = None  # (batch,) int64 buffer slots, for priority updates (prioritized replay)
    # (batch, K + 1, *frame_shape): frame-stacked 1-step transitions keep their frames once, and
    # `obs` / `next_obs` are its first and last K (views); None for every other buffer
    frames: Tensor | None = None

    def minibatches(self) -> list[ReplayBatch]:
        """The minibatches of a stacked batch `(k, batch, ...)` as k batches of views `(batch, ...)`."""
        return unstacked(self)

    def to_device(self, device: torch.device) -> ReplayBatch:
        """The batch on `device`, copying each frame once: `obs` and `next_obs` become views of the
        moved `frames` again (moving them as they are would copy the shared frames twice)."""
        device = torch.device(device)
        if device.type == "cpu":  # the buffer's batches are CPU tensors: nothing to move
            return self
        non_blocking = device.type == "cuda"  # as Lightning moves batches: not on MPS
        moved = {
            name: value.to(device, non_blocking=non_blocking) if isinstance(value, Tensor) else value
            for name, value in self._asdict().items()
            if name not in ("obs", "next_obs") or self.frames is None
        }
        if self.frames is not None:
            frames, axis = moved["frames"], self.action.dim()  # the stack axis follows the batch axes
            stack = frames.shape[axis] - 1
            moved["obs"], moved["next_obs"] = frames.narrow(axis, 0, stack), frames.narrow(axis, 1, stack)
        return ReplayBatch(**moved)
