from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dqn_lightning import BestAndLastCheckpoint
from dqn_lightning.callbacks.checkpointing import chosen_checkpoint
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from tests.helpers import run_main, run_train

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]


def test_tiny_run_writes_events_checkpoints_and_summary(tmp_path: Path) -> None:
    result = run_train(  # as a process: scripts/train.py itself, its output and exit status
        "--train-freq",
        "1",
        "--gradient-steps",
        "1",
        "--total-timesteps",
        "1200",
        "--learning-starts",
        "200",
        "--eval-interval",
        "400",
        "--eval-episodes",
        "3",
        "--stop-at-return",
        "1000",  # above CartPole's 500: the whole budget runs, however early an evaluation scores 500
        "--logdir",
        "logs",
        cwd=tmp_path,
        process=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "logs" / "CartPole-v1" / "version_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 1200 and summary["gradient_steps"] == 1000
    assert summary["episodes"] > 0 and summary["final_eval_return_mean"] is not None
    assert Path(summary["last_checkpoint"]).is_file() and Path(summary["best_checkpoint"]).is_file()
    assert "Summary" in result.stdout and "return_mean_last_100" in result.stdout

    events = EventAccumulator(str(run_dir)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/q_mean",
        "train/epsilon",
        "perf/sps",
        "rollout/episode_return",
        "rollout/episode_length",
        "eval/return_mean",
        "eval/return_std",
    } <= tags
    # rollout and eval curves are plotted against env steps, train/ against gradient steps
    assert [e.step for e in events.Scalars("eval/return_mean")] == [600, 1000, 1200]
    assert max(e.step for e in events.Scalars("rollout/episode_return")) <= 1200
    assert max(e.step for e in events.Scalars("train/loss")) == 1000  # the last gradient step, not env step 1200
    assert (run_dir / "hparams.yaml").read_text().count("env_id: CartPole-v1") == 1


def test_last_checkpoint_is_from_the_newest_evaluation_even_when_it_is_not_the_best(tmp_path: Path) -> None:
    # every episode returns 3, so only the first evaluation is a new best; last.ckpt must still
    # follow every evaluation, or a run killed on a plateau resumes from far back
    result = run_train("--env", "tests.toy_envs:dqn-test/SameReturn-v0", "--total-timesteps", "900",
                       "--learning-starts", "100", "--eval-interval", "300", "--eval-episodes", "2",
                       "--logdir", "logs", "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (folder,) = (tmp_path / "logs").glob("*/version_0/checkpoints")
    summary = json.loads((folder.parent / "summary.json").read_text())
    evaluations = summary["evaluations"]
    assert [e["return_mean"] for e in evaluations] == [3.0, 3.0, 3.0] and evaluations[-1]["env_steps"] == 900
    assert [p.name for p in folder.glob("best-*.ckpt")] == [f"best-envstep{evaluations[0]['env_steps']}.ckpt"]
    last = torch.load(folder / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["callbacks"]["EnvLoop"]["env_steps"] == 900
    assert Path(summary["last_checkpoint"]) == folder / "last.ckpt"
    # the summary names the best evaluation beside the final one: the first of the tied three
    assert summary["best_eval_return_mean"] == 3.0 and summary["best_eval_env_steps"] == evaluations[0]["env_steps"]
    assert chosen_checkpoint("best", tmp_path / "logs") == folder / f"best-envstep{evaluations[0]['env_steps']}.ckpt"


def test_without_evaluation_last_checkpoint_is_written_at_the_end(tmp_path: Path) -> None:
    # no evaluation, no best: last.ckpt still comes at the end of training, at the final env step
    result = run_train("--env", "tests.toy_envs:dqn-test/SameReturn-v0", "--total-timesteps", "600",
                       "--learning-starts", "100", "--eval-episodes", "0", "--logdir", "logs", "--quiet",
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (folder,) = (tmp_path / "logs").glob("*/version_0/checkpoints")
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["last.ckpt"]
    last = torch.load(folder / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["callbacks"]["EnvLoop"]["env_steps"] == 600


def test_seed_tutorial_preset_runs_its_episode_budget(tmp_path: Path) -> None:
    result = run_train(
        "--preset", "seed-tutorial", "--max-episodes", "5", "--eval-episodes", "2", "--logdir", "logs", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "logs" / "CartPole-v0" / "version_0" / "summary.json").read_text())
    assert summary["episodes"] == 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "NoSuchEnv-v0"], "unknown env id 'NoSuchEnv-v0'"),
        (["--env", "Pendulum-v1"], "Box action space; DQN needs a Discrete one"),
        (["--batch-size", "many"], "argument --batch-size: expected a whole number, got 'many'"),
        (["--learning-starts", "10"], "raise --learning-starts to at least 64"),
        (["--preset", "pong9000"], "unknown preset 'pong9000'"),
        (["--gamma", "2"], "gamma must be in [0, 1]"),
        (["--no-such-flag", "1"], "unrecognized arguments"),
        (["--per-alpha", "0.5"], "--per-alpha only applies to prioritized replay: add --prioritized"),
        (["--n-step", "3", "--gamma", "0"], "--n-step 3 with --gamma 0 adds nothing"),
        (["--n-step", "0"], "--n-step must be >= 1"),
        (["--vector", "threads"], "vector"),
        (["--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
        (["--max-grad-norm", "inf"], "argument --max-grad-norm: expected a finite number"),
        (["--buffer-size", "-5"], "--buffer-size must be >= 1"),
        (["--total-timesteps", "0"], "--total-timesteps must be >= 1"),
        (["--num-envs", "2.5"], "argument --num-envs: expected a whole number, got '2.5'"),
        (["--double", "maybe"], "argument --double: expected true or false, got 'maybe'"),
        (["--hidden-sizes", "128", "wide"], "argument --hidden-sizes: expected whole numbers"),
        (["--preset", "minatar-paper"], "preset minatar-paper is a recipe for any env of its kind: add --env"),
        (["--tau", "0"], "tau must be in (0, 1]"),
        (["--env", "tests.toy_envs:dqn-test/DictObs-v0"], "Dict observation space; DQN needs a Box"),
        (["--env", "tests.toy_envs:dqn-test/TupleObs-v0"], "Tuple observation space; DQN needs a Box"),
        (["--env", "tests.toy_envs:dqn-test/MultiBinaryAction-v0"], "MultiBinary action space"),
        (["--env", "tests.toy_envs:dqn-test/Broken-v0"], "(ValueError: the simulator config file sim.cfg is missing)"),
        (["--resume", "missing.ckpt"], "checkpoint missing.ckpt not found"),
        (["--config", "missing.yaml"], "cannot read config file missing.yaml"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # in-process: train.py is `sys.exit(main())`; the subprocess test below checks that wrapper once
    monkeypatch.chdir(tmp_path)
    code, lines = run_main([*flags, "--logdir", "logs"], capsys)
    assert code == 2
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("train.py: error:"), lines
    assert not (tmp_path / "logs").exists()  # nothing written


def test_bad_input_through_the_script_process_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_train("--env", "NoSuchEnv-v0", "--logdir", "logs", cwd=tmp_path, process=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: unknown env id 'NoSuchEnv-v0'"), result.stderr
    assert not (tmp_path / "logs").exists()


def test_config_file_and_flag_precedence(tmp_path: Path) -> None:
    from dqn_lightning.run.config import parse_config

    config_file = tmp_path / "run.yaml"
    config_file.write_text("lr: 0.01\nbatch-size: 32\nhidden_sizes: [16, 16]\n")
    config = parse_config(["--config", str(config_file), "--lr", "0.002"])
    assert (config.lr, config.batch_size, config.hidden_sizes) == (0.002, 32, (16, 16))
    assert config.env == "CartPole-v1"  # from the default preset
    config_file.write_text("lr: 0.01\nlearning_rate: 3\n")
    from dqn_lightning import ConfigError

    with pytest.raises(ConfigError, match="unknown setting"):
        parse_config(["--config", str(config_file)])


def test_algorithm_options_through_the_script(tmp_path: Path) -> None:
    flags = ["--double", "--dueling", "--loss", "huber", "--max-grad-norm", "10", "--tau", "0.5",
             "--target-update-interval", "4", "--total-timesteps", "1500", "--learning-starts", "300",
             "--eval-episodes", "2", "--logdir", "logs"]  # fmt: skip
    result = run_train(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    hparams = (tmp_path / "logs" / "CartPole-v1" / "version_0" / "hparams.yaml").read_text()
    assert "double: true" in hparams and "dueling: true" in hparams and "loss: huber" in hparams
    bad = run_train("--double", "true", "--target-update-interval", "0", "--logdir", "logs2", cwd=tmp_path)
    assert bad.returncode == 2 and "double DQN needs a target network" in bad.stderr


def test_several_envs_through_the_script(tmp_path: Path) -> None:
    flags = ["--num-envs", "3", "--train-freq", "1", "--gradient-steps", "1", "--total-timesteps", "1200",
             "--learning-starts", "300", "--eval-interval", "600", "--eval-episodes", "2",
             "--logdir", "logs"]  # fmt: skip
    result = run_train(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "logs" / "CartPole-v1" / "version_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    # 300 warm-up steps, then 3 transitions per training step: (1200 - 300) / 3 = 300 updates
    assert summary["env_steps"] == 1200 and summary["gradient_steps"] == 300
    returns = EventAccumulator(str(run_dir)).Reload().Scalars("rollout/episode_return")
    assert len(returns) == summary["episodes"] > 20  # every sub-env's episodes are counted


def test_n_step_prioritized_async_through_the_script(tmp_path: Path) -> None:
    flags = ["--n-step", "3", "--prioritized", "true", "--per-alpha", "0.5", "--num-envs", "2", "--vector", "async",
             "--train-freq", "4", "--gradient-steps", "2", "--total-timesteps", "1200", "--learning-starts", "300",
             "--eval-interval", "600", "--eval-episodes", "2", "--logdir", "logs"]  # fmt: skip
    result = run_train(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "logs" / "CartPole-v1" / "version_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 1200 and summary["final_eval_return_mean"] is not None
    config = (run_dir / "config.yaml").read_text()
    assert "n_step: 3" in config and "prioritized: true" in config and "vector: async" in config


def test_corrupt_or_foreign_checkpoints_are_refused_without_writing(tmp_path: Path) -> None:
    (tmp_path / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    result = run_train("--resume", "broken.ckpt", "--logdir", "logs", cwd=tmp_path)
    assert result.returncode == 2 and "broken.ckpt is not a readable checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    import torch

    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "foreign.ckpt")
    result = run_train("--resume", "foreign.ckpt", "--logdir", "logs", cwd=tmp_path)
    assert result.returncode == 2 and "not a dqn_lightning DQN checkpoint" in result.stderr
    assert not (tmp_path / "logs").exists()


def test_env_whose_constructor_takes_no_render_mode_trains(tmp_path: Path) -> None:
    # gymnasium.make builds it when no render_mode is passed: so must we
    flags = ["--env", "tests.toy_envs:dqn-test/NoArguments-v0", "--total-timesteps", "400", "--learning-starts", "100"]
    result = run_train(*flags, "--eval-episodes", "2", "--eval-interval", "200", "--logdir", "logs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next((tmp_path / "logs").glob("*/version_0/summary.json")).read_text())
    assert summary["env_steps"] == 400 and summary["final_eval_return_mean"] is not None


def test_best_and_last_checkpoint_files_its_state_where_model_checkpoint_did() -> None:
    # a run saved with ModelCheckpoint(monitor=eval/return_mean, mode=max) must resume its best score
    # and best file under BestAndLastCheckpoint: Lightning matches callback states by this key
    old = ModelCheckpoint(monitor="eval/return_mean", mode="max", save_top_k=1, save_last=True)
    assert BestAndLastCheckpoint().state_key == old.state_key
    assert BestAndLastCheckpoint().state_key.startswith("ModelCheckpoint{'monitor': 'eval/return_mean'")


def test_output_to_a_file_is_plain_lines_not_a_bar(tmp_path: Path) -> None:
    flags = ["--total-timesteps", "3000", "--learning-starts", "500", "--eval-interval", "1500",
             "--eval-episodes", "2", "--logdir", str(tmp_path / "logs")]  # fmt: skip
    with open(tmp_path / "out.txt", "w") as out:  # not a terminal: what nohup or `> file` gives
        result = subprocess.run([*TRAIN, *flags], stdout=out, stderr=subprocess.PIPE, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    text = (tmp_path / "out.txt").read_text()
    progress = [line for line in text.splitlines() if line.startswith("env step ")]
    assert "\r" not in text and max(len(line) for line in progress) < 120
    # a line per 1,000 env steps (the budget / 20, at least 1,000), the last at the end of the run
    steps = [int(line.split()[2].split("/")[0].replace(",", "")) for line in progress]
    assert len(steps) == 3 and steps[-1] == 3000 and steps == sorted(steps), progress
    assert all(" | episodes " in line and " | epsilon " in line and line.endswith(" env steps/s") for line in progress)
    assert sum(line.startswith("eval @ ") for line in text.splitlines()) >= 2
    assert "Watch the best agent (" in text and "python scripts/play.py --checkpoint " in text


def test_stop_at_return_ends_the_run_at_its_first_evaluation_that_scores_it(tmp_path: Path) -> None:
    # SameReturn scores 3 in every episode: the first evaluation (at 400 env steps) reaches 3
    flags = ["--env", "tests.toy_envs:dqn-test/SameReturn-v0", "--total-timesteps", "2000", "--learning-starts",
             "100", "--eval-interval", "300", "--eval-episodes", "2", "--logdir", str(tmp_path), "--quiet"]  # fmt: skip
    summary = train(parse_config([*flags, "--stop-at-return", "3"]))
    assert [e["return_mean"] for e in summary["evaluations"]] == [3.0]
    assert summary["env_steps"] < 2000 and summary["final_eval_return_mean"] == 3.0
    assert train(parse_config([*flags, "--stop-at-return", "3.5"]))["env_steps"] == 2000  # never reached: all of it
    # without evaluations nothing scores: the whole budget (the cartpole preset stops at 475)
    assert train(parse_config([*flags, "--stop-at-return", "3", "--eval-episodes", "0"]))["env_steps"] == 2000
