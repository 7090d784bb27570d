"""Distributional heads and noisy nets against hand-worked numbers (not the code's own output)."""

from __future__ import annotations

import pytest
import torch

from dqn_lightning.learner.noisy import NoisyLinear, resample_noise
from dqn_lightning.learner.value_heads import Categorical, Quantile, categorical_projection, quantile_huber_loss

SUPPORT = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])  # 5 atoms, one apart


def project(probs: list[float], reward: float, terminated: float, gamma: float) -> list[float]:
    out = categorical_projection(torch.tensor([probs]), torch.tensor([reward]), torch.tensor([terminated]), gamma,
                                 SUPPORT)  # fmt: skip
    dense = categorical_projection(torch.tensor([probs]), torch.tensor([reward]), torch.tensor([terminated]), gamma,
                                   SUPPORT, dense=True)  # fmt: skip
    torch.testing.assert_close(dense, out)  # the deterministic GPU form spreads the same mass
    return [round(v, 6) for v in out[0].tolist()]


def test_c51_projection_by_hand() -> None:
    # terminal: every atom becomes r = 0.5, halfway between atoms 0 and 1 -> half the mass on each
    assert project([0.1, 0.2, 0.3, 0.4, 0.0], reward=0.5, terminated=1.0, gamma=0.9) == [0, 0, 0.5, 0.5, 0]
    # beyond the support: r + 0.5 z = 2, 2.5, 3, 3.5, 4 are all clipped to v_max = 2
    assert project([0.2] * 5, reward=3.0, terminated=0.0, gamma=0.5) == [0, 0, 0, 0, 1]
    # exactly on atoms: z + 1 = -1, 0, 1, 2, 3 -> atoms 1, 2, 3, 4 and (clipped) 4
    assert project([0.1, 0.2, 0.3, 0.4, 0.0], reward=1.0, terminated=0.0, gamma=1.0) == [0, 0.1, 0.2, 0.3, 0.4]
    # both ends: -0.3 + 0.9 * -2 = -2.1 -> clipped to -2; -0.3 + 0.9 * 2 = 1.5 -> half on 1, half on 2
    assert project([0.5, 0, 0, 0, 0.5], reward=-0.3, terminated=0.0, gamma=0.9) == [0.5, 0, 0, 0.25, 0.25]


def test_c51_projection_n_step_rows_use_their_own_gamma_power() -> None:
    # two rows, all mass on z = 2; row 0 is a 2-step row (gamma^2 = 0.25), row 1 a 1-step row (gamma = 0.5)
    probs = torch.tensor([[0, 0, 0, 0, 1.0], [0, 0, 0, 0, 1.0]])
    gamma = torch.tensor([0.25, 0.5])
    out = categorical_projection(probs, torch.tensor([0.25, 0.25]), torch.zeros(2), gamma, SUPPORT)
    # 0.25 + 0.25 * 2 = 0.75 -> 0.25 on atom 0, 0.75 on atom 1; 0.25 + 0.5 * 2 = 1.25 -> 0.75 on 1, 0.25 on 2
    torch.testing.assert_close(out, torch.tensor([[0, 0, 0.25, 0.75, 0], [0, 0, 0, 0.75, 0.25]]))


def test_c51_projection_conserves_probability_mass() -> None:
    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(64, 5, generator=generator), dim=1)
    reward = torch.randn(64, generator=generator) * 3
    terminated = (torch.rand(64, generator=generator) < 0.3).float()
    gamma = torch.rand(64, generator=generator)
    out = categorical_projection(probs, reward, terminated, gamma, SUPPORT)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(64))
    assert (out >= 0).all()
    torch.testing.assert_close(categorical_projection(probs, reward, terminated, gamma, SUPPORT, dense=True), out)


def test_c51_target_follows_double_dqns_action_choice() -> None:
    head = Categorical(atoms=5, v_min=-2, v_max=2)
    big = 1e4  # softmax of (0, -big, ...) is exactly one-hot in float32
    next_target = torch.full((1, 2, 5), -big)
    next_target[0, 0, 4] = 0.0  # action 0: all mass on z = 2 (Q = 2)
    next_target[0, 1, 0] = 0.0  # action 1: all mass on z = -2 (Q = -2)
    online = torch.full((1, 2, 5), -big)
    online[0, 0, 0] = 0.0  # the online network prefers action 1
    online[0, 1, 4] = 0.0
    zero, one = torch.zeros(1), torch.ones(1)
    assert head.target(zero, zero, 1.0, next_target, None).tolist() == [[0, 0, 0, 0, 1]]  # max over target's Q
    assert head.target(zero, zero, 1.0, next_target, online).tolist() == [[1, 0, 0, 0, 0]]  # online picks
    assert head.target(one, one, 1.0, next_target, online).tolist() == [[0, 0, 0, 1, 0]]  # terminal: r = 1


