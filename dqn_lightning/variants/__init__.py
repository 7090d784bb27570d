"""Worked DQN variants, each a subclass of `DQN` that overrides `td_target` or `td_loss` and nothing
else (docs: "Your own variant"). `train.py --variant NAME` trains one of them."""

from dqn_lightning.variants.cql import ConservativeDQN
from dqn_lightning.variants.expected_sarsa import ExpectedSarsa
from dqn_lightning.variants.munchausen import MunchausenDQN

VARIANTS = {"munchausen": MunchausenDQN, "cql": ConservativeDQN, "expected-sarsa": ExpectedSarsa}

__all__ = ["VARIANTS", "ConservativeDQN", "ExpectedSarsa", "MunchausenDQN"]
