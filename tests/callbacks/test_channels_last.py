"""--channels-last: the same Q-values, frames handed over in the weights' layout, and a run that
keeps the layout through training, target copies and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.networks import MinAtarCNN, NatureCNN
from dqn_lightning.run import build, parse_config

CHANNELS_LAST = torch.channels_last


def first_conv_inputs(network: torch.nn.Module) -> list[torch.Tensor]:
    conv = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    seen: list[torch.Tensor] = []
    conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


@pytest.mark.parametrize(
    ("network", "obs_shape"), [(NatureCNN, (4, 84, 84)), (MinAtarCNN, (4, 10, 10))], ids=["nature", "minatar"]
)
def test_converted_network_gives_the_same_q_values_from_channels_last_frames(
    network: type[torch.nn.Module], obs_shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    q = network(obs_shape, n_actions=5)
    frames = torch.randint(0, 256, (3, *obs_shape), dtype=torch.uint8)  # as the buffer gives them: contiguous
    seen = first_conv_inputs(q)
    before = q(frames)
    q.to(memory_format=CHANNELS_LAST)  # type: ignore[call-overload]  # torch's stubs lack it
    after = q(frames)
    assert channels_last(seen[0]) == (network is NatureCNN)  # the Nature CNN takes CPU frames channels-last anyway
    assert channels_last(seen[1])
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)  # the same values, another summation order


def test_nature_cnn_takes_cpu_frames_channels_last_with_the_q_values_of_contiguous_ones() -> None:
    torch.manual_seed(0)
    q = NatureCNN((4, 84, 84), n_actions=6)
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    seen = first_conv_inputs(q)
    got = q(frames)
    reference = q.head(q.convs(frames.float() / 255.0))  # contiguous frames all the way
    assert channels_last(seen[0]) and not channels_last(seen[1])
    assert all(p.is_contiguous() for p in q.parameters())  # the weights stay as they were
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-5)  # another summation order only


def conv_weights(model: DQN) -> list[torch.Tensor]:
    """The online and the target network's convolution weights."""
    weights: list[torch.Tensor] = [p for p in model.parameters() if p.dim() == 4]
    assert len(weights) == 2  # MinAtar's one convolution, online and target
    return weights


def channels_last(tensor: torch.Tensor) -> bool:
    return tensor.is_contiguous(memory_format=CHANNELS_LAST) and not tensor.is_contiguous()


def test_run_keeps_channels_last_through_updates_target_copies_and_resume(tmp_path: Path) -> None:
    flags = [
        "--preset", "minatar-breakout", "--channels-last", "--total-timesteps", "600", "--learning-starts", "200",
        "--target-update-interval", "20", "--eval-episodes", "0", "--logdir", str(tmp_path), "--quiet",
    ]  # fmt: skip
    run = build(parse_config(flags))
    start = [w.detach().clone() for w in conv_weights(run.model)]
    run.fit()
    weights = conv_weights(run.model)
    assert run.model.gradient_step > 20  # it learned, and copied the target more than once
    assert all(channels_last(w) for w in weights)
    assert not torch.equal(weights[0], start[0])
    checkpoint = next(tmp_path.glob("**/last.ckpt"))
    # a plain module loads the checkpoint and gives the same Q-values
    plain = DQN.load_from_checkpoint(checkpoint, map_location="cpu")
    frames = torch.randint(0, 256, (4, *plain.hparams["obs_shape"]), dtype=torch.uint8)
    torch.testing.assert_close(plain.q_network(frames), run.model.q_network(frames), rtol=1e-5, atol=1e-5)
    # resumed with the flag, the loaded weights stay channels-last
    resumed = build(parse_config([*flags, "--total-timesteps", "800", "--resume", str(checkpoint)]))
    resumed.fit()
    assert resumed.model.gradient_step > run.model.gradient_step
    assert all(channels_last(w) for w in conv_weights(resumed.model))