def test_c51_loss_is_cross_entropy_and_its_priority() -> None:
    head = Categorical(atoms=3, v_min=-1, v_max=1)
    out = torch.log(torch.tensor([[[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]]]))  # one row, two actions
    target = torch.tensor([[0.0, 1.0, 0.0]])
    loss, q_taken, priority = head.loss(out, torch.tensor([0]), target, None)
    expected = -torch.log(torch.tensor(0.3))  # all target mass on atom 1, where action 0 puts 0.3
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(priority, expected.view(1))
    torch.testing.assert_close(q_taken, torch.tensor([0.3]))  # -1 * 0.2 + 0 * 0.3 + 1 * 0.5


def test_quantile_huber_loss_by_hand() -> None:
    # tau = 0.25, 0.75; quantiles 0 and 1; target samples 0.5 and 3 (kappa 1):
    # i=0: u = 0.5, 3 -> huber 0.125, 2.5, weight 0.25 both -> mean (0.03125 + 0.625) / 2 = 0.328125
    # i=1: u = -0.5, 2 -> huber 0.125, 1.5, weights 0.25, 0.75 -> mean (0.03125 + 1.125) / 2 = 0.578125
    loss = quantile_huber_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 3.0]]), torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(loss, torch.tensor([0.90625]))


def test_quantile_head_midpoints_target_and_q() -> None:
    head = Quantile(quantiles=2)
    torch.testing.assert_close(head.tau, torch.tensor([0.25, 0.75]))
    next_out = torch.tensor([[[2.0, 4.0], [0.0, 1.0]]])  # action 0 has the larger mean (3)
    target = head.target(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), 0.5, next_out.repeat(2, 1, 1), None)
    torch.testing.assert_close(target, torch.tensor([[2.0, 3.0], [1.0, 1.0]]))  # 1 + 0.5 * (2, 4); terminal: 1
    torch.testing.assert_close(head.q_values(next_out), torch.tensor([[3.0, 0.5]]))


def test_noisy_layer_mean_in_eval_fresh_factorised_noise_in_training() -> None:
    torch.manual_seed(0)
    layer = NoisyLinear(3, 2)
    x = torch.randn(4, 3)
    layer.eval()
    expected = x @ layer.weight_mu.T + layer.bias_mu
    layer.resample()
    torch.testing.assert_close(layer(x), expected)  # evaluation: the mean weights, whatever the noise
    layer.train()
    assert layer.eps_in.shape == (3,) and layer.eps_out.shape == (2,)
    noise = (layer.weight - layer.weight_mu) / layer.weight_sigma
    assert torch.linalg.matrix_rank(noise) == 1  # factorised: an outer product
    first = layer(x)
    resample_noise(layer)
    assert not torch.allclose(layer(x), first)  # fresh noise, other weights
    torch.testing.assert_close(layer.weight_sigma, torch.full((2, 3), 0.5 / 3**0.5))  # sigma0 / sqrt(in)


@pytest.mark.parametrize("head", ["c51", "qr"])
def test_distributional_dqn_acts_by_the_heads_expectation(head: str) -> None:
    from dqn_lightning import DQN

    spec = {"kind": "c51", "atoms": 11, "v_min": -5, "v_max": 5} if head == "c51" else {"kind": "qr", "quantiles": 7}
    model = DQN.from_env("CartPole-v1", value_head=spec, dueling=True, eval_episodes=0).eval()
    obs = torch.randn(6, 4)
    raw = model.q_network(obs)
    assert raw.shape == (6, 2, spec.get("atoms", 7))
    expectation = (torch.softmax(raw, -1) * torch.linspace(-5, 5, 11)).sum(-1) if head == "c51" else raw.mean(-1)
    torch.testing.assert_close(model(obs), expectation)
    assert model.act(obs.numpy()).tolist() == expectation.argmax(1).tolist()


def test_c51_target_reads_no_bound_from_the_support_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    # the ends come from the Python floats kept at construction: no device read per target
    head = Categorical(5, -2.0, 2.0)
    assert head.bounds == (-2.0, 2.0)
    reads: list[int] = []
    original = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda self: reads.append(1) or original(self))
    out = head.target(torch.zeros(3), torch.zeros(3), 0.9, torch.zeros(3, 2, 5), None)
    assert reads == [] and torch.allclose(out.sum(dim=1), torch.ones(3))
