"""The MinAtar results table: recipes x games x seeds, 1M env steps each, beside the paper's DQN.

    python scripts/minatar_table.py --recipes ours paper --seeds 0 1 2 --out lightning_logs/minatar
    python scripts/minatar_table.py --report          # table and curves from the saved results only

Recipes: `ours` trains each game's preset (`minatar-breakout`, ...), `ours-eps0.1` that preset
with the paper's final epsilon 0.1 instead of 0.01, `paper` the MinAtar
paper's DQN recipe (`minatar-paper`) on the same env, `paper-bursts` that recipe with its
updates in bursts of 4 after 4 env steps (the same work, about 1.3x faster here), `rainbow`
the `minatar-rainbow` recipe, `rainbow-n3` that recipe with Rainbow's 3-step returns (its
first version), `munchausen` each game's preset with Munchausen-DQN's target (`--variant
munchausen`: tau 0.03, alpha 0.9, l0 -1; docs/variants.md).
Per run it records the mean of the last 100 training episodes (the paper's measure), the best
checkpoint's greedy return on 100 fresh episodes, the training seconds, the 100-episode moving
average of training returns every 10,000 env steps, and the CPU it ran on. Each finished run is
written to `--results` at once, so a long table can be built over several sessions: runs
already there are skipped, and a run cut off before its end continues from its last checkpoint
(`--resume`). Extra flags after `--` go to train.py (e.g. `-- --total-timesteps 20000` for a
quick look). Runs one after another.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dqn_lightning.errors import exit_code
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name
from dqn_lightning.tools.reevaluate import reevaluate
from dqn_lightning.tools.seed_stats import iqm_with_ci, performance_profile, plot_performance_profiles

GAMES = {
    "asterix": "Asterix",
    "breakout": "Breakout",
    "freeway": "Freeway",
    "seaquest": "Seaquest",
    "space-invaders": "SpaceInvaders",
}
# the paper's DQN read from the MinAtar README's figure (30 seeds, 100-episode moving average
# of training returns): (at 1M frames, at 5M frames)
PAPER_DQN = {
    "asterix": (5.0, 17.0),
    "breakout": (9.5, 10.0),
    "freeway": (48.0, 50.0),
    "seaquest": (1.0, 20.0),
    "space-invaders": (33.0, 43.0),
}
CURVE_EVERY = 10_000  # env steps between points of the stored learning curve
# name: curve colour
RECIPES = {
    "ours": "tab:blue",
    "ours-eps0.1": "tab:cyan",
    "paper-bursts": "tab:purple",
    "paper": "tab:orange",
    "rainbow": "tab:green",
    "rainbow-n3": "tab:olive",
    "munchausen": "tab:red",
}


def train_flags(recipe: str, game: str) -> list[str]:
    env = f"MinAtar/{GAMES[game]}-v0"
    if recipe == "ours":
        return ["--preset", f"minatar-{game}"]
    if recipe == "munchausen":  # the same preset, Munchausen-DQN's target
        return ["--preset", f"minatar-{game}", "--variant", "munchausen"]
    if recipe == "ours-eps0.1":  # the game's preset with the paper's final epsilon
        return ["--preset", f"minatar-{game}", "--eps-end", "0.1"]
    if recipe == "paper-bursts":  # the same updates per env step, 4 at a time
        return ["--preset", "minatar-paper", "--env", env, "--train-freq", "4", "--gradient-steps", "4"]
    if recipe == "rainbow-n3":
        return ["--preset", "minatar-rainbow", "--env", env, "--n-step", "3"]
    return ["--preset", f"minatar-{recipe}", "--env", env]


def training_curve(run_dir: Path, window: int = 100) -> list[list[float]]:
    """[[env step, mean of the last `window` training episode returns], ...] every CURVE_EVERY steps."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    by_step = {e.step: e.value for e in events.Scalars("rollout/episode_return")}  # a resumed rewrite wins
    steps, returns = (np.array(v, dtype=np.float64) for v in zip(*sorted(by_step.items()), strict=True))
    curve = []
    for at in range(CURVE_EVERY, int(steps[-1]) + 1, CURVE_EVERY):
        recent = returns[steps <= at][-window:]
        if len(recent):
            curve.append([at, round(float(recent.mean()), 3)])
    return curve


