"""Munchausen-DQN (Vieillard, Pietquin and Geist 2020): a scaled log-policy bonus on the reward, and a
soft (entropy-regularised) bootstrap."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dqn_lightning.learner.module import DQN
from dqn_lightning.replay.batch import ReplayBatch


class MunchausenDQN(DQN):
    """DQN whose target adds `alpha * clip(tau * log pi(a|s), l0, 0)` to the reward and bootstraps from
    `sum_a' pi(a'|s') (Q_target(s', a') - tau * log pi(a'|s'))`, with `pi = softmax(Q_target / tau)`.

    Args (beyond DQN's): `m_tau` the entropy temperature, `m_alpha` the Munchausen scale, `m_l0` the
    clip of the log-policy (the paper: 0.03, 0.9, -1). Needs a target network. The paper's targets are
    1-step; with n-step returns the bonus is the first action's only.
    """

    def __init__(self, *args: Any, m_tau: float = 0.03, m_alpha: float = 0.9, m_l0: float = -1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.m_tau, self.m_alpha, self.m_l0 = m_tau, m_alpha, m_l0

    def scaled_log_policy(self, q: Tensor) -> Tensor:
        """`tau * log softmax(q / tau)` `(batch, n_actions)`, computed stably from the max-shifted Q."""
        return (
            q
            - q.max(dim=1, keepdim=True).values
            - self.m_tau * torch.logsumexp((q - q.max(dim=1, keepdim=True).values) / self.m_tau, dim=1, keepdim=True)
        )

    @torch.no_grad()
    def td_target(self, batch: ReplayBatch) -> Tensor:
        assert self.target_network is not None, "Munchausen-DQN needs a target network"
        q_now, q_next = self.target_network(batch.obs), self.target_network(batch.next_obs)
        log_pi_taken = self.scaled_log_policy(q_now).gather(1, batch.action[:, None]).squeeze(1)
        bonus = self.m_alpha * log_pi_taken.clamp(min=self.m_l0, max=0.0)
        log_pi_next = self.scaled_log_policy(q_next)
        soft_next = (log_pi_next.div(self.m_tau).exp() * (q_next - log_pi_next)).sum(dim=1)
        gamma = self.gamma if batch.steps is None else self.gamma**batch.steps
        return batch.reward + bonus + gamma * (1.0 - batch.terminated) * soft_next
