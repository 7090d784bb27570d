"""Periodic checkpoints: one per interval of env steps, and --keep-checkpoints bounding how many stay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from dqn_lightning.callbacks.checkpointing import BestAndLastCheckpoint, PeriodicCheckpoint
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.replay_files import _replay_steps_named_by
from tests.helpers import run_train


def step_of(path: Path) -> int:
    match = re.search(r"envstep(\d+)", path.name)
    assert match, path
    return int(match.group(1))


def test_keep_checkpoints_leaves_the_newest_periodic_ones_and_only_the_replay_files_checkpoints_name(
    tmp_path: Path,
) -> None:
    flags = ["--env", "CartPole-v1", "--total-timesteps", "1300", "--learning-starts", "100", "--train-freq", "4",
             "--hidden-sizes", "[16]", "--eval-interval", "500", "--eval-episodes", "1", "--checkpoint-interval",
             "200", "--keep-checkpoints", "2", "--save-buffer", "always", "--logdir", "logs", "--quiet"]  # fmt: skip
    result = run_train(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "logs" / "CartPole-v1" / "version_0" / "checkpoints"
    # saves at the first env step past each multiple of 200 (4 env steps a batch, from 100): 200 ... 1200
    assert sorted(step_of(p) for p in folder.glob("periodic-*.ckpt")) == [1000, 1200]
    named = {step_of(p) for p in folder.glob("*envstep*.ckpt")} | _replay_steps_named_by(folder / "last.ckpt")
    assert {step_of(p) for p in folder.glob("replay-*.npz")} == named  # 200 ... 800 went with their checkpoints


def test_keeping_no_periodic_checkpoint_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="keep_checkpoints must be >= 1"):
        PeriodicCheckpoint(200, keep=0)


def test_listed_before_a_model_checkpoint_it_says_to_list_it_after(tmp_path: Path) -> None:
    # it saves after the best file only when Lightning runs it later (checkpoint callbacks keep their order)
    periodic = PeriodicCheckpoint(200)
    trainer = pl.Trainer(callbacks=[periodic, BestAndLastCheckpoint()], default_root_dir=tmp_path, logger=False)
    with pytest.raises(ConfigError, match="listed before a ModelCheckpoint: list it after"):
        periodic.setup(trainer, pl.LightningModule(), "fit")
    trainer = pl.Trainer(callbacks=[BestAndLastCheckpoint(), periodic], default_root_dir=tmp_path, logger=False)
    periodic.setup(trainer, pl.LightningModule(), "fit")


def test_a_periodic_checkpoint_due_with_an_evaluation_holds_it_and_resumes_as_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    """Evaluations at 1,200 and 2,200 env steps (every 1,000 after the 200 filled), periodic saves
    at 1,200 and 2,400. Saved before the 1,200 evaluation, the periodic checkpoint made a run
    resumed from it skip that evaluation (Lightning fast-forwards a validation due at the saved
    batch): its history lost the point, and a worse later score became "best". The save now waits
    for the evaluation, so the resumed run ends with the uninterrupted run's evaluations and best."""
    flags = ["--env", "CartPole-v1", "--seed", "3", "--total-timesteps", "2400", "--learning-starts", "200",
             "--train-freq", "4", "--hidden-sizes", "[16]", "--eval-interval", "1000", "--eval-episodes", "2",
             "--checkpoint-interval", "1200", "--save-buffer", "always", "--quiet"]  # fmt: skip
    result = run_train(*flags, "--logdir", "a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_a = tmp_path / "a" / "CartPole-v1" / "version_0"
    periodic = torch.load(run_a / "checkpoints" / "periodic-envstep1200.ckpt", weights_only=False)
    assert [e["env_steps"] for e in periodic["eval_history"]] == [1200]
    # written after the best file too (checkpoint callbacks run in their given order): it knows that best
    (best,) = (v for k, v in periodic["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert float(best["best_model_score"]) == periodic["eval_history"][0]["return_mean"]

    # resumed in place (ModelCheckpoint reloads its best score only in the same folder), with only
    # what existed at 1,200 env steps left
    last_a = torch.load(run_a / "checkpoints" / "last.ckpt", weights_only=False)
    for path in (run_a / "checkpoints").glob("*.ckpt"):
        if path.name != "periodic-envstep1200.ckpt":
            path.unlink()
    resumed = run_train(*flags, "--logdir", "a", "--resume", str(run_a / "checkpoints" / "periodic-envstep1200.ckpt"),
                        cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    last_b = torch.load(run_a / "checkpoints" / "last.ckpt", weights_only=False)
    evaluations_a, evaluations_b = (
        [(e["env_steps"], e["return_mean"]) for e in c["eval_history"]] for c in (last_a, last_b)
    )
    assert [step for step, _ in evaluations_a] == [1200, 2200, 2400]
    assert evaluations_b == evaluations_a
    best_a, best_b = (
        {k: v for k, v in c["callbacks"].items() if k.startswith("ModelCheckpoint")} for c in (last_a, last_b)
    )
    assert [s["best_model_score"] for s in best_b.values()] == [s["best_model_score"] for s in best_a.values()]
    assert [Path(s["best_model_path"]).name for s in best_b.values()] == [
        Path(s["best_model_path"]).name for s in best_a.values()
    ]
