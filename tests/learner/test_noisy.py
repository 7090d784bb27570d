"""Noisy layers: all the noise of a network drawn into one host block, the stream unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dqn_lightning.learner.noisy import TWO_MATMULS_UP_TO, NoisyLinear, resample_noise


def f(x: torch.Tensor) -> torch.Tensor:
    return x.sign() * x.abs().sqrt()


def test_one_draw_gives_every_layer_its_noise_in_order() -> None:
    # shapes that cross the CPU sampler's 16-value vector width, and one below it
    net = nn.Sequential(NoisyLinear(37, 20), nn.ReLU(), NoisyLinear(20, 3))
    generator = torch.Generator().manual_seed(11)
    resample_noise(net, generator)
    reference = torch.Generator().manual_seed(11)
    normals = torch.randn(37 + 20 + 20 + 3, generator=reference)  # one draw, split in layer order
    assert torch.equal(torch.cat([net[0].eps_in, net[0].eps_out, net[2].eps_in, net[2].eps_out]), f(normals))
    # and the stream goes on from the same place
    assert torch.equal(torch.randn(5, generator=generator), torch.randn(5, generator=reference))
    # a second draw is fresh noise, found through the same layers
    resample_noise(net, generator)
    assert torch.equal(net[2].eps_out, f(torch.randn(80, generator=reference))[-3:])


def test_a_layer_alone_draws_the_same_noise_as_through_the_network() -> None:
    a, b = NoisyLinear(8, 4), NoisyLinear(8, 4)
    a.resample(torch.Generator().manual_seed(3))
    resample_noise(nn.Sequential(b), torch.Generator().manual_seed(3))
    assert torch.equal(a.eps_in, b.eps_in) and torch.equal(a.eps_out, b.eps_out)


@pytest.mark.parametrize("rows", [1, 5], ids=["two-matmuls", "built-weight"])
def test_both_forms_are_the_factorised_noisy_linear_map_with_its_gradients(rows: int) -> None:
    # a hand-built small case: W = mu + sigma * outer(eps_out, eps_in), b = b_mu + b_sigma * eps_out
    layer = NoisyLinear(3, 2).double()
    with torch.no_grad():
        layer.weight_mu.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=torch.float64))
        layer.weight_sigma.copy_(torch.tensor([[0.1, 0.2, 0.3], [-0.4, 0.5, 0.6]], dtype=torch.float64))
        layer.bias_mu.copy_(torch.tensor([0.25, -0.5], dtype=torch.float64))
        layer.bias_sigma.copy_(torch.tensor([1.0, 2.0], dtype=torch.float64))
        layer.eps_in.copy_(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
        layer.eps_out.copy_(torch.tensor([0.5, -2.0], dtype=torch.float64))
    assert (rows <= TWO_MATMULS_UP_TO) == (rows == 1)  # each case takes the form it names
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64).expand(rows, 3)
    # row 0: W0 = [1.05, -2.1, 0.8], x.W0 = 1.05 - 4.2 + 2.4 = -0.75, b0 = 0.25 + 0.5 = 0.75 -> 0.0
    # row 1: W1 = [0.8, 4.0, -3.4], x.W1 = 0.8 + 8.0 - 10.2 = -1.4, b1 = -0.5 - 4.0 = -4.5 -> -5.9
    out = layer(x)
    assert torch.allclose(out, torch.tensor([[0.0, -5.9]] * rows, dtype=torch.float64))
    out.sum().backward()
    # d out / d sigma_ij = x_j * eps_in_j * eps_out_i; d / d mu_ij = x_j
    # (summed over the identical rows)
    expected = rows * torch.outer(torch.tensor([0.5, -2.0]), torch.tensor([1.0, -2.0, 6.0])).double()
    assert torch.allclose(layer.weight_sigma.grad, expected)
    assert torch.allclose(layer.weight_mu.grad, rows * x[:1].expand(2, 3))
    layer.eval()  # evaluation: the mean weights alone
    # x.mu0 + b_mu0 = -1.5 + 0.25, x.mu1 + b_mu1 = 3.0 - 0.5
    assert torch.allclose(layer(x), torch.tensor([[-1.25, 2.5]] * rows, dtype=torch.float64))
