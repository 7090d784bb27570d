"""A Q-network as a policy: epsilon-greedy actions for `EnvLoop`, evaluation, `play.py` and the exports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from dqn_lightning.acting.action_masks import random_legal
from dqn_lightning.learner.networks import QNetwork
from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.learner.td import legal_q

if TYPE_CHECKING:
    from dqn_lightning.learner.module import DQN


@torch.no_grad()
def epsilon_greedy(
    dqn: DQN,
    obs: np.ndarray,
    epsilon: float = 0.0,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Epsilon-greedy actions `(n,)` int64 of `dqn` for observations `(n, *obs_shape)` (see `DQN.act`).

    Runs the online network on the module's device, and not at all when every action is random.
    """
    draws = exploration(dqn, obs.shape[0], epsilon, rng, mask)
    if draws is not None and draws[0].all():
        return draws[1]
    if dqn.noisy and dqn.training:  # fresh noise for each acting step (mean weights in eval mode)
        resample_noise(dqn.q_network, dqn._generators.noise)
    if mask is None:
        greedy = dqn.q_network.greedy_numpy(obs) if isinstance(dqn.q_network, QNetwork) else None
        if greedy is None:
            greedy = dqn(torch.as_tensor(obs, device=dqn.device)).argmax(dim=1).cpu().numpy()
    else:
        q = dqn(torch.as_tensor(obs, device=dqn.device))
        greedy = legal_q(q, torch.as_tensor(mask, dtype=torch.bool, device=q.device)).argmax(dim=1).cpu().numpy()
    return np.where(draws[0], draws[1], greedy) if draws is not None else greedy


def exploration(
    dqn: DQN, n: int, epsilon: float, rng: np.random.Generator | None = None, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Which of `n` rows explore `(n,)` bool, and their random actions `(n,)` int64 (among the
    legal ones under `mask`); None at epsilon 0, when no draw is made."""
    if epsilon <= 0.0:
        return None
    # one uniform draw u per row: explore when u < epsilon, and then u / epsilon is
    # itself uniform on [0, 1), which picks the random action (the k-th legal one)
    u = np.asarray((rng if rng is not None else dqn._generators.numpy).random(n))
    if mask is None:
        return u < epsilon, (u / epsilon * dqn.n_actions).astype(np.int64)
    return u < epsilon, random_legal(u / epsilon, mask)
