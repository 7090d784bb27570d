"""Where a run's checkpoints go, and the line that tells a user how to continue after a fault."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl


def checkpoint_dir(trainer: pl.Trainer) -> Path:
    """Where this run's checkpoints (and the replay files beside them) go."""
    dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
    return Path(dirpath) if dirpath else Path(trainer.default_root_dir) / "checkpoints"


def resume_hint(trainer: pl.Trainer) -> str:
    """Names the newest checkpoint of this run and how to continue from it (for fault messages)."""
    folder = checkpoint_dir(trainer)
    saved = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not saved:
        return "no checkpoint was written yet (--checkpoint-interval N writes one every N env steps)"
    return f"the last checkpoint is {saved[-1]}: continue with --resume last"
