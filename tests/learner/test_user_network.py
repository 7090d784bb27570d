"""A Q-network of the user's own: trained through train.py, recorded by import path, loaded back."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dqn_lightning import DQN, ConfigError, ReplayBatch
from dqn_lightning import run as train

# a user's module file in their working directory, as a tutorial would have them write it
USER_MODULE = textwrap.dedent(
    """
    import math
    from torch import nn

    class LayerNormQ(nn.Module):
        def __init__(self, obs_shape, n_actions, width=64):
            super().__init__()
            self.net = nn.Sequential(
                nn.Flatten(), nn.Linear(math.prod(obs_shape), width), nn.LayerNorm(width), nn.ReLU(),
                nn.Linear(width, n_actions),
            )

        def forward(self, obs):
            return self.net(obs.float())

    class WrongWidth(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(4, 3)

        def forward(self, obs):
            return self.out(obs)
    """
)


class TinyQ(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(4, 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.out(obs.float())


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "my_nets.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_nets", raising=False)  # another test's my_nets may be imported
    return tmp_path


def test_train_py_trains_a_user_network_and_the_checkpoint_rebuilds_it(user_dir: Path) -> None:
    flags = ["--q-network", "my_nets.LayerNormQ", "--q-network-args", "{width: 32}", "--quiet"]
    budget = ["--total-timesteps", "600", "--learning-starts", "100", "--eval-interval", "300", "--eval-episodes", "2"]
    assert train.main([*flags, *budget, "--logdir", "logs"]) == 0
    last = user_dir / "logs/CartPole-v1/version_0/checkpoints/last.ckpt"
    model = DQN.load_from_checkpoint(last)
    net = model.q_network
    assert type(net).__name__ == "LayerNormQ" and type(model.target_network).__name__ == "LayerNormQ"
    assert net.net[1].out_features == 32 and isinstance(net.net[2], nn.LayerNorm)
    assert model.hparams["network"] == {"class_path": "my_nets.LayerNormQ", "init_args": {"width": 32}}
    saved = torch.load(last, weights_only=True)["state_dict"]
    assert torch.equal(saved["q_network.net.1.weight"], net.net[1].weight)
    # trained: the weights moved from a fresh module's (LayerNorm's gain starts at exactly 1)
    assert not torch.equal(net.net[2].weight, torch.ones(32))
    assert model.act(torch.zeros(3, 4).numpy()).shape == (3,)


def test_an_instance_is_used_as_given_and_must_be_passed_again_to_load(tmp_path: Path) -> None:
    net = TinyQ()
    model = DQN.from_env("CartPole-v1", network=net, eval_episodes=0)
    assert model.q_network is net and model(torch.ones(5, 4)).shape == (5, 2)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": "2.5.0"}, path)  # fmt: skip
    with pytest.raises(ConfigError, match=r"instance of .*TinyQ.*pass network=TinyQ\(\.\.\.\)"):
        DQN.load_from_checkpoint(path)
    loaded = DQN.load_from_checkpoint(path, network=TinyQ())
    assert torch.equal(loaded.q_network.out.weight, net.out.weight)


def test_network_takes_a_plain_torch_module_as_a_new_user_would_write_it() -> None:
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    model = DQN((4,), 2, network=net, eval_episodes=0)
    assert model.q_network is net and model.hparams["network"]["class_path"] == "torch.nn.modules.container.Sequential"
    assert DQN((4,), 2, network="mlp").hparams["network"] == "mlp"  # a name records the name


def test_q_network_is_a_deprecated_alias_of_network(tmp_path: Path) -> None:
    net = TinyQ()
    with pytest.warns(DeprecationWarning, match="pass your module or its import path as network="):
        model = DQN.from_env("CartPole-v1", q_network=net, eval_episodes=0)
    assert model.q_network is net
    with pytest.raises(ConfigError, match="not both"), pytest.warns(DeprecationWarning):
        DQN.from_env("CartPole-v1", q_network=net, network="mlp", eval_episodes=0)


def test_an_unknown_network_name_lists_the_names_and_the_other_ways() -> None:
    with pytest.raises(ConfigError, match=r"unknown network 'resnet'; choose one of auto, mlp, .*your own nn.Module"):
        DQN((4,), 2, network="resnet")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--q-network", "my_nets.WrongWidth"], r"maps observations \(2, 4\) to \(2, 3\); it must give .*\(2, 2\)"),
        (["--q-network", "no_such_module.Net"], r"cannot import no_such_module .*PYTHONPATH"),
        (["--q-network", "my_nets.Missing"], r"my_nets has no nn.Module class Missing"),
        (["--q-network", "my_nets.LayerNormQ", "--q-network-args", "{depth: 3}"], r"cannot build .*depth"),
        (["--q-network", "my_nets.LayerNormQ", "--dueling"], r"--network and --dueling .* --q-network"),
        (["--q-network-args", "{width: 3}"], r"--q-network-args needs --q-network"),
        (["--q-network", "my_nets.LayerNormQ", "--q-network-args", "[1, 2]"], r"expected a mapping"),
    ],
)
def test_bad_user_networks_exit_2_with_one_line(
    user_dir: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert train.main([*flags, "--total-timesteps", "300", "--learning-starts", "100", "--logdir", "logs"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (user_dir / "logs").exists()  # refused before any run directory was made


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_a_user_network_gets_observations_in_its_weights_dtype(dtype: torch.dtype) -> None:
    # bf16-true and 64-true cast the weights; the env and the replay batch give float32 observations
    class PlainQ(nn.Module):  # no cast of its own, as a user would write it
        def __init__(self) -> None:
            super().__init__()
            self.out = nn.Linear(4, 2)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.out(obs)

    model = DQN((4,), 2, network=PlainQ(), eval_episodes=0).to(dtype)
    assert model(torch.ones(3, 4)).dtype == dtype
    assert model.act(np.zeros((3, 4), dtype=np.float32)).shape == (3,)
    obs = torch.ones(1, 5, 4)
    stacked = ReplayBatch(obs, torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 5), obs, torch.zeros(1, 5))
    target = model.td_target(stacked)  # the target network too
    assert target.shape == (1, 5)
