"""Train a DQN agent on a Gymnasium env with PyTorch Lightning.

    python scripts/train.py                           # CartPole-v1, `cartpole` preset, default accelerator
    python scripts/train.py --accelerator gpu         # the same on a GPU
    python scripts/train.py --preset seed-tutorial    # the seed tutorial's settings: CartPole-v0, 200 games
    python scripts/train.py --checkpoint-interval 10000  # also keep a checkpoint every 10,000 env steps
    python scripts/train.py --resume last             # continue the newest run exactly where it stopped
    python scripts/train.py --env Acrobot-v1          # an env's own preset when it has one
    python scripts/train.py --double --hidden-sizes 256 256   # switches and lists as typed
    python scripts/train.py --help                    # every flag, and where settings come from

Expect the `cartpole` preset to reach a greedy evaluation return of 475-500 within 50,000 env
steps. Logs, checkpoints (last.ckpt and the best by eval/return_mean) and summary.json go to
lightning_logs/<env>/version_N; watch with `tensorboard --logdir lightning_logs`.
Bad settings exit with status 2 and one line saying what to change.
"""

import sys

from dqn_lightning.run import main

if __name__ == "__main__":
    sys.exit(main())
