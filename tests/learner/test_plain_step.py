"""A subclass's own, plain `training_step` gets readable minibatches, one round of env steps per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dqn_lightning import DQN, EnvLoop, PrioritizedReplayBuffer, ReplayBatch, replay_dataloader
from tests.helpers import quiet_trainer


class PlainDQN(DQN):
    """The textbook update written out, as a Lightning user would: one gradient step per batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[ReplayBatch, int, torch.Tensor]] = []

    def training_step(self, batch: ReplayBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        optimizer = self.optimizers()
        q_taken = self.q_network(batch.obs).gather(1, batch.action[:, None]).squeeze(1)
        with torch.no_grad():
            next_q = self.target_network(batch.next_obs).max(dim=1).values  # type: ignore[misc]
            target = batch.reward + self.gamma * (1.0 - batch.terminated) * next_q
        loss = F.mse_loss(q_taken, target)
        optimizer.zero_grad()  # type: ignore[union-attr]
        self.manual_backward(loss)
        optimizer.step()  # type: ignore[union-attr]
        td_error = (target - q_taken).detach()
        self.seen.append((batch, self.trainer.callbacks[0].env_steps, td_error))  # type: ignore[attr-defined]
        return {"slot": batch.slot, "priority": td_error}  # type: ignore[dict-item]


def test_a_plain_training_step_reads_one_fresh_minibatch_per_round_and_feeds_per(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = PlainDQN((4,), 2, hidden_sizes=(16,), eval_episodes=0)
    before = [p.detach().clone() for p in model.q_network.parameters()]
    buffer = PrioritizedReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, seed=0, train_freq=4)
    # rounds_per_batch 5 is the built-in step's; a plain step gets one round per batch all the same
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 16, rounds_per_batch=5))
    assert len(model.seen) == (300 - 100) // 4  # one batch per round of 4 env steps
    # each batch drawn after its own round's env steps, not one ahead (Lightning prefetches a batch)
    assert [steps for _, steps, _ in model.seen] == list(range(104, 301, 4))
    batch, _, td_error = model.seen[-1]
    assert isinstance(batch, ReplayBatch) and batch.obs.shape == (16, 4) and batch.action.shape == (16,)
    assert batch.slot is not None and batch.weight is not None  # what a PER update needs
    stored = buffer.obs[batch.slot.numpy()]
    assert np.array_equal(stored, batch.obs.numpy())  # the rows the slots name
    # the priorities returned went into the buffer: the last batch's rows hold them now
    expected = (np.abs(td_error.numpy().astype(np.float64)) + buffer.eps) ** buffer.alpha
    assert np.allclose(buffer.tree.get(batch.slot.numpy()), expected)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.q_network.parameters(), strict=True))
