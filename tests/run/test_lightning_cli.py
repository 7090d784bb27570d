"""Lightning's own routes: trainer.fit(model, datamodule=ReplayDataModule(...)), and LightningCLI from one YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from dqn_lightning import DQN, ConfigError, EnvLoop, ReplayBuffer, ReplayDataModule
from tests.helpers import ROOT, load_script, quiet_trainer

pytest.importorskip("jsonargparse", reason="the cli extra: pip install -e '.[cli]'")


def test_the_env_loop_fills_the_datamodules_buffer(tmp_path: Path) -> None:
    model = DQN.from_env("CartPole-v1", eval_episodes=0, target_update_interval=10)
    start = [p.detach().clone() for p in model.q_network.parameters()]
    data = ReplayDataModule(ReplayBuffer(1_000, (4,), seed=0), batch_size=16, gradient_steps=2)
    loop = EnvLoop("CartPole-v1", total_timesteps=300, learning_starts=100, seed=0)  # no buffer: the datamodule's
    quiet_trainer(tmp_path, [loop]).fit(model, datamodule=data)
    assert loop.buffer is data.buffer and len(data.buffer) == 300 and loop.env_steps == 300
    assert model.gradient_step == 2 * 200  # one batch of 2 updates per env step after learning_starts
    assert any(not torch.equal(a, b) for a, b in zip(start, model.q_network.parameters(), strict=True))


def test_an_env_loop_without_buffer_or_datamodule_says_what_to_add(tmp_path: Path) -> None:
    from dqn_lightning import replay_dataloader

    model = DQN.from_env("CartPole-v1", eval_episodes=0)
    loop = EnvLoop("CartPole-v1", total_timesteps=300, learning_starts=100)
    with pytest.raises(ConfigError, match=r"EnvLoop without a buffer fills the ReplayDataModule's"):
        quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(ReplayBuffer(100, (4,)), 8))


def test_lightning_cli_builds_and_trains_the_parts_from_the_shipped_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load((ROOT / "scripts" / "lightning_cli.yaml").read_text())
    # the shipped recipe, on a smaller budget: 3 batches of 256 env steps after 1,000 random ones
    loop_args = config["trainer"]["callbacks"][0]["init_args"]
    loop_args["total_timesteps"] = 1_000 + 3 * 256
    config["trainer"] |= {"val_check_interval": 3, "enable_progress_bar": False, "default_root_dir": str(tmp_path)}
    config["model"]["eval_episodes"] = 2
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    cli = load_script("lightning_cli").main(["fit", "--config", str(path)])
    loop = next(cb for cb in cli.trainer.callbacks if isinstance(cb, EnvLoop))
    assert isinstance(cli.model, DQN) and isinstance(cli.datamodule, ReplayDataModule)
    assert loop.buffer is cli.datamodule.buffer and loop.env_steps == 1_768
    assert cli.model.gradient_step == 3 * 128 and len(cli.model.eval_history) == 1  # evaluated once
    best = cli.trainer.checkpoint_callback.best_model_path
    assert (
        Path(best).name.startswith("best-envstep") and DQN.load_from_checkpoint(best).hparams["env_id"] == "CartPole-v1"
    )
