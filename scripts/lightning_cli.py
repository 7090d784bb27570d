"""Train through Lightning's own command line: LightningCLI builds DQN, ReplayDataModule and EnvLoop from YAML.

    python scripts/lightning_cli.py fit --config scripts/lightning_cli.yaml
    python scripts/lightning_cli.py fit --config scripts/lightning_cli.yaml --trainer.callbacks.init_args.seed 1
    python scripts/lightning_cli.py fit --help

The route for people who run everything through LightningCLI (needs `pip install -e ".[cli]"`);
`scripts/train.py` stays the main command line, with presets, resume and the run summary.
"""

import sys

from pytorch_lightning.cli import LightningCLI

from dqn_lightning import DQN, ReplayDataModule


def main(args: list[str] | None = None) -> LightningCLI:
    """Runs LightningCLI on our parts; `args` in place of sys.argv (tests, notebooks)."""
    return LightningCLI(DQN, ReplayDataModule, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
    sys.exit(0)
