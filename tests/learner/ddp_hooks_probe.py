"""Trains a hook-overriding DQN subclass under DDP with 2 CPU processes and writes what each rank saw.

    python ddp_hooks_probe.py OUT_DIR CLASS_NAME     (CLASS_NAME from tests/learner/hook_variants.py)

Lightning's DDP launcher starts this same script once per extra rank, so it must be a script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: `tests` imports

from dqn_lightning import EnvLoop, PrioritizedReplayBuffer, replay_dataloader
from tests.learner import hook_variants


def main(out: Path, name: str) -> None:
    torch.manual_seed(0)
    cls = getattr(hook_variants, name)
    model = cls((4,), 2, hidden_sizes=(16,), lr=1e-2, target_update_interval=8, eval_episodes=0)
    before = [p.detach().clone() for p in model.parameters()]
    buffer = PrioritizedReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=1_000, learning_starts=200, seed=0, train_freq=4, eps_end=0.5)
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=-1, limit_val_batches=0,
                         num_sanity_val_steps=0, default_root_dir=out, callbacks=[loop], **quiet)  # fmt: skip
    trainer.fit(model, replay_dataloader(buffer, 16, gradient_steps=4, rounds_per_batch=2))
    obs = torch.as_tensor(buffer.obs[: len(buffer)])
    with torch.no_grad():
        q = model(obs).gather(1, torch.as_tensor(buffer.action[: len(buffer)]).long()[:, None])
    report = {
        "before": before,
        "after": [p.detach().clone() for p in model.parameters()],
        "q_taken": q.squeeze(1),
        "priorities": torch.as_tensor(buffer.tree.get(list(range(len(buffer))))),
        "expected_priority": (hook_variants.PRIORITY + buffer.eps) ** buffer.alpha,
        "gradient_step": model.gradient_step,
    }
    torch.save(report, out / f"{name}-rank-{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
