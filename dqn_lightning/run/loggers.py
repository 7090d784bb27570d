"""The experiment trackers a run writes to: Lightning's TensorBoard, CSV, MLflow and W&B loggers.

Every run keeps one local run directory, `<logdir>/<env>/version_N`, for its checkpoints,
`config.yaml` and `summary.json`; its first logger is a local one (TensorBoard, else CSV: a run
asking only for remote trackers also gets a `metrics.csv` there), so Lightning places the
checkpoints as it always has. The remote runs' ids go to `trackers.json` in that directory, so
`--resume` continues the same MLflow run and W&B run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from dqn_lightning.errors import ConfigError
from dqn_lightning.private_api import mlflow_tracking_uri, started_experiment

LOGGERS: tuple[str, ...] = ("tensorboard", "csv", "mlflow", "wandb")
TRACKERS_FILE = "trackers.json"
EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}  # logger: (module, extra)


def check_loggers(names: Sequence[str]) -> None:
    """One-line `ConfigError` for an unknown logger, a repeated one, or a tracker whose package is missing."""
    if not names:
        raise ConfigError(f"--logger needs at least one of {', '.join(LOGGERS)}")
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(
                f"unknown logger {name!r}; choose from {', '.join(LOGGERS)} (several: --logger csv mlflow)"
            )
    if len(set(names)) < len(names):
        raise ConfigError(f"--logger names a logger twice: {' '.join(names)}")
    for name in names:
        if name in EXTRAS:
            module, extra = EXTRAS[name]
            try:
                __import__(module)
            except ImportError:
                raise ConfigError(f"--logger {name} needs {module}: pip install 'dqn-lightning[{extra}]'") from None


def default_tracking_uri(logdir: str | Path) -> str:
    """MLflow's store: $MLFLOW_TRACKING_URI if set, else a SQLite file in the log folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(logdir).resolve() / 'mlflow.db'}"


def check_tracking_uri(uri: str) -> None:
    """Fails fast, in one line, when an MLflow tracking server cannot be reached (a few seconds at most)."""
    if not uri.startswith(("http://", "https://")):
        return
    import mlflow

    # mlflow retries an unreachable server for minutes by default: one try, five seconds
    saved = {key: os.environ.get(key) for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # any failure to talk to the server: connection, HTTP, protocol
        reason = " ".join(str(err).split())[:160]
        raise ConfigError(
            f"cannot reach the MLflow tracking server at {uri} ({reason}): start it (mlflow server) or fix "
            "--mlflow-tracking-uri / MLFLOW_TRACKING_URI"
        ) from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_loggers(
    names: Sequence[str],
    logdir: str | Path,
    env_id: str,
    run_dir: Path | None = None,
    tracking_uri: str | None = None,
    project: str = "dqn-lightning",
) -> list[Logger]:
    """The loggers `names` asks for, local one first; `run_dir` continues a run (its version folder).

    Remote runs are named `<env>/version_N`; `project` is the MLflow experiment and the W&B project.
    """
    check_loggers(names)
    if run_dir is not None:
        root, name, version = run_dir.parent.parent, run_dir.parent.name, run_dir.name
    else:
        # absolute, as a resumed run's folder is: else ModelCheckpoint sees another dirpath on resume
        # and drops its record of the best checkpoint
        root, name, version = Path(logdir).resolve(), env_id.replace("/", "_"), None
    local: list[Logger] = []
    if "tensorboard" in names:
        local.append(TensorBoardLogger(root, name=name, version=version, default_hp_metric=False))
    if "csv" in names or "tensorboard" not in names:
        local.append(CSVLogger(root, name=name, version=version))
    directory = Path(str(local[0].log_dir))
    saved = read_trackers(directory) if run_dir is not None else {}
    run_name = f"{name}/{directory.name}"
    remote: list[Logger] = []
    if "mlflow" in names:
        from pytorch_lightning.loggers import MLFlowLogger

        uri = saved.get("mlflow", {}).get("tracking_uri") or tracking_uri or default_tracking_uri(logdir)
        check_tracking_uri(uri)
        remote.append(
            MLFlowLogger(
                experiment_name=project,
                run_name=run_name,
                tracking_uri=uri,
                run_id=saved.get("mlflow", {}).get("run_id"),
                tags={"run_dir": str(directory.resolve())},
            )
        )
    if "wandb" in names:
        from pytorch_lightning.loggers import WandbLogger

        remote.append(
            WandbLogger(
                project=project,
                name=run_name,
                save_dir=str(directory),
                id=saved.get("wandb", {}).get("id"),
                resume="allow",
                notes=f"run directory {directory.resolve()}",
            )
        )
    return local + remote


def tracker_ids(loggers: Sequence[Logger]) -> dict[str, Any]:
    """The remote runs' ids (after their runs exist), for `trackers.json`."""
    ids: dict[str, Any] = {}
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "MLFlowLogger":
            ids["mlflow"] = {"tracking_uri": mlflow_tracking_uri(logger), "run_id": logger.run_id}  # type: ignore[attr-defined]
        elif kind == "WandbLogger":
            ids["wandb"] = {"id": logger.version, "project": logger.name}
    return ids


def log_settings(loggers: Sequence[Logger], settings: dict[str, Any], resumed_from: str | None) -> None:
    """The run's settings as each logger's hyperparameters.

    MLflow params cannot change once logged, so a resumed MLflow run keeps its first ones and gets
    a `resumed_from` tag instead (the run directory's config.yaml keeps the settings of the start).
    """
    for logger in loggers:
        if resumed_from is not None and type(logger).__name__ == "MLFlowLogger":
            logger.experiment.set_tag(logger.run_id, "resumed_from", resumed_from)  # type: ignore[attr-defined]
        else:
            logger.log_hyperparams(settings)


def finish_trackers(loggers: Sequence[Logger]) -> None:
    """Ends the W&B run (Lightning leaves it open until the process exits), so a next run in this
    process starts its own instead of joining this one."""
    for logger in loggers:
        experiment = started_experiment(logger)
        if type(logger).__name__ == "WandbLogger" and experiment is not None:
            experiment.finish()


def write_trackers(loggers: Sequence[Logger], run_dir: str | Path) -> None:
    ids = tracker_ids(loggers)
    if ids:
        (Path(run_dir) / TRACKERS_FILE).write_text(json.dumps(ids, indent=2) + "\n")


def read_trackers(run_dir: Path) -> dict[str, Any]:
    path = run_dir / TRACKERS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
