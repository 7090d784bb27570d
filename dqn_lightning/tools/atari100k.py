"""Atari 100k scoring: human-normalized scores (HNS) of run results beside the published recipes.

The reference data (`atari100k_reference.json`, with where every number comes from) holds random
and human scores and the published per-game means of DER, DrQ and SPR for the benchmark's 26
games. A run's score is the mean of its final evaluation's episodes; aggregates follow rliable
(Agarwal et al. 2021): IQM, median and mean of HNS over runs and games, with 95% stratified
bootstrap intervals (`seed_stats`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from dqn_lightning.errors import ConfigError
from dqn_lightning.tools.seed_stats import (
    compare_with_ci,
    iqm,
    percentile_interval,
    resample_within_tasks,
    stratified_bootstrap_ci,
)

REFERENCE_FILE = Path(__file__).with_name("atari100k_reference.json")
PUBLISHED = ("DER", "DrQ", "SPR")


@cache
def reference() -> dict[str, Any]:
    """The reference data: `games` {game: {random, human, DER, DrQ, SPR}}, `sources`, `published_aggregates`."""
    data: dict[str, Any] = json.loads(REFERENCE_FILE.read_text())
    return data


def game_of(env_id: str) -> str:
    """The benchmark's name of an ALE id: `ALE/MsPacman-v5` -> `MsPacman` (a `ConfigError` if not one of the 26)."""
    game = env_id.split("/")[-1].split("-")[0]
    if game not in reference()["games"]:
        raise ConfigError(f"{env_id} is not one of the Atari 100k games: {', '.join(reference()['games'])}")
    return game


def hns(score: float | np.ndarray, game: str) -> Any:
    """Human-normalized score: 0 is random play, 1 human play."""
    row = reference()["games"][game]
    return (np.asarray(score, dtype=np.float64) - row["random"]) / (row["human"] - row["random"])


def published_hns(method: str, games: Sequence[str]) -> np.ndarray:
    """The published per-game means of `method` (DER, DrQ or SPR) as HNS `(1, len(games))`."""
    return np.array([[hns(reference()["games"][game][method], game) for game in games]])


def aggregates(scores: np.ndarray, reps: int = 10_000) -> dict[str, tuple[float, float, float]]:
    """IQM, median and mean of HNS `scores` `(runs, games)`, each `(value, low, high)` with its 95%
    stratified bootstrap interval (runs resampled within each game); no interval for one run per game."""
    scores = np.asarray(scores, dtype=np.float64)
    result: dict[str, tuple[float, float, float]] = {}
    for name, statistic in (("IQM", iqm), ("median", _median_of_game_means), ("mean", _mean)):
        value = statistic(scores)
        if scores.shape[0] < 2:
            result[name] = (value, float("nan"), float("nan"))
            continue
        low, high = _bootstrap(scores, statistic, reps) if name != "IQM" else stratified_bootstrap_ci(scores, reps)
        result[name] = (value, low, high)
    return result


def comparison(x: np.ndarray, y: np.ndarray, reps: int = 10_000) -> dict[str, tuple[float, float, float]]:
    """Recipe X against recipe Y, HNS `(runs, games)` each on the same games: the IQM difference and
    P(X > Y) (`seed_stats.compare_with_ci`), each `(value, low, high)`; no interval for one run per game."""
    result = compare_with_ci(x, y, reps)
    if min(len(x), len(y)) < 2:
        return {name: (value, float("nan"), float("nan")) for name, (value, _, _) in result.items()}
    return result


def _mean(scores: np.ndarray) -> float:
    return float(scores.mean())


def _median_of_game_means(scores: np.ndarray) -> float:
    """The median over games of each game's mean over runs (as the papers report the median)."""
    return float(np.median(scores.mean(axis=0)))


def _bootstrap(scores: np.ndarray, statistic: Any, reps: int, seed: int = 0) -> tuple[float, float]:
    samples = resample_within_tasks(scores, reps, np.random.default_rng(seed))
    return percentile_interval([statistic(sample) for sample in samples])


def table_rows(results: Mapping[str, Mapping[str, Sequence[float]]]) -> list[str]:
    """Markdown rows, one per game: each recipe's mean ± std over seeds (and the seed count), then
    the published DER, DrQ and SPR means. `results`: {recipe: {game: [score per seed]}}."""
    recipes = list(results)
    header = ["game", *(f"{recipe} (ours)" for recipe in recipes), *PUBLISHED, "random", "human"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    games = [game for game in reference()["games"] if any(game in results[recipe] for recipe in recipes)]
    for game in games:
        ours = []
        for recipe in recipes:
            runs = np.asarray(results[recipe].get(game, []), dtype=np.float64)
            ours.append(f"{runs.mean():.1f} ± {runs.std():.1f} ({len(runs)})" if len(runs) else "-")
        ref = reference()["games"][game]
        published = [f"{ref[method]:g}" for method in (*PUBLISHED, "random", "human")]
        rows.append("| " + " | ".join([game, *ours, *published]) + " |")
    return rows
