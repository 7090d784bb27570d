"""Greedy evaluation as Lightning's validation loop, so `ModelCheckpoint` can monitor `eval/return_mean`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.envs import make_vector_env
from dqn_lightning.acting.evaluation import episode_seeds, evaluate
from dqn_lightning.errors import ConfigError


class GreedyValidation(pl.LightningModule):
    """A LightningModule whose validation loop plays `eval_episodes` greedy episodes in its env.

    Each evaluation is one validation batch: all episodes run together in a vector env of
    `hparams["env_id"]`, seeded from `hparams["eval_seed"]` and the env-step count, so a
    checkpoint's evaluation is repeatable. It logs `eval/return_mean` and `eval/return_std`
    against env steps and appends a row to `eval_history`. Under DDP only rank 0 plays; the
    result is broadcast so that every rank's checkpoint callback sees the same value.
    Subclasses supply `act(obs)`: greedy actions `(n,)` for observations `(n, *obs_shape)`.
    """

    def __init__(self, eval_episodes: int) -> None:
        super().__init__()
        self.eval_episodes = eval_episodes
        self.eval_history: list[dict[str, float]] = []  # one row per evaluation of this process
        self._eval_env: Any = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        rank_zero = self.trainer.global_rank == 0 if self._trainer is not None else True
        if stage in ("fit", "validate") and self._eval_env is None and self.eval_episodes > 0 and rank_zero:
            self._eval_env = make_vector_env(self._eval_env_source(), self.eval_episodes)

    def _eval_env_source(self) -> Any:
        """The env evaluation plays: the module's env_id, else the env loop's env on the Trainer (whose
        id then becomes the module's, so its checkpoints name the env their tools act in)."""
        if self.hparams["env_id"] is not None:
            return self.hparams["env_id"]
        loop = find_env_loop(self.trainer) if self._trainer is not None else None
        if loop is None:
            raise ConfigError(
                "evaluation needs an env: build the module with DQN.from_env(env_id) or env_id=..., "
                "put an EnvLoop on the Trainer, or pass eval_episodes=0"
            )
        if isinstance(loop.env_source, str):
            self.hparams["env_id"] = loop.env_source
        return loop.env_source

    def teardown(self, stage: str) -> None:
        self.close_envs()

    def close_envs(self) -> None:
        """Closes the evaluation env (also called by EnvLoop when fit fails)."""
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None

    def val_dataloader(self) -> DataLoader[int]:
        # one item per evaluation: validation_step plays all eval episodes in a vector env
        episodes: list[int] = [0] if self.eval_episodes > 0 else []
        return DataLoader(episodes, batch_size=None)  # type: ignore[arg-type]  # a list is a map-style dataset

    def validation_step(self, batch: int, batch_idx: int) -> None:
        mean, std = 0.0, 0.0
        loop = find_env_loop(self.trainer)
        env_steps = loop.env_steps if loop is not None else self.global_step
        if self._eval_env is not None:
            # seeded by the env-step count, not Lightning's step: the same episodes however many
            # rounds a batch holds
            seeds = episode_seeds(self.hparams["eval_seed"], env_steps, self.eval_episodes)
            returns = evaluate(self.act, self._eval_env, seeds, masked=self.hparams.get("action_masks", False))
            mean, std = float(returns.mean()), float(returns.std())
        if self.trainer.world_size > 1:
            # rank 0 evaluated; every rank logs its result, so that checkpointing (which all ranks
            # enter together) sees the same monitored value everywhere
            mean, std = self.trainer.strategy.broadcast((mean, std), src=0)
        seconds = loop.train_seconds if loop is not None else 0.0
        self.eval_history.append(
            {"env_steps": env_steps, "train_seconds": seconds, "return_mean": mean, "return_std": std}
        )
        # a logged "step" becomes the x-axis of this flush: eval curves are plotted against env steps
        self.log_dict({"eval/return_mean": mean, "eval/return_std": std, "step": float(env_steps)}, batch_size=1)
