"""--logger: CSV, MLflow (a real SQLite store) and W&B (offline) beside TensorBoard, through resume."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from dqn_lightning import run as train

BUDGET = ["--learning-starts", "200", "--eval-interval", "500", "--eval-episodes", "2", "--quiet"]


def run_dir(logdir: Path) -> Path:
    return logdir / "CartPole-v1" / "version_0"


def test_csv_alone_keeps_the_run_directory_layout(tmp_path: Path) -> None:
    assert train.main(["--logger", "csv", "--total-timesteps", "1000", *BUDGET, "--logdir", str(tmp_path)]) == 0
    folder = run_dir(tmp_path)
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    summary = json.loads((folder / "summary.json").read_text())
    evals = [(int(row["step"]), float(row["eval/return_mean"])) for row in rows if row["eval/return_mean"]]
    # each evaluation is a row at its env step (the x-axis TensorBoard uses too)
    assert evals == [(e["env_steps"], pytest.approx(e["return_mean"])) for e in summary["evaluations"]]
    assert evals[-1][0] == 1000
    assert any(row["train/loss"] for row in rows) and any(row["rollout/episode_return"] for row in rows)
    assert not list(folder.glob("events.out.tfevents*"))  # no TensorBoard asked for
    assert Path(summary["last_checkpoint"]).parent == folder / "checkpoints"
    assert "logger:\n- csv\n" in (folder / "config.yaml").read_text()


def test_mlflow_and_wandb_log_the_run_and_resume_continues_the_same_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    flags = ["--logger", "[tensorboard,mlflow,wandb]", *BUDGET, "--logdir", str(tmp_path)]
    assert train.main([*flags, "--total-timesteps", "1000", "--project", "dqn-test"]) == 0
    folder = run_dir(tmp_path)
    ids = json.loads((folder / "trackers.json").read_text())
    uri = f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert ids["mlflow"]["tracking_uri"] == uri  # the default store: a SQLite file in --logdir
    client = mlflow.MlflowClient(uri)
    run = client.get_run(ids["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "CartPole-v1/version_0"
    assert run.data.params["lr"] == str(yaml.safe_load((folder / "config.yaml").read_text())["lr"])
    assert run.data.tags["run_dir"] == str(folder.resolve())
    assert client.get_experiment(run.info.experiment_id).name == "dqn-test"
    evaluations = json.loads((folder / "summary.json").read_text())["evaluations"]
    steps = [e["env_steps"] for e in evaluations]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/return_mean")] == steps
    assert steps[-1] == 1000
    wandb_runs = sorted((folder / "wandb").glob(f"offline-run-*-{ids['wandb']['id']}"))
    assert len(wandb_runs) == 1 and list(wandb_runs[0].glob("*.wandb"))
    assert list(folder.glob("events.out.tfevents*"))

    # resume with a larger budget: the same MLflow run and W&B id go on. W&B names an offline
    # run's folder by the second it started, so a resume within the same second would share it
    time.sleep(1.1)
    last = folder / "checkpoints" / "last.ckpt"
    assert train.main(["--resume", str(last), "--total-timesteps", "1500", "--quiet"]) == 0
    assert json.loads((folder / "trackers.json").read_text()) == ids
    history = client.get_metric_history(run.info.run_id, "eval/return_mean")
    resumed = [e["env_steps"] for e in json.loads((folder / "summary.json").read_text())["evaluations"]]
    assert resumed[: len(steps)] == steps and resumed[-1] == 1500
    assert [m.step for m in history] == resumed
    assert len(client.search_runs([run.info.experiment_id])) == 1
    assert len(sorted((folder / "wandb").glob(f"offline-run-*-{ids['wandb']['id']}"))) == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--logger", "neptune"], r"unknown logger 'neptune'; choose from tensorboard, csv, mlflow, wandb"),
        (["--logger", "csv", "csv"], r"--logger names a logger twice"),
        (["--logger", "mlflow", "--mlflow-tracking-uri", "http://127.0.0.1:9"], r"cannot reach the MLflow .*server"),
    ],
)
def test_bad_logger_settings_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    if "mlflow" in flags:
        pytest.importorskip("mlflow")
    logdir = tmp_path / "logs"
    assert train.main([*flags, "--total-timesteps", "300", "--learning-starts", "100", "--logdir", str(logdir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not logdir.exists()


def test_a_tracker_without_its_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: importing it raises ImportError
    assert train.main(["--logger", "mlflow", "--logdir", str(tmp_path / "logs")]) == 2
    assert capsys.readouterr().err.strip().endswith("--logger mlflow needs mlflow: pip install 'dqn-lightning[mlflow]'")
