"""The public hooks `td_target` and `td_loss` are what trains, on every update path.

Each path (interleaved rounds, bursts, Double DQN, n-step returns, noisy nets; DDP in
`test_hooks_ddp.py`) trains three subclasses: a zero loss must leave every weight as it was, a
constant target of -5 must drive Q(s, a) there (CartPole's rewards are +1: the built-in target
never goes negative), and a td_error of 7 per row must become every PER priority.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dqn_lightning import DQN, EnvLoop, PrioritizedReplayBuffer, ReplayBuffer, replay_dataloader
from tests.helpers import quiet_trainer
from tests.learner.hook_variants import (
    CONSTANT,
    PRIORITY,
    ConstantTarget,
    CustomPriority,
    StackedConstantTarget,
    ZeroLoss,
)

# (module options, loop and loader options): env steps per round, minibatches per round, rounds per batch
PATHS: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "interleaved": ({}, {"train_freq": 1, "gradient_steps": 1, "rounds": 8}),
    "bursts": ({}, {"train_freq": 8, "gradient_steps": 8, "rounds": 1}),
    "double": ({"double": True}, {"train_freq": 4, "gradient_steps": 4, "rounds": 2}),
    "n-step": ({}, {"train_freq": 4, "gradient_steps": 4, "rounds": 2, "n_step": 3}),
    "noisy": ({"noisy": True}, {"train_freq": 4, "gradient_steps": 4, "rounds": 2}),
}
TOTAL, STARTS = 500, 100


def fit(tmp_path: Path, cls: type[DQN], path: str, prioritized: bool = False, lr: float = 1e-3) -> tuple[DQN, Any]:
    options, shape = PATHS[path]
    torch.manual_seed(0)
    model = cls((4,), 2, hidden_sizes=(16,), lr=lr, target_update_interval=8, eval_episodes=0, **options)
    kind = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    buffer = kind(2_000, (4,), seed=0, n_step=shape.get("n_step", 1))
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=TOTAL, learning_starts=STARTS, seed=0,
                   train_freq=shape["train_freq"], eps_end=0.5)  # fmt: skip
    loader = replay_dataloader(buffer, 16, shape["gradient_steps"], shape["rounds"])
    quiet_trainer(tmp_path, [loop]).fit(model, loader)
    updates = (TOTAL - STARTS) // shape["train_freq"] * shape["gradient_steps"]
    assert model.gradient_step == updates
    return model, buffer


def weights(model: DQN) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("path", list(PATHS))
def test_a_zero_loss_leaves_every_weight_unchanged(tmp_path: Path, path: str) -> None:
    torch.manual_seed(0)
    before = weights(ZeroLoss((4,), 2, hidden_sizes=(16,), target_update_interval=8, **PATHS[path][0]))
    model, _ = fit(tmp_path, ZeroLoss, path)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(model), strict=True))
    trained, _ = fit(tmp_path, DQN, path)  # the same path with the built-in loss does move them
    assert not all(torch.equal(a, b) for a, b in zip(before, weights(trained), strict=True))


@pytest.mark.parametrize("path", list(PATHS))
def test_a_constant_target_drives_q_of_the_taken_actions_to_it(tmp_path: Path, path: str) -> None:
    model, buffer = fit(tmp_path, ConstantTarget, path, lr=1e-2)
    obs = torch.as_tensor(buffer.obs[: len(buffer)])
    model.eval()  # noisy nets: the mean weights
    with torch.no_grad():
        q = model(obs).gather(1, torch.as_tensor(buffer.action[: len(buffer)]).long()[:, None])
    assert (q - CONSTANT).abs().mean() < 0.3, f"mean |Q - {CONSTANT}| = {(q - CONSTANT).abs().mean():.3f}"
    # an override without stacked_targets sees one minibatch at a time, every update
    assert model.target_shapes == [(16,)] * model.gradient_step


def test_an_override_that_states_it_is_batchable_gets_the_minibatches_up_to_the_next_copy(tmp_path: Path) -> None:
    model, _ = fit(tmp_path, StackedConstantTarget, "bursts", lr=1e-2)
    # bursts of 8 minibatches, the target copied every 8 updates: one call per burst
    assert model.target_shapes == [(8, 16)] * (model.gradient_step // 8)


@pytest.mark.parametrize("path", list(PATHS))
def test_a_custom_td_error_becomes_the_per_priorities(tmp_path: Path, path: str) -> None:
    _, buffer = fit(tmp_path, CustomPriority, path, prioritized=True)
    stored = buffer.tree.get(np.arange(len(buffer)))
    # new rows enter at the highest priority seen, which is the reported one once any update wrote it
    assert np.allclose(stored, (PRIORITY + buffer.eps) ** buffer.alpha), np.unique(stored)
    _, builtin = fit(tmp_path, DQN, path, prioritized=True)
    assert not np.allclose(builtin.tree.get(np.arange(len(builtin))), (PRIORITY + builtin.eps) ** builtin.alpha)
