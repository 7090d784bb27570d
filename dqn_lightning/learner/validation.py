"""Greedy evaluation, run as Lightning's validation loop so `ModelCheckpoint` can monitor `eval/return_mean`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.envs import make_vector_env
from dqn_lightning.acting.evaluation import episode_seeds, evaluate
from dqn_lightning.errors import ConfigError

if TYPE_CHECKING:
    from dqn_lightning.learner.module import DQN


class GreedyEvaluation:
    """Plays `episodes` greedy episodes of a `DQN` per evaluation (0: none).

    Each evaluation is one validation batch: all episodes run together in a vector env of the
    module's `env_id` (or the env loop's env), seeded from `eval_seed` and the env-step count, so
    a checkpoint's evaluation is repeatable. Each one appends a row to `history`. Under DDP only
    rank 0 plays; the result is broadcast so that every rank's checkpoint callback sees the same
    value.
    """

    def __init__(self, episodes: int) -> None:
        self.episodes = episodes
        self.history: list[dict[str, float]] = []  # one row per evaluation of this process
        self.env: Any = None

    def setup(self, dqn: DQN, stage: str) -> None:
        """Builds the evaluation env for fit and validate (rank 0 alone under DDP)."""
        rank_zero = dqn.trainer.global_rank == 0 if dqn._trainer is not None else True
        if stage in ("fit", "validate") and self.env is None and self.episodes > 0 and rank_zero:
            self.env = make_vector_env(self.env_source(dqn), self.episodes, env_kwargs=dqn.hparams.get("env_kwargs"))

    @staticmethod
    def env_source(dqn: DQN) -> Any:
        """The env evaluation plays: the module's env_id, else the env loop's env on the Trainer (whose
        id then becomes the module's, so its checkpoints name the env their tools act in)."""
        if dqn.hparams["env_id"] is not None:
            return dqn.hparams["env_id"]
        loop = find_env_loop(dqn.trainer) if dqn._trainer is not None else None
        if loop is None:
            raise ConfigError(
                "evaluation needs an env: build the module with DQN.from_env(env_id) or env_id=..., "
                "put an EnvLoop on the Trainer, or pass eval_episodes=0"
            )
        if isinstance(loop.env_source, str):
            dqn.hparams["env_id"], dqn.hparams["env_kwargs"] = loop.env_source, loop.env_kwargs or None
        return loop.env_source

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    def dataloader(self) -> DataLoader[int]:
        # one item per evaluation: the validation step plays all eval episodes in a vector env
        episodes: list[int] = [0] if self.episodes > 0 else []
        return DataLoader(episodes, batch_size=None)  # type: ignore[arg-type]  # a list is a map-style dataset

    def run(self, dqn: DQN) -> dict[str, float]:
        """Plays one evaluation and returns its row of `history` (env steps, training seconds,
        the returns' mean and std)."""
        mean, std = 0.0, 0.0
        loop = find_env_loop(dqn.trainer)
        env_steps = loop.env_steps if loop is not None else dqn.global_step
        if self.env is not None:
            # seeded by the env-step count, not Lightning's step: the same episodes however many
            # rounds a batch holds
            seeds = episode_seeds(dqn.hparams["eval_seed"], env_steps, self.episodes)
            returns = evaluate(
                dqn.policy(self.episodes), self.env, seeds, masked=dqn.hparams.get("action_masks", False)
            )
            mean, std = float(returns.mean()), float(returns.std())
        if dqn.trainer.world_size > 1:
            # rank 0 evaluated; every rank logs its result, so that checkpointing (which all ranks
            # enter together) sees the same monitored value everywhere
            mean, std = dqn.trainer.strategy.broadcast((mean, std), src=0)
        seconds = loop.train_seconds if loop is not None else 0.0
        row = {"env_steps": env_steps, "train_seconds": seconds, "return_mean": mean, "return_std": std}
        self.history.append(row)
        return row
