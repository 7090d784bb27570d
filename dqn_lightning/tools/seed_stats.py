"""Few-seed statistics the field reports (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical
Precipice", the `rliable` library): interquartile mean, stratified bootstrap confidence intervals,
and performance profiles.

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
    flat = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    cut = int(0.25 * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def stratified_bootstrap_ci(
    scores: ArrayLike, reps: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the IQM over `reps` resamples of `scores` `(runs, tasks)`: each resample
    draws `runs` runs with replacement within every task (column) separately, as `rliable` does."""
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    runs, tasks = matrix.shape
    rng = np.random.default_rng(seed)
    picks = rng.integers(runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(matrix[None].repeat(reps, axis=0), picks, axis=1).reshape(reps, -1)
    resampled.sort(axis=1)
    cut = int(0.25 * resampled.shape[1])
    values = resampled[:, cut : resampled.shape[1] - cut].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


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
