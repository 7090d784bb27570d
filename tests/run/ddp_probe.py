"""Runs scripts/train.py's `train` with a callback that records, per rank, what the DDP test checks.

Lightning's DDP launcher starts this same script once per extra rank, so it must be a script.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from dqn_lightning import run as train
from dqn_lightning.run.config import parse_config


class RankReport(pl.Callback):
    """Writes rank-<r>.pt: weights, target weights, env steps, episodes and the first stored observations."""

    def __init__(self, folder: Path, prefix: str = "") -> None:
        self.folder, self.prefix = folder, prefix
        self.rank = 0

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loop = trainer.callbacks[0]  # type: ignore[attr-defined]  # set by Lightning's callback connector
        report = {
            "online": [p.detach().clone() for p in pl_module.q_network.parameters()],  # type: ignore[union-attr]
            "target": [p.detach().clone() for p in pl_module.target_network.parameters()],  # type: ignore[union-attr]
            "env_steps": loop.env_steps,
            "local_episodes": loop.episodes,
            "first_obs": torch.from_numpy(loop.buffer.obs[:50].copy()),
            "gradient_step": pl_module.gradient_step,  # type: ignore[attr-defined]
            "buffer_size": len(loop.buffer),
            "learning_starts": loop.learning_starts,  # raised by a resume that refills the buffer
            "noise_seed": pl_module._generators.noise.initial_seed(),  # type: ignore[union-attr]
            # a recurrent agent: this rank's acting states now, and those its buffer kept
            "memory": torch.from_numpy(loop.memory.state.copy()) if loop.memory is not None else None,
            "stored_states": torch.from_numpy(loop.buffer.sequences.state[:50].copy())
            if loop.buffer.sequences is not None
            else None,
        }
        torch.save(report, self.folder / f"{self.prefix}rank-{trainer.global_rank}.pt")
        self.rank = trainer.global_rank


if __name__ == "__main__":
    out = Path(sys.argv[1])
    resumed = "--resume" in sys.argv
    report = RankReport(out, prefix="resumed-" if resumed else "")
    summary = train.train(parse_config(sys.argv[2:]), callbacks=[report])
    # train() took the process group down (see there), so the rank comes from the callback
    assert not torch.distributed.is_initialized()
    (out / f"{report.prefix}summary-rank{report.rank}.json").write_text(json.dumps(summary))
