"""Action masks, by hand: illegal actions are never the greedy pick, the random pick or the bootstrap's max."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_lightning import DQN
from dqn_lightning.acting.action_masks import infos_mask, random_legal
from dqn_lightning.learner.td import double_td_target, td_target
from dqn_lightning.learner.value_heads import Categorical, Quantile

T, F = True, False


def test_the_bootstrap_max_skips_the_next_states_illegal_actions() -> None:
    reward, terminated = torch.tensor([1.0, 1.0, 1.0]), torch.zeros(3)
    next_q = torch.tensor([[1.0, 5.0, 3.0], [1.0, 5.0, 3.0], [1.0, 5.0, 3.0]])
    # row 0: the unmasked max (5) is illegal -> 3; row 1: one legal action -> 1; row 2: none legal -> all count
    mask = torch.tensor([[T, F, T], [T, F, F], [F, F, F]])
    target = td_target(reward, terminated, next_q, 0.5, mask)
    torch.testing.assert_close(target, torch.tensor([1 + 0.5 * 3, 1 + 0.5 * 1, 1 + 0.5 * 5]))
    torch.testing.assert_close(td_target(reward, terminated, next_q, 0.5), torch.full((3,), 3.5))  # no mask: 5


def test_double_dqn_picks_the_best_legal_action_of_the_online_network() -> None:
    online = torch.tensor([[0.0, 9.0, 1.0]])  # would pick action 1, which is illegal -> action 2
    target_q = torch.tensor([[4.0, 7.0, 2.0]])
    mask = torch.tensor([[T, F, T]])
    assert double_td_target(torch.zeros(1), torch.zeros(1), target_q, online, 1.0, mask).item() == 2.0
    assert double_td_target(torch.zeros(1), torch.zeros(1), target_q, online, 1.0).item() == 7.0


@pytest.mark.parametrize("head", [Categorical(atoms=3, v_min=-1.0, v_max=1.0), Quantile(quantiles=2)])
def test_distributional_heads_bootstrap_from_the_best_legal_action(head: Categorical | Quantile) -> None:
    # action 0 has the higher mean but is illegal: the target follows action 1's distribution
    if isinstance(head, Categorical):  # logits: action 0 all mass on +1, action 1 all mass on -1
        next_out = torch.tensor([[[-50.0, -50.0, 50.0], [50.0, -50.0, -50.0]]])
        want = torch.tensor([[1.0, 0.0, 0.0]])  # r 0, gamma 1: the mass stays on -1
    else:  # quantiles: action 0 at (1, 3), action 1 at (-2, 0)
        next_out = torch.tensor([[[1.0, 3.0], [-2.0, 0.0]]])
        want = torch.tensor([[-2.0, 0.0]])
    mask = torch.tensor([[F, T]])
    target = head.target(torch.zeros(1), torch.zeros(1), 1.0, next_out, None, mask)
    torch.testing.assert_close(target, want, atol=1e-6, rtol=0)


def test_the_greedy_action_is_the_best_legal_one_and_exploration_draws_only_legal_ones() -> None:
    model = DQN((2,), 3, hidden_sizes=(4,), eval_episodes=0)
    with torch.no_grad():  # Q = (0, 10, 5) whatever the observation: action 1 is the unmasked greedy one
        for p in model.q_network.parameters():
            p.zero_()
        model.q_network._linears[-1].bias.copy_(torch.tensor([0.0, 10.0, 5.0]))
    obs = np.zeros((4, 2), dtype=np.float32)
    mask = np.array([[T, F, T], [T, F, F], [F, F, F], [T, T, T]])
    assert model.act(obs).tolist() == [1, 1, 1, 1]
    assert model.act(obs, mask=mask).tolist() == [2, 0, 1, 1]  # row 2: nothing legal -> all count
    rng = np.random.default_rng(0)
    drawn = np.stack([model.act(obs[:2], epsilon=1.0, rng=rng, mask=mask[:2]) for _ in range(400)])
    assert set(drawn[:, 0].tolist()) == {0, 2} and set(drawn[:, 1].tolist()) == {0}
    assert 150 < (drawn[:, 0] == 0).sum() < 250  # uniform over the two legal ones


def test_random_legal_maps_uniform_draws_onto_the_legal_actions_in_order() -> None:
    legal = np.array([[F, T, F, T], [F, F, F, F]])
    # two legal actions (1, 3): u in [0, 0.5) -> 1, [0.5, 1) -> 3; none legal: all four
    assert random_legal(np.array([0.1, 0.1]), legal).tolist() == [1, 0]
    assert random_legal(np.array([0.6, 0.99]), legal).tolist() == [3, 3]


def test_vector_infos_update_only_the_envs_that_reported_a_mask() -> None:
    current = np.array([[T, T], [T, F]])
    infos = {"action_mask": np.array([[0, 1], [0, 0]], dtype=np.int8), "_action_mask": np.array([T, F])}
    assert infos_mask(infos, current).tolist() == [[F, T], [T, F]]
    assert infos_mask({}, current) is current and infos_mask({}, None) is None
