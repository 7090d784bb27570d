"""The worked variants of docs/variants.md learn: each balances CartPole with the cartpole preset's settings.

Marked `learning` (see test_learning.py). Each run stops at its first greedy evaluation of 475 or more
(the preset's stop), or at 40,000 env steps; the kept best policy must then score >= 195 on 20 fresh
greedy episodes that no evaluation saw (an untrained network scores below 100: test_learning.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn_lightning import DQN, evaluate, make_vector_env
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from dqn_lightning.variants import VARIANTS

pytestmark = pytest.mark.learning


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_learns_cartpole(tmp_path: Path, variant: str) -> None:
    flags = ["--variant", variant, "--total-timesteps", "40000", "--seed", "0", "--logdir", str(tmp_path)]
    summary = train(parse_config([*flags, "--accelerator", "cpu"]))
    model = DQN.load_from_checkpoint(summary["best_checkpoint"])  # the checkpoint names its class
    assert isinstance(model, VARIANTS[variant])
    returns = evaluate(model.act, make_vector_env("CartPole-v1", 20), list(range(500_000, 500_020)))
    assert returns.mean() >= 195, f"{variant}: greedy mean {returns.mean():.1f} after {summary['env_steps']} steps"
