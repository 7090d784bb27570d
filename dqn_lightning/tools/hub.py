"""Sharing a trained agent: a Hugging Face model folder (weights, card, score, video) and its loader.

The folder holds `model.safetensors` (the online Q-network's weights), `dqn_hparams.json` (what
rebuilds the `DQN`), the Lightning checkpoint `model.ckpt`, the run's `config.yaml`,
`results.json` (greedy return over N fresh episodes), `replay.mp4` and a `README.md` model card
with Hugging Face's metadata. `load_from_hub` builds a working `DQN` from such a folder or repo.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from dqn_lightning.acting.envs import make_env, make_vector_env
from dqn_lightning.acting.evaluation import SingleEnvPolicy, evaluate
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.module import DQN
from dqn_lightning.run.config import RUN_CONFIG, run_dir_of
from dqn_lightning.tools.model_card import model_card, training_facts

WEIGHTS, HPARAMS, CHECKPOINT, RESULTS, VIDEO = (
    "model.safetensors",
    "dqn_hparams.json",
    "model.ckpt",
    "results.json",
    "replay.mp4",
)


def _hub() -> Any:
    try:
        import huggingface_hub
        import safetensors  # noqa: F401  # checked here, used by save_weights / load_from_hub
    except ImportError:
        raise ConfigError("sharing needs huggingface_hub and safetensors: pip install 'dqn-lightning[hub]'") from None
    return huggingface_hub


def check_repo_id(repo_id: str) -> None:
    _hub()
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except Exception as err:  # HFValidationError: the id's own rules
        raise ConfigError(f"--repo-id {repo_id!r} is not a Hugging Face repo id ({err}): write USER/NAME") from None
    if "/" not in repo_id:
        raise ConfigError(f"--repo-id {repo_id!r} needs an owner: write USER/NAME")


def build_model_folder(
    checkpoint: str | Path, folder: str | Path, repo_id: str, episodes: int = 100, seed: int = 0, video: bool = True
) -> dict[str, Any]:
    """Evaluates the checkpoint's greedy policy and writes the model folder; returns results.json's content.

    The folder is built beside its destination and renamed into place at the end, so a failure
    leaves nothing half-written; an existing non-empty destination is refused.
    """
    check_repo_id(repo_id)
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} already exists and is not empty: remove it or pick another --local-dir")
    model = DQN.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    env_id = model.hparams["env_id"]
    if video:
        _check_video_support(env_id)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        seeds = [seed + i for i in range(episodes)]
        env = make_vector_env(env_id, num_envs=min(episodes, 10))
        try:
            returns = evaluate(model.policy(env.num_envs), env, seeds, masked=model.hparams.get("action_masks", False))
        finally:
            env.close()
        results = {
            "env_id": env_id,
            "mean_reward": float(returns.mean()),
            "std_reward": float(returns.std()),
            "episodes": episodes,
            "seeds": seeds,
            "policy": "greedy",
            "checkpoint": Path(checkpoint).name,
            "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "training": training_facts(checkpoint),
        }
        (staging / RESULTS).write_text(json.dumps(results, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in model.q_network.state_dict().items()}, staging / WEIGHTS)
        (staging / HPARAMS).write_text(json.dumps(_plain(dict(model.hparams)), indent=2) + "\n")
        shutil.copyfile(checkpoint, staging / CHECKPOINT)
        run_config = run_dir_of(checkpoint) / RUN_CONFIG
        if run_config.is_file():
            shutil.copyfile(run_config, staging / RUN_CONFIG)
        if video:
            record_episode(model, env_id, seeds[0], staging / VIDEO)
        (staging / "README.md").write_text(model_card(repo_id, results, run_config.is_file(), VIDEO if video else None))
        _readable(staging)
        if folder.exists():
            folder.rmdir()  # empty (checked above)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def _readable(folder: Path) -> None:
    """The usual permissions (mkdtemp and safetensors make owner-only ones), as the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _check_video_support(env_id: str) -> None:
    try:
        import moviepy  # noqa: F401  # Gymnasium's RecordVideo writes MP4s with it
    except ImportError:
        raise ConfigError(
            "the replay video needs moviepy: pip install 'dqn-lightning[video]', or pass --no-video"
        ) from None
    env = make_env(env_id, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        if env.render() is None:
            raise ConfigError(f"{env_id} renders no frames, so there is no replay video: pass --no-video")
    except ImportError as err:  # pygame for the classic-control envs
        raise ConfigError(f"rendering {env_id} needs {err.name}: pip install 'dqn-lightning[video]'") from None
    finally:
        env.close()


def record_episode(model: DQN, env_id: str, seed: int, path: Path) -> None:
    """One greedy episode from `reset(seed=seed)` as an MP4 at `path`."""
    from gymnasium.wrappers import RecordVideo

    with tempfile.TemporaryDirectory() as frames:
        clips = Path(frames) / "clips"  # a folder RecordVideo creates itself (it warns about existing ones)
        env = RecordVideo(
            make_env(env_id, render_mode="rgb_array"), str(clips), name_prefix="replay", disable_logger=True
        )
        try:
            obs, _ = env.reset(seed=seed)
            done = False
            policy = SingleEnvPolicy(model.policy(1))
            while not done:
                action = policy.step(obs)
                obs, reward, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
                policy.observe(action, float(reward), done)
        finally:
            env.close()
        shutil.move(next(clips.glob("*.mp4")), path)


def load_from_hub(source: str | Path, revision: str | None = None) -> DQN:
    """A `DQN` from a model folder, or from a Hugging Face repo id (downloaded with huggingface_hub)."""
    hub = _hub()
    from safetensors.torch import load_file

    folder = Path(source)
    if not folder.is_dir():
        check_repo_id(str(source))
        folder = Path(hub.snapshot_download(str(source), revision=revision))
    missing = [name for name in (WEIGHTS, HPARAMS) if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{source} is not a dqn-lightning model folder: it lacks {', '.join(missing)}")
    hparams = json.loads((folder / HPARAMS).read_text())
    model = DQN(**hparams)
    model.q_network.load_state_dict(load_file(folder / WEIGHTS))
    model.sync_target()
    return model.eval()


def upload_folder(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Creates the repo if needed and uploads the folder (huggingface_hub's own calls); returns its URL."""
    hub = _hub()
    api = hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="dqn-lightning agent")
    except Exception as err:  # network, authentication, permissions: one line, the folder stays
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(
            f"upload to {repo_id} failed ({reason}); the folder is kept at {folder}: log in with `hf auth login` "
            "or pass --token, then run again"
        ) from None
    return f"https://huggingface.co/{repo_id}"


def _plain(value: Any) -> Any:
    """Hyperparameters as JSON values (tuples become lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value
