"""Export a trained agent's greedy policy to ONNX or TorchScript, and check it against PyTorch.

    python scripts/export.py --checkpoint lightning_logs/CartPole-v1/version_0/checkpoints/last.ckpt
    python scripts/export.py --checkpoint last --format torchscript --output policy.pt

Without --output the file goes beside the checkpoint (last.ckpt -> last.onnx or last.pt).

The file takes observations as the env gives them, `(batch, *obs_shape)` in the env's dtype
(uint8 frames are scaled inside), and returns `action` `(batch,)` int64 and `q_values`
`(batch, n_actions)`. After writing, it plays the env for `--observations` observations and
checks that the file picks PyTorch's action on every one (ties in Q aside). ONNX needs
`pip install 'dqn-lightning[export]'` (onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dqn_lightning import DQN, ConfigError
from dqn_lightning.callbacks.checkpointing import chosen_checkpoint
from dqn_lightning.errors import exit_code
from dqn_lightning.tools.export import FORMATS, check_export, export_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a .ckpt path, or 'last' for the newest run's")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="file format")
    parser.add_argument("--output", default=None, help="file to write (default: the checkpoint's name, .onnx or .pt)")
    parser.add_argument("--observations", type=int, default=1000, help="env observations the check compares")
    args = parser.parse_args(argv)

    def run() -> None:
        if args.observations < 1:
            raise ConfigError("--observations must be >= 1")
        checkpoint = chosen_checkpoint(args.checkpoint)
        model = DQN.load_from_checkpoint(checkpoint, map_location="cpu").eval()
        suffix = ".onnx" if args.format == "onnx" else ".pt"
        output = Path(args.output) if args.output else checkpoint.with_suffix(suffix)
        info = export_policy(model, output, args.format)
        print(f"Wrote {output}: {info.env_id}, obs {info.obs_dtype} (batch, {', '.join(map(str, info.obs_shape))})")
        try:
            check = check_export(model, output, args.observations)
        except ConfigError:
            output.unlink(missing_ok=True)  # a file that acts otherwise is not left behind
            raise
        print(
            f"Checked on {check.observations} env observations: same action on {check.same_action}, "
            f"ties {check.ties}, largest Q difference {check.max_abs_q_difference:.2g}"
        )

    return exit_code("export.py", run)


if __name__ == "__main__":
    sys.exit(main())
