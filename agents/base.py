"""The one interface every agent implements, so the orchestrator and evaluator never see a concrete agent.

Shape (like d3rlpy): a typed `*Config` dataclass holds every hyperparameter with the paper's default; the
agent class is built from that config plus a `TaskSpec` (the task's spaces and the few task facts a model
needs); the model math lives in its own module.

Evaluation goes through `EpisodePolicy`: a batched, stateful policy over N parallel episodes. Return-
conditioned agents (DT, LaMo) keep per-episode history and return-to-go inside it; Q-learning and BC agents
ignore the target and history.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.overrides import check_overrides
from bench.tasks import Task


@dataclass(frozen=True)
class TaskSpec:
    """What an agent needs to know about its task: spaces, context length and return scaling."""

    task: str
    observation_shape: tuple[int, ...]
    action_dim: int  # width of a continuous action, or number of discrete actions
    discrete: bool
    context_length: int
    max_episode_steps: int
    reward_scale: float
    rtg_targets: tuple[float, ...]
    clip_rewards: bool = False  # train (and count down returns-to-go) on rewards clipped to [-1, 1]

    @classmethod
    def from_task(
        cls,
        task: Task,
        dataset: TrajectoryDataset | None = None,
        action_dim: int | None = None,
        observation_shape: tuple[int, ...] | None = None,
    ) -> TaskSpec:
        """Spaces come from the dataset when given, else from the task's environment. The number of discrete
        actions always comes from the environment: a dataset need not use every action."""
        if dataset is not None:
            observation_shape = observation_shape or dataset.observation_shape
            if task.action_kind != "discrete":
                action_dim = action_dim or dataset.action_dim
        if observation_shape is None or action_dim is None:
            from bench.envs.factory import env_spaces

            obs_shape, act_dim = env_spaces(task)
            observation_shape = observation_shape or obs_shape
            action_dim = action_dim or act_dim
        return cls(
            task=task.name,
            observation_shape=tuple(observation_shape),
            action_dim=int(action_dim),
            discrete=task.action_kind == "discrete",
            context_length=task.context_length,
            max_episode_steps=task.max_episode_steps,
            reward_scale=task.paper.reward_scale,
            rtg_targets=task.rtg_targets,
            clip_rewards=task.clip_rewards,
        )


@dataclass(frozen=True)
class AgentConfig:
    """Base of every agent config. Subclasses add their fields, with the paper's defaults on them."""

    batch_size: int = 64
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    #: Fields this config no longer has but checkpoints of earlier versions hold; loading skips them (they
    #: configured nothing the agent uses). Anything else unknown in a saved config is still refused.
    retired_fields: ClassVar[tuple[str, ...]] = ()

    def with_overrides(self, overrides: dict[str, Any]) -> Self:
        """A copy with some fields changed, each checked against its declared type first.

        An unknown field, or a value of the wrong type (`batch_size="abc"` or 2.5, `learning_rate="fast"`), is a
        one-line `BenchError` naming the field, the value and the accepted type, raised before anything trains;
        `dataclasses.replace` alone would let it through to fail deep inside training. Command-line text
        (`bench.overrides.CliText`) is parsed according to the field's type; lists become tuples where a tuple
        is declared, and an integer is accepted for a float field.
        """
        return replace(self, **check_overrides(type(self), overrides))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def deviations(self) -> list[str]:
        """What this configuration does differently from the method as the paper / official code ran it.

        Each agent config overrides this with its own known differences (one short sentence each), so a run's
        manifest and `bench run --dry-run --json` can list them per trial. An empty list claims fidelity.
        """
        return []


class EpisodePolicy(Protocol):
    """A batched policy over `num_envs` episodes that run in lock step.

    The evaluator calls `act` with the current observations of all episodes, steps the environments, then
    calls `observe` with the rewards so return-conditioned policies can update their return-to-go.
    """

    def act(self, observations: np.ndarray) -> np.ndarray: ...

    def observe(self, rewards: np.ndarray) -> None: ...


EvalCallback = Callable[[int, "Agent"], None]
LogCallback = Callable[[int, dict[str, float]], None]
#: Called at every evaluation point right after `on_eval`, with (step, agent): the moment a mid-training
#: checkpoint (`save_training_state`) captures exactly what an uninterrupted training continues from.
CheckpointCallback = Callable[[int, "Agent"], None]
#: File, inside a checkpoint folder, holding what `save_training_state` adds to the weights written by `save`.
TRAINING_STATE_FILE = "training_state.pt"


class Agent(ABC):
    """Base class of all agents. See the module docstring for the contract."""

    name: ClassVar[str]
    #: Whether `make_policy` uses the return-to-go target (DT, LaMo) or ignores it (CQL, BC, ...).
    return_conditioned: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def default_config(cls, task: Task) -> AgentConfig:
        """The paper's configuration for this task (Appendix F defaults with the task's Table 6 values)."""

    def __init__(self, config: AgentConfig, spec: TaskSpec, device: str = "cpu", seed: int = 0) -> None:
        self.config = config
        self.spec = spec
        self.device = device
        self.seed = seed

    @abstractmethod
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
        """Train for `steps` gradient steps; call `on_eval(step, self)` every `eval_every` steps (and at the end)
        and `on_log(step, metrics)` with training metrics (at least `loss`; every metric the agent computes,
        averaged since the last point) at the same points, then `on_checkpoint(step, self)`, from which
        `save_training_state` may be called. After `load_training_state`, the next `fit` continues the
        interrupted one: it runs only the steps after the checkpoint's, with the same results."""

    @abstractmethod
    def make_policy(self, num_envs: int, rtg_target: float | None) -> EpisodePolicy:
        """A fresh batched policy for `num_envs` new episodes, conditioned on `rtg_target` if applicable."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write a checkpoint to `path` (a directory), atomically."""

    @abstractmethod
    def load(self, path: Path) -> None:
        """Restore weights written by `save`."""

    def save_training_state(self, path: Path) -> None:
        """From inside `fit` (an `on_checkpoint` or `on_eval` callback): write the weights (as `save` does) plus
        the optimiser, scheduler, every random state and the step reached, so a killed training can resume."""
        raise BenchError(f"agent {self.name} cannot checkpoint in the middle of training")

    def load_training_state(self, path: Path) -> int:
        """Restore what `save_training_state` wrote; the next `fit` continues from it. Returns its step."""
        raise BenchError(f"agent {self.name} cannot resume an interrupted training")

    @abstractmethod
    def num_params(self) -> tuple[int, int]:
        """(total, trainable) parameter counts."""


def eval_steps(steps: int, eval_every: int) -> list[int]:
    """The training steps after which an agent evaluates: every `eval_every`, plus the final step."""
    if eval_every <= 0:
        return [steps]
    points = list(range(eval_every, steps + 1, eval_every))
    if not points or points[-1] != steps:
        points.append(steps)
    return points
