"""The d3rlpy baselines (CQL, BC, IQL, TD3+BC) behind the common `Agent` interface.

d3rlpy supplies the algorithms; this module only builds them from the typed configs in `d3rlpy_configs`,
feeds them mini-batches and wraps them as batched, stateless policies. Training does not go through
`algo.fit`: that creates a `d3rlpy_logs/` directory in the working directory by default, samples every
mini-batch with a Python loop over transitions and draws from NumPy's global RNG. Instead `fit` samples
batches vectorised from the `TrajectoryDataset` with the agent's own generator (same transitions and the same
uniform distribution as d3rlpy's `BasicTransitionPicker`) and calls `algo.update`, so nothing is written to
disk, eval/log points are exact and a seed fixes a run without touching global NumPy state.

Scaler statistics (observation mean/std, episode-return range) are computed once from the first dataset an
agent is fitted on and stored in its checkpoints, because d3rlpy's `save_model` keeps only network and
optimizer state.
"""

from __future__ import annotations

import io
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

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
from agents.d3rlpy_configs import (
    BCConfig,
    CQLConfig,
    D3rlpyConfig,
    DiscreteBCConfig,
    DiscreteCQLConfig,
    IQLConfig,
    TD3PlusBCConfig,
    bc_default_config,
    cql_default_config,
    iql_default_config,
    td3_plus_bc_default_config,
)
from agents.training_loop import (
    TrainingState,
    cuda_devices,
    generator_state,
    global_rng_states,
    restore_global_rng_states,
    run_loop,
)
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.legacy_gym import quiet_legacy_gym
from bench.tasks import Task

quiet_legacy_gym()  # before any d3rlpy import below: d3rlpy imports `gym`, which prints a banner otherwise

CHECKPOINT_FILE = "d3rlpy_agent.pt"
CHECKPOINT_FORMAT = 1
# Continuous d3rlpy policies squash with tanh, so dataset actions must lie in [-1, 1]; D4RL files hold a few
# values a rounding error outside, which are clipped.
ACTION_BOUND_TOLERANCE = 1e-3

__all__ = [
    "BCAgent",
    "BCConfig",
    "CQLAgent",
    "CQLConfig",
    "D3rlpyAgent",
    "DiscreteBCConfig",
    "DiscreteCQLConfig",
    "IQLAgent",
    "IQLConfig",
    "TD3PlusBCAgent",
    "TD3PlusBCConfig",
]


