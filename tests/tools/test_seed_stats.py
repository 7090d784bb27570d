"""IQM, stratified bootstrap intervals, performance profiles and the comparison of two methods, against numbers
worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dqn_lightning.tools.seed_stats import (
    compare_with_ci,
    iqm,
    performance_profile,
    probability_of_improvement,
    stratified_bootstrap_ci,
)
from tests.helpers import load_script


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    # 5 runs: int(0.25 * 5) = 1 cut at each end -> mean(166, 180, 500) = 282
    assert iqm([500, 500, 166, 180, 12]) == pytest.approx((166 + 180 + 500) / 3)
    # 8 runs: 2 cut at each end -> mean(3, 4, 5, 6) = 4.5, whatever the outliers
    assert iqm([1, 2, 3, 4, 5, 6, 7, 1e9]) == 4.5
    assert iqm([[1, 2], [3, 4], [5, 6], [7, -1e9]]) == 3.5  # flattened over tasks: mean(2, 3, 4, 5)


def test_the_bootstrap_resamples_runs_within_each_task() -> None:
    # identical runs within each task: every resample is the same matrix, so the interval is a point
    scores = np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 10.0], [1.0, 10.0]])
    low, high = stratified_bootstrap_ci(scores, reps=200)
    assert low == high == iqm(scores) == 5.5  # 8 values, 2 cut at each end: mean(1, 1, 10, 10)
    # unstratified resampling could draw eight 1.0s; within tasks each resample keeps four of each
    spread = np.array([[0.0], [100.0]])
    low, high = stratified_bootstrap_ci(spread, reps=2000)
    assert low == 0.0 and high == 100.0  # resamples of 2 runs: (0, 0) and (100, 100) both occur


def test_the_interval_holds_the_iqm_and_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(1)
    few, many = rng.normal(100, 20, size=(5, 3)), rng.normal(100, 20, size=(200, 3))
    for scores in (few, many):
        low, high = stratified_bootstrap_ci(scores, reps=2000)
        assert low <= iqm(scores) <= high
    width = [np.subtract(*stratified_bootstrap_ci(s, reps=2000)[::-1]) for s in (few, many)]
    assert width[1] < width[0] / 2  # about sqrt(40) narrower in theory


def test_performance_profile_counts_runs_strictly_above_each_threshold() -> None:
    profile = performance_profile([500, 500, 166, 180, 12], [0, 166, 475, 500])
    np.testing.assert_allclose(profile, [1.0, 0.6, 0.4, 0.0])


def test_probability_of_improvement_counts_run_pairs_within_each_task() -> None:
    # one task: X's runs 1 and 3 against Y's 2 and 2 -> wins (3 > 2) twice out of 4 pairs
    assert probability_of_improvement([[1.0], [3.0]], [[2.0], [2.0]]) == 0.5
    # task 0: every pair a win (1); task 1: every pair a tie (one half each) -> mean over tasks 0.75
    assert probability_of_improvement([[3.0, 0.0], [4.0, 0.0]], [[1.0, 0.0], [2.0, 0.0]]) == 0.75
    # 3 runs against 2: 5 > 2, 5 > 0, 1 < 2, 1 > 0, 1 < 2, 1 > 0 -> 4 of 6
    assert probability_of_improvement([[5.0], [1.0], [1.0]], [[2.0], [0.0]]) == pytest.approx(4 / 6)


def test_the_comparison_gives_the_iqm_difference_and_improvement_with_intervals() -> None:
    # constant runs: every resample is the same, so each interval is its point
    ahead = compare_with_ci(np.ones((3, 2)), np.zeros((3, 2)), reps=200)
    assert ahead == {"IQM difference": (1.0, 1.0, 1.0), "P(X > Y)": (1.0, 1.0, 1.0)}
    # the same runs on both sides: no difference, P(X > Y) one half, both inside their intervals
    same = np.array([[0.0, 5.0], [1.0, 7.0], [3.0, 9.0]])
    even = compare_with_ci(same, same, reps=2000)
    assert even["IQM difference"][0] == 0.0 and even["P(X > Y)"][0] == 0.5
    assert even["IQM difference"][1] < 0.0 < even["IQM difference"][2]
    assert even["P(X > Y)"][1] < 0.5 < even["P(X > Y)"][2]
    # clearly better runs: both intervals exclude "no better"
    rng = np.random.default_rng(0)
    better = compare_with_ci(rng.normal(1.0, 0.1, (5, 3)), rng.normal(0.0, 0.1, (4, 3)), reps=2000)
    assert better["IQM difference"][1] > 0.5 and better["P(X > Y)"][1] > 0.9
    with pytest.raises(ValueError, match="same tasks"):
        compare_with_ci(np.ones((3, 2)), np.ones((3, 3)))


def test_the_seed_table_reports_iqm_intervals_over_its_seeds() -> None:
    rows = [{"final_eval_mean": v, "best_reeval_mean": 500.0} for v in (500.0, 500.0, 166.4, 180.2, 500.0)]
    text = load_script("seed_table").aggregate(rows)
    # IQM of the finals: the middle three of (166.4, 180.2, 500, 500, 500) -> (180.2 + 500 + 500) / 3
    assert text.splitlines()[0].startswith("final eval: IQM [95% CI] 393.4 [")
    assert text.splitlines()[1] == "best checkpoint, fresh episodes: IQM [95% CI] 500.0 [500.0, 500.0] over 5 seeds"


def test_the_seed_table_draws_a_performance_profile(tmp_path: Path) -> None:
    rows = [{"final_eval_mean": v, "best_reeval_mean": 500.0} for v in (500.0, 166.4, 180.2)]
    assert load_script("seed_table").plot_profile(rows, 475.0, tmp_path / "profile.png")
    assert (tmp_path / "profile.png").stat().st_size > 1000
