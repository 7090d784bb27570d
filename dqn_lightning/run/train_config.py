"""The training run's settings: one typed dataclass, whose field docstrings are the CLI's help."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from dqn_lightning.acting.env_loop import EnvLoop
from dqn_lightning.bounds import BOUNDS, check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.run.cli import flag
from dqn_lightning.run.loggers import check_loggers

ATARI100K_FRAME_CAP = 108_000  # frames per episode (27,000 agent steps of 4 frames)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")


def default_of(part: Callable[..., Any], name: str) -> Any:
    """The default of `part`'s argument `name`: stated once, in the constructor that uses it."""
    return inspect.signature(part).parameters[name].default


@dataclass
class TrainConfig:
    """Everything one training run needs. A setting that a part takes under the same name has
    that part's default (`default_of`); the others are the command line's own."""

    preset: str = "cartpole"
    """Preset the settings start from (dqn_lightning/run/presets/); none: the defaults below."""
    env: str = "CartPole-v1"
    """Gymnasium env id (discrete actions, Box observations)."""
    env_kwargs: dict[str, Any] | None = None
    """The env's constructor arguments, for training and evaluation, as inline YAML:
    '{repeat_action_probability: 0.0}' (an ALE game without sticky actions)."""
    total_timesteps: int | None = default_of(EnvLoop, "total_timesteps")
    """Env-step budget over all envs (null: stop on --max-episodes only)."""
    max_episodes: int | None = default_of(EnvLoop, "max_episodes")
    """Episode budget (the seed-tutorial preset: 200 games; null: no episode limit)."""
    seed: int = 0
    """Seeds Lightning, the envs, exploration and the replay sampler."""
    lr: float = default_of(DQN, "lr")
    """Learning rate."""
    lr_end: float | None = None
    """Decay the learning rate linearly to this over --total-timesteps (null: constant)."""
    action_masks: bool = False
    """Act, evaluate and bootstrap among the legal actions the env reports in info['action_mask'] (Taxi-v4)."""
    gamma: float = default_of(DQN, "gamma")
    """Discount factor."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 50_000
    """Replay buffer capacity in transitions."""
    learning_starts: int = default_of(EnvLoop, "learning_starts")
    """Random-policy env steps that fill the buffer before learning."""
    train_freq: int = default_of(EnvLoop, "train_freq")
    """Env steps (of every env) per training step."""
    num_envs: int = default_of(EnvLoop, "num_envs")
    """Envs stepped together in a Gymnasium SyncVectorEnv; each step adds num_envs transitions."""
    gradient_steps: int = 1
    """Gradient steps per training step."""
    rounds_per_batch: int | None = None
    """Rounds of (--train-freq env steps, --gradient-steps updates) per Lightning batch, run in
    exactly the order of one-round batches, Lightning's per-batch cost paid once (null: the most,
    up to 64 env steps or updates a batch, that keeps evaluations, checkpoints and log points at
    their env steps)."""
    target_update_interval: int = default_of(DQN, "target_update_interval")
    """Gradient steps between target-network copies (0: no target network)."""
    eps_start: float = default_of(EnvLoop, "eps_start")
    """Initial exploration rate."""
    eps_end: float = default_of(EnvLoop, "eps_end")
    """Final exploration rate."""
    exploration_fraction: float = default_of(EnvLoop, "exploration_fraction")
    """Fraction of --total-timesteps over which epsilon decays linearly."""
    exploration_steps: int | None = default_of(EnvLoop, "exploration_steps")
    """Epsilon decay length in env steps (overrides --exploration-fraction)."""
    hidden_sizes: tuple[int, ...] = default_of(DQN, "hidden_sizes")
    """Hidden layer widths of the Q-network (for images: after the convolutions), e.g. [256, 256]."""
    network: Literal["auto", "mlp", "nature-cnn", "data-efficient-cnn", "minatar-cnn"] = default_of(DQN, "network")
    """Q-network; auto: the Nature CNN for frames of 36x36 or more, the MinAtar CNN for smaller ones, else mlp;
    data-efficient-cnn: DER's two-convolution encoder (with --hidden-sizes 256)."""
    q_network: str | None = None
    """Your own Q-network class, by import path (pkg.module.Class; the working directory is searched): an
    nn.Module mapping observations to Q-values, given obs_shape= and n_actions= if its constructor takes them."""
    q_network_args: dict[str, Any] | None = None
    """Further constructor arguments of --q-network, as inline YAML: '{width: 256}'."""
    random_shift: int = 0
    """DrQ's random shift of image frames: each sample's obs and next_obs moved by up to this many pixels
    (edge pixels repeated) before every update (0: off; DrQ(eps): 4)."""
    intensity_jitter: float = 0.0
    """DrQ(eps)'s intensity augmentation: each sample's frames times 1 + this * clip(N(0, 1), -2, 2) before
    every update (0: off; DrQ(eps): 0.05)."""
    reset_interval: int | None = None
    """Re-initialize the Q-network's last --reset-layers layers every this many gradient steps (Nikishin et
    al. 2022, "The primacy bias in deep RL"; null: never)."""
    reset_layers: int = 1
    """How many of the last layers --reset-interval resets (1: the output layer; a dueling head has 2)."""
    variant: str | None = None
    """A DQN variant (a DQN subclass with its own td_target / td_loss): munchausen, cql, expected-sarsa
    (dqn_lightning.variants), or your own by import path pkg.module.Class (null: DQN)."""
    variant_args: dict[str, Any] | None = None
    """The variant's own constructor arguments, as inline YAML: '{m_tau: 0.03, m_alpha: 0.9}'."""
    recurrent: Literal["lstm", "gru"] | None = None
    """Recurrent DQN (R2D2): an LSTM or GRU core after the encoder, learning from replayed sequences that
    start from the stored acting state, with a burn-in (null: feed-forward DQN)."""
    core_size: int = default_of(RecurrentDQN, "core_size")
    """Hidden units of the --recurrent core."""
    sequence_length: int = 80
    """Steps per replayed sequence of --recurrent, burn-in included (R2D2: 80)."""
    sequence_overlap: int = 40
    """Steps a sequence shares with the next one of its episode (R2D2: 40)."""
    burn_in: int = default_of(RecurrentDQN, "burn_in")
    """Steps at each sequence's start that only warm the recurrent state up, with no loss (R2D2: 40)."""
    zero_state: bool = False
    """Start each replayed sequence from a zero state, not the stored acting state (the R2D2 ablation)."""
    priority_eta: float = default_of(RecurrentDQN, "priority_eta")
    """A sequence's PER priority: eta * max |TD error| + (1 - eta) * mean (needs --recurrent --prioritized)."""
    optimizer: Literal["adam", "rmsprop"] = default_of(DQN, "optimizer")
    """Optimizer (torch's Adam or RMSprop)."""
    optimizer_eps: float | None = None
    """The optimizer's eps (null: torch's default, 1e-8)."""
    rmsprop_alpha: float | None = None
    """RMSprop's smoothing constant (needs --optimizer rmsprop; null: torch's 0.99)."""
    rmsprop_centered: bool | None = None
    """Centred RMSprop, as in the DQN and MinAtar papers (needs --optimizer rmsprop; null: torch's false)."""
    double: bool = default_of(DQN, "double")
    """Double DQN: the online network picks the next action, the target network values it."""
    dueling: bool = default_of(DQN, "dueling")
    """Dueling head: Q = V + A - mean(A)."""
    loss: Literal["mse", "huber"] = default_of(DQN, "loss")
    """TD loss."""
    max_grad_norm: float | None = default_of(DQN, "max_grad_norm")
    """Clip each update's gradient norm to this (null: no clipping)."""
    tau: float = default_of(DQN, "tau")
    """Target update weight: 1.0 hard copy, below 1 a soft (Polyak) update every --target-update-interval."""
    n_step: int = default_of(ReplayBuffer, "n_step")
    """n-step returns: rewards summed per target before bootstrapping with gamma^n (1: plain DQN)."""
    prioritized: bool = False
    """Prioritized experience replay (proportional, sum tree)."""
    rainbow: bool = False
    """Rainbow (Hessel et al. 2018): turns on --double --dueling --n-step 3 --prioritized (--per-alpha 0.5)
    --distributional c51 --noisy; any of them given as well still wins."""
    distributional: Literal["none", "c51", "qr"] = "none"
    """Distributional value head: c51 (categorical, cross-entropy) or qr (quantiles, quantile Huber loss)."""
    atoms: int | None = None
    """C51's atoms (needs --distributional c51; null: 51)."""
    v_min: float | None = None
    """C51's lowest return on its support (needs --distributional c51; null: -10)."""
    v_max: float | None = None
    """C51's highest return on its support (needs --distributional c51; null: 10)."""
    quantiles: int | None = None
    """QR-DQN's quantiles (needs --distributional qr; null: 200)."""
    noisy: bool = default_of(DQN, "noisy")
    """Noisy nets (factorised Gaussian, sigma0 0.5) explore instead of epsilon, which is 0 unless you set it."""
    per_alpha: float | None = None
    """Prioritization exponent (needs --prioritized; null: 0.6)."""
    per_beta_start: float | None = None
    """Initial importance-sampling exponent, annealed to 1 over --total-timesteps (needs --prioritized; null: 0.4)."""
    per_eps: float | None = None
    """Added to |TD error| to form a priority (needs --prioritized; null: 1e-6)."""
    vector: Literal["sync", "async"] = default_of(EnvLoop, "vector")
    """Vector env type for --num-envs: sync (one process) or async (one subprocess per env)."""
    eval_interval: int = 5_000
    """Env steps between greedy evaluations."""
    eval_episodes: int = default_of(DQN, "eval_episodes")
    """Greedy episodes per evaluation (0: no evaluation)."""
    stop_at_return: float | None = None
    """End the run at the first greedy evaluation whose mean return reaches this, so the agent it ends
    with is one that scored it (SB3's StopTrainingOnRewardThreshold); null, or --eval-episodes 0: run
    the whole budget."""
    logdir: str = "lightning_logs"
    """Root folder of the run directories (<env>/version_N: logs, checkpoints, config.yaml, summary.json)."""
    logger: tuple[str, ...] = ("tensorboard",)
    """Where metrics go, one or several of tensorboard, csv, mlflow, wandb: --logger tensorboard mlflow."""
    mlflow_tracking_uri: str | None = None
    """MLflow store or server (null: $MLFLOW_TRACKING_URI, else sqlite:///<logdir>/mlflow.db)."""
    project: str = "dqn-lightning"
    """MLflow experiment / W&B project the run is logged under (W&B offline: set WANDB_MODE=offline)."""
    accelerator: str = "auto"
    """Lightning accelerator: cpu, gpu, auto, ..."""
    devices: str = "auto"
    """Devices: a count, GPU indices like [0, 1], or auto (one device; every device with --strategy ddp)."""
    strategy: str = "auto"
    """Lightning strategy: auto, or ddp (one process per device, each with its own envs and buffer)."""
    num_nodes: int = 1
    """Machines for multi-node DDP (Lightning's num_nodes; SLURM or torchrun set the rest)."""
    precision: str | None = None
    """Lightning precision: 32-true, bf16-mixed, 16-mixed (GPU), bf16-true or 64-true (null: 32-true)."""
    deterministic: bool = False
    """Deterministic kernels on a GPU (Lightning's deterministic=True, CUBLAS_WORKSPACE_CONFIG): a seed
    then repeats a GPU run exactly, somewhat slower. CPU runs repeat exactly without it."""
    max_steps: int = -1
    """Extra limit on Lightning's global step, which counts training batches (of --rounds-per-batch rounds) on one
    process (-1: none)."""
    max_time: str | None = None
    """Extra wall-time limit, DD:HH:MM:SS (Lightning's max_time)."""
    torch_threads: int | None = 1
    """CPU threads for torch; 1 is fastest for small networks (null: torch's default)."""
    channels_last: bool = False
    """Convolution weights and frames in channels-last memory format (ChannelsLast): about 1.1x per
    Nature-CNN update on one CPU thread here; the layout tensor cores prefer on a GPU."""
    checkpoint_interval: int | None = None
    """Env steps between periodic checkpoints, kept besides last and best (null: none)."""
    keep_checkpoints: int | None = None
    """Periodic checkpoints to keep, the newest (null: all); older ones go with their replay files."""
    save_buffer: Literal["auto", "always", "never"] = default_of(EnvLoop, "save_buffer")
    """Save the replay buffer beside checkpoints for exact resume (auto: if it is at most 1 GiB)."""
    resume: str | None = None
    """Continue a run from this checkpoint, or 'last' for the newest one under --logdir."""
    quiet: bool = False
    """No progress bar and no evaluation lines; the settings line and the summary still print."""
    progress: Literal["auto", "bar", "lines"] = "auto"
    """Progress as a bar (redrawn in place) or plain lines (one per twentieth of the budget); auto: a bar
    in a terminal, lines when output goes to a file or a pipe."""
    verbose: bool = False
    """Also Lightning's own messages: the device report, its tips, the model summary."""
    eval_video: bool = False
    """After each evaluation, log one greedy episode to TensorBoard as eval/video (needs pygame)."""

    def validate(self) -> None:
        """Raises `ConfigError` for values out of range (`BOUNDS`) and settings that cannot work together."""
        check_bounds(flags=True, **{name: getattr(self, name) for name in BOUNDS})
        if self.total_timesteps is None and self.max_episodes is None:
            raise ConfigError("give a budget: --total-timesteps or --max-episodes")
        per_set = [name for name in ("per_alpha", "per_beta_start", "per_eps") if getattr(self, name) is not None]
        if per_set and not self.prioritized:
            raise ConfigError(f"--{flag(per_set[0])} only applies to prioritized replay: add --prioritized")
        if self.n_step > 1 and self.gamma == 0:
            raise ConfigError(
                f"--n-step {self.n_step} with --gamma 0 adds nothing (every reward after the first is weighted 0): "
                "use --n-step 1 or a gamma above 0"
            )
        self._check_value_head()
        self._check_recurrent()
        self._check_atari100k_protocol()
        rmsprop_set = [name for name in ("rmsprop_alpha", "rmsprop_centered") if getattr(self, name) is not None]
        if rmsprop_set and self.optimizer != "rmsprop":
            raise ConfigError(f"--{flag(rmsprop_set[0])} only applies to RMSprop: add --optimizer rmsprop")
        if self.precision in ("16-true", "16"):
            raise ConfigError(
                f"--precision {self.precision} keeps weights and optimizer state in float16, where Adam's eps (1e-8) "
                "is 0 and the loss turns NaN within a few updates: use 16-mixed or bf16-mixed"
            )
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"--precision {self.precision} is not one we run; choose one of {', '.join(PRECISIONS)}")
        check_loggers(self.logger)
        if self.variant_args is not None and self.variant is None:
            raise ConfigError("--variant-args needs --variant (the class they are passed to)")
        if self.q_network_args is not None and self.q_network is None:
            raise ConfigError("--q-network-args needs --q-network (the class they are passed to)")
        if self.q_network is not None and (self.network != "auto" or self.dueling):
            raise ConfigError(
                "--network and --dueling choose among our own networks: drop them with --q-network "
                "(build a dueling head into your module instead)"
            )
        if self.learning_starts < self.batch_size:
            raise ConfigError(
                f"--learning-starts {self.learning_starts} is below one batch ({self.batch_size}): the first "
                f"batch would find too few transitions; raise --learning-starts to at least {self.batch_size}"
            )
        if self.buffer_size < self.batch_size:
            raise ConfigError(f"--buffer-size {self.buffer_size} cannot hold one batch of {self.batch_size}")
        if self.total_timesteps is not None and self.learning_starts >= self.total_timesteps:
            raise ConfigError(
                f"--learning-starts {self.learning_starts} uses the whole --total-timesteps {self.total_timesteps}: "
                "nothing would be learned; lower it or raise the budget"
            )

    def _check_atari100k_protocol(self) -> None:
        """The atari100k presets promise the benchmark's protocol: refuse what would break it silently."""
        if not self.preset.startswith("atari100k"):
            return
        kwargs = self.env_kwargs or {}
        if not (self.env.startswith("ALE/") and self.env.endswith("-v5")):
            raise ConfigError(
                f"--preset {self.preset} plays the Atari 100k protocol on ALE/<Game>-v5 ids, not {self.env}"
            )
        if kwargs.get("repeat_action_probability") != 0.0:
            raise ConfigError(
                f"--preset {self.preset}: Atari 100k is played without sticky actions; keep "
                "repeat_action_probability: 0.0 in --env-kwargs (or leave --env-kwargs to the preset)"
            )
        if kwargs.get("full_action_space"):
            raise ConfigError(
                f"--preset {self.preset}: Atari 100k uses each game's minimal action set; drop full_action_space"
            )
        if kwargs.get("max_num_frames_per_episode", ATARI100K_FRAME_CAP) != ATARI100K_FRAME_CAP:
            raise ConfigError(
                f"--preset {self.preset}: Atari 100k caps episodes at {ATARI100K_FRAME_CAP:,} frames (27,000 agent "
                "steps); keep max_num_frames_per_episode at that"
            )

    def _check_recurrent(self) -> None:
        if self.recurrent is None:
            return
        if self.variant is not None or self.q_network is not None:
            raise ConfigError("--recurrent is its own learner (RecurrentDQN): drop --variant / --q-network with it")
        if not 0 <= self.burn_in < self.sequence_length:
            raise ConfigError(
                f"--burn-in {self.burn_in} leaves no step of a --sequence-length {self.sequence_length} sequence "
                "for the loss: keep 0 <= burn-in < sequence length"
            )
        if not 0 <= self.sequence_overlap < self.sequence_length:
            raise ConfigError(
                f"--sequence-overlap {self.sequence_overlap} must be below --sequence-length {self.sequence_length}"
            )
        unsupported = {"--distributional": self.distributional != "none", "--noisy": self.noisy,
                       "--action-masks": self.action_masks, "--random-shift": bool(self.random_shift),
                       "--intensity-jitter": bool(self.intensity_jitter)}  # fmt: skip
        given = [name for name, on in unsupported.items() if on]
        if given:
            raise ConfigError(
                f"--recurrent does not support {', '.join(given)} yet (set by the flags or the preset "
                f"{self.preset}): turn them off, or use --preset none"
            )

    def _check_value_head(self) -> None:
        needs = {"atoms": "c51", "v_min": "c51", "v_max": "c51", "quantiles": "qr"}
        for name, head in needs.items():
            if getattr(self, name) is not None and self.distributional != head:
                raise ConfigError(
                    f"--{flag(name)} only applies to --distributional {head}: add it or drop --{flag(name)}"
                )
        if self.q_network is not None and (self.distributional != "none" or self.noisy):
            raise ConfigError("--distributional and --noisy shape our own networks: drop them with --q-network")

    def value_head(self) -> dict[str, Any] | None:
        """The DQN's `value_head` spec for these settings (None: the expected-value head); options left
        unset keep the head's own defaults."""
        if self.distributional == "none":
            return None
        options = ("atoms", "v_min", "v_max") if self.distributional == "c51" else ("quantiles",)
        return {"kind": self.distributional} | {
            key: getattr(self, key) for key in options if getattr(self, key) is not None
        }

    def optimizer_options(self) -> dict[str, float | bool]:
        """The optimizer's options beyond lr, by torch's names (unset ones are left out)."""
        options = {"eps": self.optimizer_eps, "alpha": self.rmsprop_alpha, "centered": self.rmsprop_centered}
        return {key: value for key, value in options.items() if value is not None}
