"""Every precision we accept trains, with each network and with and without gradient clipping; 16-true is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision

from dqn_lightning import DQN, ConfigError, EnvLoop, ReplayBuffer, replay_dataloader
from dqn_lightning.learner.networks import MinAtarCNN, NatureCNN, QNetwork
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from tests.helpers import quiet_trainer

DTYPES = {"32-true": torch.float32, "bf16-mixed": torch.float32, "16-mixed": torch.float32,
          "bf16-true": torch.bfloat16, "64-true": torch.float64}  # fmt: skip


@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize("env", ["CartPole-v1", "MinAtar/Breakout-v1"])
def test_precision_trains_with_and_without_clipping(tmp_path: Path, precision: str, env: str) -> None:
    for clip in ([], ["--max-grad-norm", "10"]):
        flags = ["--env", env, "--precision", precision, "--total-timesteps", "240", "--learning-starts", "100",
                 "--train-freq", "4", "--gradient-steps", "4", "--batch-size", "16", "--eval-interval", "120",
                 "--eval-episodes", "2", "--accelerator", "cpu", "--logdir", str(tmp_path), *clip]  # fmt: skip
        summary = train(parse_config(flags))
        assert summary["gradient_steps"] == 140 and summary["final_eval_return_mean"] is not None
        model = DQN.load_from_checkpoint(summary["last_checkpoint"])
        weights = dict(model.q_network.named_parameters())
        assert all(torch.isfinite(w).all() for w in weights.values())
        checkpoint = torch.load(summary["last_checkpoint"], weights_only=True)
        assert {v.dtype for k, v in checkpoint["state_dict"].items() if k.startswith("q_network.")} == {
            DTYPES[precision]
        }


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_every_network_casts_observations_to_its_weights_dtype(dtype: torch.dtype) -> None:
    frames = torch.randint(0, 2, (2, 4, 36, 36), dtype=torch.uint8) * 255
    for net, obs in ((QNetwork(8, 3), torch.randn(2, 8)), (NatureCNN((4, 36, 36), 3), frames),
                     (MinAtarCNN((4, 36, 36), 3), frames)):  # fmt: skip
        q = net.to(dtype)(obs)
        assert q.dtype == dtype and q.shape == (2, 3)


def test_half_precision_end_to_end_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"16-true keeps weights and optimizer state in float16.*use 16-mixed"):
        parse_config(["--precision", "16-true"])
    with pytest.raises(ConfigError, match="choose one of 32-true, bf16-mixed"):
        parse_config(["--precision", "8-true"])


@pytest.mark.parametrize("max_grad_norm", [None, 1.0])
def test_gradient_scaler_path_of_16_mixed(tmp_path: Path, max_grad_norm: float | None) -> None:
    # the GPU's 16-mixed path (fp16 autocast with a gradient scaler), run on the CPU: Lightning
    # itself turns 16-mixed into bf16-mixed on a CPU, so the plugin is built by hand here
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, max_grad_norm=max_grad_norm)
    before = [p.detach().clone() for p in model.q_network.parameters()]
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, train_freq=4, seed=0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    trainer = quiet_trainer(tmp_path, [loop], plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    trainer.fit(model, replay_dataloader(buffer, 16, gradient_steps=4))
    assert model.gradient_step == 200 and not model.update_rounds.lean  # every update through the scaler
    # the fused step unscales inside its kernel, after a clip would have to see unscaled gradients
    assert bool(model.optimizers().optimizer.param_groups[0]["fused"]) is (max_grad_norm is None)
    after = list(model.q_network.parameters())
    assert all(torch.isfinite(p).all() for p in after) and not all(map(torch.equal, before, after))


@pytest.mark.parametrize(("max_grad_norm", "clipped"), [(1e-3, True), (1e6, False)])
def test_16_mixed_clips_the_unscaled_gradient_norm(tmp_path: Path, max_grad_norm: float, clipped: bool) -> None:
    # the optimizer sees gradients of norm min(norm, max_grad_norm) after the scaler unscaled them.
    # By hand: a fresh network's TD gradients have a norm far above 1e-3 and far below 1e6, so the
    # first is clipped to exactly 1e-3; clipping the scaled gradients (scale 2^10) gave 1e-3 / 1024
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, max_grad_norm=max_grad_norm)
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=120, learning_starts=100, train_freq=4, seed=0)
    norms: list[float] = []

    class RecordNorm(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            inner = pl_module.optimizers().optimizer  # type: ignore[union-attr]
            step = inner.step

            def recording_step(*args: object, **kwargs: object) -> object:
                result = step(*args, **kwargs)  # the gradients it stepped with are still there after
                grads = [p.grad for p in pl_module.q_network.parameters() if p.grad is not None]  # type: ignore[union-attr]
                norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
                return result

            inner.step = recording_step

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    trainer = quiet_trainer(tmp_path, [loop, RecordNorm()], plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    trainer.fit(model, replay_dataloader(buffer, 16, gradient_steps=1))
    assert len(norms) == 5  # one update per batch of 4 env steps after learning_starts
    for norm in norms:
        if clipped:
            assert norm == pytest.approx(max_grad_norm, rel=1e-3)
        else:
            assert 1e-3 < norm < max_grad_norm


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
@pytest.mark.parametrize("head", ["c51", "qr"])
def test_constants_and_counters_stay_float32_when_the_module_is_cast(dtype: torch.dtype, head: str) -> None:
    spec = (
        {"kind": "c51", "atoms": 51, "v_min": -10.0, "v_max": 10.0} if head == "c51" else {"kind": "qr", "quantiles": 7}
    )
    model = DQN((4,), 2, value_head=spec, eval_episodes=0).to(dtype)  # what bf16-true and 64-true do
    assert next(model.q_network.parameters()).dtype == dtype  # the weights are cast
    assert model._log_sums.dtype == torch.float32
    if head == "c51":  # by hand: 51 atoms 0.4 apart; bf16 would round 9.2 to 9.1875
        assert model.value_head.support.dtype == torch.float32
        assert torch.equal(model.value_head.support, torch.linspace(-10.0, 10.0, 51))
    else:  # midpoints (2i + 1) / 14
        assert torch.equal(model.value_head.tau, torch.tensor([1, 3, 5, 7, 9, 11, 13]) / 14.0)
    model._log_sums += torch.tensor([0.0, 0.0, 257.0])
    assert model._log_sums[2].item() == 257.0  # a bf16 count stops at 256


def test_bf16_true_trains_a_c51_agent(tmp_path: Path) -> None:
    flags = ["--precision", "bf16-true", "--distributional", "c51", "--total-timesteps", "600",
             "--learning-starts", "200", "--eval-episodes", "2", "--accelerator", "cpu"]  # fmt: skip
    flags += ["--logdir", str(tmp_path)]
    summary = train(parse_config(flags))
    model = DQN.load_from_checkpoint(summary["last_checkpoint"])
    assert summary["gradient_steps"] > 0 and model.value_head.support.dtype == torch.float32


def test_bf16_mixed_steps_a_fused_adam_and_clips_the_true_gradient_norm(tmp_path: Path) -> None:
    # bf16-mixed has no gradient scaler: the fused kernel is valid, and the clip sees true gradients.
    # A fresh network's TD gradients are far above a norm of 1e-3, so each update steps with exactly 1e-3
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, max_grad_norm=1e-3)
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=120, learning_starts=100, train_freq=4, seed=0)
    norms: list[float] = []

    class RecordNorm(pl.Callback):
        def on_before_optimizer_step(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: object
        ) -> None:
            pass  # the module's hook runs after the callbacks': record in the optimizer's step instead

        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            inner = pl_module.optimizers().optimizer  # type: ignore[union-attr]
            step = inner.step

            def recording_step(*args: object, **kwargs: object) -> object:
                result = step(*args, **kwargs)  # runs Lightning's closure, which clips, then steps
                grads = [p.grad for p in pl_module.q_network.parameters() if p.grad is not None]  # type: ignore[union-attr]
                norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
                return result

            inner.step = recording_step

    trainer = quiet_trainer(tmp_path, [loop, RecordNorm()], precision="bf16-mixed")
    trainer.fit(model, replay_dataloader(buffer, 16, gradient_steps=1))
    assert model.optimizers().optimizer.param_groups[0]["fused"]
    assert len(norms) == 5 and all(norm == pytest.approx(1e-3, rel=1e-3) for norm in norms)
