"""tune.py: Optuna trials as training runs, pruning through our callback, a SQLite study that resumes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dqn_lightning.run.config import parse_settings
from dqn_lightning.tools.tuning import OptunaPruning, sample_settings
from tests.helpers import load_script

tune = load_script("tune")

optuna = pytest.importorskip("optuna", reason="the tune extra: pip install -e '.[tune]'")

SPACE = {
    "lr": {"low": 1e-4, "high": 3e-3, "log": True},
    "batch_size": {"choices": [32, 64]},
    "hidden_sizes": {"choices": [[32], [64, 64]]},
    "train_freq": {"choices": [16, 32]},
    "subsample_steps": {"choices": [1, 2]},
    "learning_starts": 300,
}
TRAIN = ["--", "--eval-interval", "500", "--eval-episodes", "2", "--preset", "none", "--target-update-interval", "100",
         "--learning-starts", "300"]  # fmt: skip


def run_tune(tmp_path: Path, n_trials: int, *extra: str) -> int:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    flags = ["--env", "CartPole-v1", "--n-trials", str(n_trials), "--trial-timesteps", "1000", "--pruner", "none"]
    return tune.main([*flags, "--search-space", str(space), "--out", str(tmp_path / "out"), *extra, *TRAIN])


def test_a_study_runs_resumes_and_writes_best_settings_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_tune(tmp_path, 2, "--seed", "5") == 0
    out = tmp_path / "out"
    study = optuna.load_study(study_name="tune-CartPole-v1", storage=f"sqlite:///{out / 'tune-CartPole-v1.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert [t.user_attrs["seed"] for t in study.trials] == [5, 6]  # base seed + trial number, recorded
    printed = capsys.readouterr().out
    assert len(re.findall(r"^trial \d: -?\d+\.\d\d \(seed \d;", printed, re.M)) == 2

    # run the same command again with a larger target: the study goes on from 2, it does not restart
    assert run_tune(tmp_path, 3, "--seed", "5", "--confirm-seeds", "40") == 0
    study = optuna.load_study(study_name="tune-CartPole-v1", storage=f"sqlite:///{out / 'tune-CartPole-v1.db'}")
    printed = capsys.readouterr().out
    assert len(study.trials) == 3 and "2 of 3 trials finished" in printed
    # the confirmation: base and best settings trained on the fresh seed, side by side
    table = (out / "confirm.md").read_text().splitlines()
    assert table[0].startswith("| settings | score per seed (40) |") and len(table) == 4
    assert table[2].startswith("| base settings |")
    assert table[3].startswith(f"| best (trial {study.best_trial.number}) |")

    # each trial's recorded flags re-run it; best.yaml is a train.py --config file with the best values
    best = study.best_trial
    rerun, _ = parse_settings(best.user_attrs["flags"].split())
    assert rerun.seed == best.user_attrs["seed"] and rerun.lr == pytest.approx(best.params["lr"])
    config, _ = parse_settings(["--config", str(out / "best.yaml")])
    assert config.lr == pytest.approx(best.params["lr"]) and config.batch_size == best.params["batch_size"]
    assert config.gradient_steps == max(best.params["train_freq"] // best.params["subsample_steps"], 1)
    for name in ("history.png", "importances.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pruning_callback_stops_a_trial_the_pruner_rejects(tmp_path: Path) -> None:
    from dqn_lightning.run import train

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1e9))
    trial = study.ask()
    flags = ["--total-timesteps", "3000", "--learning-starts", "200", "--train-freq", "100", "--eval-interval", "500"]
    config, _ = parse_settings([*flags, "--eval-episodes", "2", "--quiet", "--logdir", str(tmp_path)])
    pruning = OptunaPruning(trial)
    summary = train(config, callbacks=[pruning])
    assert pruning.pruned and summary["env_steps"] < 3000  # stopped at the first report, not at the budget
    first = summary["evaluations"][0]
    assert pruning.pruned_at == first["env_steps"]
    assert study.trials[0].intermediate_values == {first["env_steps"]: pytest.approx(first["return_mean"])}


def test_sampling_derives_gradient_steps_and_decodes_lists() -> None:
    trial = optuna.trial.FixedTrial({"lr": 1e-3, "batch_size": 64, "hidden_sizes": "[64, 64]", "train_freq": 32,
                                     "subsample_steps": 2})  # fmt: skip
    values = sample_settings(trial, SPACE)
    assert values == {"lr": 1e-3, "batch_size": 64, "hidden_sizes": (64, 64), "train_freq": 32, "gradient_steps": 16,
                      "learning_starts": 300}  # fmt: skip


def test_a_corrupt_study_database_exits_2_and_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    database = out / "tune-CartPole-v1.db"
    database.write_bytes(b"this is not a database" * 100)
    assert run_tune(tmp_path, 1) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot open study 'tune-CartPole-v1'" in err and "another --storage" in err
    assert database.read_bytes() == b"this is not a database" * 100
    assert not (out / "trials").exists()


def test_a_bad_search_space_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 0.1, high: 1}\n")
    assert tune.main(["--env", "CartPole-v1", "--search-space", str(space), "--out", str(tmp_path / "o")]) == 2
    assert "'learning_rate' is not a train.py setting" in capsys.readouterr().err
