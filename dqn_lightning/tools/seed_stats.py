"""Few-seed statistics the field reports (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical
Precipice", the `rliable` library): interquartile mean, stratified bootstrap confidence intervals,
performance profiles, and the comparison of two methods (IQM difference, probability of improvement).

Means over 3-5 seeds swing with one lucky or unlucky run; the IQM (the mean of the middle half of
all runs) does not, and a bootstrap interval says how far the number could move with other seeds.
The computations follow `rliable` (trimmed mean cutting 25% at each end; runs resampled with
replacement within each task; percentile intervals), so its numbers and ours agree; `rliable`
itself is not needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike


def iqm(scores: ArrayLike) -> float:
    """Interquartile mean of all `scores` (any shape, flattened): `scipy.stats.trim_mean(x, 0.25)`,
    which cuts `int(0.25 * n)` runs from each end (5 runs: the middle 3)."""
    return float(_iqm_rows(np.asarray(scores, dtype=np.float64).reshape(1, -1))[0])


def stratified_bootstrap_ci(
    scores: ArrayLike, reps: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the IQM over `reps` resamples of `scores` `(runs, tasks)`: each resample
    draws `runs` runs with replacement within every task (column) separately, as `rliable` does."""
    return percentile_interval(_iqm_rows(resample_within_tasks(scores, reps, np.random.default_rng(seed))), confidence)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """P(X > Y): the chance that a run of method X beats a run of method Y on a task drawn at random,
    for scores `x` `(runs_x, tasks)` and `y` `(runs_y, tasks)` of the same tasks: per task the
    Mann-Whitney U statistic over all run pairs (a tie counts one half) divided by `runs_x * runs_y`,
    then the mean over tasks (rliable's `probability_of_improvement`). 0.5: neither is better."""
    return float(_improvement_per_pair(_matrix(x)[None], _matrix(y)[None])[0])


def compare_with_ci(
    x: ArrayLike, y: ArrayLike, reps: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Method X against method Y on the same tasks (`(runs, tasks)` each, run counts may differ):
    `IQM difference` (IQM of x minus IQM of y) and `P(X > Y)` (`probability_of_improvement`), each
    `(value, low, high)` with its percentile interval over `reps` stratified bootstrap resamples in
    which x's and y's runs are redrawn within each task, independently of each other. X is better
    with confidence when the difference's interval lies above 0, or P(X > Y)'s above 0.5."""
    xs, ys = _matrix(x), _matrix(y)
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y must score the same tasks: {xs.shape[1]} and {ys.shape[1]} columns")
    rng = np.random.default_rng(seed)
    x_boot, y_boot = resample_within_tasks(xs, reps, rng), resample_within_tasks(ys, reps, rng)
    return {
        "IQM difference": (iqm(xs) - iqm(ys), *percentile_interval(_iqm_rows(x_boot) - _iqm_rows(y_boot), confidence)),
        "P(X > Y)": (
            probability_of_improvement(xs, ys),
            *percentile_interval(_improvement_per_pair(x_boot, y_boot), confidence),
        ),
    }


def resample_within_tasks(scores: ArrayLike, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`reps` stratified bootstrap resamples `(reps, runs, tasks)` of `scores` `(runs, tasks)`: each draws
    `runs` runs with replacement within every task (column) separately, as `rliable` does."""
    matrix = _matrix(scores)
    runs, tasks = matrix.shape
    picks = rng.integers(runs, size=(reps, runs, tasks))
    return np.take_along_axis(matrix[None].repeat(reps, axis=0), picks, axis=1)


def percentile_interval(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """The central `confidence` interval `(low, high)` of bootstrap `values`."""
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


def _matrix(scores: ArrayLike) -> np.ndarray:
    matrix = np.asarray(scores, dtype=np.float64)
    return matrix[:, None] if matrix.ndim == 1 else matrix


def _iqm_rows(resamples: np.ndarray) -> np.ndarray:
    """The IQM of each resample `(reps, runs, tasks)` -> `(reps,)`."""
    flat = np.sort(resamples.reshape(resamples.shape[0], -1), axis=1)
    cut = int(0.25 * flat.shape[1])
    return flat[:, cut : flat.shape[1] - cut].mean(axis=1)


def _improvement_per_pair(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) of each resample pair: `x` `(reps, n, tasks)`, `y` `(reps, m, tasks)` -> `(reps,)`."""
    wins = (x[:, :, None, :] > y[:, None, :, :]) + 0.5 * (x[:, :, None, :] == y[:, None, :, :])
    return wins.mean(axis=(1, 2)).mean(axis=1)


def performance_profile(scores: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Fraction of runs scoring above each threshold `(len(thresholds),)`: the run-score distribution
    of a performance-profile plot."""
    flat = np.asarray(scores, dtype=np.float64).ravel()
    return np.array([(flat > tau).mean() for tau in np.asarray(thresholds, dtype=np.float64).ravel()])


def iqm_with_ci(scores: ArrayLike, reps: int = 10_000) -> str:
    """`IQM [low, high]` for a table cell."""
    low, high = stratified_bootstrap_ci(scores, reps=reps)
    return f"{iqm(scores):.1f} [{low:.1f}, {high:.1f}]"


def plot_performance_profiles(
    scores: Mapping[str, ArrayLike],
    thresholds: ArrayLike,
    path: str | Path,
    xlabel: str,
    marker: float | None = None,
    colours: Mapping[str, str] | None = None,
) -> bool:
    """Draws one performance profile per entry of `scores` (runs above each threshold) into `path`,
    with a dotted line at `marker`; False, drawing nothing, when matplotlib (the plot extra) is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = np.asarray(thresholds, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, values in scores.items():
        colour = (colours or {}).get(label)
        ax.step(taus, performance_profile(values, taus), where="post", color=colour, label=label)
    if marker is not None:
        ax.axvline(marker, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of runs above")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