def run_one(recipe: str, game: str, seed: int, out: Path, extra: list[str], episodes: int) -> dict[str, Any]:
    logdir = out / recipe / game / f"seed{seed}"
    checkpoints = sorted(logdir.glob("*/version_0/checkpoints/last.ckpt"))
    resume = ["--resume", str(checkpoints[0])] if checkpoints else []
    config = parse_config([*train_flags(recipe, game), "--seed", str(seed), "--logdir", str(logdir), *extra, *resume])
    summary = train(config)
    reeval = reevaluate(summary["best_checkpoint"], episodes) if summary["best_checkpoint"] else None
    return {
        "recipe": recipe,
        "game": game,
        "seed": seed,
        "last_100_training_mean": summary["return_mean_last_100"],
        "best_greedy_mean": float(reeval.mean()) if reeval is not None else None,
        "best_greedy_std": float(reeval.std()) if reeval is not None else None,
        "env_steps": summary["env_steps"],
        "train_seconds": summary["train_seconds"],
        "sps": summary["sps"],
        "curve": training_curve(Path(summary["log_dir"])),
        "torch": torch.__version__,
        "cpu": cpu_name(),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """One line per recipe and game: means over seeds, then the per-seed values."""
    lines = [
        "| game | recipe | seeds | last-100 training mean | best ckpt, 100 greedy episodes | paper DQN 1M / 5M "
        "| train minutes per run |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for game in GAMES:
        for recipe in RECIPES:
            runs = [r for r in rows if r["game"] == game and r["recipe"] == recipe]
            if not runs:
                continue
            last = [r["last_100_training_mean"] for r in runs]
            greedy = [r["best_greedy_mean"] for r in runs if r["best_greedy_mean"] is not None]
            minutes = [r["train_seconds"] / 60 for r in runs]
            paper = PAPER_DQN[game]
            lines.append(
                f"| {game} | {recipe} | {len(runs)} | **{np.mean(last):.1f}** ({', '.join(f'{v:.1f}' for v in last)}) "
                f"| {np.mean(greedy):.1f} ({', '.join(f'{v:.1f}' for v in greedy)}) | {paper[0]:g} / {paper[1]:g} "
                f"| {', '.join(f'{m:.0f}' for m in minutes)} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Learning curves (100-episode moving average of training returns) per game, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GAMES), figsize=(4 * len(GAMES), 3.4))
    for ax, game in zip(axes, GAMES, strict=True):
        for recipe, colour in RECIPES.items():
            curves = [np.array(r["curve"]) for r in rows if r["game"] == game and r["recipe"] == recipe and r["curve"]]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            steps = curves[0][:length, 0]
            values = np.stack([c[:length, 1] for c in curves])
            ax.plot(steps, values.mean(0), color=colour, label=recipe)
            ax.text(0.98, 0.02 + 0.07 * list(RECIPES).index(recipe), f"{len(curves)}", color=colour,
                    transform=ax.transAxes, ha="right", fontsize=8)  # fmt: skip  # seeds in the mean
            if len(curves) > 1:
                ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.2)
        for frames, style in zip((1e6, 5e6), (":", "--"), strict=True):
            ax.axhline(PAPER_DQN[game][frames == 5e6], color="grey", linestyle=style, linewidth=1)
        ax.set_title(f"MinAtar {GAMES[game]}")
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training return (100-episode mean)")
    found = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    labels = {recipe: found[recipe] for recipe in RECIPES if recipe in found}
    fig.legend(labels.values(), labels.keys(), loc="upper center", ncol=len(RECIPES), fontsize=8,
               title="mean over seeds (count at bottom right; band: min to max); grey: paper DQN 1M (dotted), "
               "5M (dashed)", title_fontsize=8)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.8))
    fig.savefig(path, dpi=110)


def normalized(rows: list[dict[str, Any]], recipe: str, games: list[str] | None = None) -> np.ndarray | None:
    """Last-100 training means `(seeds, games)` divided by the paper DQN's 1M-frame score per game,
    or None unless every game (of `games`, default all) has the same number (2 or more) of seeds of
    `recipe` (the bootstrap stratifies by game)."""
    games = games or list(GAMES)
    per_game = [[r["last_100_training_mean"] for r in rows if r["recipe"] == recipe and r["game"] == g] for g in games]
    if not all(per_game) or len({len(runs) for runs in per_game}) != 1 or len(per_game[0]) < 2:
        return None  # one seed per game: no interval to speak of
    return np.array(per_game).T / np.array([PAPER_DQN[g][0] for g in games])


