"""Atari 100k results: run folders -> per-game table, HNS aggregates with intervals, performance profile.

    python scripts/atari100k_table.py --train atari100k-drq --games Pong Breakout --seeds 0 1 2 \
        --runs lightning_logs/atari100k -- --torch-threads 1    # train what is missing (one process per core)
    python scripts/atari100k_table.py --runs lightning_logs/atari100k     # collect the finished runs, report
    python scripts/atari100k_table.py                                     # report from the saved results only

`--train RECIPE...` runs `train.py --preset RECIPE --env ALE/<Game>-v5 --seed S` for every recipe,
game and seed not yet in `--results`, one after another, each in `<runs>/<recipe>/<Game>/seed<S>`:
a run cut off (a session's end) continues from its last checkpoint (`--resume`); each finished one
is added to the results at once. Flags after `--` go to train.py.

Each finished run (a `summary.json` beside its `config.yaml`, from `train.py`) becomes one result:
its recipe (the preset), game, seed, score (the mean of its final evaluation: the protocol's 100
games), training seconds and env steps/s, and the CPU it ran on. Results are added to `--results`
(committed, so the table can be rebuilt without the run folders; a rerun of the same recipe, game
and seed replaces its row). The report writes `<results>.md` (the per-game table beside the
published DER, DrQ and SPR means, then per recipe the HNS IQM, median and mean with 95% stratified
bootstrap intervals beside the published recipes on the same games, with its minutes per run; then
each other recipe of ours against `atari100k-drq` on the games both ran: the HNS IQM difference and
the probability of improvement, rliable's P(X > Y), with intervals) and `<results>_profile.png`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from dqn_lightning.errors import exit_code
from dqn_lightning.tools.atari100k import (
    PUBLISHED,
    aggregates,
    comparison,
    game_of,
    hns,
    published_hns,
    reference,
    table_rows,
)
from dqn_lightning.tools.preset_runs import build_table, table_parser
from dqn_lightning.tools.seed_stats import plot_performance_profiles

BASELINE = "atari100k-drq"  # the published recipe that a step beyond it is compared with
SIX_GAMES = ["Pong", "Breakout", "Boxing", "Freeway", "RoadRunner", "Kangaroo"]  # spanning the benchmark


def hns_matrix(rows: list[dict[str, Any]], recipe: str, only: set[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """HNS `(seeds, games)` of `recipe` over its games (those of `only`, if given), each game's first n
    seeds (n: the fewest any has)."""
    per_game: dict[str, list[float]] = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        if row["recipe"] == recipe:
            per_game.setdefault(row["game"], []).append(row["score"])
    games = [game for game in reference()["games"] if game in per_game and (only is None or game in only)]
    seeds = min(len(per_game[game]) for game in games)
    return np.array([[hns(per_game[game][i], game) for game in games] for i in range(seeds)]), games


def report(rows: list[dict[str, Any]], results: Path) -> str:
    recipes = sorted({row["recipe"] for row in rows})
    scores = {recipe: {} for recipe in recipes}  # type: dict[str, dict[str, list[float]]]
    for row in rows:
        scores[row["recipe"]].setdefault(row["game"], []).append(row["score"])
    lines = table_rows(scores)
    lines += ["", "| recipe | runs x games | HNS IQM [95% CI] | median | mean | minutes per run (env steps/s) |",
              "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    profiles: dict[str, np.ndarray] = {}
    for recipe in recipes:
        matrix, games = hns_matrix(rows, recipe)
        cells = [_cell(value) for value in aggregates(matrix).values()]
        own = [row for row in rows if row["recipe"] == recipe]
        cost = f"{np.mean([r['wall_seconds'] for r in own]) / 60:.0f} ({np.mean([r['sps'] for r in own]):.1f})"
        lines.append(f"| {recipe} (ours) | {matrix.shape[0]} x {len(games)} | " + " | ".join(cells) + f" | {cost} |")
        profiles[recipe] = matrix
        for method in PUBLISHED:  # the published per-game means on the same games
            published = aggregates(published_hns(method, games))
            lines.append(f"| {method} (published, same games) | 1 x {len(games)} | " +
                         " | ".join(f"{value[0]:.3f}" for value in published.values()) + " | |")  # fmt: skip
    lines += comparisons(rows, recipes)
    lines += ["", "Published on all 26 games: " + "; ".join(
        f"{method} " + ", ".join(f"{name} {value}" for name, value in values.items())
        for method, values in reference()["published_aggregates"].items())]  # fmt: skip
    text = "\n".join(lines)
    results.with_suffix(".md").write_text(text + "\n")
    if profiles:
        plot_performance_profiles(
            profiles, np.linspace(0, 2, 201), results.with_name(f"{results.stem}_profile.png"),
            "human-normalized score", marker=1.0,
        )  # fmt: skip
    return text


def comparisons(rows: list[dict[str, Any]], recipes: list[str]) -> list[str]:
    """Rows comparing each of our other recipes with our `BASELINE` on the games both ran: the HNS IQM
    difference and the probability of improvement, with 95% stratified bootstrap intervals."""
    lines: list[str] = []
    baseline_games = {row["game"] for row in rows if row["recipe"] == BASELINE}
    for recipe in recipes:
        shared = baseline_games & {row["game"] for row in rows if row["recipe"] == recipe}
        if recipe == BASELINE or not shared:
            continue
        (x, games), (y, _) = hns_matrix(rows, recipe, shared), hns_matrix(rows, BASELINE, shared)
        if not lines:
            lines += ["", f"| against {BASELINE} (ours) | runs x games | HNS IQM difference [95% CI] | "
                          "P(better) [95% CI] |", "|---|---|---:|---:|"]  # fmt: skip
        cells = [_cell(value) for value in comparison(x, y).values()]
        lines.append(f"| {recipe} | {x.shape[0]} and {y.shape[0]} x {len(games)} | " + " | ".join(cells) + " |")
    return lines


def _cell(value: tuple[float, float, float]) -> str:
    centre, low, high = value
    return f"{centre:.3f}" if np.isnan(low) else f"{centre:.3f} [{low:.3f}, {high:.3f}]"


def main(argv: list[str] | None = None) -> int:
    args = table_parser(
        __doc__ or "",
        "docs/atari100k_results.json",
        SIX_GAMES,
        "--games",
    ).parse_args(argv)
    return exit_code("atari100k_table.py", lambda: build_table(args, lambda game: f"ALE/{game}-v5", game_of, report))


if __name__ == "__main__":
    sys.exit(main())
