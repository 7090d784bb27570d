"""Double DQN with the target copied after every update (DrQ(eps)) takes its online choice from the
target pass, which then holds the same weights: the same targets as two passes, one pass fewer."""

from __future__ import annotations

import torch

from dqn_lightning.learner.module import DQN
from dqn_lightning.replay.batch import ReplayBatch


def batch(seed: int) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    obs, action, reward = (
        torch.randn(8, 4, generator=g),
        torch.randint(0, 2, (8,), generator=g),
        torch.randn(8, generator=g),
    )
    return ReplayBatch(obs, action, reward, torch.randn(8, 4, generator=g), torch.zeros(8))


def test_the_shortcut_applies_only_where_the_target_is_the_online_network() -> None:
    def steps(**kwargs: object) -> bool:
        dqn = DQN((4,), 2, double=True, eval_episodes=0, **kwargs)  # type: ignore[arg-type]
        return dqn.optimizer_steps.target_is_online(dqn)

    assert steps(target_update_interval=1)
    assert not steps(target_update_interval=2)
    assert not steps(target_update_interval=1, tau=0.5)
    assert not steps(target_update_interval=1, noisy=True)


def test_targets_equal_those_of_a_separate_online_pass_after_updates() -> None:
    torch.manual_seed(0)
    dqn = DQN((4,), 2, double=True, target_update_interval=1, eval_episodes=0, hidden_sizes=(16,))
    optimizer = torch.optim.Adam(dqn.q_network.parameters(), lr=0.01)
    for seed in range(5):  # a few updates, the target copied after each, as the update rounds do
        data = batch(seed)
        loss = dqn.td_loss(data, dqn.td_target(data)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        dqn.sync_target()
    data = batch(99)
    with torch.no_grad():  # by hand: the online network picks, the target network values
        picked = dqn.q_network(data.next_obs).argmax(dim=1, keepdim=True)
        value = dqn.target_network(data.next_obs).gather(1, picked).squeeze(1)  # type: ignore[misc]
    assert torch.equal(dqn.td_target(data), data.reward + dqn.gamma * value)
