"""ReplayFiles: which replay files are written beside checkpoints, which are kept, and reading one back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.replay_files import ReplayFiles


def filled_buffer(n: int = 5) -> ReplayBuffer:
    buffer = ReplayBuffer(8, obs_shape=(2,))
    for i in range(n):
        obs = np.full((1, 2), i, dtype=np.float32)
        buffer.add(obs, np.array([i % 2]), np.array([float(i)]), obs + 1, np.array([False]), np.array([False]))
    return buffer


def trainer_in(folder: Path, ckpt_path: str | None = None) -> Any:
    # the two things ReplayFiles reads off a Trainer: its checkpoint folder and the checkpoint resumed from
    return SimpleNamespace(checkpoint_callback=SimpleNamespace(dirpath=str(folder)), ckpt_path=ckpt_path)


def test_a_bad_mode_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="save_buffer must be auto, always or never, got 'sometimes'"):
        ReplayFiles(filled_buffer(), "sometimes")  # type: ignore[arg-type]


def test_auto_saves_only_buffers_within_the_limit_and_names_each_rank() -> None:
    buffer = filled_buffer()  # 8 x (2 + 2 obs floats + action, reward, flags): a few hundred bytes
    assert ReplayFiles(buffer, "auto", limit_bytes=buffer.nbytes).file_name(300, rank=0) == "replay-envstep300.npz"
    assert ReplayFiles(buffer, "auto", limit_bytes=buffer.nbytes - 1).file_name(300, rank=0) is None
    assert ReplayFiles(buffer, "always", limit_bytes=0).file_name(300, rank=2) == "replay-envstep300-rank2.npz"
    assert ReplayFiles(buffer, "never").file_name(300, rank=0) is None


def test_files_no_checkpoint_names_are_deleted_and_one_step_shares_one_file(tmp_path: Path) -> None:
    files = ReplayFiles(filled_buffer(), "always")
    trainer = trainer_in(tmp_path)
    (tmp_path / "best-envstep100.ckpt").touch()
    files.save(trainer, 100, rank=0)
    files.save(trainer, 200, rank=0)  # last.ckpt at 200: the best's file at 100 stays
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["replay-envstep100.npz", "replay-envstep200.npz"]
    before = (tmp_path / "replay-envstep200.npz").stat().st_mtime_ns
    files.save(trainer, 200, rank=0)  # best-envstep200.ckpt at the same step: no second write
    assert (tmp_path / "replay-envstep200.npz").stat().st_mtime_ns == before
    (tmp_path / "best-envstep100.ckpt").unlink()
    files.save(trainer, 300, rank=0)  # neither 100 nor 200 is named by a checkpoint any more
    assert [p.name for p in tmp_path.glob("*.npz")] == ["replay-envstep300.npz"]


def test_load_restores_the_saved_transitions_or_empties_the_buffer_when_the_file_is_gone(tmp_path: Path) -> None:
    ReplayFiles(filled_buffer(5), "always").save(trainer_in(tmp_path), 500, rank=0)
    restored = ReplayBuffer(8, obs_shape=(2,))
    assert ReplayFiles(restored, "always").load(trainer_in(tmp_path), "replay-envstep500.npz")
    assert restored.size == 5 and restored.reward[:5].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]

    stale = filled_buffer(3)
    assert not ReplayFiles(stale, "always").load(trainer_in(tmp_path), "replay-envstep900.npz")
    assert stale.size == 0 and stale.pos == 0


def test_pruning_keeps_every_ranks_file_of_the_checkpoint_being_saved(tmp_path: Path) -> None:
    # DDP, by hand: at env step 800 rank 0 and rank 1 have written their files, rank 0's
    # periodic-envstep800.ckpt is not on disk yet, and rank 1 prunes last
    from dqn_lightning.replay.replay_files import prune_replay_files

    (tmp_path / "periodic-envstep400.ckpt").write_bytes(b"")
    names = ["replay-envstep400.npz", "replay-envstep400-rank1.npz", "replay-envstep200.npz",
             "replay-envstep800.npz", "replay-envstep800-rank1.npz"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"")
    prune_replay_files(tmp_path, keep_step=800)
    kept = sorted(p.name for p in tmp_path.glob("*.npz"))
    # 200: no checkpoint names it; 400: its checkpoint is on disk; 800: being saved, both ranks
    assert kept == ["replay-envstep400-rank1.npz", "replay-envstep400.npz", "replay-envstep800-rank1.npz",
                    "replay-envstep800.npz"]  # fmt: skip


def test_the_file_last_ckpt_names_outlives_a_later_periodic_save(tmp_path: Path) -> None:
    # an evaluation at 200 that is not a best writes last.ckpt naming replay-envstep200.npz; the
    # periodic save at 300 must keep it, or resuming from last.ckpt starts with an empty buffer
    import torch

    files = ReplayFiles(filled_buffer(), "always")
    trainer = trainer_in(tmp_path)
    files.save(trainer, 100, rank=0)
    (tmp_path / "best-envstep100.ckpt").touch()
    files.save(trainer, 200, rank=0)
    torch.save({"callbacks": {"EnvLoop": {"env_steps": 200, "buffer_file": "replay-envstep200.npz"}}},
               tmp_path / "last.ckpt")  # fmt: skip
    files.save(trainer, 300, rank=0)
    (tmp_path / "periodic-envstep300.ckpt").touch()
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "replay-envstep100.npz", "replay-envstep200.npz", "replay-envstep300.npz"]  # fmt: skip

    # under DDP last.ckpt holds every rank's state: each rank's file of that step is kept
    ranks = [{"buffer_file": "replay-envstep300.npz"}, {"buffer_file": "replay-envstep300-rank1.npz"}]
    torch.save({"callbacks": {"EnvLoop": {"buffer_file": "replay-envstep300.npz", "ranks": ranks}}},
               tmp_path / "last.ckpt")  # fmt: skip
    (tmp_path / "periodic-envstep300.ckpt").unlink()
    (tmp_path / "replay-envstep300-rank1.npz").write_bytes(b"")
    files.save(trainer, 400, rank=0)
    kept = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert kept == ["replay-envstep100.npz", "replay-envstep300-rank1.npz", "replay-envstep300.npz",
                    "replay-envstep400.npz"]  # fmt: skip


def test_an_unreadable_last_ckpt_deletes_nothing(tmp_path: Path) -> None:
    files = ReplayFiles(filled_buffer(), "always")
    files.save(trainer_in(tmp_path), 100, rank=0)
    (tmp_path / "last.ckpt").write_bytes(b"half a checkpoint")  # not saved atomically, caught mid-write
    files.save(trainer_in(tmp_path), 200, rank=0)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["replay-envstep100.npz", "replay-envstep200.npz"]
