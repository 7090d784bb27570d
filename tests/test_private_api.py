"""The direct fused-Adam call must leave weights and optimizer state exactly as Adam.step() would."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from dqn_lightning import DQN, EnvLoop, ReplayBuffer, replay_dataloader
from dqn_lightning import private_api as fast_path
from dqn_lightning.learner.networks import QNetwork
from dqn_lightning.private_api import fused_adam_step
from tests.helpers import quiet_trainer


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


class ThroughLightningOnly(pl.Callback):
    """Sends every update through Lightning's optimizer wrapper (the public `optimizer.step()` path)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.update_rounds.lean = False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("optimizer", "options", "kernel"),
    [
        ("adam", {}, True),
        ("adam", {}, False),  # a torch without the private fused kernel: the public step() path
        ("rmsprop", {"alpha": 0.95, "eps": 0.01, "centered": True}, True),
    ],
)
def test_lean_updates_give_the_weights_of_optimizer_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, optimizer: str, options: dict, kernel: bool
) -> None:
    if not kernel:
        monkeypatch.setattr(fast_path, "FUSED_ADAM_KERNEL", None)

    def fit(lean: bool) -> DQN:
        pl.seed_everything(0, verbose=False)
        model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, optimizer=optimizer,
                             optimizer_options=options, lr=1e-2, target_update_interval=5)  # fmt: skip
        buffer = ReplayBuffer(2_000, (4,), seed=0)
        loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, train_freq=4, seed=0)
        trainer = quiet_trainer(tmp_path, [loop] + ([] if lean else [ThroughLightningOnly()]))
        trainer.fit(model, replay_dataloader(buffer, 16, gradient_steps=4))
        return model

    lean, stepped = fit(lean=True), fit(lean=False)
    assert lean.gradient_step == stepped.gradient_step == 200
    assert isinstance(lean.optimizers().optimizer, torch.optim.RMSprop if optimizer == "rmsprop" else torch.optim.Adam)
    for a, b in zip(lean.q_network.parameters(), stepped.q_network.parameters(), strict=True):
        assert torch.equal(a, b)


def test_without_the_private_kernel_nothing_is_done_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    net = QNetwork(4, 2, (8,))
    optimizer = torch.optim.Adam(net.parameters(), fused=True)
    net(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    monkeypatch.setattr(fast_path, "FUSED_ADAM_KERNEL", None)
    before = [p.clone() for p in net.parameters()]
    assert not fused_adam_step(optimizer)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_log_decision_falls_back_to_the_public_interval() -> None:
    # a Lightning without the private logger connector: decide from log_every_n_steps
    trainer = SimpleNamespace(global_step=9, log_every_n_steps=10, should_stop=False)
    assert fast_path.writes_logs_now(trainer)  # type: ignore[arg-type]
    trainer.global_step = 3
    assert not fast_path.writes_logs_now(trainer)  # type: ignore[arg-type]
    trainer.should_stop = True
    assert fast_path.writes_logs_now(trainer)  # type: ignore[arg-type]


@pytest.mark.parametrize("tau", [1.0, 0.005])
def test_copy_parameters_public_fallback_gives_the_same_bits(tau: float, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    online = [torch.randn(3, 5), torch.randn(5)]
    fast = [torch.randn(3, 5), torch.randn(5)]
    slow = [t.clone() for t in fast]
    expected = [t + tau * (o - t) if tau < 1 else o.clone() for t, o in zip(fast, online, strict=True)]
    fast_path.copy_parameters(fast, online, tau)
    monkeypatch.delattr(torch, "_foreach_copy_")
    monkeypatch.delattr(torch, "_foreach_lerp_")
    fast_path.copy_parameters(slow, online, tau)
    assert all(torch.equal(a, b) for a, b in zip(fast, slow, strict=True))
    assert all(torch.allclose(a, e) for a, e in zip(fast, expected, strict=True))  # the blend, by hand


class _Batches(pl.LightningModule):
    """A linear model on random batches, validated every 3 training batches and at the stop."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.predicted: list[tuple[int, bool | None]] = []
        self.validated_after: list[int] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch).square().mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        pass

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        if batch_idx == 7:
            self.trainer.should_stop = True  # a stop validates too (Lightning's early-stop rule)
        self.predicted.append((batch_idx, fast_path.validates_after_this_batch(self.trainer)))

    def on_validation_end(self) -> None:
        self.validated_after.append(self.predicted[-1][0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_validation_forecast_is_what_lightning_then_does(tmp_path: Path) -> None:
    model = _Batches()
    trainer = quiet_trainer(tmp_path, [], limit_val_batches=1, val_check_interval=3, check_val_every_n_epoch=None)
    data = torch.utils.data.DataLoader(torch.randn(64, 2), batch_size=2)
    trainer.fit(model, train_dataloaders=data, val_dataloaders=data)
    assert model.validated_after == [2, 5, 7]
    assert model.predicted == [(i, i in (2, 5, 7)) for i in range(8)]
    # a Lightning without the private decision: no forecast, and the caller saves at once
    assert fast_path.validates_after_this_batch(SimpleNamespace()) is None  # type: ignore[arg-type]
