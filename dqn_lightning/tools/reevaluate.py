"""A saved policy scored afresh: greedy episodes on env seeds that no training evaluation used."""

from __future__ import annotations

import numpy as np

from dqn_lightning.acting.envs import make_vector_env
from dqn_lightning.acting.evaluation import evaluate
from dqn_lightning.learner.module import DQN

REEVAL_SEED_BASE = 1_000_000  # training evaluations draw 32-bit seeds from SeedSequence; these are apart


def reevaluate(checkpoint: str, episodes: int) -> np.ndarray:
    """Greedy returns of a saved policy on `episodes` fresh env seeds."""
    model = DQN.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    n = min(episodes, 100)
    env = make_vector_env(model.hparams["env_id"], n, env_kwargs=model.hparams.get("env_kwargs"))
    try:
        return evaluate(
            model.policy(n),
            env,
            list(range(REEVAL_SEED_BASE, REEVAL_SEED_BASE + episodes)),
            masked=model.hparams.get("action_masks", False),
        )
    finally:
        env.close()
