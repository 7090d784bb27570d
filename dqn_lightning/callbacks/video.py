"""A greedy episode as a TensorBoard video (animated GIF) after each evaluation."""

from __future__ import annotations

import io

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from typing_extensions import override

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.envs import make_env
from dqn_lightning.acting.evaluation import SingleEnvPolicy


class EvalVideo(Callback):
    """After each evaluation, plays one greedy episode and logs it as `eval/video`.

    TensorBoard shows videos as animated GIFs in its Images tab, against env steps. The GIF
    is written here with Pillow (torch's `add_video` needs the old moviepy 1 API).

    Args:
        max_frames: the episode is cut after this many frames (a short clip, not a film).
        fps: playback speed.
        scale: frame size factor (0.5 halves width and height).
        seed: env seed of the filmed episode (the same start each time, to compare policies).
    """

    def __init__(self, max_frames: int = 300, fps: int = 30, scale: float = 0.5, seed: int = 0) -> None:
        self.max_frames, self.fps, self.scale, self.seed = max_frames, fps, scale, seed

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if trainer.sanity_checking or not trainer.is_global_zero or logger is None:
            return
        frames = self.record(pl_module)
        loop = find_env_loop(trainer)
        step = loop.env_steps if loop is not None else trainer.global_step
        height, width = frames[0].shape[:2]
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=self.gif(frames))
        logger.experiment.file_writer.add_summary(Summary(value=[Summary.Value(tag="eval/video", image=image)]), step)

    def record(self, pl_module: pl.LightningModule) -> list[np.ndarray]:
        """RGB frames `(height, width, 3)` uint8 of one greedy episode."""
        env = make_env(pl_module.hparams["env_id"], render_mode="rgb_array")
        try:
            obs, _ = env.reset(seed=self.seed)
            frames: list[np.ndarray] = [np.asarray(env.render())]
            ended = False
            policy = SingleEnvPolicy(pl_module.policy(1))  # type: ignore[operator]  # a DQN's
            while not ended and len(frames) < self.max_frames:
                action = policy.step(obs)
                obs, reward, terminated, truncated, _ = env.step(action)
                frames.append(np.asarray(env.render()))
                ended = terminated or truncated
                policy.observe(action, float(reward), ended)
        finally:
            env.close()
        return frames

    def gif(self, frames: list[np.ndarray]) -> bytes:
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        if self.scale != 1.0:
            size = (max(1, int(images[0].width * self.scale)), max(1, int(images[0].height * self.scale)))
            images = [image.resize(size) for image in images]
        buffer = io.BytesIO()
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=1000 // self.fps, loop=0)
        return buffer.getvalue()
