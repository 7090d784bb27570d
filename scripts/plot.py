"""Learning curves from TensorBoard event files: eval and episode return against env steps.

    python scripts/plot.py lightning_logs/CartPole-v1/version_0 --out curves.png
    python scripts/plot.py lightning_logs/seed_table/runs --out cartpole.png   # every run below
    python scripts/plot.py logs/ALE_Pong-v5 --reference "311000:18:Lapan, Rainbow-like"  # a published point

Each RUN_DIR is a run directory (with events and hparams.yaml) or a folder searched for them.
Runs of one preset and env are one group: drawn as the mean across seeds with a shaded
min-max band (a single run is drawn as a line); where runs differ in length, each counts
within its own range. Episode returns are smoothed over 20 episodes. `--reference
STEPS:RETURN:LABEL` (repeatable) marks a published result on the evaluation panel, so a run
is read beside what others reported at the same env steps.
Needs matplotlib (`pip install -e ".[plot]"`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

PANELS = [("eval/return_mean", "greedy evaluation return"), ("rollout/episode_return", "training episode return")]


def find_runs(paths: list[Path]) -> list[Path]:
    runs = set()
    for path in paths:
        for events in path.glob("**/events.out.tfevents.*"):
            runs.add(events.parent)
    return sorted(runs)


def read_run(run: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(group label, {tag: array of (env step, value) rows sorted by step})."""
    hparams = _read_settings(run)
    label = f"{hparams.get('env', hparams.get('env_id', run.parent.name))} ({hparams.get('preset', 'custom')})"
    events = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload()
    series = {}
    for tag, _ in PANELS:
        if tag in events.Tags()["scalars"]:
            by_step = {e.step: e.value for e in events.Scalars(tag)}  # a resumed run's rewrite wins
            series[tag] = np.array(sorted(by_step.items()), dtype=np.float64)
    return label, series


class _SettingsLoader(yaml.SafeLoader):
    """Safe YAML that also reads the tuples Lightning writes into hparams.yaml."""


_SettingsLoader.add_constructor("tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node))


def _read_settings(run: Path) -> dict:
    for name in ("config.yaml", "hparams.yaml"):  # config.yaml: train.py's own record of the run
        if (run / name).exists():
            return yaml.load((run / name).read_text(), Loader=_SettingsLoader) or {}
    return {}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def parse_reference(text: str) -> tuple[float, float, str]:
    """`STEPS:RETURN:LABEL` -> (env steps, return, label)."""
    steps, value, label = text.split(":", 2)
    return float(steps), float(value), label


def plot(runs: list[Path], out: Path, references: Sequence[tuple[float, float, str]] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
    for run in runs:
        label, series = read_run(run)
        groups[label].append(series)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.2), squeeze=False)
    for ax, (tag, title) in zip(axes[0], PANELS, strict=True):
        for label, members in sorted(groups.items()):
            curves = [m[tag] for m in members if tag in m and len(m[tag])]
            if not curves:
                continue
            if tag.startswith("rollout/"):
                curves = [np.column_stack([c[:, 0], smooth(c[:, 1], 20)]) for c in curves]
            # runs may differ in length (an episode budget): each counts only within its own range
            grid = np.linspace(min(c[0, 0] for c in curves), max(c[-1, 0] for c in curves), 200)
            values = np.stack([np.interp(grid, c[:, 0], c[:, 1], left=np.nan, right=np.nan) for c in curves])
            name = f"{label}, {len(curves)} seed{'s' if len(curves) > 1 else ''}"
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns at the ends
                mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
            if tag.startswith("eval/") and len(curves) == 1:  # its evaluations as points: a few may be all
                (line,) = ax.plot(curves[0][:, 0], curves[0][:, 1], marker="o", markersize=4, label=name)
                continue
            (line,) = ax.plot(grid, mean, label=name)
            if len(curves) > 1:
                ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
        if tag.startswith("eval/"):
            for steps, value, label in references:
                ax.plot([steps], [value], marker="*", markersize=12, linestyle="none", label=f"{label}: {value:g}")
        ax.set(title=title, xlabel="env steps", ylabel="return")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    marked = f", {len(references)} published result(s) marked" if references else ""
    print(f"wrote {out} ({len(runs)} runs in {len(groups)} group(s){marked})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or folders holding them")
    parser.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG file to write")
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="STEPS:RETURN:LABEL",
        help="a published result to mark on the evaluation panel (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        references = [parse_reference(text) for text in args.reference]
    except ValueError:
        parser.error(f"--reference takes STEPS:RETURN:LABEL, e.g. 311000:18:Lapan; got {args.reference}")
    runs = find_runs(args.runs)
    if not runs:
        print(f"plot.py: error: no TensorBoard event files under {', '.join(map(str, args.runs))}", file=sys.stderr)
        return 2
    plot(runs, args.out, references)
    return 0


if __name__ == "__main__":
    sys.exit(main())
