"""RolloutLog against hand-worked log points: what is logged, at which env step, with which value."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from dqn_lightning.acting.rollout_log import RolloutLog


class Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append((step, metrics))


def fake_trainer(
    global_zero: bool = True, world_size: int = 1, other_rank: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> Any:
    """A trainer whose DDP reduce adds one other rank's (return sum, length sum, count)."""
    strategy = SimpleNamespace(root_device=torch.device("cpu"),
                               reduce=lambda t, reduce_op: t + torch.tensor(other_rank, dtype=t.dtype))  # fmt: skip
    return SimpleNamespace(is_global_zero=global_zero, world_size=world_size, loggers=[Recorder()], strategy=strategy)


def test_one_process_logs_each_episode_at_its_env_step() -> None:
    trainer, log = fake_trainer(), RolloutLog(interval=1000)
    log.episode(trainer, env_steps=37, episode_return=12.5, length=37)
    assert trainer.loggers[0].rows == [(37, {"rollout/episode_return": 12.5, "rollout/episode_length": 37.0})]


def test_log_point_reports_epsilon_and_steps_per_second_since_the_last_point() -> None:
    trainer, log = fake_trainer(), RolloutLog(interval=1000)
    assert not log.due(999) and log.due(1000)
    log.progress(trainer, env_steps=1004, seconds=2.0, epsilon=0.5)  # 1004 steps in 2 s
    log.progress(trainer, env_steps=2008, seconds=6.0, epsilon=0.25)  # 1004 more in 4 s
    assert trainer.loggers[0].rows == [
        (1004, {"train/epsilon": 0.5, "perf/sps": 502.0}),
        (2008, {"train/epsilon": 0.25, "perf/sps": 251.0}),
    ]
    # the next point is the next multiple of the interval, not 2008 + 1000
    assert log.next_at == 3000 and not log.due(2999)


def test_ddp_logs_the_mean_over_ranks_at_the_log_point_only() -> None:
    # this rank: episodes (10, 100 steps) and (20, 300 steps); the other rank: one of 60 over 200 steps
    trainer, log = fake_trainer(world_size=2, other_rank=(60.0, 200.0, 1.0)), RolloutLog(interval=1000)
    log.episode(trainer, 400, 10.0, 100)
    log.episode(trainer, 800, 20.0, 300)
    assert trainer.loggers[0].rows == []
    log.progress(trainer, env_steps=1000, seconds=1.0, epsilon=0.1)
    step, metrics = trainer.loggers[0].rows[0]
    assert step == 1000
    assert metrics["rollout/episode_return"] == pytest.approx(30.0)  # (10 + 20 + 60) / 3
    assert metrics["rollout/episode_length"] == pytest.approx(200.0)  # (100 + 300 + 200) / 3
    # this rank's episodes were sent once: at the next point only the other rank's new one counts
    log.progress(trainer, env_steps=2000, seconds=2.0, epsilon=0.1)
    assert trainer.loggers[0].rows[1][1]["rollout/episode_return"] == pytest.approx(60.0)


def test_only_rank_zero_writes() -> None:
    trainer, log = fake_trainer(global_zero=False), RolloutLog(interval=10)
    log.episode(trainer, 5, 1.0, 5)
    log.progress(trainer, env_steps=10, seconds=1.0, epsilon=1.0)
    assert trainer.loggers[0].rows == []
