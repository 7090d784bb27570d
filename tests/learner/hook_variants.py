"""DQN subclasses that override the update's hooks in ways a test can see (and a DDP probe can import)."""

from __future__ import annotations

from torch import Tensor

from dqn_lightning import DQN, ReplayBatch
from dqn_lightning.learner.td import TDLoss

CONSTANT = -5.0  # the target ConstantTarget drives every Q(s, a) to (CartPole never learns a negative Q)
PRIORITY = 7.0  # the td_error CustomPriority reports for every row


class ZeroLoss(DQN):
    """A loss of exactly zero (with a graph): no update may move a weight."""

    def td_loss(self, batch: ReplayBatch, target: Tensor) -> TDLoss:
        q = self.q_network(batch.obs)
        taken = q.gather(1, batch.action[:, None]).squeeze(1)
        return TDLoss((q * 0.0).sum(), taken.detach(), target - taken.detach())


class ConstantTarget(DQN):
    """Every target is CONSTANT: Q(s, a) of every taken action goes there. Called per minibatch;
    records the shapes it was given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.target_shapes: list[tuple[int, ...]] = []

    def td_target(self, batch: ReplayBatch) -> Tensor:
        self.target_shapes.append(tuple(batch.reward.shape))
        return batch.reward * 0.0 + CONSTANT


class StackedConstantTarget(ConstantTarget):
    """The same target, stated batchable: given the minibatches up to the next target copy at once."""

    stacked_targets = True


class CustomPriority(DQN):
    """The built-in loss, but every row's td_error is PRIORITY: the buffer's priorities must say so."""

    def td_loss(self, batch: ReplayBatch, target: Tensor) -> TDLoss:
        loss, q_taken, td_error = super().td_loss(batch, target)
        return TDLoss(loss, q_taken, td_error * 0.0 + PRIORITY)


class ConstantTargetAndPriority(ConstantTarget, CustomPriority):
    """Both overrides at once (the DDP probe checks both in one run)."""
