"""Hyperparameter search with Optuna: a search space read from YAML, trials that are training runs,
and a pruning callback written for `pytorch_lightning` (Optuna's own imports `lightning.pytorch`).

A trial's score is the mean of its greedy evaluations (`eval/return_mean` over the run): an agent
that learns sooner and stays good scores higher than one lucky at the end. The same running mean
is reported after each evaluation, so the pruner compares trials at equal env steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml

from dqn_lightning.errors import ConfigError
from dqn_lightning.run.train_config import TrainConfig

DEFAULT_SPACE = Path(__file__).parent / "search_spaces" / "dqn.yaml"
DERIVED = ("subsample_steps",)  # not a setting: gradient_steps = max(train_freq // subsample_steps, 1)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("tuning needs optuna: pip install 'dqn-lightning[tune]'") from None
    return optuna


def load_search_space(path: str | Path = DEFAULT_SPACE) -> dict[str, Any]:
    """The space as {setting: spec}; unknown settings and malformed specs are one-line errors."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read search space {path}: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"search space {path} must be a mapping of setting: spec")
    known = {field.name for field in dataclasses.fields(TrainConfig)} | set(DERIVED)
    for key, spec in data.items():
        if key not in known:
            raise ConfigError(f"search space {path}: {key!r} is not a train.py setting; see train.py --help")
        if isinstance(spec, dict):
            ranged = {"low", "high"} <= set(spec) and set(spec) <= {"low", "high", "log", "step"}
            if not (ranged or set(spec) == {"choices"}):
                raise ConfigError(
                    f"search space {path}: {key} must be {{low, high[, log, step]}} or {{choices: [...]}}"
                )
            if ranged and not spec["low"] <= spec["high"]:
                raise ConfigError(f"search space {path}: {key} has low > high")
            if "choices" in spec and not (isinstance(spec["choices"], list) and spec["choices"]):
                raise ConfigError(f"search space {path}: {key}'s choices must be a non-empty list")
    return data


def sample_settings(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """One trial's settings from the space (Optuna's suggest_* calls), derived ones resolved."""
    values: dict[str, Any] = {}
    for key, spec in space.items():
        if not isinstance(spec, dict):
            values[key] = spec
        elif "choices" in spec:
            # Optuna stores plain values only: lists (hidden sizes) go in as JSON text
            encoded = [json.dumps(c) if isinstance(c, list) else c for c in spec["choices"]]
            picked = trial.suggest_categorical(key, encoded)
            values[key] = json.loads(picked) if isinstance(picked, str) and picked.startswith("[") else picked
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step", 1),
                                            log=spec.get("log", False))  # fmt: skip
        else:
            values[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=spec.get("log", False))
    if "subsample_steps" in values:
        values["gradient_steps"] = max(values.get("train_freq", 1) // values.pop("subsample_steps"), 1)
    if "hidden_sizes" in values:
        values["hidden_sizes"] = tuple(values["hidden_sizes"])
    return values


def trial_config(base: TrainConfig, sampled: dict[str, Any], **fixed: Any) -> TrainConfig:
    """The base settings with a trial's sampled values and the fixed ones; validated."""
    config = dataclasses.replace(base, **sampled, **fixed)
    config.validate()
    return config


def score(evaluations: list[dict[str, float]]) -> float:
    """The trial's objective: the mean greedy return over all of its evaluations."""
    if not evaluations:
        return -math.inf
    return sum(row["return_mean"] for row in evaluations) / len(evaluations)


class OptunaPruning(pl.Callback):
    """Reports each evaluation's running score to the trial and stops training when the pruner says so.

    After `fit`, `pruned` says whether it stopped the run; the caller then raises `optuna.TrialPruned`.
    """

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.pruned = False
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        history = getattr(pl_module, "eval_history", [])
        if trainer.sanity_checking or not history:
            return
        step = int(history[-1]["env_steps"])
        self.trial.report(score(history), step)
        if self.trial.should_prune():
            self.pruned, self.pruned_at = True, step
            trainer.should_stop = True


def open_study(name: str, storage: str, seed: int, sampler: str, pruner: str) -> Any:
    """Creates or reopens a study in `storage` (SQLite by default); a broken database is one line."""
    optuna = _optuna()
    import warnings

    from optuna import storages
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)  # heartbeats: experimental since Optuna 2

    samplers: dict[str, Callable[[], Any]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    pruners: dict[str, Callable[[], Any]] = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "none": optuna.pruners.NopPruner,
    }
    try:
        # heartbeats mark trials of a crashed or killed process as failed, and they are retried once
        # (Optuna 4.9 renamed the callback; older versions have only the first name)
        retry = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
        callback = (
            {"heartbeat_stale_trial_callback": retry(max_retry=1)}
            if retry is not None
            else {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=1)}
        )
        rdb = storages.RDBStorage(storage, heartbeat_interval=30, grace_period=90, **callback)
        return optuna.create_study(
            study_name=name,
            storage=rdb,
            load_if_exists=True,
            direction="maximize",
            sampler=samplers[sampler](),
            pruner=pruners[pruner](),
        )
    except Exception as err:  # sqlalchemy / Optuna: not a database, another schema, a locked file
        reason = " ".join(str(err).split())[:160]
        raise ConfigError(
            f"cannot open study {name!r} in {storage} ({reason}): move the file away or pass another --storage"
        ) from None


def best_settings_yaml(study: Any, base: TrainConfig, space: dict[str, Any]) -> str:
    """The best trial's settings as a `train.py --config` file (with the base's env and preset)."""
    best = study.best_trial
    values = {"preset": base.preset, "env": base.env, **json.loads(best.user_attrs["settings"])}
    finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    header = (
        f"# best of {finished} finished trials of study {study.study_name}: trial {best.number}, "
        f"mean eval return {best.value:.2f} over {best.user_attrs['timesteps']} env steps "
        f"(seed {best.user_attrs['seed']})\n# python scripts/train.py --config THIS_FILE\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False)


def save_plots(study: Any, folder: Path) -> list[Path]:
    """Optuna's optimization history and parameter importances as PNGs (importances need 2+ finished trials)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization import matplotlib as plots

    warnings.filterwarnings("ignore", category=ExperimentalWarning)

    written = []
    for name, draw in (("history", plots.plot_optimization_history), ("importances", plots.plot_param_importances)):
        try:
            axes = draw(study)
        except (ValueError, RuntimeError):  # too few finished trials for importances
            continue
        figure: Any = axes.figure if hasattr(axes, "figure") else plt.gcf()
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
