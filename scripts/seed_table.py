"""Train one preset over several seeds and tabulate how fast and how well each run solved.

    python scripts/seed_table.py --preset cartpole --seeds 0 1 2 3 4 --threshold 475
    python scripts/seed_table.py --preset seed-tutorial --seeds 0 1 2 3 4

Per seed: env steps and training wall seconds to the first greedy evaluation at or above
`--threshold` (with `--stop-at-threshold`, runs end there), the final evaluation, and the best
checkpoint re-evaluated on `--reeval-episodes` fresh greedy episodes whose env seeds no
training evaluation used. Extra flags after `--` go to train.py (e.g. `-- --total-timesteps
20000`). Prints a Markdown table and writes seed_table.json in `--out`. Runs one after
another: time nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dqn_lightning.callbacks.stopping import StopAtThreshold
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name
from dqn_lightning.tools.reevaluate import reevaluate
from dqn_lightning.tools.seed_stats import iqm_with_ci, plot_performance_profiles


def first_reaching(evaluations: list[dict[str, float]], threshold: float) -> dict[str, float] | None:
    return next((row for row in evaluations if row["return_mean"] >= threshold), None)


def row_for_seed(
    preset: str, seed: int, extra: list[str], threshold: float, episodes: int, out: Path, stop: bool = False
) -> dict[str, Any]:
    config = parse_config(["--preset", preset, "--seed", str(seed), "--logdir", str(out / "runs"), *extra])
    summary = train(config, callbacks=[StopAtThreshold(threshold)] if stop else [])
    hit = first_reaching(summary["evaluations"], threshold)
    reeval = reevaluate(summary["best_checkpoint"], episodes) if summary["best_checkpoint"] else None
    return {
        "seed": seed,
        "steps_to_threshold": hit["env_steps"] if hit else None,
        "seconds_to_threshold": round(hit["train_seconds"], 1) if hit else None,
        "final_eval_mean": summary["final_eval_return_mean"],
        "best_reeval_mean": float(reeval.mean()) if reeval is not None else None,
        "best_reeval_std": float(reeval.std()) if reeval is not None else None,
        "return_mean_last_30": summary["return_mean_last_30"],
        "episodes": summary["episodes"],
        "env_steps": summary["env_steps"],
        "train_seconds": summary["train_seconds"],
        "summary": summary,
    }


def markdown(rows: list[dict[str, Any]], threshold: float, episodes: int) -> str:
    lines = [
        f"| seed | env steps to {threshold:g} | seconds to {threshold:g} | final eval "
        f"| best ckpt, {episodes} fresh episodes | last-30 training mean | episodes | env steps | train s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        reeval = (
            f"{r['best_reeval_mean']:.1f} ± {r['best_reeval_std']:.1f}" if r["best_reeval_mean"] is not None else "-"
        )
        lines.append(
            f"| {r['seed']} | {r['steps_to_threshold'] or 'not reached'} | {r['seconds_to_threshold'] or '-'} "
            f"| {_fmt(r['final_eval_mean'])} | {reeval} | {_fmt(r['return_mean_last_30'])} | {r['episodes']} "
            f"| {r['env_steps']} | {r['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


def aggregate(rows: list[dict[str, Any]]) -> str:
    """IQM with a 95% stratified bootstrap interval over the seeds (few seeds: the field's standard,
    not a plain mean), for the final evaluation and the best checkpoint's re-evaluation."""
    lines = []
    for key, label in (("final_eval_mean", "final eval"), ("best_reeval_mean", "best checkpoint, fresh episodes")):
        values = [r[key] for r in rows if r[key] is not None]
        if values:
            lines.append(f"{label}: IQM [95% CI] {iqm_with_ci(values)} over {len(values)} seeds")
    return "\n".join(lines)


def plot_profile(rows: list[dict[str, Any]], threshold: float, path: Path) -> bool:
    """Performance profile: the fraction of seeds whose score is above each return, for the final
    evaluation and the best checkpoint's re-evaluation. False when matplotlib is not installed."""
    columns = (("final_eval_mean", "final eval"), ("best_reeval_mean", "best checkpoint"))
    scores = {label: [r[key] for r in rows if r[key] is not None] for key, label in columns}
    values = [v for vs in scores.values() for v in vs]
    if not values:
        return False
    taus = np.linspace(min([*values, threshold]) - 1, max(values) + 1, 200)
    named = {f"{label} ({len(vs)} seeds)": vs for label, vs in scores.items() if vs}
    return plot_performance_profiles(named, taus, path, "return", marker=threshold)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cartpole")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--reeval-episodes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/seed_table"))
    parser.add_argument("--stop-at-threshold", action="store_true", help="end each run at its first solved evaluation")
    parser.add_argument("extra", nargs="*", help="flags passed on to train.py (after --)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [
        row_for_seed(args.preset, s, args.extra, args.threshold, args.reeval_episodes, args.out, args.stop_at_threshold)
        for s in args.seeds
    ]
    table = markdown(rows, args.threshold, args.reeval_episodes)
    machine = f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"
    print(f"\npreset {args.preset}, {machine}\n\n{table}")
    print(f"\n{aggregate(rows)}")
    if plot_profile(rows, args.threshold, args.out / "profile.png"):
        print(f"performance profile: {args.out / 'profile.png'}")
    (args.out / "seed_table.json").write_text(json.dumps({"preset": args.preset, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
