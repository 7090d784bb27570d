"""Under DDP, a fault on one rank stops every rank, at once and with the faulty rank's message.

A rank whose env raises, or whose loss turns NaN, does not raise on its own: the other ranks
would wait for it in their next collective until the process group's timeout (30 minutes by
default). It records the fault, takes part in the rest of the batch, and at the end of the
batch every rank calls `agree_on_fault`: one all-reduce of a flag per batch on the healthy path,
and, only when a flag is up, one gather of the messages. Then every rank raises the same
`TrainingFault`, before any checkpoint of the batch could save spoiled weights.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from dqn_lightning.errors import TrainingFault


def agree_on_fault(trainer: pl.Trainer, fault: TrainingFault | None) -> None:
    """Raises a `TrainingFault` on every rank if any rank has one (on one process: raises `fault`)."""
    if trainer.world_size == 1:
        if fault is not None:
            raise fault
        return
    flag = torch.tensor(float(fault is not None), device=trainer.strategy.root_device)
    if float(trainer.strategy.reduce(flag, reduce_op="sum")) == 0.0:
        return
    # a NaN loss spreads to every rank through the averaged gradients: report the first one
    # (lowest gradient step, then lowest rank); an env fault counts as earlier than any NaN
    reports: list[tuple[float, int, str] | None] = [None] * trainer.world_size
    mine = (_when(fault), trainer.global_rank, str(fault)) if fault is not None else None
    torch.distributed.all_gather_object(reports, mine)
    _, rank, message = min(report for report in reports if report is not None)
    raise TrainingFault(f"rank {rank}: {message}") from fault


def _when(fault: TrainingFault) -> float:
    return float(fault.gradient_step) if fault.gradient_step is not None else -1.0