def partial_game_sets(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The game sets of recipes that ran some games, not all, with equal seeds (2 or more): each is
    compared with every recipe that ran those games (Munchausen-DQN ran two)."""
    sets = []
    for recipe in RECIPES:
        counts = {g: sum(r["recipe"] == recipe and r["game"] == g for r in rows) for g in GAMES}
        games = [g for g, n in counts.items() if n >= 2]
        if games and len(games) < len(GAMES) and len({counts[g] for g in games}) == 1 and games not in sets:
            sets.append(games)
    return sets


def aggregate(rows: list[dict[str, Any]], games: list[str] | None = None) -> str:
    """IQM over all runs and games of the paper-DQN-normalized score, with its 95% stratified
    bootstrap interval, per recipe that ran every game (of `games`, default all) with equal seeds
    (Agarwal et al. 2021)."""
    lines = ["| recipe | runs x games | IQM, score / paper DQN 1M [95% CI] | P(score > paper DQN 1M) |",
             "|---|---|---:|---:|"]  # fmt: skip
    for recipe in RECIPES:
        scores = normalized(rows, recipe, games)
        if scores is not None:
            above = performance_profile(scores, [1.0])[0]
            lines.append(f"| {recipe} | {scores.shape[0]} x {scores.shape[1]} | {iqm_with_ci(scores, reps=20_000)} "
                         f"| {above:.2f} |")  # fmt: skip
    return "\n".join(lines)


def plot_profile(rows: list[dict[str, Any]], path: Path) -> None:
    """Performance profiles: the fraction of runs (all games) above each normalized score."""
    scores = {recipe: normalized(rows, recipe) for recipe in RECIPES}
    plot_performance_profiles(
        {recipe: values for recipe, values in scores.items() if values is not None},
        np.linspace(0, 8, 161),
        path,
        "last-100 training mean / paper DQN at 1M frames",
        colours=RECIPES,
    )


def report(rows: list[dict[str, Any]], results: Path) -> None:
    table = markdown(rows) + "\n\n" + aggregate(rows)
    for games in partial_game_sets(rows):
        table += f"\n\nOver {' and '.join(games)} only:\n\n" + aggregate(rows, games)
    results.with_suffix(".md").write_text(table + "\n")
    if rows:
        # beside the results and named after them: a second table (a rerun) keeps its own plots
        plot(rows, results.with_name(f"{results.stem}_curves.png"))
        plot_profile(rows, results.with_name(f"{results.stem}_profile.png"))
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=["ours", "paper"])
    parser.add_argument("--games", nargs="+", choices=list(GAMES), default=list(GAMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/minatar"), help="run directories")
    parser.add_argument("--results", type=Path, default=Path("docs/minatar_results.json"))
    parser.add_argument("--reeval-episodes", type=int, default=100)
    parser.add_argument("--report", action="store_true", help="only rebuild the table and plot from --results")
    parser.add_argument("extra", nargs="*", help="flags passed on to train.py (after --)")
    args = parser.parse_args()
    # bad train.py flags: one line and exit 2; Ctrl-C: the run's checkpoint is saved, exit 130
    sys.exit(exit_code("minatar_table.py", lambda: build_table(args)))


def build_table(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = json.loads(args.results.read_text()) if args.results.exists() else []
    if not args.report:
        for seed in args.seeds:
            for game in args.games:
                for recipe in args.recipes:
                    if any((r["recipe"], r["game"], r["seed"]) == (recipe, game, seed) for r in rows):
                        continue
                    row = run_one(recipe, game, seed, args.out, args.extra, args.reeval_episodes)
                    # re-read first: another process may have added runs meanwhile (one per core)
                    rows = json.loads(args.results.read_text()) if args.results.exists() else []
                    rows.append(row)
                    args.results.parent.mkdir(parents=True, exist_ok=True)
                    args.results.write_text(json.dumps(rows, indent=1) + "\n")
                    report(rows, args.results)
    report(rows, args.results)


if __name__ == "__main__":
    main()
