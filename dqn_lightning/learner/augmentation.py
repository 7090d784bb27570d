"""Image augmentation of a batch before the update (DrQ, Kostrikov et al. 2021; DrQ(eps), Agarwal et
al. 2021): random shifts and intensity jitter of `obs` and `next_obs`, every sample its own draw.

The replay buffer keeps what happened; the augmentation is part of the update's input path, applied
to each round's drawn minibatches (all of them in one call, no per-row Python loop) on whatever
device they are on. `random_shift` and `intensity_jitter` are the pure pieces, for hand-worked tests.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.batch import ReplayBatch


def random_shift(frames: Tensor, offsets: Tensor, pad: int | None = None) -> Tensor:
    """Frames `(N, C, H, W)` (any dtype) moved by `offsets` `(N, 2)` int64 `(dy, dx)`: output pixel
    `(i, j)` of row n is input pixel `(i + dy, j + dx)`, with coordinates outside the frame clamped
    to its edge. That is DrQ's pad-by-k-with-edge-pixels then random crop, for offsets in [-k, k]
    (`pad`: k, when known, else the largest offset). Comes back channels-last (pixels side by side).

    The frames are edge-padded once, then every output row of `W` pixels is one contiguous window of
    the padded batch: one `index_select` of `N * H` rows, a block copy each, where picking pixel by
    pixel (advanced indexing) took about ten times as long on the CPU."""
    n, c, h, w = frames.shape
    k = int(offsets.abs().max()) if pad is None else pad
    x = frames.permute(0, 2, 3, 1)  # (N, H, W, C): a row's pixels, channels and all, side by side
    x = torch.cat([x[:, :1].expand(n, k, w, c), x, x[:, -1:].expand(n, k, w, c)], dim=1)
    x = torch.cat([x[:, :, :1].expand(n, h + 2 * k, k, c), x, x[:, :, -1:].expand(n, h + 2 * k, k, c)], dim=2)
    device = frames.device
    first_row = torch.arange(n, device=device)[:, None] * (h + 2 * k) + torch.arange(h, device=device) + k
    starts = (first_row + offsets[:, :1]) * (w + 2 * k) * c + (offsets[:, 1:] + k) * c  # (N, H) flat offsets
    windows = x.reshape(-1).as_strided((x.numel() - w * c + 1, w * c), (1, 1))  # every run of W pixels
    return windows.index_select(0, starts.reshape(-1)).view(n, h, w, c).permute(0, 3, 1, 2)


def intensity_jitter(frames: Tensor, noise: Tensor, scale: float) -> Tensor:
    """Frames `(N, C, H, W)` times `1 + scale * clip(noise, -2, 2)` per sample (`noise` `(N,)` standard
    normal draws), as float in [0, 1] units (uint8 pixels divided by 255 first, as the CNNs do)."""
    factor = 1.0 + scale * noise.clamp(-2.0, 2.0).to(frames.device)
    shape = (-1, *([1] * (frames.dim() - 1)))
    if frames.dtype == torch.uint8:  # a fresh float tensor: scaled in place, one allocation
        return frames.float().div_(255.0).mul_(factor.view(shape))
    return frames * factor.to(frames.dtype).view(shape)


class Augmentation:
    """DrQ(eps)'s augmentation of a batch's frames: `shift` pixels of random shift (0: none; DrQ: 4)
    and `intensity` jitter (0: none; DrQ(eps): 0.05), drawn from `generator` (a CPU torch
    generator whose state the checkpoint keeps), independently for `obs` and `next_obs`."""

    def __init__(self, shift: float = 0, intensity: float = 0.0) -> None:
        check_bounds(random_shift=shift, intensity_jitter=intensity)
        if shift != int(shift):
            raise ConfigError(f"augmentation shifts by whole pixels, got {shift}")
        self.shift, self.intensity = int(shift), float(intensity)

    def check_fits(self, obs_shape: tuple[int, ...]) -> None:
        """Image observations `(C, H, W)` only."""
        if len(obs_shape) != 3:
            raise ConfigError(f"augmentation shifts image frames (C, H, W); these observations are {obs_shape}")

    def __call__(self, batch: ReplayBatch, generator: torch.Generator) -> ReplayBatch:
        """`batch` (one or stacked minibatches) with its `obs` and `next_obs` augmented."""
        return batch._replace(
            obs=self.frames(batch.obs, generator), next_obs=self.frames(batch.next_obs, generator), frames=None
        )

    def frames(self, frames: Tensor, generator: torch.Generator) -> Tensor:
        """Frames `(..., C, H, W)` augmented, each `(C, H, W)` sample with its own draws."""
        flat = frames.reshape(-1, *frames.shape[-3:])
        if self.shift:
            offsets = torch.randint(-self.shift, self.shift + 1, (len(flat), 2), generator=generator)
            flat = random_shift(flat, offsets.to(flat.device), self.shift)
        if self.intensity:
            flat = intensity_jitter(flat, torch.randn(len(flat), generator=generator), self.intensity)
        return flat.view(*frames.shape[:-3], *flat.shape[1:])
