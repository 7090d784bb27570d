"""The Rainbow cost benchmark compares like with like, and runs (speed itself is never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn_lightning.learner.value_heads import build_value_head
from dqn_lightning.run.config import parse_config
from tests.helpers import load_script

bench = load_script("benchmark_rainbow")

WORK = ("total_timesteps", "learning_starts", "train_freq", "gradient_steps", "batch_size", "buffer_size", "env")
PARTS = ("prioritized", "dueling", "distributional", "noisy", "double", "n_step")


@pytest.mark.parametrize("env", list(bench.ENVS))
def test_every_contender_does_the_same_work_and_differs_only_in_its_part(env: str, tmp_path: Path) -> None:
    configs = {label: parse_config(bench.contender_flags(env, label, 8000, tmp_path)) for label in bench.CONTENDERS}
    base = configs["DQN (the preset)"]
    assert base.learning_starts == 2000 and base.eval_episodes == 0 and base.distributional == "none"
    for label, config in configs.items():
        assert {k: getattr(config, k) for k in WORK} == {k: getattr(base, k) for k in WORK}, label
    changed = {label: {p for p in PARTS if getattr(config, p) != getattr(base, p)} for label, config in configs.items()}
    assert changed["+ prioritized replay"] == {"prioritized"}
    assert changed["+ dueling"] == {"dueling"}
    assert (
        changed["+ C51 (51 atoms)"] == {"distributional"}
        and build_value_head(configs["+ C51 (51 atoms)"].value_head()).outputs_per_action == 51
    )
    assert changed["+ noisy nets"] == {"noisy"}
    rainbow = configs["Rainbow (--rainbow)"]
    assert rainbow.prioritized and rainbow.dueling and rainbow.noisy and rainbow.double
    assert rainbow.distributional == "c51" and rainbow.n_step == 3


def test_quick_run_prints_a_row_per_contender(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--steps", "256", "--envs", "minatar-breakout", "--floor-updates", "5"]) == 0
    table = capsys.readouterr().out.split("| env |")[-1]
    assert [line.split("|")[2].strip() for line in table.splitlines()[2:]] == list(bench.CONTENDERS)
    assert table.count("| 1.00x |") >= 2  # DQN's row: its speed and its floor against themselves
