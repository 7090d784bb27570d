"""Expected SARSA: bootstrap from the expectation of Q under the epsilon-greedy policy the agent acts by."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.learner.module import DQN
from dqn_lightning.replay.batch import ReplayBatch


class ExpectedSarsa(DQN):
    """The target `r + gamma * (1 - terminated) * sum_a' pi(a'|s') Q_target(s', a')`, where `pi` is
    epsilon-greedy in `Q_target` with the env loop's current epsilon: on-policy for the behaviour,
    and Q-learning again once epsilon reaches 0.

    It uses the frozen target network and the batch alone, so it states `stacked_targets`: the update
    gives it the minibatches up to the next target copy stacked `(k, batch, ...)`, in one forward.

    Args (beyond DQN's): `sarsa_epsilon` a fixed epsilon for the target's policy instead (None: the
    env loop's, 0 without one).
    """

    stacked_targets = True

    def __init__(self, *args: Any, sarsa_epsilon: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sarsa_epsilon = sarsa_epsilon

    def behaviour_epsilon(self) -> float:
        """The epsilon of the policy the target follows: fixed, or the env loop's at this env step."""
        if self.sarsa_epsilon is not None:
            return self.sarsa_epsilon
        loop = find_env_loop(self.trainer) if self._trainer is not None else None
        return loop.epsilon if loop is not None else 0.0

    @torch.no_grad()
    def td_target(self, batch: ReplayBatch) -> Tensor:
        rows = batch.reward.shape  # (batch,) or (k, batch)
        bootstrap = self.target_network if self.target_network is not None else self.q_network
        next_q = bootstrap(batch.next_obs.flatten(0, len(rows) - 1)).view(*rows, self.n_actions)
        epsilon = self.behaviour_epsilon()
        greedy = torch.nn.functional.one_hot(next_q.argmax(dim=-1), self.n_actions).to(next_q.dtype)
        policy = (1.0 - epsilon) * greedy + epsilon / self.n_actions
        gamma = self.gamma if batch.steps is None else self.gamma**batch.steps
        return batch.reward + gamma * (1.0 - batch.terminated) * (policy * next_q).sum(dim=-1)
