"""What a shared agent's model folder says about it: the model card (README.md with Hugging
Face's metadata) and how far its run had trained, read from the checkpoint (`tools.hub` builds
the folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dqn_lightning.learner.checkpoint_file import read_checkpoint


def training_facts(checkpoint: str | Path) -> dict[str, Any]:
    """How far the checkpoint's run had trained: env steps, updates, training hours (evaluation
    excluded) and its latest greedy evaluation in training, from the loop state the file carries
    (keys left out when a file lacks them, e.g. one saved outside `train.py`)."""
    saved = read_checkpoint(checkpoint)
    loop = saved.get("callbacks", {}).get("EnvLoop", {})
    facts: dict[str, Any] = {}
    if "env_steps" in loop:
        facts["env_steps"] = int(loop["env_steps"])
    if "gradient_step" in saved:
        facts["updates"] = int(saved["gradient_step"])
    if "train_seconds" in loop:
        facts["train_seconds"] = round(float(loop["train_seconds"]), 1)
    history = saved.get("eval_history") or []
    if history:
        latest = history[-1]
        facts["latest_evaluation"] = {
            "env_steps": int(latest["env_steps"]),
            "return_mean": float(latest["return_mean"]),
            "return_std": float(latest["return_std"]),
            "episodes": int(saved["hyper_parameters"].get("eval_episodes", 0)),
        }
    return facts


def model_card(repo_id: str, results: dict[str, Any], has_config: bool, video: str | None) -> str:
    """The README.md: Hugging Face metadata (library, tags, a model-index with mean_reward) and usage;
    `video`: the replay video's file name in the folder, or None."""
    from huggingface_hub import EvalResult, ModelCardData

    env_id = results["env_id"]
    score = f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}"
    data = ModelCardData(
        library_name="dqn-lightning",
        tags=[env_id, "deep-reinforcement-learning", "reinforcement-learning", "dqn", "pytorch-lightning"],
        model_name=f"DQN on {env_id}",
        eval_results=[
            EvalResult(
                task_type="reinforcement-learning",
                dataset_type=env_id,
                dataset_name=env_id,
                metric_type="mean_reward",
                metric_value=score,
            )
        ],
    )
    reproduce = (
        "python scripts/train.py --config config.yaml   # config.yaml from this repo"
        if has_config
        else "(this checkpoint was shared without its run's config.yaml)"
    )
    shown = f"\n![replay]({video})\n" if video else ""
    return f"""---
{data.to_yaml()}
---

# DQN on {env_id}

A Deep Q-Network agent trained with dqn-lightning (Deep Q-learning as PyTorch Lightning components).
Greedy return over {results["episodes"]} fresh episodes
(env seeds {results["seeds"][0]} to {results["seeds"][-1]}): **{score}**.
{_training_line(results.get("training", {}))}{shown}
## Use it

```python
from dqn_lightning.tools.hub import load_from_hub

model = load_from_hub("{repo_id}")  # a dqn_lightning.DQN
actions = model.act(observations)  # (n, *obs_shape) -> (n,) greedy actions
```

`model.safetensors` holds the online Q-network's weights and `dqn_hparams.json` the
constructor arguments that rebuild it; `model.ckpt` is the Lightning checkpoint
(`DQN.load_from_checkpoint`).

## Reproduce it

```bash
{reproduce}
```
"""


def _training_line(facts: dict[str, Any]) -> str:
    """The card's sentence on how long the agent trained and what its run's evaluation said."""
    if "env_steps" not in facts:
        return ""
    line = f"Trained for {facts['env_steps']:,} env steps"
    if "updates" in facts and "train_seconds" in facts:
        hours = facts["train_seconds"] / 3600
        line += f" ({facts['updates']:,} updates, {hours:.1f} hours of training, evaluation excluded)"
    evaluation = facts.get("latest_evaluation")
    if evaluation:
        line += (
            f"; its run's latest greedy evaluation, at {evaluation['env_steps']:,} env steps over "
            f"{evaluation['episodes']} episodes of the run's own seeds: {evaluation['return_mean']:.2f} +/- "
            f"{evaluation['return_std']:.2f}"
        )
    return line + ".\n"
