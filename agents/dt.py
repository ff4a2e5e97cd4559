"""Decision Transformer, configured as the LaMo paper's DT baseline (random-init GPT-2, 3 layers, 128 wide).

The agent owns training (window batches, AdamW with linear warm-up, gradient clipping), checkpoints and the
batched evaluation policy. The sequence model itself is `agents.models.trajectory.TrajectoryModel`, which LaMo
reuses with a pre-trained backbone; LaMo can subclass `DTAgent` and override `build_model`/`training_loss`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from agents.base import (
    TRAINING_STATE_FILE,
    Agent,
    AgentConfig,
    CheckpointCallback,
    EvalCallback,
    LogCallback,
    TaskSpec,
)
from agents.checkpoint import first_line, read_checkpoint, write_checkpoint
from agents.models.trajectory import INFERENCE_MODES, InferenceMode, TrajectoryModel, TrajectoryModelConfig
from agents.training_loop import (
    TrainingState,
    cuda_devices,
    generator_state,
    global_rng_states,
    restore_global_rng_states,
    run_loop,
)
from bench.data.sampler import WindowBatch, WindowSampler
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.tasks import Task

CHECKPOINT_FILE = "agent.pt"
# 2: official LaMo/DT model details (residual MLP embeddings, LN before the timestep embedding, MLP head without
# tanh, split Q/K/V LoRA with trainable attention biases); format-1 weights no longer mean the same model.
CHECKPOINT_FORMAT = 2
LrSchedule = Literal["warmup", "atari_tokens"]
LR_SCHEDULES: tuple[str, ...] = ("warmup", "atari_tokens")


def check_checkpoint_format(payload: dict[str, object], file: Path, expected: int) -> None:
    """One line for a checkpoint written by another format (older ones hold a different model)."""
    found = payload.get("format")
    if found != expected:
        raise BenchError(
            f"checkpoint {file} has format {found}, this version reads format {expected} only "
            f"(the model changed to follow the official LaMo code); retrain to get a new checkpoint"
        )


class AtariTokenSchedule:
    """Learning-rate multiplier of LaMo's Atari code: linear warm-up over `warmup_tokens`, then cosine decay to
    `final_tokens`, never below 0.1 (the DT-Atari schedule, srzer/LaMo-2023 @ 3e4fcc8, experiment-atari/core.py
    `CustomLRScheduler`; 375e6 and 260e9 tokens in cfgs/config.yaml).

    Tokens are counted as that code counts them: after each optimizer step it adds the batch's actions that are
    > 0 to a running total `tokens`, then calls `scheduler.step(tokens)`, which adds that *running total* to the
    scheduler's own count. So the scheduler's count is a sum of running totals and grows quadratically in the
    step number (with 128 x 30 actions a batch, warm-up ends after a few hundred steps and the cosine reaches
    its 0.1 floor after about 14K). The original DT-Atari code (kzl/decision-transformer, atari/mingpt/
    trainer_atari.py) adds each batch's count once, linearly; the LaMo paper's runs used the quadratic count.
    We count actions > 0 on real (unpadded) steps; the official count also includes its padded steps. Progress
    past `final_tokens` is not clamped there either, so after the 0.1 floor the cosine rises again (period 2x
    final_tokens); this follows it.

    A callable object, not a lambda, so LambdaLR's state_dict keeps the counts for a resumed run.
    """

    def __init__(self, warmup_tokens: float, final_tokens: float) -> None:
        self.warmup_tokens = float(warmup_tokens)
        self.final_tokens = float(final_tokens)
        self.running = 0  # the official `tokens`
        self.scheduled = 0  # the official `scheduler.tokens`

    def observe(self, actions: torch.Tensor, mask: torch.Tensor) -> None:
        """Count one optimizer step's batch (call once per step, before the scheduler steps)."""
        self.running += int(((actions > 0) & (mask > 0)).sum())
        self.scheduled += self.running

    def multiplier(self, tokens: float) -> float:
        if tokens < self.warmup_tokens:
            return tokens / max(1.0, self.warmup_tokens)
        progress = (tokens - self.warmup_tokens) / max(1.0, self.final_tokens - self.warmup_tokens)
        return max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))

    def __call__(self, _step: int) -> float:
        return self.multiplier(self.scheduled)


