"""Convolutional Q-networks for frames: the Nature CNN (Atari), its data-efficient cousin (DER) and
the MinAtar CNN (10x10 grids).

Each is a convolutional trunk in front of the MLP `QNetwork`, which holds the fully connected
layers and the value head (dueling, atoms, noisy), so pixel and vector agents share one head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from dqn_lightning.learner.mlp import QNetwork

NATURE_MIN_FRAME = 36  # the smallest frame side the Nature CNN's three convolutions fit
ConvLayers = Sequence[tuple[int, int, int]]  # per convolution: (out channels, kernel side, stride)
NATURE_LAYERS: ConvLayers = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
DATA_EFFICIENT_LAYERS: ConvLayers = ((32, 5, 5), (64, 5, 5))  # DER's encoder (van Hasselt et al. 2019)


class NatureCNN(nn.Module):
    """The DQN paper's convolutional Q-network (Mnih et al., 2015) for stacked image frames.

    Three conv layers (32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1), then fully connected
    `hidden_sizes` (the paper: one layer of 512), then one output per action (or a dueling head).
    Sizes come from `obs_shape`, so any frame size the convolutions fit works. uint8 pixels stay
    uint8 until here (a quarter of the memory in the buffer and on the way to the device) and are
    scaled to [0, 1] inside `forward`.

    Args:
        obs_shape: `(channels, height, width)`: stacked frames first (Gymnasium's FrameStackObservation).
        n_actions: number of discrete actions.
        hidden_sizes: widths of the fully connected layers after the convolutions.
        dueling: value and advantage streams, as in `QNetwork`.
        layers: the convolutions, `(out channels, kernel side, stride)` each, ReLU after each.

    Example:
        >>> q = NatureCNN((4, 84, 84), n_actions=6)
        >>> q(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape
        torch.Size([2, 6])
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (512,),
        dueling: bool = False,
        atoms: int = 1,
        noisy: bool = False,
        layers: ConvLayers = NATURE_LAYERS,
    ) -> None:
        super().__init__()
        channels, height, width = _frame_shape(obs_shape, type(self).__name__, min_frame(layers))
        convs: list[nn.Module] = []
        for out_channels, kernel, stride in layers:
            convs += [nn.Conv2d(channels, out_channels, kernel_size=kernel, stride=stride), nn.ReLU()]
            channels = out_channels
        self.convs = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():  # the flattened size, from the frame size
            features = self.convs(torch.zeros(1, cast(nn.Conv2d, convs[0]).in_channels, height, width)).shape[1]
        self.head = QNetwork(features, n_actions, hidden_sizes, dueling=dueling, atoms=atoms, noisy=noisy)
        self.n_actions = n_actions

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` for frames `(batch, C, H, W)`: uint8 pixels in 0..255, or floats."""
        frames = _like_weights(obs, cast(nn.Conv2d, self.convs[0]).weight, cpu_channels_last=True)
        return self.head(self.convs(_pixels(frames, self.head.dtype)))


class DataEfficientCNN(NatureCNN):
    """Data-efficient Rainbow's Q-network (van Hasselt et al. 2019, "When to use parametric models in
    reinforcement learning?"): two convolutions (32 5x5 stride 5, 64 5x5 stride 5: 576 features from
    84x84 frames) and fully connected `hidden_sizes` (the paper: 256). About a tenth of the Nature
    CNN's multiply-adds, for agents that update once per env step on little data.

    Example:
        >>> q = DataEfficientCNN((4, 84, 84), n_actions=6)
        >>> q(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape
        torch.Size([2, 6])
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (256,),
        dueling: bool = False,
        atoms: int = 1,
        noisy: bool = False,
    ) -> None:
        super().__init__(obs_shape, n_actions, hidden_sizes, dueling, atoms, noisy, layers=DATA_EFFICIENT_LAYERS)


class MinAtarCNN(nn.Module):
    """The MinAtar paper's Q-network (Young & Tian 2019) for small frames such as MinAtar's 10x10.

    One convolution (16 filters 3x3, stride 1, no padding), then fully connected `hidden_sizes`
    (the paper: one layer of 128), then one output per action (or a dueling head). uint8 frames
    are scaled by 1/255 inside `forward`, as in `NatureCNN`.

    Example:
        >>> q = MinAtarCNN((4, 10, 10), n_actions=3)
        >>> q(torch.zeros(2, 4, 10, 10, dtype=torch.uint8)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (128,),
        dueling: bool = False,
        atoms: int = 1,
        noisy: bool = False,
    ) -> None:
        super().__init__()
        channels, height, width = _frame_shape(obs_shape, "MinAtarCNN", 3)
        self.conv = nn.Conv2d(channels, 16, kernel_size=3, stride=1)
        self.head = QNetwork(16 * (height - 2) * (width - 2), n_actions, hidden_sizes, dueling, atoms, noisy)
        self.n_actions = n_actions

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values `(batch, n_actions)` for frames `(batch, C, H, W)`: uint8 pixels in 0..255, or floats."""
        frames = _pixels(_like_weights(obs, self.conv.weight), self.conv.weight.dtype)
        return self.head(torch.relu(self.conv(frames)).flatten(1))


def min_frame(layers: ConvLayers) -> int:
    """The smallest frame side that `layers` (unpadded convolutions) reduce to at least one pixel."""
    side = 1
    for _, kernel, stride in reversed(tuple(layers)):
        side = (side - 1) * stride + kernel
    return side


def _frame_shape(obs_shape: Sequence[int], network: str, min_side: int) -> tuple[int, int, int]:
    """`(channels, height, width)` of `obs_shape`; a ValueError when the network's convolutions can't take it."""
    if len(obs_shape) != 3:
        raise ValueError(f"{network} needs (channels, height, width) observations, got shape {tuple(obs_shape)}")
    channels, height, width = (int(d) for d in obs_shape)
    if height < min_side or width < min_side:
        raise ValueError(f"{network} needs frames of at least {min_side}x{min_side}, got {height}x{width}")
    return channels, height, width


def _like_weights(obs: Tensor, weight: Tensor, cpu_channels_last: bool = False) -> Tensor:
    """Frames `(batch, C, H, W)` in the convolution's memory format: channels-last when its weights
    are (`ChannelsLast`), which alone gives half the speed-up, or, with `cpu_channels_last`, whenever
    they are on the CPU: there oneDNN then runs the convolutions channels-last with contiguous weights,
    about 13% off an Atari 100k DER step (forward and backward, one thread, AMD EPYC AVX-512).
    Converted while still uint8: a quarter of the bytes of floats."""
    # a conv weight that is not contiguous was put in channels-last: one check per forward
    to_channels_last = not weight.is_contiguous() or (cpu_channels_last and obs.device.type == "cpu")
    return obs.contiguous(memory_format=torch.channels_last) if to_channels_last and obs.dim() == 4 else obs


def _pixels(obs: Tensor, dtype: torch.dtype) -> Tensor:
    """Frames in the weights' dtype; uint8 pixels scaled from 0..255 to [0, 1]."""
    return obs.to(dtype) / 255.0 if obs.dtype == torch.uint8 else obs.to(dtype)
