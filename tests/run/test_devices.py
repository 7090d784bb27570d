"""Where a run trains: GPU requests without a GPU, device lists, one device by default, strategies we cannot run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from pytorch_lightning.strategies import DDPStrategy

from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.errors import ConfigError
from dqn_lightning.run import build
from dqn_lightning.run.build import build_buffer
from dqn_lightning.run.config import parse_config, parse_settings
from dqn_lightning.run.devices import parse_devices, placement
from tests.helpers import run_main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--accelerator", "gpu"], "--accelerator gpu: torch sees no CUDA GPU here"),
        (["--accelerator", "cuda", "--devices", "[0, 1]"], "--accelerator cuda: torch sees no CUDA GPU here"),
        (["--devices", "[0, 1]"], "--devices [0, 1] lists GPU indices, but the run is on the CPU: give a count"),
        (["--devices", "two"], "--devices 'two': give a count (2), GPU indices like '[0, 1]', or auto"),
        (["--accelerator", "tpu9"], "--accelerator tpu9: choose one of auto, cpu, gpu, cuda, mps"),
        (["--strategy", "ddp_spawn"], "--strategy ddp_spawn is not supported: the parent process's EnvLoop"),
        (["--strategy", "fsdp"], "--strategy fsdp is not supported: it shards the Q-network"),
        (["--strategy", "deepspeed"], "--strategy deepspeed is not supported"),
        (["--strategy", "horovod"], "--strategy horovod: choose one of auto, ddp"),
    ],
)
def test_a_placement_this_machine_cannot_run_exits_2_in_one_line_before_anything_is_written(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on this CPU machine, also on a GPU one
    monkeypatch.chdir(tmp_path)
    code, lines = run_main([*flags, "--logdir", "logs"], capsys)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "logs").exists()


def test_devices_are_a_count_indices_or_auto() -> None:
    assert parse_devices("auto") == "auto" and parse_devices("2") == 2 and parse_devices("-1") == -1
    assert parse_devices("[0, 1]") == [0, 1] == parse_devices("0,1") and parse_devices("[3]") == [3]
    with pytest.raises(ConfigError):
        parse_devices("[0, x]")


def test_one_device_unless_asked_for_more_and_the_settings_line_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # a host with 4 GPUs, simulated: Lightning's devices="auto" would start DDP over all of them
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    default = placement("gpu", "auto", "auto")
    assert default.devices == 1 and "one of 4 GPUs (--devices N or --strategy ddp for more)" in default.note
    assert placement("auto", "auto", "auto").devices == 1
    assert placement("gpu", "2", "auto").devices == 2 and placement("gpu", "[0, 2]", "ddp").devices == [0, 2]
    ddp = placement("gpu", "auto", "ddp")
    assert ddp.devices == "auto" and "DDP over every device" in ddp.note
    _, origin = parse_settings(["--accelerator", "gpu"])
    assert origin.endswith("; one of 4 GPUs (--devices N or --strategy ddp for more)")


def test_on_this_cpu_the_default_is_one_device_and_the_settings_line_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert placement("auto", "auto", "auto").devices == 1 and placement("cpu", "auto", "auto").note == ""
    _, origin = parse_settings([])
    assert origin == "Settings: preset cartpole; no other flags"


def test_the_process_count_sizes_the_replay_space_check_and_ddp_skips_the_buffer_broadcast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert placement("gpu", "auto", "auto").processes() == 1
    assert placement("gpu", "[0, 2]", "ddp").processes() == 2 and placement("gpu", "3", "ddp").processes(2) == 6
    assert placement("gpu", "auto", "ddp").processes() == 4 and placement("cpu", "2", "ddp").processes() == 2
    strategy = placement("cpu", "2", "auto").trainer_strategy()
    assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs == {"broadcast_buffers": False}
    assert placement("gpu", "auto", "auto").trainer_strategy() == "auto"


def test_the_logdir_check_counts_every_ranks_replay_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flags = ["--buffer-size", "1000000", "--logdir", str(tmp_path / "logs"), "--accelerator", "cpu"]
    replay = build_buffer(parse_config(flags), env_spaces("CartPole-v1")).nbytes
    # free: one rank's two replay files (best, last) and 64 MiB of the rest fit, two ranks' four do not
    free = 3 * replay + (64 << 20)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(free, 0, free))  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="needs about"):
        build(parse_config([*flags, "--devices", "2", "--strategy", "ddp"]))
    assert not (tmp_path / "logs").exists()
    build(parse_config(flags))  # one rank: room enough
