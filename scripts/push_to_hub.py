"""Share a trained agent on the Hugging Face Hub: evaluate it, film it, write its model card, upload.

    python scripts/push_to_hub.py --checkpoint last --repo-id USER/dqn-CartPole-v1
    python scripts/push_to_hub.py --checkpoint last --repo-id USER/dqn-CartPole-v1 --local-dir hf-model  # no upload

Evaluates the greedy policy over --episodes fresh episodes (env seeds --seed, --seed + 1, ...),
records one as replay.mp4, and builds the model folder: model.safetensors, dqn_hparams.json,
model.ckpt, config.yaml, results.json, replay.mp4 and a README.md card with Hugging Face's
metadata. Without --local-dir the folder is built in a temporary place and uploaded with
huggingface_hub (log in first: `hf auth login`, or --token). Load it back with
`dqn_lightning.tools.hub.load_from_hub("USER/NAME")` or a folder path. Needs `pip install -e ".[hub]"`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from dqn_lightning import ConfigError
from dqn_lightning.callbacks.checkpointing import chosen_checkpoint
from dqn_lightning.errors import exit_code
from dqn_lightning.tools.hub import build_model_folder, check_repo_id, upload_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a .ckpt path, or 'last' for the newest run's")
    parser.add_argument(
        "--repo-id", required=True, help="USER/NAME on the Hub (named in the card even with --local-dir)"
    )
    parser.add_argument("--local-dir", default=None, help="build the folder here and do not upload")
    parser.add_argument("--episodes", type=int, default=100, help="greedy evaluation episodes for the card's score")
    parser.add_argument("--seed", type=int, default=0, help="episode i resets the env with seed + i")
    parser.add_argument("--no-video", dest="video", action="store_false", help="no replay.mp4")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--token", default=None, help="Hugging Face token (default: the one `hf auth login` saved)")
    args = parser.parse_args(argv)

    def run() -> None:
        if args.episodes < 1:
            raise ConfigError("--episodes must be >= 1")
        check_repo_id(args.repo_id)
        checkpoint = chosen_checkpoint(args.checkpoint)
        folder = Path(args.local_dir) if args.local_dir else Path(tempfile.mkdtemp(prefix="dqn-hub-")) / "model"
        results = build_model_folder(checkpoint, folder, args.repo_id, args.episodes, args.seed, args.video)
        print(
            f"{results['env_id']}: greedy return {results['mean_reward']:.2f} ± {results['std_reward']:.2f} "
            f"over {results['episodes']} episodes"
        )
        if args.local_dir:
            print(f"Model folder: {folder} (not uploaded)")
            return
        url = upload_folder(folder, args.repo_id, private=args.private, token=args.token)
        shutil.rmtree(folder.parent, ignore_errors=True)
        print(f"Uploaded: {url}")

    return exit_code("push_to_hub.py", run)


if __name__ == "__main__":
    sys.exit(main())
