"""The per-batch agreement between DDP ranks: faults, stop requests and episode counts in one all-reduce."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from dqn_lightning.acting.interface import agree_at_batch_end
from dqn_lightning.callbacks.stopping import GracefulInterrupt
from dqn_lightning.errors import TrainingFault


def two_rank_trainer(other_rank: list[float], calls: list[str]) -> Any:
    """Rank 0 of 2, whose sum-reduce adds the other rank's vector and records each collective."""

    def reduce(tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
        calls.append(f"reduce {reduce_op}")
        return tensor + torch.tensor(other_rank, dtype=tensor.dtype)

    def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:
        calls.append("reduce_boolean_decision")
        return decision

    strategy = SimpleNamespace(root_device=torch.device("cpu"), reduce=reduce,
                               reduce_boolean_decision=reduce_boolean_decision)  # fmt: skip
    return SimpleNamespace(world_size=2, global_rank=0, strategy=strategy)


def test_one_all_reduce_carries_the_stop_requests_and_the_episode_counts() -> None:
    calls: list[str] = []
    # the other rank: no fault, Ctrl-C pressed there, 7 episodes finished
    agreed = agree_at_batch_end(two_rank_trainer([0.0, 1.0, 7.0], calls), None, stop_requested=False, episodes=5)
    assert agreed.stop_requested and agreed.episodes == 12
    assert calls == ["reduce sum"]
    calls.clear()
    agreed = agree_at_batch_end(two_rank_trainer([0.0, 0.0, 3.0], calls), None, stop_requested=False, episodes=2)
    assert not agreed.stop_requested and agreed.episodes == 5 and calls == ["reduce sum"]


def test_one_process_needs_no_collective_and_raises_its_own_fault() -> None:
    trainer: Any = SimpleNamespace(world_size=1)
    assert agree_at_batch_end(trainer, None, stop_requested=True, episodes=4) == (True, 4)
    with pytest.raises(TrainingFault, match="broken"):
        agree_at_batch_end(trainer, TrainingFault("broken"))


def test_the_interrupt_uses_what_the_env_loop_agreed_and_starts_no_collective_of_its_own(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    trainer = two_rank_trainer([0.0, 0.0, 0.0], calls)
    saved: list[Any] = []
    trainer.save_checkpoint = saved.append
    trainer.should_stop = False
    trainer.limit_val_batches = 1.0
    monkeypatch.setattr("dqn_lightning.callbacks.stopping.checkpoint_dir", lambda trainer: tmp_path)
    interrupt = GracefulInterrupt()
    interrupt.agreed = False  # set by EnvLoop.on_train_batch_end, which runs first
    interrupt.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    assert calls == [] and not trainer.should_stop and interrupt.agreed is None
    interrupt.agreed = True  # another rank was stopped
    interrupt.on_train_batch_end(trainer, None, None, None, 1)  # type: ignore[arg-type]
    assert calls == [] and trainer.should_stop and saved == [tmp_path / "last.ckpt"]
    assert trainer.limit_val_batches == 0  # no evaluation on the way out
    # used with a module that has no EnvLoop: its own all-reduce
    alone = GracefulInterrupt()
    alone.on_train_batch_end(trainer, None, None, None, 2)  # type: ignore[arg-type]
    assert calls == ["reduce_boolean_decision"]
