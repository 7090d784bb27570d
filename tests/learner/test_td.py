import pytest
import torch

from dqn_lightning import (
    QNetwork,
    bellman_huber,
    bellman_mse,
    double_td_target,
    linear_schedule,
    q_of_actions,
    td_target,
)


def test_td_target_hand_worked() -> None:
    # gamma 0.9; three transitions: terminated, truncated-by-time-limit, ordinary.
    reward = torch.tensor([1.0, 2.0, 0.5])
    terminated = torch.tensor([1.0, 0.0, 0.0])  # a truncation is stored as terminated = 0
    next_q = torch.tensor([[3.0, 5.0], [4.0, 1.0], [-2.0, -1.0]])
    # by hand: 1 + 0 = 1;  2 + 0.9 * 4 = 5.6;  0.5 + 0.9 * max(-2, -1) = 0.5 - 0.9 = -0.4
    assert td_target(reward, terminated, next_q, gamma=0.9).tolist() == pytest.approx([1.0, 5.6, -0.4])


def test_td_target_gamma_zero_is_reward() -> None:
    reward = torch.tensor([3.0, -1.0])
    assert td_target(reward, torch.zeros(2), torch.ones(2, 4) * 100, gamma=0.0).tolist() == [3.0, -1.0]


def test_q_of_actions_picks_taken_action() -> None:
    q = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert q_of_actions(q, torch.tensor([2, 0])).tolist() == [3.0, 4.0]


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (250, 0.7625), (500, 0.525), (1000, 0.05), (10_000, 0.05)])
def test_linear_schedule_at_chosen_steps(step: int, expected: float) -> None:
    # 1.0 -> 0.05 over 1000 steps: slope 0.00095 per step
    assert linear_schedule(1.0, 0.05, 1000, step) == pytest.approx(expected)


def test_seed_tutorial_schedule_matches_its_decay() -> None:
    # the tutorial: 1.0 minus 5e-4 per learning step, floor 0.01, learning from step 64 on;
    # our preset decays over 2044 steps: 0.99 / 2044 per step ~ 4.84e-4 per step
    assert linear_schedule(1.0, 0.01, 2044, 2044) == pytest.approx(0.01)
    assert linear_schedule(1.0, 0.01, 2044, 1022) == pytest.approx(0.505)


def test_double_td_target_hand_worked() -> None:
    # online picks argmax of [1, 3] -> action 1 and of [5, 2] -> action 0;
    # the target network values them: 10 and 7 (not its own maxima 20 and 9)
    reward = torch.tensor([1.0, 0.0])
    terminated = torch.tensor([0.0, 0.0])
    next_q_target = torch.tensor([[20.0, 10.0], [7.0, 9.0]])
    next_q_online = torch.tensor([[1.0, 3.0], [5.0, 2.0]])
    target = double_td_target(reward, terminated, next_q_target, next_q_online, gamma=0.5)
    assert target.tolist() == pytest.approx([1.0 + 0.5 * 10.0, 0.0 + 0.5 * 7.0])
    terminated_row = double_td_target(reward, torch.tensor([1.0, 0.0]), next_q_target, next_q_online, gamma=0.5)
    assert terminated_row.tolist() == pytest.approx([1.0, 3.5])


def test_huber_is_quadratic_near_and_linear_far() -> None:
    q = torch.tensor([0.5, 3.0])
    target = torch.tensor([0.0, 0.0])
    # by hand: 0.5 * 0.5^2 = 0.125 inside |d| < 1; 3 - 0.5 = 2.5 outside; mean 1.3125
    assert bellman_huber(q, target).item() == pytest.approx(1.3125)
    assert bellman_mse(q, target).item() == pytest.approx((0.25 + 9.0) / 2)


def test_dueling_head_combines_value_and_centred_advantage() -> None:
    net = QNetwork(obs_dim=3, n_actions=4, hidden_sizes=(5,), dueling=True)
    obs = torch.randn(6, 3)
    features = net.layers(obs)
    value, advantage = net.value(features), net.advantage(features)
    q = net(obs)
    assert torch.allclose(q, value + advantage - advantage.mean(1, keepdim=True))
    assert torch.allclose(q.mean(1, keepdim=True), value)  # the advantages average to zero
