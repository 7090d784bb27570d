"""Helpers the tests share: a quiet CPU Trainer, and loading a script of scripts/ as a module."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import pytorch_lightning as pl

from dqn_lightning.run import main

ROOT = Path(__file__).resolve().parents[1]


def quiet_trainer(tmp_path: Path, callbacks: list[pl.Callback], **kwargs: object) -> pl.Trainer:
    """A CPU Trainer with no logger, bar or checkpoints, unless asked for."""
    options: dict[str, object] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)  # type: ignore[arg-type]


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (scripts are not a package: they are loaded by file path)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """train.py's main in this process: (exit status, the lines it wrote to stderr)."""
    capsys.readouterr()  # drop what came before
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def run_train(*flags: str, cwd: Path, process: bool = False) -> subprocess.CompletedProcess[str]:
    """train.py with `flags`, run from `cwd`: in this process by default (the script is
    `sys.exit(main())`, so only a test of the process itself needs `process=True`)."""
    if process:
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}  # ROOT: tests.toy_envs envs
        command = [sys.executable, str(ROOT / "scripts" / "train.py"), *flags]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(flags))
    return subprocess.CompletedProcess(["train.py", *flags], code, out.getvalue(), err.getvalue())
