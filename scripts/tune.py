"""Tune DQN's hyperparameters for an env with Optuna (TPE sampler, median pruner, SQLite study).

    python scripts/tune.py --env Acrobot-v1 --n-trials 30 --trial-timesteps 30000 -- --preset none
    python scripts/tune.py --env CartPole-v1 --search-space my_space.yaml --study-name cartpole-2

Each trial is a train.py run (the settings of `--env` and the flags after `--`, as train.py reads
them) with values drawn from the search space (dqn_lightning/tools/search_spaces/dqn.yaml: the RL Zoo's
DQN space and our DQN options), on `--trial-timesteps` env steps. Its score is the mean of its
greedy evaluations; after each evaluation the running score goes to the pruner, which stops
trials behind the median of earlier ones at the same env step. The study lives in SQLite
(`<out>/<study>.db`): run the same command again after a crash or Ctrl-C and it goes on, and
several processes can work on one study at once. `--n-trials` counts finished trials of the
study, over all processes. Writes `<out>/best.yaml` (for `train.py --config`), `history.png`,
`importances.png`, and each trial's run under `<out>/trials/`; each trial records its seed.
`--confirm-seeds 100 101 102` then trains the base settings and the best ones on those fresh
seeds at the trial budget and prints (and writes to confirm.md) both scores side by side.
Needs `pip install -e ".[tune]"`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from dqn_lightning import ConfigError
from dqn_lightning.errors import exit_code
from dqn_lightning.run import cli, train
from dqn_lightning.run.config import parse_settings
from dqn_lightning.tools.tuning import (
    DEFAULT_SPACE,
    OptunaPruning,
    best_settings_yaml,
    load_search_space,
    open_study,
    sample_settings,
    save_plots,
    score,
    trial_config,
)


def objective(trial: Any, base: Any, space: dict[str, Any], timesteps: int, out: Path, seed: int) -> float:
    import optuna

    sampled = sample_settings(trial, space)
    trial_seed = seed + trial.number
    trial.set_user_attr("seed", trial_seed)
    trial.set_user_attr("timesteps", timesteps)
    trial.set_user_attr("settings", json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in sampled.items()}))
    fixed = {"total_timesteps": timesteps, "seed": trial_seed}
    flags = cli.as_flags({"env": base.env, "preset": base.preset, **sampled, **fixed})
    trial.set_user_attr("flags", " ".join(flags))  # the train.py command that re-runs this trial
    try:
        config = trial_config(
            base, sampled, **fixed, quiet=True, logdir=str(out / "trials"), resume=None, save_buffer="never"
        )
    except ConfigError as err:
        print(f"trial {trial.number}: refused, {err}", flush=True)
        raise
    pruning = OptunaPruning(trial)
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own summary: the trial line below says it
        summary = train(config, callbacks=[pruning])
    trial.set_user_attr("run_dir", summary["log_dir"])
    value = score(summary["evaluations"])
    if pruning.pruned:
        print(f"trial {trial.number}: pruned at {pruning.pruned_at:,} env steps (score so far {value:.1f})", flush=True)
        raise optuna.TrialPruned()
    print(f"trial {trial.number}: {value:.2f} (seed {trial_seed}; {trial.user_attrs['flags']})", flush=True)
    return value


def confirm(base: Any, study: Any, timesteps: int, seeds: list[int], out: Path) -> str:
    """Trains the base settings and the best trial's on fresh seeds; a Markdown table of their scores."""
    best = study.best_trial
    sampled = json.loads(best.user_attrs["settings"])
    sampled = {k: tuple(v) if isinstance(v, list) else v for k, v in sampled.items()}
    rows = []
    for label, values in (("base settings", {}), (f"best (trial {best.number})", sampled)):
        scores, finals, seconds = [], [], []
        for seed in seeds:
            config = trial_config(base, values, total_timesteps=timesteps, seed=seed, quiet=True, resume=None,
                                  logdir=str(out / "confirm"), save_buffer="never")  # fmt: skip
            with contextlib.redirect_stdout(io.StringIO()):
                summary = train(config)
            scores.append(score(summary["evaluations"]))
            finals.append(summary["final_eval_return_mean"])
            seconds.append(summary["train_seconds"])
            print(f"confirm {label}, seed {seed}: score {scores[-1]:.2f}, final eval {finals[-1]:.1f}", flush=True)
        rows.append(
            f"| {label} | {' / '.join(f'{v:.1f}' for v in scores)} | {sum(scores) / len(scores):.1f} "
            f"| {' / '.join(f'{v:.1f}' for v in finals)} | {sum(seconds) / len(seconds):.0f} |"
        )
    header = (
        f"| settings | score per seed ({', '.join(map(str, seeds))}) | mean score | final eval per seed "
        "| train s per run |\n|---|---|---:|---|---:|"
    )
    table = "\n".join([header, *rows])
    (out / "confirm.md").write_text(table + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="env id to tune for (its preset, if any, is the base)")
    parser.add_argument("--n-trials", type=int, default=30, help="finished trials the study should have")
    parser.add_argument("--trial-timesteps", type=int, default=None,
                        help="env steps per trial (default: half of the base settings' budget)")  # fmt: skip
    parser.add_argument("--search-space", default=str(DEFAULT_SPACE), help="YAML search space")
    parser.add_argument("--study-name", default=None, help="default: tune-<env>")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///<out>/<study>.db)")
    parser.add_argument("--out", default=None, help="folder for results (default: lightning_logs/tune/<study>)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed; trial n trains with seed + n")
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    parser.add_argument("--pruner", choices=["median", "none"], default="median")
    parser.add_argument("--confirm-seeds", type=int, nargs="*", default=[],
                        help="after the study: train base and best settings on these seeds, compare")  # fmt: skip
    parser.add_argument("train_flags", nargs="*", help="train.py flags for every trial (after --)")
    args = parser.parse_args(argv)

    def run() -> None:
        import optuna
        from optuna.study import MaxTrialsCallback
        from optuna.trial import TrialState

        if args.n_trials < 1:
            raise ConfigError("--n-trials must be >= 1")
        base, _ = parse_settings(["--env", args.env, *args.train_flags])
        timesteps = args.trial_timesteps or max(1, (base.total_timesteps or 100_000) // 2)
        space = load_search_space(args.search_space)
        name = args.study_name or f"tune-{args.env.replace('/', '-')}"
        out = Path(args.out or Path(base.logdir) / "tune" / name)
        out.mkdir(parents=True, exist_ok=True)
        storage = args.storage or f"sqlite:///{(out / f'{name}.db').resolve()}"
        study = open_study(name, storage, args.seed, args.sampler, args.pruner)
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial instead
        done = (TrialState.COMPLETE, TrialState.PRUNED)
        finished = len(study.get_trials(states=done))
        print(f"Study {name} in {storage}: {finished} of {args.n_trials} trials finished; {timesteps:,} env steps each")
        if finished < args.n_trials:
            study.optimize(
                lambda trial: objective(trial, base, space, timesteps, out, args.seed),
                callbacks=[MaxTrialsCallback(args.n_trials, states=done)],
                catch=(ConfigError,),  # settings that cannot work together fail that trial, not the study
            )
        complete = study.get_trials(states=(TrialState.COMPLETE,))
        if not complete:
            raise ConfigError(f"no trial of study {name} completed; see the trial lines above")
        (out / "best.yaml").write_text(best_settings_yaml(study, base, space))
        plots = save_plots(study, out)
        best = study.best_trial
        print(f"Best: trial {best.number}, score {best.value:.2f}, seed {best.user_attrs['seed']}")
        print(f"Wrote {out / 'best.yaml'} (python scripts/train.py --config {out / 'best.yaml'})")
        print("Plots: " + ", ".join(str(p) for p in plots))
        if args.confirm_seeds:
            print(confirm(base, study, timesteps, args.confirm_seeds, out))

    return exit_code("tune.py", run)


if __name__ == "__main__":
    sys.exit(main())
