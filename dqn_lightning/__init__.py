"""Deep Q-learning as PyTorch Lightning parts: env -> EnvLoop -> ReplayBuffer -> ReplayDataset -> DQN."""

from dqn_lightning.acting.clocks import linear_schedule
from dqn_lightning.acting.env_loop import EnvLoop
from dqn_lightning.acting.envs import EnvSpaces, env_spaces, make_env, make_vector_env
from dqn_lightning.acting.evaluation import evaluate
from dqn_lightning.callbacks.checkpointing import BestAndLastCheckpoint
from dqn_lightning.callbacks.progress import EpisodeProgressBar
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.networks import QNetwork
from dqn_lightning.learner.td import bellman_huber, bellman_mse, double_td_target, q_of_actions, td_target
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.dataset import ReplayDataModule, ReplayDataset, replay_dataloader
from dqn_lightning.replay.prioritized import PrioritizedReplayBuffer
from dqn_lightning.replay.sum_tree import SumTree

__all__ = [
    "DQN",
    "BestAndLastCheckpoint",
    "ConfigError",
    "EnvLoop",
    "EnvSpaces",
    "EpisodeProgressBar",
    "PrioritizedReplayBuffer",
    "QNetwork",
    "ReplayBatch",
    "ReplayBuffer",
    "ReplayDataModule",
    "ReplayDataset",
    "SumTree",
    "bellman_huber",
    "bellman_mse",
    "double_td_target",
    "env_spaces",
    "evaluate",
    "linear_schedule",
    "make_env",
    "make_vector_env",
    "q_of_actions",
    "replay_dataloader",
    "td_target",
]
