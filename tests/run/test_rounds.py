"""Rounds per batch: M rounds of (env steps, updates) in one Lightning batch end exactly where M
one-round batches end, and the automatic count keeps every batch-end event at its env step."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dqn_lightning import ConfigError
from dqn_lightning.run import build, parse_config
from dqn_lightning.run.rounds import rounds_per_batch

# the published loop (one env step, one update), evaluations and log points inside the run
FLAGS = ["--env", "CartPole-v1", "--train-freq", "1", "--gradient-steps", "1", "--total-timesteps", "1500",
         "--learning-starts", "500", "--batch-size", "32", "--hidden-sizes", "32", "32",
         "--target-update-interval", "100", "--eval-interval", "500", "--eval-episodes", "2", "--seed", "4",
         "--logger", "csv", "--quiet"]  # fmt: skip
RECIPES = {
    "dqn": [],
    "per": ["--prioritized", "--n-step", "3", "--double"],
    "rainbow": ["--rainbow"],
}


def finished_run(tmp_path: Path, flags: list[str]) -> dict[str, Any]:
    run = build(parse_config([*flags, "--logdir", str(tmp_path)]))
    run.fit()
    with open(Path(run.loggers[0].log_dir) / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    buffer = run.buffer.state_dict()
    return {
        "rounds": run.dataloader.dataset.rounds_per_batch,  # type: ignore[attr-defined]
        "weights": run.model.state_dict(),  # the running log sums too
        "optimizer": run.trainer.optimizers[0].state_dict()["state"],
        "buffer": buffer,
        "counters": (run.env_loop.env_steps, run.env_loop.episodes, run.model.gradient_step, run.env_loop.rng.random()),
        # every logged value with its x-axis, except wall-clock ones and Lightning's batch count
        "logs": sorted(
            (key, row.get("step") or "", value)
            for row in rows
            for key, value in row.items()
            if value and key not in ("perf/sps", "epoch", "step")
        ),
    }


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return bool(a == b)


@pytest.mark.parametrize("recipe", RECIPES, ids=list(RECIPES))
def test_many_rounds_per_batch_end_exactly_as_one_round_per_batch(tmp_path: Path, recipe: str) -> None:
    one = finished_run(tmp_path / "one", [*FLAGS, *RECIPES[recipe], "--rounds-per-batch", "1"])
    many = finished_run(tmp_path / "auto", [*FLAGS, *RECIPES[recipe]])
    # 500 env steps between evaluations, fill and log points at multiples of 500: 50 rounds (<= 64)
    assert (one["rounds"], many["rounds"]) == (1, 50)
    assert one["counters"][0] == many["counters"][0] > 500
    for part in ("weights", "optimizer", "buffer", "counters", "logs"):
        assert same(one[part], many[part]), part
    assert any(key == "eval/return_mean" for key, _, _ in many["logs"])  # evaluations ran, at the same steps
    assert any(key == "train/loss" for key, _, _ in many["logs"])


def test_the_automatic_count_divides_the_env_steps_between_events() -> None:
    # one env step a round, fill 500, evaluations every 500, log points every 1,000: 500 between
    # batch ends at most; the divisors of 500 up to 64 env steps a batch: 50
    assert rounds_per_batch(given=None, env_steps_per_round=1, gradient_steps=1, fill_env_steps=500,
                            intervals=[1000, 500]) == 50  # fmt: skip
    # MinAtar's bursts: 4 env steps and 4 updates a round, fill 5,000, log 1,000, eval 50,000:
    # 1,000 / 4 = 250 rounds, at most 64 / 4 = 16 a batch: 10
    assert rounds_per_batch(given=None, env_steps_per_round=4, gradient_steps=4, fill_env_steps=5000,
                            intervals=[1000, 50_000]) == 10  # fmt: skip
    # 64 env steps a round do not divide 1,000: a batch end could not land on every log point
    assert rounds_per_batch(given=None, env_steps_per_round=64, gradient_steps=16, fill_env_steps=80_000,
                            intervals=[1000, 250_000]) == 1  # fmt: skip
    # an odd fill (1,001) leaves only batches of 1 round on the 1,000-step log grid
    assert rounds_per_batch(given=None, env_steps_per_round=1, gradient_steps=1, fill_env_steps=1001,
                            intervals=[1000]) == 1  # fmt: skip
    # an episode budget under DDP is agreed at batch ends: one round
    assert rounds_per_batch(given=None, env_steps_per_round=2, gradient_steps=1, fill_env_steps=1000,
                            intervals=[1000], episode_budget_under_ddp=True) == 1  # fmt: skip


def test_a_chosen_count_that_moves_an_event_is_refused_with_one_that_fits() -> None:
    assert rounds_per_batch(given=20, env_steps_per_round=1, gradient_steps=1, fill_env_steps=500,
                            intervals=[1000, 500]) == 20  # fmt: skip
    with pytest.raises(ConfigError, match=r"--rounds-per-batch 7 would move .* use --rounds-per-batch 5"):
        rounds_per_batch(given=7, env_steps_per_round=1, gradient_steps=1, fill_env_steps=500, intervals=[1000, 500])
