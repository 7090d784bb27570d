from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from dqn_lightning import DQN, ConfigError, EnvLoop, ReplayBuffer, replay_dataloader
from tests.helpers import quiet_trainer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cartpole_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ckpt")
    pl.seed_everything(0, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(32,), eval_episodes=0)
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, seed=0)
    trainer = quiet_trainer(tmp, [loop])
    trainer.fit(model, replay_dataloader(buffer, 16))
    trainer.save_checkpoint(tmp / "cartpole.ckpt")
    return tmp / "cartpole.ckpt"


def run_play(*flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "play.py"), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )


def test_play_prints_scores_and_writes_playable_videos(cartpole_checkpoint: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    result = run_play("--checkpoint", str(cartpole_checkpoint), "--episodes", "5", "--video", str(tmp_path / "v"))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    scores = [float(line.split("Score: ")[1]) for line in lines if line.startswith("Game ")]
    assert [line.split(" Score")[0] for line in lines if line.startswith("Game ")] == [f"Game {i}" for i in range(1, 6)]
    assert all(s >= 1 for s in scores) and lines[-1].startswith("Mean score over 5 games: ")
    assert f"{np.mean(scores):.1f} ± {np.std(scores):.1f}" in lines[-1]
    videos = sorted((tmp_path / "v").glob("*.mp4"))
    assert len(videos) == 5
    for video, score in zip(videos, scores, strict=True):
        frames = iio.imread(video, plugin="pyav") if _has_pyav() else np.stack(list(iio.imiter(video)))
        # one frame per step plus the reset frame; decoded frames are real RGB images of the cart
        assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.shape[0] >= score
        assert frames.std() > 1.0


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def test_render_human_without_display_suggests_video(cartpole_checkpoint: Path) -> None:
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    result = run_play("--checkpoint", str(cartpole_checkpoint), "--render", "human", env=env)
    assert result.returncode == 2 and "--video" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_play_refuses_a_checkpoint_of_another_env(cartpole_checkpoint: Path) -> None:
    result = run_play("--checkpoint", str(cartpole_checkpoint), "--env", "Acrobot-v1")
    assert result.returncode == 2 and "use the env it was trained on" in result.stderr


def test_play_builds_the_env_with_the_given_arguments(cartpole_checkpoint: Path) -> None:
    # CartPole pays 1 per step and no pole falls within 5 steps of a reset: a 5-step limit scores 5
    result = run_play("--checkpoint", str(cartpole_checkpoint), "--episodes", "3", "--env-kwargs",
                      '{"max_episode_steps": 5}')  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line for line in result.stdout.splitlines() if line.startswith("Game ")] == [
        f"Game {i} Score: 5.0" for i in (1, 2, 3)
    ]
    for flags, says in (
        (["--env-kwargs", "{max_episode_steps: 5}"], "--env-kwargs is not JSON"),
        (["--env-kwargs", "[5]"], "must be a JSON object"),
        (["--env-kwargs", '{"no_such_argument": 1}'], "could not be built"),
    ):
        result = run_play("--checkpoint", str(cartpole_checkpoint), *flags)
        assert result.returncode == 2 and says in result.stderr, result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1


def test_play_batched_plays_the_games_one_at_a_time_would(cartpole_checkpoint: Path, tmp_path: Path) -> None:
    # a policy that always pushes left (last layer: zero weights, bias favouring action 0, so no
    # near-ties): each game's length then depends on its seeded start alone, so the scores
    # differ between games and must match game by game whether played 1 or 3 at a time
    checkpoint = torch.load(cartpole_checkpoint, map_location="cpu", weights_only=False)
    weight_keys = [k for k in checkpoint["state_dict"] if k.startswith("q_network.layers.") and k.endswith(".weight")]
    last = weight_keys[-1].removesuffix(".weight")
    for prefix in (last, last.replace("q_network", "target_network", 1)):
        if f"{prefix}.weight" in checkpoint["state_dict"]:
            checkpoint["state_dict"][f"{prefix}.weight"].zero_()
            checkpoint["state_dict"][f"{prefix}.bias"].copy_(torch.tensor([1.0, 0.0]))
    left = tmp_path / "always-left.ckpt"
    torch.save(checkpoint, left)

    def scores(*flags: str) -> list[str]:
        result = run_play("--checkpoint", str(left), "--episodes", "4", "--seed", "7", *flags)
        assert result.returncode == 0, result.stderr[-2000:]
        return [line for line in result.stdout.splitlines() if line.startswith(("Game ", "Mean "))]

    one_at_a_time, batched = scores(), scores("--num-envs", "3")  # 3 + a padded round of 1
    assert batched == one_at_a_time and len(batched) == 5
    played = [float(line.split("Score: ")[1]) for line in batched[:4]]
    assert len(set(played)) > 1 and all(5 <= s <= 30 for s in played)  # pushed left, the pole falls fast
    result = run_play("--checkpoint", str(left), "--num-envs", "2", "--video", str(tmp_path / "v"))
    assert result.returncode == 2 and "--num-envs > 1 plays without a window or video" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_loading_refuses_files_that_are_not_our_checkpoints(cartpole_checkpoint: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(cartpole_checkpoint.read_bytes()[:2000])
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        DQN.load_from_checkpoint(truncated)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}, "hyper_parameters": {"lr": 1.0}}, foreign)
    with pytest.raises(ConfigError, match="not a dqn_lightning DQN checkpoint"):
        DQN.load_from_checkpoint(foreign)
    with pytest.raises(ConfigError, match="not found"):
        DQN.load_from_checkpoint(tmp_path / "missing.ckpt")


def test_loading_for_an_env_of_other_sizes_is_refused(cartpole_checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="use the env it was trained on"):
        DQN.load_from_checkpoint(cartpole_checkpoint, env_id="Acrobot-v1")
    assert DQN.load_from_checkpoint(cartpole_checkpoint, env_id="CartPole-v0").hparams["env_id"] == "CartPole-v0"


def test_loading_runs_no_code_from_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": Payload(), "state_dict": {}}, evil)
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        DQN.load_from_checkpoint(evil)
    assert not marker.exists()
