"""Recurrent DQN solves a memory task that frame stacking cannot: CueRecall with the cue 9 steps
before the question, beyond a stack of 4 observations.

Marked `learning`. The same budget and network sizes for both; the kept best policies are scored on
100 fresh greedy episodes: the recurrent agent names the cue (mean >= 0.9 of a possible 1), the
frame-stacked one can only guess (random play: 0; its mean stays below 0.5).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn_lightning import DQN, evaluate, make_vector_env
from dqn_lightning.acting.memory import ActingMemory
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from tests.helpers import load_script

pytestmark = pytest.mark.learning

FLAGS = [
    "--env", "CueRecall-v0", "--hidden-sizes", "32", "--batch-size", "32", "--total-timesteps", "5000",
    "--learning-starts", "500", "--exploration-steps", "2000", "--eps-end", "0.05", "--lr", "0.001",
    "--target-update-interval", "100", "--eval-interval", "2500", "--eval-episodes", "20", "--seed", "0",
    "--accelerator", "cpu",
]  # fmt: skip
RECURRENT = ["--recurrent", "lstm", "--core-size", "32", "--sequence-length", "12", "--sequence-overlap", "6",
             "--burn-in", "0"]  # fmt: skip


def score(checkpoint: str) -> float:
    model = DQN.load_from_checkpoint(checkpoint)
    env = make_vector_env(model.hparams["env_id"], 10, env_kwargs=model.hparams.get("env_kwargs"))
    policy = ActingMemory(model, 10) if isinstance(model, RecurrentDQN) else model.act
    return float(evaluate(policy, env, list(range(900_000, 900_100))).mean())


def test_recurrent_dqn_recalls_a_cue_beyond_the_frame_stack(tmp_path: Path) -> None:
    recurrent = train(parse_config([*FLAGS, *RECURRENT, "--logdir", str(tmp_path / "lstm")]))
    stacked = train(parse_config([*FLAGS, "--env-kwargs", "{frame_stack: 4}", "--logdir", str(tmp_path / "stack")]))
    memory, stack = score(recurrent["best_checkpoint"]), score(stacked["best_checkpoint"])
    assert memory >= 0.9, f"the recurrent agent scored {memory:.2f}"
    assert stack < 0.5, f"the frame-stacked agent scored {stack:.2f}: the cue should be out of its sight"
    # play.py plays it with its memory too, one env and several at once
    for num_envs in (1, 4):
        played = load_script("play").play(recurrent["best_checkpoint"], 8, None, 7, "none", None, 0.0, None, num_envs)
        assert played.mean() >= 0.9, f"play.py with {num_envs} env(s): {played}"