@dataclass(frozen=True)
class TrajectoryAgentConfig(AgentConfig):
    """What DT and LaMo share: the training loop, window sampling, embeddings and action head, and evaluation.

    `DTConfig` adds the size of DT's own GPT-2; LaMo's pre-trained backbone decides width, depth and heads itself,
    so `LaMoConfig` adds its LM settings instead and carries no DT-only fields.
    """

    batch_size: int = 64
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 2500  # linear warm-up from 0, then a constant learning rate
    grad_clip: float = 0.25
    # AdamW eps: torch's default 1e-8, as the official DT path builds it (srzer/LaMo-2023 @ 3e4fcc8,
    # experiment-d4rl/utils.py get_optimizer, branch without pretrained_lm; experiment-atari/core.py).
    adam_eps: float = 1e-8
    # "warmup": linear warm-up over warmup_steps, then constant (experiment-d4rl/experiment.py). "atari_tokens":
    # the Atari code's token-counted warm-up and cosine decay (AtariTokenSchedule); default on discrete tasks.
    lr_schedule: LrSchedule = "warmup"
    warmup_tokens: float = 375e6  # experiment-atari/cfgs/config.yaml train.warmup_tokens
    final_tokens: float = 260e9  # experiment-atari/cfgs/config.yaml train.final_tokens
    context_length: int = 20
    dropout: float = 0.1
    mlp_embedding: bool = False
    mlp_head: bool = False
    action_tanh: bool = True
    reward_scale: float = 1000.0  # returns-to-go and rewards are divided by this inside the model
    max_timestep: int = 1000  # size of the timestep embedding; later steps reuse the last entry
    # "window" is the paper's evaluation protocol; see agents.models.trajectory for "cached" and "banded".
    eval_mode: InferenceMode = "window"

    def __post_init__(self) -> None:
        if self.eval_mode not in INFERENCE_MODES:
            raise BenchError(f"eval_mode {self.eval_mode!r} is not one of {', '.join(INFERENCE_MODES)}")
        if self.context_length < 1 or self.max_timestep < 1:
            raise BenchError("context_length and max_timestep must be at least 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise BenchError(f"lr_schedule {self.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
        if not (self.adam_eps > 0 and math.isfinite(self.adam_eps)):
            raise BenchError(f"adam_eps must be a positive number, got {self.adam_eps}")

    def deviations(self) -> list[str]:
        out = []
        if self.eval_mode != "window":
            out.append(f"eval_mode {self.eval_mode}: the official evaluation re-encodes the last K steps (window)")
        return out


@dataclass(frozen=True)
class DTConfig(TrajectoryAgentConfig):
    """The paper's DT baseline; `default_config(task)` fills in the task-specific values."""

    # DT's own randomly initialised GPT-2 (the LaMo paper's DT baseline: 3 layers, 1 head, 128 wide, ReLU).
    hidden_size: int = 128
    n_layer: int = 3
    n_head: int = 1
    activation: str = "relu"

    def deviations(self) -> list[str]:
        """Known differences from the DT baseline as LaMo's official code runs it (see agents.models.trajectory
        for the model and agents.dt.AtariTokenSchedule for the Atari schedule)."""
        out = super().deviations()
        if self.lr_schedule == "atari_tokens":  # what default_config gives Atari
            out.append(
                "Atari DT model vs LaMo's experiment-atari/model.py: theirs adds GPT-2 position embeddings, "
                "ends the action head in tanh (on logits) and the CNN without tanh, and its GPT2Config "
                "(n_embed=128 typo) builds 3 layers x 1 head x 768 wide; ours is the DT paper's Atari model"
            )
        return out


class SequencePolicy:
    """Batched return-conditioned policy over `num_envs` lock-step episodes.

    Keeps each episode's history (normalized observations, actions, returns-to-go, timesteps), starts the
    return-to-go at target / reward_scale and lowers it by reward / reward_scale after every step, as the DT
    and LaMo reference evaluators do.
    """

    def __init__(
        self,
        model: TrajectoryModel,
        num_envs: int,
        rtg_target: float,
        reward_scale: float,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        mode: InferenceMode,
        device: str,
        clip_rewards: bool = False,
    ) -> None:
        if mode not in INFERENCE_MODES:
            raise BenchError(f"inference mode {mode!r} is not one of {', '.join(INFERENCE_MODES)}")
        self.model = model
        self.n = int(num_envs)
        self.mode = mode
        self.device = torch.device(device)
        self.reward_scale = float(reward_scale)
        self.clip_rewards = clip_rewards
        self.k = model.config.context_length
        self.discrete = model.config.discrete
        self.obs_mean = np.asarray(obs_mean, np.float32).reshape(-1)
        self.obs_std = np.asarray(obs_std, np.float32).reshape(-1)
        self.t = 0
        self.rtg = torch.full((self.n, 1), float(rtg_target) / self.reward_scale, device=self.device)
        obs_dim, act_dim = model.config.obs_dim, model.config.act_dim
        # Pixel tasks keep each step's CNN state embedding rather than its frames: the same numbers as
        # re-encoding the window every step, without running the CNN on K frame stacks per step.
        self.embed_once = model.config.pixels
        width = model.hidden_size if self.embed_once else obs_dim
        self.h_obs = torch.zeros((self.n, 0, width), device=self.device)
        self.h_act = (
            torch.zeros((self.n, 0), dtype=torch.long, device=self.device)
            if self.discrete
            else torch.zeros((self.n, 0, act_dim), device=self.device)
        )
        self.h_rtg = torch.zeros((self.n, 0, 1), device=self.device)
        self.h_ts = torch.zeros((self.n, 0), dtype=torch.long, device=self.device)
        self.cache = model.new_cache() if mode == "cached" else None
        self.prev_action: torch.Tensor | None = None
        self._awaiting_observe = False

    def _placeholder_action(self) -> torch.Tensor:
        if self.discrete:
            return torch.zeros((self.n, 1), dtype=torch.long, device=self.device)
        return torch.zeros((self.n, 1, self.model.config.act_dim), device=self.device)

    def _append(self, obs: torch.Tensor, ts: torch.Tensor) -> None:
        # The window needs only the last K steps, the current one included; the banded mode keeps everything.
        drop = max(0, self.h_ts.shape[1] - (self.k - 1)) if self.mode == "window" else 0

        def cat(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return torch.cat((h[:, drop:], x), dim=1)

        self.h_obs = cat(self.h_obs, obs[:, None])
        self.h_act = cat(self.h_act, self._placeholder_action())
        self.h_rtg = cat(self.h_rtg, self.rtg[:, None])
        self.h_ts = cat(self.h_ts, ts[:, None])

    @torch.inference_mode()
    def act(self, observations: np.ndarray) -> np.ndarray:
        if self._awaiting_observe:
            raise RuntimeError("act() called twice without observe() in between")
        if self.model.training:
            self.model.eval()
        flat = np.asarray(observations, np.float32).reshape(self.n, -1)
        obs = torch.as_tensor((flat - self.obs_mean) / self.obs_std, device=self.device)
        ts = torch.full((self.n,), self.t, dtype=torch.long, device=self.device)
        if self.mode == "cached":
            assert self.cache is not None
            pred = self.model.step_cached(self.cache, obs, self.rtg, ts, self.prev_action)
        else:
            self._append(self.model.embed_state(self.model._float(obs)) if self.embed_once else obs, ts)
            if self.mode == "window":
                # Episodes run in lock step, so every row has the same history length and needs no padding.
                pred = self.model.predict_last(self.h_obs, self.h_act, self.h_rtg, self.h_ts, self.embed_once)
            else:
                pred = self.model.forward_banded(self.h_obs, self.h_act, self.h_rtg, self.h_ts, self.embed_once)[:, -1]
        action = pred.argmax(-1) if self.discrete else pred.float()
        if self.mode != "cached":
            self.h_act[:, -1] = action
        self.prev_action = action
        self._awaiting_observe = True
        return action.cpu().numpy()

    def observe(self, rewards: np.ndarray) -> None:
        raw = np.asarray(rewards, np.float32).reshape(self.n, 1)
        if self.clip_rewards:  # the returns-to-go were learned on clipped rewards
            raw = np.clip(raw, -1.0, 1.0)
        r = torch.as_tensor(raw, device=self.device)
        self.rtg = self.rtg - r / self.reward_scale
        self.t += 1
        self._awaiting_observe = False


class DTAgent(Agent):
    """Decision Transformer agent; see the module docstring."""

    name: ClassVar[str] = "dt"
    return_conditioned: ClassVar[bool] = True
    #: The config this agent runs on (LaMo: LaMoConfig); __init__ refuses any other.
    config_class: ClassVar[type[TrajectoryAgentConfig]] = DTConfig
    config: TrajectoryAgentConfig

    @classmethod
    def default_config(cls, task: Task) -> TrajectoryAgentConfig:
        config = DTConfig(
            batch_size=task.paper.batch_size,
            grad_clip=task.paper.grad_clip,
            warmup_steps=task.paper.warmup_steps,
            dropout=task.paper.dropout,
            context_length=task.context_length,
            reward_scale=task.paper.reward_scale,
            max_timestep=task.max_episode_steps,
        )
        if task.action_kind == "discrete":
            # The DT paper's Atari model (its Table 8), which the LaMo paper's Atari DT baseline runs:
            # 6 layers, 8 heads, learning rate 6e-4, weight decay 0.1 (gradient clip 1.0 comes from the task).
            config = replace(
                config, n_layer=6, n_head=8, learning_rate=6e-4, weight_decay=0.1, lr_schedule="atari_tokens"
            )
        return config

    def __init__(self, config: AgentConfig, spec: TaskSpec, device: str = "cpu", seed: int = 0) -> None:
        if not isinstance(config, self.config_class):
            raise BenchError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        super().__init__(config, spec, device=device, seed=seed)
        obs_dim = int(np.prod(spec.observation_shape))
        self.obs_mean = np.zeros(obs_dim, np.float32)
        self.obs_std = np.ones(obs_dim, np.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = self.build_model().to(device)
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        # Mid-training state: the window-batch generator, the step `fit` has reached (None outside `fit`)
        # and a loaded training state the next `fit` continues from.
        self._batch_rng = np.random.default_rng(seed)
        self._fit_step: int | None = None
        self._resume: TrainingState | None = None
        self._token_schedule: AtariTokenSchedule | None = None

    # --- model --------------------------------------------------------------------------------------------

    def model_config(self) -> TrajectoryModelConfig:
        c = self.config
        shape = TrajectoryModelConfig(
            obs_dim=int(np.prod(self.spec.observation_shape)),
            act_dim=self.spec.action_dim,
            discrete=self.spec.discrete,
            context_length=c.context_length,
            max_timestep=c.max_timestep,
            dropout=c.dropout,
            mlp_embedding=c.mlp_embedding,
            mlp_head=c.mlp_head,
            action_tanh=c.action_tanh,
            obs_shape=tuple(self.spec.observation_shape),
            # Pixel tasks: LaMo's Atari code adds time before embed_ln (agents.models.trajectory explains).
            time_before_ln=len(self.spec.observation_shape) == 3,
        )
        if isinstance(c, DTConfig):  # DT's own GPT-2; a pre-trained backbone (LaMo) brings its own size
            shape = replace(
                shape, hidden_size=c.hidden_size, n_layer=c.n_layer, n_head=c.n_head, activation=c.activation
            )
        return shape

    def build_model(self) -> TrajectoryModel:
        """The sequence model; LaMo overrides this to pass a pre-trained backbone."""
        return TrajectoryModel(self.model_config())

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one window batch, and extra scalar metrics to log (their running means are reported);
        LaMo adds its language loss here."""
        self.count_tokens(batch)
        loss = self.model.loss(
            batch["observations"], batch["actions"], batch["returns_to_go"], batch["timesteps"], batch["mask"]
        )
        return loss, {}

    def count_tokens(self, batch: dict[str, torch.Tensor]) -> None:
        """Feed one training batch to the token-counted Atari schedule (a no-op for the step schedule)."""
        if self._token_schedule is not None:
            self._token_schedule.observe(batch["actions"], batch["mask"])

    def _to_tensors(self, batch: WindowBatch) -> dict[str, torch.Tensor]:
        dev = self.device
        actions = torch.as_tensor(batch.actions, device=dev)
        return {
            "observations": torch.as_tensor(batch.observations, device=dev).float(),
            "actions": actions.long() if self.spec.discrete else actions.float(),
            "returns_to_go": torch.as_tensor(batch.returns_to_go, device=dev).float(),
            "timesteps": torch.as_tensor(batch.timesteps, device=dev).long(),
            "mask": torch.as_tensor(batch.mask, device=dev).float(),
        }

    # --- training -----------------------------------------------------------------------------------------

    def _ensure_optimizer(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        if self._optimizer is None or self._scheduler is None:
            c = self.config
            self._optimizer = torch.optim.AdamW(
                self.trainable_parameters(), lr=c.learning_rate, weight_decay=c.weight_decay, eps=c.adam_eps
            )
            if c.lr_schedule == "atari_tokens":
                self._token_schedule = AtariTokenSchedule(c.warmup_tokens, c.final_tokens)
                self._scheduler = torch.optim.lr_scheduler.LambdaLR(self._optimizer, self._token_schedule)
            else:
                warmup = max(1, c.warmup_steps)
                self._scheduler = torch.optim.lr_scheduler.LambdaLR(
                    self._optimizer, lambda s: min(1.0, (s + 1) / warmup)
                )
        return self._optimizer, self._scheduler

    def fit(
        self,
        dataset: TrajectoryDataset,
        steps: int,
        *,
        eval_every: int = 0,
        on_eval: EvalCallback | None = None,
        on_log: LogCallback | None = None,
        on_checkpoint: CheckpointCallback | None = None,
    ) -> None:
        """Train; optimizer and warm-up state carry over if `fit` is called again on the same agent. After
        `load_training_state` the call continues the interrupted `fit` of the same `steps`."""
        if steps < 1:
            raise BenchError(f"steps must be at least 1, got {steps}")
        c = self.config
        sampler = WindowSampler(
            dataset,
            c.context_length,
            reward_scale=c.reward_scale,
            max_timestep=c.max_timestep,
            clip_rewards=self.spec.clip_rewards,
        )
        self.obs_mean, self.obs_std = sampler.obs_mean.copy(), sampler.obs_std.copy()
        resume, self._resume = self._resume, None
        if resume is not None and resume.step > steps:
            raise BenchError(f"the training state is at step {resume.step}, past the {steps} steps asked for")
        if resume is None:
            self._batch_rng = np.random.default_rng(self.seed)  # every fresh fit draws the same batches
        optimizer, scheduler = self._ensure_optimizer()
        params = self.trainable_parameters()
        cuda = cuda_devices(self.device)

        def one_step(_step: int) -> dict[str, torch.Tensor]:
            loss, extra = self.training_loss(self._to_tensors(sampler.sample(c.batch_size, self._batch_rng)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
            optimizer.step()
            scheduler.step()
            return {"loss": loss, **extra}

        def progress(step: int) -> None:
            self._fit_step = step

        with torch.random.fork_rng(devices=cuda):
            if resume is None:
                torch.manual_seed(self.seed)
            else:
                restore_global_rng_states(resume.rng, cuda)
            self.model.train()
            self._fit_step = 0 if resume is None else resume.step
            try:
                run_loop(
                    one_step,
                    self,
                    steps,
                    start=self._fit_step,
                    eval_every=eval_every,
                    on_log=on_log,
                    on_eval=on_eval,
                    on_checkpoint=on_checkpoint,
                    progress=progress,
                    log_extras=lambda: {"lr": float(scheduler.get_last_lr()[0])},
                    before_eval=lambda: self.model.train(False),
                    after_eval=lambda: self.model.train(True),
                )
            finally:
                self._fit_step = None
        self.model.eval()

    # --- evaluation ---------------------------------------------------------------------------------------

    def make_policy(self, num_envs: int, rtg_target: float | None, mode: InferenceMode | None = None) -> SequencePolicy:
        """A fresh policy; `mode` overrides the config's `eval_mode` (the throughput benchmark uses it)."""
        if rtg_target is None:
            raise BenchError(f"{self.name} is return-conditioned and needs a return-to-go target")
        self.model.eval()
        return SequencePolicy(
            self.model,
            num_envs,
            rtg_target,
            self.config.reward_scale,
            self.obs_mean,
            self.obs_std,
            mode or self.config.eval_mode,
            self.device,
            clip_rewards=self.spec.clip_rewards,
        )

    # --- checkpoints --------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        write_checkpoint(
            path,
            CHECKPOINT_FILE,
            {
                "format": CHECKPOINT_FORMAT,
                "agent": self.name,
                "config": self.config.to_dict(),
                "spec": asdict(self.spec),
                "seed": self.seed,
                "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "obs_mean": torch.from_numpy(self.obs_mean),
                "obs_std": torch.from_numpy(self.obs_std),
            },
        )

    def load(self, path: Path) -> None:
        payload = read_checkpoint(path, CHECKPOINT_FILE, self.name, self.device)
        check_checkpoint_format(payload, Path(path) / CHECKPOINT_FILE, CHECKPOINT_FORMAT)
        try:
            self.model.load_state_dict(payload["state_dict"])
            obs_mean, obs_std = payload["obs_mean"], payload["obs_std"]
        except (RuntimeError, KeyError) as e:
            raise BenchError(
                f"checkpoint {Path(path) / CHECKPOINT_FILE} does not fit this {self.name} agent: {first_line(e)}"
            ) from None
        self.obs_mean = obs_mean.cpu().numpy().astype(np.float32)
        self.obs_std = obs_std.cpu().numpy().astype(np.float32)
        self.model.eval()

    def generators(self) -> dict[str, np.random.Generator]:
        """The agent's own NumPy generators, by name, saved in training states; LaMo adds its text stream."""
        return {"batch": self._batch_rng}

    def save_training_state(self, path: Path) -> None:
        if self._fit_step is None or self._optimizer is None or self._scheduler is None:
            raise BenchError(f"{self.name}: a training state can only be saved from inside fit")
        self.save(path)
        TrainingState(
            step=self._fit_step,
            rng=global_rng_states(cuda_devices(self.device)),
            generators={name: generator_state(g) for name, g in self.generators().items()},
            extra={"optimizer": self._optimizer.state_dict(), "scheduler": self._scheduler.state_dict()},
        ).write(path, self.name)

    def load_training_state(self, path: Path) -> int:
        self.load(path)
        state = TrainingState.read(path, self.name)
        file = Path(path) / TRAINING_STATE_FILE
        optimizer, scheduler = self._ensure_optimizer()
        try:
            optimizer.load_state_dict(state.extra["optimizer"])
            scheduler.load_state_dict(state.extra["scheduler"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise BenchError(f"training state {file} does not fit this {self.name} agent: {first_line(e)}") from None
        state.restore_generators(self.generators(), file)
        self._resume = state
        return state.step

    def num_params(self) -> tuple[int, int]:
        total = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return total, trainable