# --- data -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataStats:
    """Dataset statistics the d3rlpy scalers need; fixed at the first `fit` and saved with the weights."""

    obs_mean: np.ndarray | None = None
    obs_std: np.ndarray | None = None
    return_min: float | None = None
    return_max: float | None = None
    # Length of the first `fit` call: the horizon of IQL's cosine actor schedule.
    schedule_steps: int = 1

    def to_payload(self) -> dict[str, Any]:
        def tensor(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(np.asarray(a, np.float64))

        return {
            "obs_mean": tensor(self.obs_mean),
            "obs_std": tensor(self.obs_std),
            "return_min": self.return_min,
            "return_max": self.return_max,
            "schedule_steps": self.schedule_steps,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DataStats:
        def array(t: torch.Tensor | None) -> np.ndarray | None:
            return None if t is None else t.cpu().numpy()

        return cls(
            obs_mean=array(payload["obs_mean"]),
            obs_std=array(payload["obs_std"]),
            return_min=payload["return_min"],
            return_max=payload["return_max"],
            schedule_steps=int(payload["schedule_steps"]),
        )


class TransitionSampler:
    """Uniform (s, a, r, s', a', done) mini-batches drawn directly from a `TrajectoryDataset`.

    Matches d3rlpy's transition set: a step whose episode continues, or a terminal step (its next
    observation and action are zeros and `terminal` is 1). The last step of an episode cut by a timeout has
    no next observation and is never sampled.
    """

    def __init__(self, dataset: TrajectoryDataset) -> None:
        n = dataset.num_transitions
        last = np.zeros(n, bool)
        last[dataset.episode_starts[1:] - 1] = True
        self._terminal = dataset.terminals.astype(bool)
        self._valid = np.flatnonzero(~last | self._terminal)
        if len(self._valid) == 0:
            raise BenchError(
                f"dataset {dataset.name!r} has no transitions with a next observation (every episode has one step)"
            )
        self._dataset = dataset
        self._episode_first = dataset.episode_first_index()
        self._actions = dataset.actions
        self._rewards = dataset.rewards
        self._discrete = dataset.discrete_actions
        self._n = n

    def __len__(self) -> int:
        return len(self._valid)

    def _observations(self, idx: np.ndarray) -> np.ndarray:
        # Frame stacks of pixel datasets are built here (bench.data.frames); vectors are read as they are.
        return self._dataset.observations_at(idx, self._episode_first[idx]).astype(np.float32)

    def sample(self, rng: np.random.Generator, batch_size: int) -> Any:
        from d3rlpy.dataset import TransitionMiniBatch

        idx = self._valid[rng.integers(len(self._valid), size=batch_size)]
        nxt = np.minimum(idx + 1, self._n - 1)
        done = self._terminal[idx]
        keep = (~done).astype(np.float32)
        obs = self._observations(idx)
        next_obs = self._observations(nxt)
        next_obs *= keep.reshape((-1,) + (1,) * (next_obs.ndim - 1))
        actions = self._actions[idx].astype(np.float32)
        next_actions = self._actions[nxt].astype(np.float32)
        if self._discrete:
            actions, next_actions = actions.reshape(-1, 1), next_actions.reshape(-1, 1)
        next_actions *= keep.reshape(-1, 1)
        return TransitionMiniBatch(
            observations=obs,
            actions=actions,
            rewards=self._rewards[idx].astype(np.float32).reshape(-1, 1),
            next_observations=next_obs,
            next_actions=next_actions,
            terminals=done.astype(np.float32).reshape(-1, 1),
            intervals=np.ones((batch_size, 1), np.float32),
            transitions=[],
        )


# --- policy -----------------------------------------------------------------------------------------------


class GreedyPolicy:
    """The algorithm's greedy action for each observation; Q-learning and BC policies keep no episode state."""

    def __init__(self, algo: Any, spec: TaskSpec, num_envs: int) -> None:
        self._algo = algo
        self._spec = spec
        self._num_envs = num_envs

    def act(self, observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations)
        expected = (self._num_envs, *self._spec.observation_shape)
        if obs.shape != expected:
            raise BenchError(f"{self._spec.task}: policy got observations of shape {obs.shape}, expected {expected}")
        actions = self._algo.predict(obs.astype(np.float32))
        if self._spec.discrete:
            return np.asarray(actions, dtype=np.int64).reshape(self._num_envs)
        return np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)

    def observe(self, rewards: np.ndarray) -> None:
        """Nothing to track: the policy ignores rewards and history."""


# --- the shared agent -------------------------------------------------------------------------------------


def _d3rlpy_device(device: str) -> str:
    """d3rlpy wants an explicit index ("cpu:0", "cuda:0"); the harness passes "cpu" or "cuda"."""
    return device if ":" in device else f"{device}:0"


def _optim(weight_decay: float = 0.0, eps: float = 1e-8, cosine_steps: int | None = None) -> Any:
    from d3rlpy.optimizers import AdamFactory, CosineAnnealingLRFactory

    schedule = CosineAnnealingLRFactory(T_max=cosine_steps) if cosine_steps else None
    return AdamFactory(weight_decay=weight_decay, eps=eps, lr_scheduler_factory=schedule)


class D3rlpyAgent(Agent):
    """An `Agent` around one d3rlpy algorithm; a subclass only says how to build the d3rlpy config."""

    return_conditioned: ClassVar[bool] = False
    #: The d3rlpy metric reported as `loss` (the agent's main objective).
    main_loss: ClassVar[str] = "loss"
    config_types: ClassVar[tuple[type[D3rlpyConfig], ...]]

    def __init__(self, config: AgentConfig, spec: TaskSpec, device: str = "cpu", seed: int = 0) -> None:
        if not isinstance(config, self.config_types):
            names = " or ".join(t.__name__ for t in self.config_types)
            raise BenchError(f"agent {self.name} needs a {names}, got {type(config).__name__}")
        discrete_config = isinstance(config, DiscreteCQLConfig | DiscreteBCConfig)
        if discrete_config != spec.discrete:
            kind = "discrete" if spec.discrete else "continuous"
            raise BenchError(f"{type(config).__name__} does not fit task {spec.task}, whose actions are {kind}")
        super().__init__(config, spec, device=device, seed=seed)
        self.config: D3rlpyConfig = config
        self._algo: Any = None
        self._stats: DataStats | None = None
        self._rng = np.random.default_rng(seed)
        self._torch_rng: list[torch.Tensor] | None = None  # CPU (+ CUDA) generator states between calls
        self._fit_step: int | None = None  # the step `fit` has reached; None outside `fit`
        self._resume: TrainingState | None = None  # a loaded training state the next `fit` continues

    @classmethod
    @abstractmethod
    def default_config(cls, task: Task) -> D3rlpyConfig: ...

    def loss_key(self) -> str:
        """Which d3rlpy metric `on_log` also reports as `loss`."""
        return self.main_loss

    @abstractmethod
    def d3rlpy_config(self, stats: DataStats) -> Any:
        """The d3rlpy `LearnableConfig` for this agent's config, with scalers built from `stats`."""

    # --- building blocks for subclasses -------------------------------------------------------------------

    @property
    def pixel_observations(self) -> bool:
        return len(self.spec.observation_shape) == 3

    def encoder(self, dropout: float = 0.0) -> Any:
        from d3rlpy.models.encoders import PixelEncoderFactory, VectorEncoderFactory

        if self.pixel_observations:
            return PixelEncoderFactory()  # Nature-DQN: 32x8/4, 64x4/2, 64x3/1 convolutions, 512 features
        return VectorEncoderFactory(hidden_units=list(self.config.hidden_units), dropout_rate=dropout or None)

    def observation_scaler(self, stats: DataStats) -> Any:
        from d3rlpy.preprocessing import PixelObservationScaler, StandardObservationScaler

        if self.pixel_observations:
            return PixelObservationScaler()
        if self.config.standardize_observations:
            if stats.obs_mean is None or stats.obs_std is None:
                raise BenchError(f"{self.name}: observation statistics missing; fit the agent or load a checkpoint")
            return StandardObservationScaler(mean=stats.obs_mean, std=stats.obs_std)
        return None

    def return_reward_scaler(self, stats: DataStats, scale: float | None) -> Any:
        """d3rlpy's ReturnBasedRewardScaler (reward * scale / (max - min episode return)), the CORL
        `modify_reward` normalisation for locomotion, or None when `scale` is None."""
        if scale is None:
            return None
        from d3rlpy.preprocessing import ReturnBasedRewardScaler

        if stats.return_min is None or stats.return_max is None or stats.return_max <= stats.return_min:
            raise BenchError(
                f"{self.name}: reward_return_scale needs episodes with different returns; got range "
                f"[{stats.return_min}, {stats.return_max}]"
            )
        return ReturnBasedRewardScaler(return_max=stats.return_max, return_min=stats.return_min, multiplier=scale)

    def optim(self, eps: float = 1e-8, cosine_steps: int | None = None) -> Any:
        return _optim(self.config.weight_decay, eps, cosine_steps)

    # --- construction -------------------------------------------------------------------------------------

    def _compute_stats(self, dataset: TrajectoryDataset, steps: int) -> DataStats:
        obs_mean = obs_std = None
        if self.config.standardize_observations and not self.pixel_observations:
            obs = dataset.observations.reshape(dataset.num_transitions, -1).astype(np.float64)
            obs_mean, obs_std = obs.mean(0), obs.std(0)
        returns = dataset.episode_returns()
        return DataStats(
            obs_mean=obs_mean,
            obs_std=obs_std,
            return_min=float(returns.min()),
            return_max=float(returns.max()),
            schedule_steps=max(int(steps), 1),
        )

    @contextmanager
    def _torch_rng_scope(self) -> Iterator[None]:
        """Torch randomness (initialisation, CQL action samples, TD3 target noise) from the agent's own seed
        stream, continued across `fit` calls, without moving the caller's global torch RNG."""
        dev = torch.device(self.device)
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            if self._torch_rng is None:
                torch.manual_seed(self.seed)
            else:
                torch.set_rng_state(self._torch_rng[0])
                for index, state in zip(cuda, self._torch_rng[1:], strict=True):
                    torch.cuda.set_rng_state(state, index)
            try:
                yield
            finally:
                self._torch_rng = [torch.get_rng_state(), *(torch.cuda.get_rng_state(i) for i in cuda)]

    def _build(self, stats: DataStats) -> Any:
        algo = self.d3rlpy_config(stats).create(device=_d3rlpy_device(self.device))
        algo.create_impl(tuple(self.spec.observation_shape), self.spec.action_dim)
        return algo

    def _check_dataset(self, dataset: TrajectoryDataset) -> TrajectoryDataset:
        if dataset.observation_shape != self.spec.observation_shape:
            raise BenchError(
                f"dataset {dataset.name!r} has observations of shape {dataset.observation_shape}, "
                f"task {self.spec.task} expects {self.spec.observation_shape}"
            )
        if dataset.discrete_actions != self.spec.discrete:
            kind = "discrete" if self.spec.discrete else "continuous"
            raise BenchError(f"dataset {dataset.name!r} does not have the {kind} actions task {self.spec.task} has")
        if self.spec.discrete:
            if dataset.actions.min() < 0 or dataset.actions.max() >= self.spec.action_dim:
                raise BenchError(f"dataset {dataset.name!r} has action ids outside [0, {self.spec.action_dim - 1}]")
            return dataset
        if dataset.actions.shape[1] != self.spec.action_dim:
            raise BenchError(
                f"dataset {dataset.name!r} has {dataset.actions.shape[1]}-dim actions, "
                f"task {self.spec.task} expects {self.spec.action_dim}"
            )
        worst = float(np.abs(dataset.actions).max())
        if worst > 1.0 + ACTION_BOUND_TOLERANCE:
            raise BenchError(
                f"dataset {dataset.name!r} has actions up to {worst:.4g} in magnitude; the d3rlpy agents need "
                "actions in [-1, 1]"
            )
        if worst > 1.0:
            return replace(dataset, actions=np.clip(dataset.actions, -1.0, 1.0))
        return dataset

    # --- Agent interface ----------------------------------------------------------------------------------

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
        """Train `steps` updates. A second call continues training, keeping the first dataset's scalers and
        the optimizer state; after `load_training_state` the call continues the interrupted `fit` of the same
        `steps`. Every metric d3rlpy reports (critic, actor, temperature losses ...) is logged, its main
        objective also as `loss`."""
        if steps < 1:
            raise BenchError(f"steps must be at least 1, got {steps}")
        dataset = self._check_dataset(dataset)
        sampler = TransitionSampler(dataset)
        resume, self._resume = self._resume, None
        if resume is not None and resume.step > steps:
            raise BenchError(f"the training state is at step {resume.step}, past the {steps} steps asked for")

        def one_step(_step: int) -> dict[str, float]:
            return dict(self._algo.update(sampler.sample(self._rng, self.config.batch_size)))

        def progress(step: int) -> None:
            self._fit_step = step

        def log(step: int, metrics: dict[str, float]) -> None:
            assert on_log is not None
            if self.loss_key() in metrics:
                metrics = {**metrics, "loss": metrics[self.loss_key()]}
            on_log(step, metrics)

        with self._torch_rng_scope():
            if resume is not None:
                restore_global_rng_states(resume.rng, cuda_devices(self.device))
            if self._algo is None:
                self._stats = self._compute_stats(dataset, steps)
                self._algo = self._build(self._stats)
            self._fit_step = 0 if resume is None else resume.step
            try:
                run_loop(
                    one_step,
                    self,
                    steps,
                    start=self._fit_step,
                    eval_every=eval_every,
                    on_log=log if on_log is not None else None,
                    on_eval=on_eval,
                    on_checkpoint=on_checkpoint,
                    progress=progress,
                )
            finally:
                self._fit_step = None

    def make_policy(self, num_envs: int, rtg_target: float | None) -> GreedyPolicy:
        """`rtg_target` is ignored: these agents are not return-conditioned."""
        if self._algo is None:
            raise BenchError(f"{self.name}: agent has no weights yet; fit it or load a checkpoint first")
        if num_envs < 1:
            raise BenchError(f"num_envs must be at least 1, got {num_envs}")
        return GreedyPolicy(self._algo, self.spec, num_envs)

    def save(self, path: Path) -> None:
        if self._algo is None or self._stats is None:
            raise BenchError(f"{self.name}: nothing to save; fit the agent first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = io.BytesIO()
        self._algo.impl.save_model(weights)  # what d3rlpy's `save_model` writes: modules + optimizer states
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "agent": self.name,
            "config_type": type(self.config).__name__,
            "config": self.config.to_dict(),
            "spec": asdict(self.spec),
            "seed": self.seed,
            "stats": self._stats.to_payload(),
            "grad_step": int(self._algo.grad_step),
            "d3rlpy_model": torch.frombuffer(bytearray(weights.getvalue()), dtype=torch.uint8),
        }
        write_checkpoint(path, CHECKPOINT_FILE, payload)

    def load(self, path: Path) -> None:
        """Rebuild the algorithm from this agent's config and the saved scaler statistics, then load weights.
        The checkpoint must come from the same agent and architecture."""
        file = Path(path) / CHECKPOINT_FILE
        payload = read_checkpoint(path, CHECKPOINT_FILE, self.name)
        try:
            if payload.get("config_type") != type(self.config).__name__:
                raise BenchError(
                    f"checkpoint {file} holds a {payload.get('config_type')}, this agent has a "
                    f"{type(self.config).__name__}"
                )
            stats = DataStats.from_payload(payload["stats"])
            with self._torch_rng_scope():
                algo = self._build(stats)
            algo.impl.load_model(io.BytesIO(payload["d3rlpy_model"].numpy().tobytes()))
            algo.set_grad_step(int(payload["grad_step"]))
        except (RuntimeError, KeyError, EOFError, ValueError) as e:
            raise BenchError(f"checkpoint {file} does not fit this {self.name} agent: {first_line(e)}") from None
        self._algo, self._stats = algo, stats

    def save_training_state(self, path: Path) -> None:
        """The weights file already holds d3rlpy's optimiser and scheduler states and its grad step; the rest
        is the step, the random states (d3rlpy samples from torch's global generator) and the batch stream."""
        if self._fit_step is None:
            raise BenchError(f"{self.name}: a training state can only be saved from inside fit")
        self.save(path)
        TrainingState(
            step=self._fit_step,
            rng=global_rng_states(cuda_devices(self.device)),
            generators={"batch": generator_state(self._rng)},
        ).write(path, self.name)

    def load_training_state(self, path: Path) -> int:
        self.load(path)
        state = TrainingState.read(path, self.name)
        state.restore_generators({"batch": self._rng}, Path(path) / TRAINING_STATE_FILE)
        self._resume = state
        return state.step

    def num_params(self) -> tuple[int, int]:
        """Parameters of the trained networks (actor, critics, value function, temperatures); the polyak
        target copies are left out, so the count is comparable with DT's. All of them are trainable."""
        algo = self._algo
        if algo is None:
            before = self._torch_rng
            with self._torch_rng_scope():
                algo = self._build(
                    DataStats(
                        obs_mean=np.zeros(self.spec.observation_shape),
                        obs_std=np.ones(self.spec.observation_shape),
                        return_min=0.0,
                        return_max=1.0,
                    )
                )
            self._torch_rng = before  # counting must not shift the seed stream of a later `fit`
        seen: set[int] = set()
        total = 0
        for name, module in vars(algo.impl.modules).items():
            if name.startswith("targ_") or not isinstance(module, torch.nn.Module):
                continue
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        return total, total


# --- the agents -------------------------------------------------------------------------------------------


class CQLAgent(D3rlpyAgent):
    """Conservative Q-Learning: d3rlpy `CQL` for continuous actions, `DiscreteCQL` (Atari) for discrete."""

    name = "cql"
    main_loss = "critic_loss"
    config_types = (CQLConfig, DiscreteCQLConfig)

    def loss_key(self) -> str:
        # DiscreteCQL reports td_loss + conservative_loss as "loss"; continuous CQL as "critic_loss".
        return "loss" if isinstance(self.config, DiscreteCQLConfig) else self.main_loss

    @classmethod
    def default_config(cls, task: Task) -> CQLConfig | DiscreteCQLConfig:
        return cql_default_config(task)

    def d3rlpy_config(self, stats: DataStats) -> Any:
        import d3rlpy
        from d3rlpy.models.q_functions import MeanQFunctionFactory, QRQFunctionFactory
        from d3rlpy.preprocessing import ClipRewardScaler

        c = self.config
        if isinstance(c, DiscreteCQLConfig):
            return d3rlpy.algos.DiscreteCQLConfig(
                learning_rate=c.learning_rate,
                optim_factory=self.optim(eps=c.adam_eps),
                encoder_factory=self.encoder(),
                q_func_factory=QRQFunctionFactory(n_quantiles=c.n_quantiles)
                if c.n_quantiles
                else MeanQFunctionFactory(),
                batch_size=c.batch_size,
                gamma=c.gamma,
                n_critics=c.n_critics,
                target_update_interval=c.target_update_interval,
                alpha=c.alpha,
                observation_scaler=self.observation_scaler(stats),
                reward_scaler=ClipRewardScaler(low=-1.0, high=1.0) if c.clip_rewards else None,
            )
        assert isinstance(c, CQLConfig)
        return d3rlpy.algos.CQLConfig(
            actor_learning_rate=c.actor_learning_rate,
            critic_learning_rate=c.learning_rate,
            temp_learning_rate=c.temp_learning_rate,
            alpha_learning_rate=c.alpha_learning_rate,
            actor_optim_factory=self.optim(),
            critic_optim_factory=self.optim(),
            temp_optim_factory=_optim(),
            alpha_optim_factory=_optim(),
            actor_encoder_factory=self.encoder(),
            critic_encoder_factory=self.encoder(),
            batch_size=c.batch_size,
            gamma=c.gamma,
            tau=c.tau,
            n_critics=c.n_critics,
            initial_temperature=c.initial_temperature,
            initial_alpha=c.initial_alpha,
            alpha_threshold=c.alpha_threshold,
            conservative_weight=c.conservative_weight,
            n_action_samples=c.n_action_samples,
            soft_q_backup=c.soft_q_backup,
            max_q_backup=c.max_q_backup,
            observation_scaler=self.observation_scaler(stats),
            reward_scaler=self.return_reward_scaler(stats, c.reward_return_scale),
        )


class BCAgent(D3rlpyAgent):
    """Behaviour cloning: d3rlpy `BC` (MSE) for continuous actions, `DiscreteBC` (cross-entropy) for discrete."""

    name = "bc"
    main_loss = "loss"
    config_types = (BCConfig, DiscreteBCConfig)

    @classmethod
    def default_config(cls, task: Task) -> BCConfig | DiscreteBCConfig:
        return bc_default_config(task)

    def d3rlpy_config(self, stats: DataStats) -> Any:
        import d3rlpy

        c = self.config
        if isinstance(c, DiscreteBCConfig):
            return d3rlpy.algos.DiscreteBCConfig(
                learning_rate=c.learning_rate,
                optim_factory=self.optim(),
                encoder_factory=self.encoder(),
                batch_size=c.batch_size,
                beta=c.beta,
                observation_scaler=self.observation_scaler(stats),
            )
        assert isinstance(c, BCConfig)
        return d3rlpy.algos.BCConfig(
            learning_rate=c.learning_rate,
            optim_factory=self.optim(),
            encoder_factory=self.encoder(),
            batch_size=c.batch_size,
            policy_type=c.policy_type,
            observation_scaler=self.observation_scaler(stats),
        )


class IQLAgent(D3rlpyAgent):
    """Implicit Q-Learning (d3rlpy `IQL`); continuous actions only."""

    name = "iql"
    main_loss = "critic_loss"  # q_loss + v_loss
    config_types = (IQLConfig,)

    @classmethod
    def default_config(cls, task: Task) -> IQLConfig:
        return iql_default_config(task)

    def d3rlpy_config(self, stats: DataStats) -> Any:
        import d3rlpy

        c = self.config
        assert isinstance(c, IQLConfig)
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=c.actor_learning_rate,
            critic_learning_rate=c.learning_rate,
            actor_optim_factory=self.optim(cosine_steps=stats.schedule_steps if c.actor_cosine_schedule else None),
            critic_optim_factory=self.optim(),
            actor_encoder_factory=self.encoder(dropout=c.actor_dropout),
            critic_encoder_factory=self.encoder(),
            value_encoder_factory=self.encoder(),
            batch_size=c.batch_size,
            gamma=c.gamma,
            tau=c.tau,
            n_critics=c.n_critics,
            expectile=c.expectile,
            weight_temp=c.weight_temp,
            max_weight=c.max_weight,
            observation_scaler=self.observation_scaler(stats),
            reward_scaler=self.return_reward_scaler(stats, c.reward_return_scale),
        )


class TD3PlusBCAgent(D3rlpyAgent):
    """TD3+BC (d3rlpy `TD3PlusBC`); continuous actions only."""

    name = "td3+bc"
    main_loss = "critic_loss"
    config_types = (TD3PlusBCConfig,)

    @classmethod
    def default_config(cls, task: Task) -> TD3PlusBCConfig:
        return td3_plus_bc_default_config(task)

    def d3rlpy_config(self, stats: DataStats) -> Any:
        import d3rlpy

        c = self.config
        assert isinstance(c, TD3PlusBCConfig)
        return d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=c.actor_learning_rate,
            critic_learning_rate=c.learning_rate,
            actor_optim_factory=self.optim(),
            critic_optim_factory=self.optim(),
            actor_encoder_factory=self.encoder(),
            critic_encoder_factory=self.encoder(),
            batch_size=c.batch_size,
            gamma=c.gamma,
            tau=c.tau,
            n_critics=c.n_critics,
            target_smoothing_sigma=c.target_smoothing_sigma,
            target_smoothing_clip=c.target_smoothing_clip,
            alpha=c.alpha,
            update_actor_interval=c.update_actor_interval,
            observation_scaler=self.observation_scaler(stats),
        )
