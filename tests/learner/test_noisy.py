"""Noisy layers: all the noise of a network drawn into one host block, the stream unchanged."""

from __future__ import annotations

import torch
from torch import nn

from dqn_lightning.learner.noisy import NoisyLinear, resample_noise


def f(x: torch.Tensor) -> torch.Tensor:
    return x.sign() * x.abs().sqrt()


def test_one_staged_draw_gives_the_noise_of_drawing_each_buffer_alone() -> None:
    # shapes that cross the CPU sampler's 16-value vector width, and one below it
    net = nn.Sequential(NoisyLinear(37, 20), nn.ReLU(), NoisyLinear(20, 3))
    generator = torch.Generator().manual_seed(11)
    resample_noise(net, generator)
    reference = torch.Generator().manual_seed(11)
    for layer in (net[0], net[2]):
        for eps in (layer.eps_in, layer.eps_out):
            assert torch.equal(eps, f(torch.randn(tuple(eps.shape), generator=reference)))
    # and the stream goes on from the same place
    assert torch.equal(torch.randn(5, generator=generator), torch.randn(5, generator=reference))


def test_a_layer_alone_draws_the_same_noise_as_through_the_network() -> None:
    a, b = NoisyLinear(8, 4), NoisyLinear(8, 4)
    a.resample(torch.Generator().manual_seed(3))
    resample_noise(nn.Sequential(b), torch.Generator().manual_seed(3))
    assert torch.equal(a.eps_in, b.eps_in) and torch.equal(a.eps_out, b.eps_out)
