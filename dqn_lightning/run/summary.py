"""The end-of-run summary: printed for people, written as summary.json for scripts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from dqn_lightning.acting.env_loop import EnvLoop
from dqn_lightning.learner.module import DQN


def run_summary(
    trainer: pl.Trainer, model: DQN, env_loop: EnvLoop, checkpoint: ModelCheckpoint, wall_seconds: float
) -> dict[str, Any]:
    """The run's numbers for people and scripts; NaN-free (None where a value does not exist).

    Under DDP every rank must call it (it sums episodes over ranks); the recent-return means are
    rank 0's own episodes.
    """
    final = model.eval_history[-1] if model.eval_history else None
    # the first evaluation with the highest mean: the one the best checkpoint holds
    best = max(model.eval_history, key=lambda row: row["return_mean"]) if model.eval_history else None
    return {
        "env": model.hparams["env_id"],
        "episodes": env_loop.total_episodes(trainer),  # over all ranks
        "world_size": trainer.world_size,
        "return_mean_last_100": _finite(env_loop.mean_return(100)),
        "return_mean_last_30": _finite(env_loop.mean_return(30)),
        "final_eval_return_mean": final["return_mean"] if final else None,
        "final_eval_return_std": final["return_std"] if final else None,
        "best_eval_return_mean": best["return_mean"] if best else None,
        "best_eval_env_steps": best["env_steps"] if best else None,
        "env_steps": env_loop.env_steps,
        # actions outside the env's info['action_mask'] (None: the env reports no masks)
        "illegal_actions": env_loop.masks.illegal_actions if env_loop.masks.current is not None else None,
        "gradient_steps": model.gradient_step,
        "wall_seconds": round(wall_seconds, 3),
        "train_seconds": round(env_loop.train_seconds, 3),
        "sps": round(env_loop.env_steps / max(env_loop.train_seconds, 1e-9), 1),
        "best_checkpoint": _absolute(checkpoint.best_model_path),
        "last_checkpoint": _absolute(checkpoint.last_model_path),
        "log_dir": _absolute(trainer.log_dir),
        "evaluations": model.eval_history,
    }


def write_summary(summary: dict[str, Any], log_dir: str | Path) -> Path:
    path = Path(log_dir) / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable block (the evaluation history stays in the JSON)."""
    # illegal_actions only where the env reports action masks
    hidden = {"evaluations"} | ({"illegal_actions"} if summary.get("illegal_actions") is None else set())
    shown = {key: value for key, value in summary.items() if key not in hidden}
    width = max(len(key) for key in shown)
    lines = [f"  {key:<{width}}  {value}" for key, value in shown.items()]
    if summary.get("best_checkpoint"):  # DQN's greedy score swings between evaluations: play the best
        score, step = summary["best_eval_return_mean"], summary["best_eval_env_steps"]
        lines.append(
            f"Watch the best agent ({score:.1f} at env step {step:,}): "
            f"python scripts/play.py --checkpoint {summary['best_checkpoint']}"
        )
    return "\n".join(lines)


def _absolute(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
