"""POPGym results: recurrent vs frame-stacked vs plain DQN on partially observed tasks, 3 seeds each.

    python scripts/popgym_table.py --train popgym-recurrent popgym-stacked popgym-dqn --seeds 0 1 2 \
        --runs lightning_logs/popgym -- --torch-threads 1     # train what is missing (one process per core)
    python scripts/popgym_table.py --runs lightning_logs/popgym  # collect the finished runs, report
    python scripts/popgym_table.py                               # report from the saved results only

`--train RECIPE...` runs `train.py --preset RECIPE --env popgym-<Task>-v0 --seed S` for every recipe
(a POPGym preset: popgym-recurrent, popgym-stacked, popgym-dqn, popgym-recurrent-zero), task and
seed not yet in `--results`, each in `<runs>/<recipe>/<Task>/seed<S>`; a run cut off continues
from its last checkpoint, and each finished one is added to the results at once (see
`tools.preset_runs`). A run's score is its final evaluation: the mean return of 100 greedy
episodes (POPGym's returns lie in about [-1, 1]). The report writes `<results>.md`: per task the
mean and the per-seed scores of each recipe, then per recipe the IQM over all runs and tasks with
its 95% stratified bootstrap interval, and `<results>_profile.png`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from dqn_lightning.errors import ConfigError, exit_code
from dqn_lightning.tools.preset_runs import build_table, table_parser
from dqn_lightning.tools.seed_stats import iqm, plot_performance_profiles, stratified_bootstrap_ci

TASKS = ["RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy", "PositionOnlyCartPoleEasy"]


def task_of(env_id: str) -> str:
    """`popgym-CountRecallEasy-v0` -> `CountRecallEasy`."""
    if not env_id.startswith("popgym-"):
        raise ConfigError(f"{env_id} is not a POPGym id (popgym-<Task><Easy|Medium|Hard>-v0)")
    return env_id.removeprefix("popgym-").rsplit("-", 1)[0]


def score_matrix(rows: list[dict[str, Any]], recipe: str, tasks: list[str]) -> np.ndarray | None:
    """Scores `(seeds, tasks)` of `recipe`, each task's first n seeds (n: the fewest any has); None
    unless it ran every task."""
    per_task = [[r["score"] for r in sorted(rows, key=lambda r: r["seed"]) if (r["recipe"], r["game"]) == (recipe, t)]
                for t in tasks]  # fmt: skip
    if not all(per_task):
        return None
    seeds = min(len(scores) for scores in per_task)
    return np.array([scores[:seeds] for scores in per_task]).T


def report(rows: list[dict[str, Any]], results: Path) -> str:
    recipes = sorted({row["recipe"] for row in rows})
    tasks = [task for task in TASKS if any(row["game"] == task for row in rows)]
    tasks += sorted({row["game"] for row in rows} - set(tasks))
    lines = ["| task | " + " | ".join(recipes) + " |", "|---|" + "---:|" * len(recipes)]
    for task in tasks:
        cells = []
        for recipe in recipes:
            scores = [r["score"] for r in rows if (r["recipe"], r["game"]) == (recipe, task)]
            cells.append(f"{np.mean(scores):.3f} ({', '.join(f'{s:.2f}' for s in scores)})" if scores else "")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "| recipe | runs x tasks | IQM of the returns [95% CI] | train minutes per run | env steps/s |",
              "|---|---|---:|---:|---:|"]  # fmt: skip
    profiles = {}
    for recipe in recipes:
        matrix = score_matrix(rows, recipe, tasks)
        mine = [r for r in rows if r["recipe"] == recipe]
        minutes, sps = np.mean([r["train_seconds"] for r in mine]) / 60, np.mean([r["sps"] for r in mine])
        if matrix is None:
            continue
        profiles[recipe] = matrix
        low, high = stratified_bootstrap_ci(matrix) if matrix.shape[0] > 1 else (float("nan"), float("nan"))
        lines.append(f"| {recipe} | {matrix.shape[0]} x {matrix.shape[1]} | {iqm(matrix):.3f} [{low:.3f}, {high:.3f}] "
                     f"| {minutes:.1f} | {sps:.0f} |")  # fmt: skip
    text = "\n".join(lines)
    results.with_suffix(".md").write_text(text + "\n")
    if profiles:
        plot_performance_profiles(profiles, np.linspace(-1, 1, 201), results.with_name(f"{results.stem}_profile.png"),
                                  "final greedy return (100 episodes)")  # fmt: skip
    return text


def main(argv: list[str] | None = None) -> int:
    args = table_parser(__doc__ or "", "docs/popgym_results.json", TASKS, "--tasks").parse_args(argv)
    return exit_code("popgym_table.py", lambda: build_table(args, lambda task: f"popgym-{task}-v0", task_of, report))


if __name__ == "__main__":
    sys.exit(main())
