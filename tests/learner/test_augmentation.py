"""DrQ's augmentation against hand-worked frames: shifts stay within their pixels, edges repeat, every
sample has its own draw, intensity scales each sample, and the update's hooks see augmented frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dqn_lightning import DQN, ConfigError, EnvLoop, PrioritizedReplayBuffer, ReplayBatch, replay_dataloader
from dqn_lightning.learner.augmentation import Augmentation, intensity_jitter, random_shift
from dqn_lightning.learner.td import TDLoss
from tests.helpers import quiet_trainer


def test_a_shift_by_hand_repeats_the_edge_pixels() -> None:
    frame = torch.arange(25).view(1, 1, 5, 5)
    # offset (dy, dx) = (1, -1): output (i, j) is input (min(i + 1, 4), max(j - 1, 0))
    expected = torch.tensor([[5, 5, 6, 7, 8], [10, 10, 11, 12, 13], [15, 15, 16, 17, 18], [20, 20, 21, 22, 23],
                             [20, 20, 21, 22, 23]])  # fmt: skip
    assert torch.equal(random_shift(frame, torch.tensor([[1, -1]]))[0, 0], expected)
    assert random_shift(frame.to(torch.uint8), torch.tensor([[1, -1]])).dtype == torch.uint8  # pixels stay uint8


def test_the_largest_shift_of_84x84_frames_fills_with_the_corner() -> None:
    frame = (torch.arange(84 * 84) % 251).view(1, 1, 84, 84).to(torch.uint8).repeat(1, 4, 1, 1)  # 4 stacked frames
    out = random_shift(frame, torch.tensor([[-4, -4]]))
    assert (out[0, :, :5, :5] == frame[0, 0, 0, 0]).all()  # a 4-pixel border of repeated edge, and the corner
    assert torch.equal(out[0, :, 4:, 4:], frame[0, :, :80, :80])  # the rest moved by exactly 4 pixels
    assert torch.equal(out[0, 0], out[0, 3])  # every stacked frame of a sample shifted alike


def test_each_sample_draws_its_own_shift_within_the_pad() -> None:
    frames = (torch.arange(84 * 84, dtype=torch.int32).view(1, 1, 84, 84)).repeat(64, 1, 1, 1)
    out = Augmentation(shift=4).frames(frames, torch.Generator().manual_seed(0))
    centre = out[:, 0, 42, 42]  # = input (42 + dy, 42 + dx) = (42 + dy) * 84 + 42 + dx
    dy, dx = centre // 84 - 42, centre % 84 - 42
    assert dy.abs().max() <= 4 and dx.abs().max() <= 4
    assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) > 20  # not one shift for the whole batch
    for n in range(64):  # one shift per sample, applied to the whole frame
        assert torch.equal(out[n], random_shift(frames[n : n + 1], torch.tensor([[dy[n], dx[n]]]))[0])


def test_a_batch_of_odd_frames_matches_clamped_coordinates_pixel_by_pixel() -> None:
    generator = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (6, 3, 9, 11), generator=generator, dtype=torch.uint8)
    offsets = torch.randint(-4, 5, (6, 2), generator=generator)
    out = random_shift(frames, offsets)
    for n, c, i, j in torch.cartesian_prod(*(torch.arange(d) for d in out.shape)).tolist():
        dy, dx = offsets[n].tolist()
        assert out[n, c, i, j] == frames[n, c, min(max(i + dy, 0), 8), min(max(j + dx, 0), 10)]


def test_jitter_leaves_float_frames_it_was_given_alone() -> None:
    frames = torch.full((2, 1, 2, 2), 0.5)
    out = intensity_jitter(frames, torch.tensor([1.0, -1.0]), 0.1)
    assert (frames == 0.5).all()  # the caller's frames, not scaled in place
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([0.55, 0.45]))


def test_intensity_scales_each_sample_with_clipped_noise() -> None:
    frames = torch.full((4, 1, 2, 2), 255, dtype=torch.uint8)
    out = intensity_jitter(frames, torch.tensor([0.0, 1.0, 3.0, -5.0]), 0.05)  # 3 and -5 clip to 2 and -2
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([1.0, 1.05, 1.1, 0.9]))
    assert out.dtype == torch.float32


def test_bad_settings_are_one_line() -> None:
    with pytest.raises(ConfigError, match="random_shift must be >= 0"):
        Augmentation(shift=-1)
    with pytest.raises(ConfigError, match="image frames"):
        DQN((4,), 2, augmentation={"shift": 4})


class Recorder(DQN):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[ReplayBatch] = []

    def td_loss(self, batch: ReplayBatch, target: torch.Tensor) -> TDLoss:
        self.seen.append(batch)
        return super().td_loss(batch, target)


def test_the_update_hooks_see_shifted_and_jittered_frames(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Recorder((4, 10, 10), 3, hidden_sizes=(16,), eval_episodes=0, augmentation={"shift": 1, "intensity": 0.05})
    buffer = PrioritizedReplayBuffer(2_000, (4, 10, 10), obs_dtype="uint8", seed=0)
    loop = EnvLoop("MinAtar/Breakout-v1", buffer, total_timesteps=300, learning_starts=100, seed=0, train_freq=4)
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 16, gradient_steps=2))
    shifted = 0
    for batch in model.seen:
        stored = torch.as_tensor(buffer.obs[batch.slot.numpy()])
        assert batch.obs.dtype == torch.float32  # jittered: floats in [0, 1] units, as the CNN takes them
        for row in range(len(stored)):
            pixels = stored[row : row + 1]
            if not pixels.any():
                continue  # an empty frame shows neither shift nor scale
            scale = batch.obs[row].max() / (pixels.float().max() / 255.0)  # this sample's intensity factor
            assert 0.9 - 1e-6 <= scale <= 1.1 + 1e-6
            moved = {(dy, dx): random_shift(pixels, torch.tensor([[dy, dx]]))[0].float() / 255 * scale
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)}  # fmt: skip
            matches = [offset for offset, frame in moved.items() if torch.allclose(frame, batch.obs[row], atol=1e-5)]
            assert matches, "the frame is no shift of the stored one"
            shifted += (0, 0) not in matches
    assert shifted > 0
