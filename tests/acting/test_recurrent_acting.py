"""The env loop with a recurrent learner: each step's stored state is the state acting had there,
recomputed here from the episode's own observations, actions and rewards."""

from __future__ import annotations

import copy

import numpy as np
import pytorch_lightning as pl
import torch

from dqn_lightning.acting.env_loop import EnvLoop
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.dataset import replay_dataloader
from dqn_lightning.replay.sequences import Sequences


def test_stored_states_are_the_acting_states_of_each_env_step() -> None:
    torch.manual_seed(0)
    dqn = RecurrentDQN((4,), 2, core_size=8, hidden_sizes=(16,), eval_episodes=0, burn_in=2)
    before = copy.deepcopy(dqn)  # the weights acting used during the random warm-up steps
    buffer = ReplayBuffer(1_000, (4,), num_envs=2, sequences=Sequences(8, 4, dqn.state_size, 1_000))
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=320, learning_starts=300, num_envs=2, seed=3,
                   exploration_steps=100)  # fmt: skip
    trainer = pl.Trainer(callbacks=[loop], max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(dqn, replay_dataloader(buffer, 8))
    net, checked = before.recurrent_network, 0
    for env in range(2):  # each env's steps sit 2 slots apart; follow its episodes through the warm-up
        slots = np.arange(env, 300, 2)
        state, prev_action, prev_reward = net.initial_state(1), torch.tensor([[-1]]), torch.zeros(1, 1)
        for slot in slots:
            if buffer.sequences.episode_step[slot] == 0:  # type: ignore[union-attr]
                state, prev_action, prev_reward = net.initial_state(1), torch.tensor([[-1]]), torch.zeros(1, 1)
            stored = torch.from_numpy(buffer.sequences.state[slot])  # type: ignore[union-attr]
            assert torch.allclose(stored, state[0], atol=1e-6), (env, slot)
            obs = torch.from_numpy(buffer.obs[slot]).view(1, 1, 4)
            with torch.no_grad():
                _, state = net.unroll(obs, prev_action, prev_reward, state)
            prev_action = torch.tensor([[int(buffer.action[slot])]])
            prev_reward = torch.tensor([[float(buffer.reward[slot])]])
            checked += 1
    assert checked == 300 and buffer.episode_end[:300].sum() >= 5  # several episodes, both envs
