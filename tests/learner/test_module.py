from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from dqn_lightning import DQN, ConfigError, EnvLoop, ReplayBuffer, replay_dataloader
from tests.helpers import quiet_trainer


class TargetWatcher(pl.Callback):
    """Records, after every training batch, the gradient step and the target/online weights."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        flat = lambda net: torch.cat([p.detach().flatten() for p in net.parameters()]).clone()  # noqa: E731
        self.rows.append((pl_module.gradient_step, flat(pl_module.target_network), flat(pl_module.q_network)))


def fit(tmp_path: Path, model: DQN, callbacks: list[pl.Callback], total: int = 400, gradient_steps: int = 1) -> EnvLoop:
    buffer = ReplayBuffer(5_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=total, learning_starts=100, seed=0)
    trainer = quiet_trainer(tmp_path, [loop, *callbacks])
    trainer.fit(model, replay_dataloader(buffer, 16, gradient_steps))
    return loop


def test_target_network_changes_only_every_interval(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), target_update_interval=7, eval_episodes=0)
    watcher = TargetWatcher()
    fit(tmp_path, model, [watcher], total=130)  # 30 gradient steps
    assert [row[0] for row in watcher.rows] == list(range(1, 31))
    changed_at = []
    previous = None
    for step, target, online in watcher.rows:
        if previous is not None and not torch.equal(target, previous):
            changed_at.append(step)
        if step % 7 == 0:
            assert torch.equal(target, online)  # a hard copy right after the 7th, 14th, ... update
        else:
            assert not torch.equal(target, online)
        previous = target
    assert changed_at == [7, 14, 21, 28]


def test_several_gradient_steps_per_training_step(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), target_update_interval=4, eval_episodes=0)
    watcher = TargetWatcher()
    fit(tmp_path, model, [watcher], total=110, gradient_steps=4)  # 10 training steps x 4 updates
    assert [row[0] for row in watcher.rows] == list(range(4, 44, 4))
    assert all(torch.equal(target, online) for _, target, online in watcher.rows)  # synced after each 4th


def test_no_target_network_bootstraps_from_online(tmp_path: Path) -> None:
    model = DQN((4,), 2, hidden_sizes=(8,), target_update_interval=0, gamma=0.5)
    assert model.target_network is None
    batch_obs = torch.randn(5, 4)
    from dqn_lightning import ReplayBatch

    batch = ReplayBatch(batch_obs, torch.zeros(5, dtype=torch.long), torch.ones(5), batch_obs, torch.zeros(5))
    loss, q_taken, _ = model.td_loss(batch, model.td_target(batch))
    with torch.no_grad():
        expected_target = 1.0 + 0.5 * model.q_network(batch_obs).max(1).values
    assert loss.item() == pytest.approx(torch.mean((q_taken.detach() - expected_target) ** 2).item(), rel=1e-6)


def test_load_from_checkpoint_restores_identical_policy(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(32, 32), eval_episodes=0)
    buffer = ReplayBuffer(5_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, seed=0)
    trainer = quiet_trainer(tmp_path, [loop])
    trainer.fit(model, replay_dataloader(buffer, 16))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    loaded = DQN.load_from_checkpoint(path)  # no env, buffer or script needed
    assert loaded.hparams["env_id"] == "CartPole-v1" and loaded.hparams["hidden_sizes"] == (32, 32)
    obs = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    with torch.no_grad():
        assert torch.equal(loaded.q_network(torch.from_numpy(obs)), model.q_network(torch.from_numpy(obs)))
    assert np.array_equal(loaded.act(obs), model.act(obs))
    for a, b in zip(loaded.target_network.parameters(), model.target_network.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr must be"),
        ({"gamma": 1.5}, "gamma"),
        ({"target_update_interval": -1}, "target_update"),
        ({"lr_end": -1e-4}, "lr_end must be"),
    ],
)
def test_impossible_hyperparameters_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DQN((4,), 2, **kwargs)


def test_unusable_envs_are_rejected_in_one_line() -> None:
    with pytest.raises(ConfigError, match="Discrete"):
        DQN.from_env("Pendulum-v1")
    with pytest.raises(ConfigError, match="unknown env id"):
        DQN.from_env("CartPole-v99")


def test_soft_target_update_blends_by_tau() -> None:
    model = DQN((4,), 2, hidden_sizes=(8,), tau=0.25)
    with torch.no_grad():
        for p in model.q_network.parameters():
            p.fill_(2.0)
        for p in model.target_network.parameters():
            p.fill_(-2.0)
    model.sync_target()
    # by hand: 0.25 * 2 + 0.75 * (-2) = -1
    assert all(torch.allclose(p, torch.full_like(p, -1.0)) for p in model.target_network.parameters())
    assert model.double is not None and callable(model.double)  # nn.Module.double() still there


def test_gradient_clipping_bounds_the_update(tmp_path: Path) -> None:
    # one update with lr 1 and plain SGD-like first Adam step: clipping shows in the gradient norm
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, max_grad_norm=0.01, lr=1e-3)
    norms: list[float] = []

    class NormWatcher(pl.Callback):  # the gradients the optimizer itself steps with
        def on_train_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
            inner = pl_module.optimizers().optimizer
            step = inner.step

            def watched_step(*args, **kwargs):  # type: ignore[no-untyped-def]
                result = step(*args, **kwargs)  # Lightning's closure (and the clipping) runs inside
                grads = [p.grad.flatten() for p in pl_module.q_network.parameters() if p.grad is not None]
                norms.append(torch.cat(grads).norm().item())
                return result

            inner.step = watched_step

    fit(tmp_path, model, [NormWatcher()], total=130)
    assert len(norms) == 30 and max(norms) <= 0.01 + 1e-6


@pytest.mark.parametrize("options", [{"double": True}, {"dueling": True}, {"loss": "huber", "tau": 0.5}])
def test_options_train_end_to_end(tmp_path: Path, options: dict) -> None:
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, target_update_interval=5, **options)
    loop = fit(tmp_path, model, [], total=300, gradient_steps=4)
    assert loop.env_steps == 300 and model.gradient_step == 800  # 200 batches (after 100 warm-up) x 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tau": 0.0}, "tau"), ({"loss": "l1"}, "loss must be"), ({"max_grad_norm": -1.0}, "max_grad_norm"),
     ({"double": True, "target_update_interval": 0}, "double DQN needs a target network")],
)  # fmt: skip
def test_option_conflicts_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DQN((4,), 2, **kwargs)


def test_the_learning_rate_falls_linearly_with_the_env_steps_done(tmp_path: Path) -> None:
    # lr 1e-3 to 1e-4 over 1,000 env steps: at env step s the batch trains with 1e-3 - 9e-4 * s / 1000
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, lr=1e-3, lr_end=1e-4)
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=1_000, learning_starts=200, train_freq=100, seed=0)
    seen: list[tuple[int, float]] = []

    class RecordLr(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
            seen.append((loop.env_steps, pl_module.optimizers().optimizer.param_groups[0]["lr"]))  # type: ignore[union-attr]

    quiet_trainer(tmp_path, [loop, RecordLr()]).fit(model, replay_dataloader(buffer, 16))
    assert [steps for steps, _ in seen] == [300, 400, 500, 600, 700, 800, 900, 1000]
    for steps, lr in seen:
        assert lr == pytest.approx(1e-3 - 9e-4 * steps / 1000, rel=1e-12)
    assert seen[-1][1] == pytest.approx(1e-4)


def test_a_module_without_env_id_evaluates_in_the_env_loops_env(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    model = DQN((4,), 2, network=torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
                eval_episodes=2)  # fmt: skip
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, seed=0)
    trainer = quiet_trainer(tmp_path, [loop], limit_val_batches=1, val_check_interval=100, check_val_every_n_epoch=None)
    trainer.fit(model, replay_dataloader(buffer, 16))
    assert [row["env_steps"] for row in model.eval_history] == [200, 300]  # two evaluations were played
    assert model.hparams["env_id"] == "CartPole-v1"  # its checkpoints name the env their tools act in
    with pytest.raises(ConfigError, match=r"evaluation needs an env: build the module with DQN\.from_env"):
        DQN((4,), 2).setup("fit")
