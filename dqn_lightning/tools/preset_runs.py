"""A results table built from runs of presets: train what is missing (resuming a cut-off run), collect
each finished run's final evaluation, and keep the results in a committed JSON file.

A run is `train.py --preset RECIPE --env ENV --seed S` in `<runs>/<recipe>/<game>/seed<S>`; its result
is the mean of its final evaluation (a `summary.json` beside its `config.yaml`). The Atari 100k and
POPGym tables are built on these (`scripts/atari100k_table.py`, `scripts/popgym_table.py`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dqn_lightning.errors import ConfigError
from dqn_lightning.tools.machine import cpu_name


def collect(runs: Path, game_of: Callable[[str], str]) -> list[dict[str, Any]]:
    """One result per finished run under `runs` (a summary.json with a final evaluation); `game_of`
    names the game (task) of an env id."""
    found = []
    for summary_file in sorted(runs.rglob("summary.json")):
        summary = json.loads(summary_file.read_text())
        config = yaml.safe_load((summary_file.parent / "config.yaml").read_text())
        if summary.get("final_eval_return_mean") is None:
            continue  # stopped before its final evaluation
        found.append(
            {
                "recipe": config["preset"],
                "game": game_of(config["env"]),
                "seed": int(config["seed"]),
                "score": float(summary["final_eval_return_mean"]),
                "env_steps": int(summary["env_steps"]),
                "train_seconds": float(summary["train_seconds"]),
                "wall_seconds": float(summary["wall_seconds"]),
                "sps": float(summary["sps"]),
                "cpu": cpu_name(),
            }
        )
    return found


def merge(saved: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`saved` with `new` added; a new result replaces a saved one of the same recipe, game and seed."""
    key = lambda row: (row["recipe"], row["game"], row["seed"])  # noqa: E731
    rows = {key(row): row for row in saved} | {key(row): row for row in new}
    return sorted(rows.values(), key=key)


def train_missing(
    recipes: list[str],
    envs: dict[str, str],
    seeds: list[int],
    runs: Path,
    results: Path,
    extra: list[str],
    game_of: Callable[[str], str],
) -> None:
    """Trains every (recipe, game, seed) not in `results` yet, games given as `{game: env id}`, resuming a
    cut-off run from its last checkpoint; adds each finished run to `results` at once."""
    from dqn_lightning.run import train
    from dqn_lightning.run.config import parse_config

    for seed in seeds:
        for game, env in envs.items():
            for recipe in recipes:
                saved = json.loads(results.read_text()) if results.exists() else []
                if any((r["recipe"], r["game"], r["seed"]) == (recipe, game_of(env), seed) for r in saved):
                    continue
                logdir = runs / recipe / game / f"seed{seed}"
                last = sorted(logdir.glob("*/version_*/checkpoints/last.ckpt"))
                resume = ["--resume", str(last[-1])] if last else []
                flags = ["--preset", recipe, "--env", env, "--seed", str(seed), "--logdir", str(logdir)]
                train(parse_config([*flags, *extra, *resume]))
                # re-read first: another process (one per core) may have added its runs meanwhile
                saved = json.loads(results.read_text()) if results.exists() else []
                results.write_text(json.dumps(merge(saved, collect(logdir, game_of)), indent=1) + "\n")


def table_parser(
    description: str, results: str, games: list[str], games_flag: str = "--games"
) -> argparse.ArgumentParser:
    """The command line of a preset-run table script: --runs, --results, --train RECIPE..., the games
    (tasks), --seeds, and flags for train.py after `--`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=None, help="folder of finished runs to collect")
    parser.add_argument("--results", type=Path, default=Path(results))
    parser.add_argument("--train", nargs="+", default=[], metavar="RECIPE", help="train missing runs of these presets")
    parser.add_argument(games_flag, dest="games", nargs="+", default=games)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("extra", nargs="*", help="flags passed on to train.py (after --)")
    return parser


def build_table(
    args: argparse.Namespace,
    env_of: Callable[[str], str],
    game_of: Callable[[str], str],
    report: Callable[[list[dict[str, Any]], Path], str],
) -> None:
    """Trains what `--train` asks for, collects `--runs`, saves the merged results and prints the report."""
    if args.train:
        if args.runs is None:
            raise ConfigError("--train needs --runs, the folder the runs go to")
        envs = {game: env_of(game) for game in args.games}
        train_missing(args.train, envs, args.seeds, args.runs, args.results, args.extra, game_of)
    saved = json.loads(args.results.read_text()) if args.results.exists() else []
    rows = merge(saved, collect(args.runs, game_of)) if args.runs is not None else saved
    args.results.write_text(json.dumps(rows, indent=1) + "\n")
    print(report(rows, args.results) if rows else "no results yet")
