"""Atari 100k scoring: the reference data reproduces the papers' own aggregates, HNS and the aggregates by
hand, and the table script turns run folders into rows, results and a report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from dqn_lightning import ConfigError
from dqn_lightning.tools.atari100k import aggregates, game_of, hns, published_hns, reference
from tests.helpers import load_script


def test_the_reference_data_reproduces_the_published_aggregates() -> None:
    games = list(reference()["games"])
    assert len(games) == 26 and all(set(row) == {"random", "human", "DER", "DrQ", "SPR"} for row in
                                    reference()["games"].values())  # fmt: skip
    assert set(reference()["sources"]) >= {"random", "human", "DER", "DrQ", "SPR"}
    der, spr = published_hns("DER", games), published_hns("SPR", games)
    # the papers' HNS over the 26 games: DER median 0.161 (van Hasselt et al. 2019); SPR median 0.415, mean 0.704
    assert np.median(der) == pytest.approx(0.161, abs=1e-3)  # as printed, to 3 decimals (0.7034 for 0.704)
    assert np.median(spr) == pytest.approx(0.415, abs=1e-3) and spr.mean() == pytest.approx(0.704, abs=1e-3)


def test_hns_by_hand() -> None:
    assert hns(-20.7, "Pong") == 0.0 and hns(14.6, "Pong") == pytest.approx(1.0)
    assert hns(16.1, "Breakout") == pytest.approx((16.1 - 1.7) / (30.5 - 1.7))
    assert game_of("ALE/MsPacman-v5") == "MsPacman"
    with pytest.raises(ConfigError, match="not one of the Atari 100k games"):
        game_of("ALE/Tennis-v5")


def test_aggregates_by_hand() -> None:
    scores = np.array([[0.0, 1.0, 2.0, 3.0], [0.4, 0.5, 0.6, 10.0]])  # 2 runs x 4 games
    result = aggregates(scores, reps=200)
    # IQM of the 8 values: drop the lowest 2 (0, 0.4) and highest 2 (3, 10): mean of 0.5, 0.6, 1, 2
    assert result["IQM"][0] == pytest.approx((0.5 + 0.6 + 1.0 + 2.0) / 4)
    assert result["median"][0] == pytest.approx(np.median([0.2, 0.75, 1.3, 6.5]))  # of the game means
    assert result["mean"][0] == pytest.approx(scores.mean())
    assert all(low <= value <= high for value, low, high in result.values())
    assert np.isnan(aggregates(scores[:1])["IQM"][1])  # one run per game: no interval


def write_run(root: Path, preset: str, env: str, seed: int, score: float | None) -> None:
    run = root / preset / f"seed{seed}" / env.replace("/", "_") / "version_0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"preset": preset, "env": env, "seed": seed}))
    summary = {"final_eval_return_mean": score, "env_steps": 100_000, "train_seconds": 3000.0, "wall_seconds": 3300.0,
               "sps": 33.3}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))


def test_the_table_script_collects_runs_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    for seed, (pong, breakout) in enumerate([(-20.7, 1.7), (14.6, 30.5)]):  # HNS 0 and 1 on both games
        write_run(runs, "atari100k-drq", "ALE/Pong-v5", seed, pong)
        write_run(runs, "atari100k-drq", "ALE/Breakout-v5", seed, breakout)
    write_run(runs, "atari100k-drq", "ALE/Boxing-v5", 0, None)  # cut before its final evaluation: left out
    results = tmp_path / "atari100k_results.json"
    assert load_script("atari100k_table").main(["--runs", str(runs), "--results", str(results)]) == 0
    rows = json.loads(results.read_text())
    assert [(r["game"], r["seed"], r["score"]) for r in rows] == [
        ("Breakout", 0, 1.7), ("Breakout", 1, 30.5), ("Pong", 0, -20.7), ("Pong", 1, 14.6)]  # fmt: skip
    table = results.with_suffix(".md").read_text()
    assert "| Pong | -3.0 ± 17.6 (2) | -19.3 | -8.5 | -5.9 | -20.7 | 14.6 |" in table
    assert "| atari100k-drq (ours) | 2 x 2 | 0.500 [" in table  # IQM of 0, 0, 1, 1
    assert "| DER (published, same games) | 1 x 2 |" in table
    # the saved results alone rebuild the same report
    assert load_script("atari100k_table").main(["--results", str(results)]) == 0
    assert results.with_suffix(".md").read_text() == table


def test_the_report_compares_a_step_beyond_with_the_baseline_recipe(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, (pong, breakout) in enumerate([(-20.7, 1.7), (14.6, 30.5)]):  # HNS 0, then 1 on both games
        write_run(runs, "atari100k-drq", "ALE/Pong-v5", seed, pong)
        write_run(runs, "atari100k-drq", "ALE/Breakout-v5", seed, breakout)
        write_run(runs, "atari100k-drq-reset", "ALE/Pong-v5", seed, 14.6)  # HNS 1 every run
        write_run(runs, "atari100k-drq-reset", "ALE/Breakout-v5", seed, 30.5)
    write_run(runs, "atari100k-drq-reset", "ALE/Boxing-v5", 0, 50.0)  # a game the baseline lacks: not compared
    results = tmp_path / "atari100k_results.json"
    assert load_script("atari100k_table").main(["--runs", str(runs), "--results", str(results)]) == 0
    table = results.with_suffix(".md").read_text()
    # the cost of each recipe: 3,300 s per run (write_run's), 33.3 env steps/s
    assert "| atari100k-drq (ours) | 2 x 2 | 0.500 [0.000, 1.000] | " in table and " | 55 (33.3) |" in table
    # IQM 1 against IQM 0.5 -> +0.5; per game the reset's (1, 1) against (0, 1): 2 wins and 2 ties of 4 pairs -> 0.75
    assert "| atari100k-drq-reset | 2 and 2 x 2 | 0.500 [" in table
    assert table.split("| atari100k-drq-reset | 2 and 2 x 2 | ")[1].split(" | ")[1].startswith("0.750 [")


def test_the_table_script_trains_what_is_missing_and_skips_what_is_done(tmp_path: Path) -> None:
    results, runs = tmp_path / "results.json", tmp_path / "runs"
    tiny = ["--", "--total-timesteps", "300", "--learning-starts", "200", "--eval-interval", "300", "--eval-episodes",
            "1", "--buffer-size", "1000", "--quiet"]  # fmt: skip
    args = [
        "--train",
        "atari100k-drq",
        "--games",
        "Pong",
        "--seeds",
        "0",
        "--runs",
        str(runs),
        "--results",
        str(results),
    ]
    assert load_script("atari100k_table").main([*args, *tiny]) == 0
    rows = json.loads(results.read_text())
    assert [(r["recipe"], r["game"], r["seed"], r["env_steps"]) for r in rows] == [("atari100k-drq", "Pong", 0, 300)]
    assert load_script("atari100k_table").main([*args, *tiny]) == 0  # done already: nothing trained again
    assert len(list(runs.rglob("summary.json"))) == 1


def test_the_speed_script_splits_an_env_step_into_its_parts(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ale_py")
    load_script("atari100k_speed").main(["--recipes", "atari100k-drq", "--updates", "5"])
    out = capsys.readouterr().out
    for part in ("sample", "augmentation", "target pass", "online pass and loss", "backward", "env step"):
        assert f"| {part} | " in out
    assert "env steps/s" in out and "minutes per 100k" in out
