"""What the env loop logs, against the env-step count: finished episodes, epsilon and env steps/s."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class RolloutLog:
    """Sends rollout statistics to the trainer's loggers, with the env step as the x axis.

    - `rollout/episode_return`, `rollout/episode_length`: each finished episode on one process;
      under DDP the means over all ranks' episodes since the last log point (one collective there,
      not one per episode).
    - `train/epsilon`, `perf/sps`: every `interval` env steps.

    Args:
        interval: env steps between the epsilon and env-steps-per-second log points.
    """

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.next_at = interval  # env step of the next log point (checkpointed)
        self._unlogged = np.zeros(3)  # DDP: (return sum, length sum, count) of episodes not logged yet
        self._sps_mark = (0, 0.0)  # (env steps, seconds) at the last log point

    def episode(self, trainer: pl.Trainer, env_steps: int, episode_return: float, length: int) -> None:
        """One finished episode of this rank."""
        if trainer.world_size == 1:
            self._log(trainer, env_steps, {"rollout/episode_return": episode_return, "rollout/episode_length": length})
        else:  # gathered over ranks at the next log point
            self._unlogged += (episode_return, length, 1)

    def due(self, env_steps: int) -> bool:
        """True once `env_steps` has reached the next log point (the same step on every rank)."""
        return env_steps >= self.next_at

    def progress(self, trainer: pl.Trainer, env_steps: int, seconds: float, epsilon: float) -> None:
        """The log point: epsilon, env steps per second since the last one, and under DDP the
        gathered episode means. A collective under DDP: every rank calls it at the same env step."""
        steps0, seconds0 = self._sps_mark
        sps = (env_steps - steps0) / max(seconds - seconds0, 1e-9)
        self._sps_mark = (env_steps, seconds)
        metrics = {"train/epsilon": epsilon, "perf/sps": sps}
        if trainer.world_size > 1:
            mine = torch.tensor(self._unlogged, device=trainer.strategy.root_device)
            return_sum, length_sum, count = (float(v) for v in trainer.strategy.reduce(mine, reduce_op="sum"))
            self._unlogged[:] = 0
            if count > 0:
                metrics |= {"rollout/episode_return": return_sum / count, "rollout/episode_length": length_sum / count}
        self._log(trainer, env_steps, metrics)
        self.next_at = (env_steps // self.interval + 1) * self.interval

    @staticmethod
    def _log(trainer: pl.Trainer, env_steps: int, metrics: dict[str, Any]) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({k: float(v) for k, v in metrics.items()}, step=env_steps)
