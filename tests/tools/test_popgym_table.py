"""The POPGym table: trains what is missing with the POPGym presets, reports per task and the IQM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dqn_lightning import ConfigError
from tests.helpers import load_script

pytest.importorskip("popgym")  # the optional extra; the dev install has it


def test_task_names_come_from_popgym_ids() -> None:
    table = load_script("popgym_table")
    assert table.task_of("popgym-CountRecallEasy-v0") == "CountRecallEasy"
    with pytest.raises(ConfigError, match="not a POPGym id"):
        table.task_of("CartPole-v1")


def test_the_table_trains_each_recipe_on_each_task_then_reports(tmp_path: Path) -> None:
    results, runs = tmp_path / "popgym_results.json", tmp_path / "runs"
    tiny = ["--", "--total-timesteps", "400", "--learning-starts", "300", "--eval-interval", "400", "--eval-episodes",
            "4", "--buffer-size", "2000", "--batch-size", "8", "--quiet"]  # fmt: skip
    args = ["--train", "popgym-recurrent", "popgym-stacked", "--tasks", "RepeatPreviousEasy", "CountRecallEasy",
            "--seeds", "0", "--runs", str(runs), "--results", str(results)]  # fmt: skip
    assert load_script("popgym_table").main([*args, *tiny]) == 0
    rows = json.loads(results.read_text())
    assert sorted((r["recipe"], r["game"], r["env_steps"]) for r in rows) == [
        ("popgym-recurrent", "CountRecallEasy", 400), ("popgym-recurrent", "RepeatPreviousEasy", 400),
        ("popgym-stacked", "CountRecallEasy", 400), ("popgym-stacked", "RepeatPreviousEasy", 400)]  # fmt: skip
    assert all(-1.0 <= r["score"] <= 1.0 for r in rows)
    table = results.with_suffix(".md").read_text()
    assert "| popgym-recurrent | 1 x 2 |" in table and "| RepeatPreviousEasy |" in table
    assert load_script("popgym_table").main([*args, *tiny]) == 0  # done already: nothing trained again
    assert len(list(runs.rglob("summary.json"))) == 4
