"""Deep Q-learning as PyTorch Lightning parts: env -> EnvLoop -> ReplayBuffer -> ReplayDataset -> DQN."""

from dqn_lightning.best_checkpoint import BestAndLastCheckpoint
from dqn_lightning.buffer import ReplayBatch, ReplayBuffer
from dqn_lightning.dataset import ReplayDataset, replay_dataloader
from dqn_lightning.env_loop import EnvLoop
from dqn_lightning.envs import EnvSpaces, env_spaces, make_env, make_vector_env
from dqn_lightning.errors import ConfigError
from dqn_lightning.evaluation import evaluate
from dqn_lightning.module import DQN
from dqn_lightning.networks import QNetwork
from dqn_lightning.prioritized import PrioritizedReplayBuffer
from dqn_lightning.progress import EpisodeProgressBar
from dqn_lightning.schedules import linear_schedule
from dqn_lightning.sum_tree import SumTree
from dqn_lightning.td import bellman_huber, bellman_mse, double_td_target, q_of_actions, td_target

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
