"""Convolutions in channels-last memory format (`ChannelsLast`), for pixel agents."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from typing_extensions import override


class ChannelsLast(Callback):
    """Stores the module's 4-D weights (its convolutions, online and target) channels-last, the
    layout in which oneDNN's CPU convolutions and tensor cores run fastest.

    Our CNNs then hand their frames to the first convolution in the same layout (see
    `NatureCNN.forward`); a network of your own gets its weights converted, and its frames stay
    as they come. Measured here (`scripts/benchmark_atari_update.py`, batch 32, one CPU thread):
    about 1.1x per Nature-CNN update. Q-values are the same up to float rounding; checkpoints load into
    a module with or without it.
    """

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # before the optimizer exists and before a checkpoint is restored (restoring copies into
        # these tensors, keeping their layout); Lightning's move to the device keeps it too
        pl_module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
