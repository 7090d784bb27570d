"""The public builder: every part gets its settings, by name, from one TrainConfig."""

from __future__ import annotations

import inspect
from pathlib import Path

from dqn_lightning import DQN, EnvLoop, PrioritizedReplayBuffer, ReplayBuffer
from dqn_lightning.run import TrainConfig, build, parse_config
from dqn_lightning.run.build import settings_for


def test_build_hands_every_part_its_settings(tmp_path: Path) -> None:
    flags = ["--lr", "0.004", "--gamma", "0.9", "--tau", "0.5", "--hidden-sizes", "32", "16", "--train-freq", "4",
             "--gradient-steps", "2", "--eps-end", "0.2", "--n-step", "3", "--prioritized", "--per-alpha", "0.7",
             "--buffer-size", "5000", "--seed", "7", "--total-timesteps", "3000"]  # fmt: skip
    flags += ["--logdir", str(tmp_path)]
    config = parse_config(flags)
    run = build(config)
    model, buffer, loop = run.model, run.buffer, run.env_loop
    assert (model.hparams["lr"], model.gamma, model.optimizer_steps.tau, model.hparams["hidden_sizes"]) == (
        0.004,
        0.9,
        0.5,
        (32, 16),
    )
    assert model.hparams["eval_seed"] == 7 and model.hparams["env_id"] == "CartPole-v1"
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.capacity == 5000 and buffer.alpha == 0.7
    assert (buffer.n_step, buffer.gamma) == (3, 0.9)  # one gamma for the n-step sums and the bootstrap
    assert (loop.train_freq, loop.eps_end, loop.seed, loop.buffer) == (4, 0.2, 7, buffer)
    assert run.dataloader.dataset.gradient_steps == 2  # type: ignore[attr-defined]


def test_settings_for_fills_every_same_named_argument_and_lets_given_ones_win() -> None:
    config = TrainConfig()
    names = set(vars(config))
    for part in (DQN, EnvLoop, ReplayBuffer, PrioritizedReplayBuffer):
        taken = set(inspect.signature(part).parameters)
        args = settings_for(part, config, seed=123)
        assert set(args) == (taken & names) - {"q_network"} | {"seed"}
        assert args["seed"] == 123
