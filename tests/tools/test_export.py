"""Export: the ONNX / TorchScript greedy policy acts as PyTorch does, and runs without this package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_lightning import DQN
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.tools.export import check_export, export_policy, load_exported
from tests.helpers import load_script

export = load_script("export")

pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]'")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cartpole_checkpoint(tiny_cartpole_checkpoint: Path) -> Path:
    return tiny_cartpole_checkpoint


@pytest.mark.parametrize(("fmt", "suffix"), [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_script_writes_a_policy_that_matches_pytorch(
    cartpole_checkpoint: Path, fmt: str, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export.main(["--checkpoint", str(cartpole_checkpoint), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Checked on 100\d env observations: same action on 100\d, ties 0", out), out
    path = cartpole_checkpoint.with_suffix(suffix)
    model = DQN.load_from_checkpoint(cartpole_checkpoint)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    actions, q_values = load_exported(path)(obs)
    with torch.no_grad():
        expected = model(torch.from_numpy(obs)).numpy()
    assert actions.dtype == np.int64 and actions.shape == (64,)
    np.testing.assert_array_equal(actions, expected.argmax(axis=1))
    np.testing.assert_allclose(q_values, expected, rtol=1e-5, atol=1e-5)


def test_minatar_shaped_policy_takes_uint8_frames_and_scales_them_inside(tmp_path: Path) -> None:
    pytest.importorskip("minatar")
    torch.manual_seed(0)
    model = DQN.from_env("MinAtar/Breakout-v1", dueling=True, eval_episodes=0).eval()
    for fmt, name in (("onnx", "p.onnx"), ("torchscript", "p.pt")):
        info = export_policy(model, tmp_path / name, fmt)  # type: ignore[arg-type]
        assert (info.obs_shape, info.obs_dtype) == ((4, 10, 10), "uint8")
        check = check_export(model, tmp_path / name, observations=1000)
        assert check.same_action + check.ties == check.observations >= 1000
        run = load_exported(tmp_path / name)
        frames = np.zeros((2, 4, 10, 10), dtype=np.uint8)
        frames[0, 1, 3, 4] = 255  # one lit pixel, as the wrapper gives it
        with torch.no_grad():  # by hand: the network on the same frame as floats in [0, 1]
            expected = model.q_network(torch.from_numpy(frames).float() / 255.0).numpy()
        np.testing.assert_allclose(run(frames)[1], expected, rtol=1e-5, atol=1e-6)


def test_lightning_to_onnx_and_to_torchscript_work_through_forward(tmp_path: Path) -> None:
    model = DQN.from_env("CartPole-v1", eval_episodes=0).eval()
    sample = torch.randn(3, 4)
    model.to_onnx(tmp_path / "m.onnx", sample, dynamo=False, input_names=["obs"])
    script = model.to_torchscript(method="trace", example_inputs=sample)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    with torch.no_grad():
        expected = model(sample).numpy()
    np.testing.assert_allclose(session.run(None, {"obs": sample.numpy()})[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(script(sample).detach().numpy(), expected, rtol=1e-6)


def test_a_file_that_acts_otherwise_is_refused_and_removed(
    cartpole_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def wrong(path: str | Path):  # type: ignore[no-untyped-def]
        return lambda obs, mask=None: (np.zeros(len(obs), dtype=np.int64), np.zeros((len(obs), 2), np.float32))

    monkeypatch.setattr("dqn_lightning.tools.export.load_exported", wrong)
    out = tmp_path / "p.onnx"
    assert export.main(["--checkpoint", str(cartpole_checkpoint), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "picks other actions than PyTorch" in err, err
    assert not out.exists()


def test_not_our_checkpoint_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, foreign)
    assert export.main(["--checkpoint", str(foreign)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.ckpt"]


def test_docs_plain_loop_runs_the_onnx_policy_without_this_package(cartpole_checkpoint: Path, tmp_path: Path) -> None:
    page = (ROOT / "docs" / "tools.md").read_text()
    block = re.search(r"```python\n(# a plain loop.*?)```", page, re.S)
    assert block, "docs/tools.md: the plain-loop example of an exported policy"
    assert export.main(["--checkpoint", str(cartpole_checkpoint), "--output", str(tmp_path / "cartpole.onnx")]) == 0
    code = block.group(1) + "\nimport sys\nassert 'dqn_lightning' not in sys.modules and 'torch' not in sys.modules\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"return \d+", result.stdout), result.stdout


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_masked_policy_exports_with_the_mask_as_an_input(fmt: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DQN.from_env("Taxi-v4", hidden_sizes=(16,), eval_episodes=0, action_masks=True)
    path = tmp_path / f"taxi.{'onnx' if fmt == 'onnx' else 'pt'}"
    info = export_policy(model, path, fmt)  # type: ignore[arg-type]
    assert info.action_masks and info.obs_shape == (500,)  # Taxi's 500 states, one-hot
    run = load_exported(path)
    obs = np.eye(500, dtype=np.float32)[[3, 77]]
    unmasked, q = run(obs, np.ones((2, 6), dtype=bool))  # everything legal: the plain greedy action
    # forbid each row's unmasked greedy action: the file must pick the best of the rest
    mask = np.ones((2, 6), dtype=bool)
    mask[np.arange(2), unmasked] = False
    actions, _ = run(obs, mask)
    expected = np.where(mask, q, -np.inf).argmax(axis=1)
    assert actions.tolist() == expected.tolist() and (actions != unmasked).all()
    check = check_export(model, path, observations=200)  # plays Taxi, masks from its infos
    assert check.same_action + check.ties == check.observations


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_recurrent_policy_exports_with_its_state_in_and_out(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    model = RecurrentDQN.from_env("CueRecall-v0", core_size=8, hidden_sizes=(16,), eval_episodes=0).eval()
    path = tmp_path / ("p.onnx" if fmt == "onnx" else "p.pt")
    info = export_policy(model, path, fmt)  # type: ignore[arg-type]
    assert info.state_size == model.state_size == 16
    check = check_export(model, path, observations=400)  # plays CueRecall, feeding the file's states back
    assert check.same_action + check.ties == check.observations >= 400
    run = load_exported(path)
    obs = np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32)
    state = np.random.default_rng(0).normal(size=(2, 16)).astype(np.float32)
    actions, q_values, state_out = run(obs, np.array([-1, 1]), np.array([0.0, 1.0], dtype=np.float32), state)
    with torch.no_grad():  # by hand: one step of the network from that state
        q, expected = model.recurrent_network.unroll(
            torch.from_numpy(obs)[:, None],
            torch.tensor([[-1], [1]]),
            torch.tensor([[0.0], [1.0]]),
            torch.from_numpy(state),
        )
    np.testing.assert_allclose(q_values, q[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(state_out, expected.numpy(), atol=1e-5)
    np.testing.assert_array_equal(actions, q[:, 0].argmax(dim=1).numpy())
