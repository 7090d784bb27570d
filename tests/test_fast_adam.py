"""The direct fused-Adam call must leave weights and optimizer state exactly as Adam.step() would."""

from __future__ import annotations

import copy

import torch

from dqn_lightning.fast_adam import fused_adam_step
from dqn_lightning.networks import QNetwork


def train_steps(direct: bool, steps: int = 5) -> tuple[QNetwork, torch.optim.Adam]:
    torch.manual_seed(0)
    net = QNetwork(4, 2, (16, 16))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=0.01, fused=True)
    data = torch.randn(steps, 8, 4)
    for k in range(steps):
        for p in net.parameters():
            p.grad = None
        net(data[k]).square().mean().backward()
        if not (direct and fused_adam_step(optimizer)):
            optimizer.step()
    return net, optimizer


def test_direct_fused_step_matches_adam_step_bit_for_bit() -> None:
    stepped, adam = train_steps(direct=False)
    direct, fast = train_steps(direct=True)
    for a, b in zip(stepped.parameters(), direct.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(adam.state.values(), fast.state.values(), strict=True):
        assert all(torch.equal(a[key], b[key]) for key in ("step", "exp_avg", "exp_avg_sq"))
    assert float(fast.state[next(direct.parameters())]["step"]) == 5


def test_it_declines_what_it_does_not_reproduce() -> None:
    net = QNetwork(4, 2, (8,))
    net(torch.randn(3, 4)).sum().backward()
    plain = torch.optim.Adam(net.parameters(), fused=False)
    plain.step()
    assert not fused_adam_step(plain)  # not the fused kernel
    fused = torch.optim.Adam(net.parameters(), fused=True)
    assert not fused_adam_step(fused)  # no state before the first step
    fused.step()
    hooked = copy.deepcopy(fused)
    hooked.register_step_post_hook(lambda *args: None)
    assert not fused_adam_step(hooked)  # hooks must run: leave it to step()
    assert not fused_adam_step(torch.optim.SGD(net.parameters(), lr=0.1))
    assert fused_adam_step(fused)


def test_numpy_greedy_actions_follow_the_live_weights() -> None:
    torch.manual_seed(1)
    for dueling in (False, True):
        net = QNetwork(4, 3, (32, 16), dueling=dueling)
        obs = torch.randn(200, 4)
        assert (net.greedy_numpy(obs.numpy()) == net(obs).argmax(1).numpy()).all()
        optimizer = torch.optim.Adam(net.parameters(), lr=0.5, fused=True)
        net(obs).sum().backward()
        optimizer.step()  # in place: the cached NumPy views must see it
        assert (net.greedy_numpy(obs.numpy()) == net(obs).argmax(1).numpy()).all()
        other = QNetwork(4, 3, (32, 16), dueling=dueling)
        net.load_state_dict(other.state_dict())
        assert (net.greedy_numpy(obs.numpy()) == other(obs).argmax(1).numpy()).all()
        assert net.double().greedy_numpy(obs.numpy()) is None  # not float32: the caller uses forward
