"""Sharing: the model folder's contents and card, loading it back, and the failure paths (no network here)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from dqn_lightning import DQN
from dqn_lightning.tools.hub import load_from_hub
from tests.helpers import load_script

push_to_hub = load_script("push_to_hub")
play = load_script("play")

pytest.importorskip("huggingface_hub", reason="the hub extra: pip install -e '.[hub]'")


@pytest.fixture
def checkpoint(tiny_cartpole_checkpoint: Path) -> Path:
    return tiny_cartpole_checkpoint


def test_model_folder_holds_weights_card_score_and_video(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    flags = ["--checkpoint", str(checkpoint), "--repo-id", "someone/dqn-cartpole", "--episodes", "3"]
    assert push_to_hub.main([*flags, "--local-dir", str(folder), "--seed", "7"]) == 0
    names = {p.name for p in folder.iterdir()}
    assert names == {"model.safetensors", "dqn_hparams.json", "model.ckpt", "config.yaml", "results.json",
                     "replay.mp4", "README.md"}  # fmt: skip
    results = json.loads((folder / "results.json").read_text())

    # the score, recomputed by a plain Gymnasium loop over the same seeds
    model = DQN.load_from_checkpoint(checkpoint)
    env = gym.make("CartPole-v1")
    returns = []
    for seed in (7, 8, 9):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(model.act(obs[None])[0]))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    assert results["seeds"] == [7, 8, 9] and results["episodes"] == 3 and results["env_id"] == "CartPole-v1"
    assert results["mean_reward"] == pytest.approx(np.mean(returns))
    assert results["std_reward"] == pytest.approx(np.std(returns))

    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "dqn-lightning" and "CartPole-v1" in meta["tags"]
    entry = meta["model-index"][0]["results"][0]
    assert entry["task"]["type"] == "reinforcement-learning" and entry["dataset"]["name"] == "CartPole-v1"
    assert entry["metrics"][0] == {"type": "mean_reward", "value": f"{np.mean(returns):.2f} +/- {np.std(returns):.2f}"}
    assert 'load_from_hub("someone/dqn-cartpole")' in card and "train.py --config config.yaml" in card
    assert (folder / "replay.mp4").read_bytes()[4:8] == b"ftyp"  # an MP4 container
    # how far it trained: the fixture's run (the cartpole preset: rounds of 256 env steps then 128
    # updates) has 1,500 env steps after --learning-starts 500 of its 2,000: five whole rounds and
    # a last one cut short by the budget, which still updates, so 6 x 128 updates
    training = results["training"]
    assert training["env_steps"] == 2_000 and training["updates"] == 768 and 0 < training["train_seconds"] < 300
    assert training["latest_evaluation"]["episodes"] == 2 and training["latest_evaluation"]["env_steps"] <= 2_000
    assert "Trained for 2,000 env steps (768 updates, 0.0 hours of training" in card
    assert yaml.safe_load((folder / "config.yaml").read_text())["env"] == "CartPole-v1"


def test_load_from_a_folder_gives_the_trained_policy(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    assert push_to_hub.main(["--checkpoint", str(checkpoint), "--repo-id", "a/b", "--episodes", "1",
                             "--no-video", "--local-dir", str(folder)]) == 0  # fmt: skip
    loaded = load_from_hub(folder)
    original = DQN.load_from_checkpoint(checkpoint)
    weights = loaded.q_network.state_dict()
    for name, tensor in original.q_network.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert loaded.target_network is not None
    pairs = zip(loaded.q_network.parameters(), loaded.target_network.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(obs), original.act(obs))
    assert loaded.hparams["env_id"] == "CartPole-v1"


def test_play_plays_a_model_folder_as_its_checkpoint(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "model"
    assert push_to_hub.main(["--checkpoint", str(checkpoint), "--repo-id", "a/b", "--episodes", "1",
                             "--no-video", "--local-dir", str(folder)]) == 0  # fmt: skip
    (folder / "model.ckpt").unlink()  # as a committed folder holds it: weights and hyperparameters only
    capsys.readouterr()
    games = []
    for source in (checkpoint, folder):
        assert play.main(["--checkpoint", str(source), "--episodes", "3", "--seed", "11"]) == 0
        games.append([line for line in capsys.readouterr().out.splitlines() if line.startswith("Game ")])
    assert games[0] == games[1] and len(games[0]) == 3


def test_failed_upload_says_so_in_one_line_and_keeps_the_folder(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    flags = ["--checkpoint", str(checkpoint), "--repo-id", "someone/x", "--episodes", "1", "--no-video"]
    assert push_to_hub.main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "upload to someone/x failed" in err, err
    kept = Path(err.split("the folder is kept at ")[1].split(":")[0])
    assert (kept / "model.safetensors").is_file()


@pytest.mark.parametrize("case", ["foreign checkpoint", "bad repo id", "folder in use"])
def test_bad_input_exits_2_and_leaves_nothing(
    tmp_path: Path, checkpoint: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, repo, source = tmp_path / "model", "someone/x", checkpoint
    if case == "foreign checkpoint":
        source = tmp_path / "other.ckpt"
        torch.save({"state_dict": {}}, source)
    elif case == "bad repo id":
        repo = "not a repo id"
    else:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    flags = ["--checkpoint", str(source), "--repo-id", repo, "--episodes", "1", "--local-dir", str(folder)]
    assert push_to_hub.main(flags) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    expected = {"notes.txt"} if case == "folder in use" else None
    assert ({p.name for p in folder.iterdir()} if folder.exists() else None) == expected
    assert not list(tmp_path.glob(".model.partial-*"))


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    from dqn_lightning import ConfigError

    with pytest.raises(ConfigError, match=r"not a dqn-lightning model folder: it lacks model\.safetensors"):
        load_from_hub(tmp_path)
