"""The Atari update benchmark times every row it names (speed is never asserted)."""

from __future__ import annotations

import pytest

from tests.helpers import load_script

bench = load_script("benchmark_atari_update")


def test_quick_run_prints_every_network_thread_and_memory_format(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["benchmark_atari_update.py", "--updates", "3"])
    bench.main()
    out = capsys.readouterr().out.splitlines()
    assert "torch" in out[0]  # the machine first: CPU and its vector instructions, torch's version
    table = [line for line in out if line.startswith("|")]
    rows = [line.split("|")[1:5] for line in table[2:]]
    expected = [
        [label, threads, memory, precision]
        for label in bench.RECIPES
        for threads in ("1", "2")
        for memory in ("no", "yes")
        for precision in ("32-true", "bf16-mixed")
    ]
    assert [[cell.strip() for cell in row] for row in rows] == expected
