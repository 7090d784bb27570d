"""A conservative Q-learning penalty (CQL(H), Kumar et al. 2020, discrete actions) added to DQN's loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.td import TDLoss, q_of_actions
from dqn_lightning.replay.batch import ReplayBatch


class ConservativeDQN(DQN):
    """DQN's TD loss plus `cql_alpha * mean(logsumexp_a Q(s, a) - Q(s, a_data))`: it pushes down the
    Q-values of actions the replay did not take, against the over-estimates that bootstrapping
    from them brings (the fix offline RL needs; online it only makes the agent more cautious).

    Args (beyond DQN's): `cql_alpha` the penalty's weight. For DQN's expected-value head (MSE/Huber).
    """

    def __init__(self, *args: Any, cql_alpha: float = 0.5, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.value_head.outputs_per_action != 1:
            raise ConfigError("the CQL penalty is written for Q-values: use it without a C51 or QR value head")
        self.cql_alpha = cql_alpha

    def td_loss(self, batch: ReplayBatch, target: Tensor) -> TDLoss:
        q = self.q_network(batch.obs)  # one forward for both terms
        loss, q_taken, td_error = self.value_head.loss(q, batch.action, target, batch.weight)
        penalty = (torch.logsumexp(q, dim=1) - q_of_actions(q, batch.action)).mean()
        return TDLoss(loss + self.cql_alpha * penalty, q_taken, td_error)
