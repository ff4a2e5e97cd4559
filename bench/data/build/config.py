"""Typed budgets and hyperparameters of every dataset recipe, and how keyword overrides are applied to them.

Each recipe has one frozen dataclass holding everything that decides what it produces, so the card can
record it verbatim and a resumed build can check that it is continuing the same run. Tests and the CLI
change budgets through `with_overrides`, which rejects unknown names instead of silently ignoring them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.errors import BenchError
from bench.overrides import check_value, field_types


@dataclass(frozen=True)
class SacSettings:
    """Hyperparameters of the SAC behaviour policy (d3rlpy's SAC; D4RL trained theirs with rlkit SAC)."""

    hidden_units: tuple[int, ...] = (256, 256)
    batch_size: int = 256
    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    temp_learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    initial_temperature: float = 1.0
    buffer_size: int = 1_000_000
    # Uniform random actions for the first steps, and no gradient updates before `update_start` steps.
    random_steps: int = 5_000
    update_start: int = 5_000


@dataclass(frozen=True)
class Phase:
    """One stretch of behaviour-policy training that ends with a selected checkpoint.

    Training evaluates every `eval_every` steps; the evaluated checkpoint whose normalized score is inside
    `band` and closest to `target` is kept. Training stops early once a score is within `tolerance` of the
    target, and in any case at `max_steps` (counted from the start of training, not of the phase). Where
    the recipe has a confirming evaluation, a quick score inside the band is replaced by the confirmed one.
    """

    name: str
    band: tuple[float, float]
    target: float
    tolerance: float
    max_steps: int


@dataclass(frozen=True)
class ReacherRecipe:
    """Reacher2d medium: the LaMo paper's 50 rollouts of a policy scoring about 36, with action noise 0.1."""

    sac: SacSettings = field(default_factory=lambda: SacSettings(random_steps=2_000, update_start=1_000))
    medium: Phase = field(default_factory=lambda: Phase("medium", (28.0, 44.0), 36.0, 3.0, 200_000))
    eval_every: int = 1_000
    episodes: int = 50
    action_noise: float = 0.1
    n_envs: int = 50
    # The behaviour policy learns from a shaped reward; the dataset keeps the task's sparse reward.
    shaped_reward: str = "-||fingertip - target||_2"


@dataclass(frozen=True)
class LocomotionRecipe:
    """D4RL MuJoCo recipe: SAC stopped early (medium), its replay buffer, and a further-trained (expert) policy."""

    sac: SacSettings = field(default_factory=SacSettings)
    # Accept [30, 50] (D4RL: about a third of expert; hopper-medium-v2 scores ~44), stop inside [33, 47].
    medium: Phase = field(default_factory=lambda: Phase("medium", (30.0, 50.0), 40.0, 7.0, 1_000_000))
    expert: Phase = field(default_factory=lambda: Phase("expert", (75.0, 1_000.0), 110.0, 10.0, 1_500_000))
    eval_every: int = 5_000
    eval_episodes: int = 10
    # A 10-episode score has a standard error of ~3 normalized points on Hopper; in-band scores are
    # re-measured on this many episodes so the selected policy's dataset lands inside the band.
    confirm_episodes: int = 100
    transitions: int = 1_000_000
    n_envs: int = 16


@dataclass(frozen=True)
class MazeRecipe:
    """D4RL maze2d recipe on gymnasium-robotics PointMaze: waypoint planner + PD controller + Gaussian noise."""

    transitions: int = 1_000_000
    action_noise: float = 0.5
    kp: float = 10.0
    kd: float = -1.0
    # A goal counts as reached (and is resampled) within this distance, as in the PointMaze env itself.
    goal_radius: float = 0.45
    n_envs: int = 8


@dataclass(frozen=True)
class AtariRecipe:
    """Scripted medium-quality Atari player (bench.data.build.atari explains the choices)."""

    transitions: int = 100_000
    checkpoint_transitions: int = 25_000
    epsilon_start: float = 0.3
    epsilon_end: float = 0.02
    # Aim point relative to the paddle, drawn per episode from this range (game RAM units).
    aim_offset: tuple[int, int] = (6, 16)
    dead_zone: int = 2


RecipeT = TypeVar("RecipeT", ReacherRecipe, LocomotionRecipe, MazeRecipe, AtariRecipe)


def _coerce(owner: type, name: str, label: str, value: Any) -> Any:
    """The value checked against the recipe field's declared type (the one checker agent configs use too)."""
    return check_value(value, field_types(owner)[name], f"budget override {label}")


def with_overrides(recipe: RecipeT, overrides: dict[str, Any]) -> RecipeT:
    """The recipe with some fields replaced; `sac_<field>` and `<phase>_<field>` reach nested settings.

    Example: `with_overrides(LocomotionRecipe(), {"medium_max_steps": 3000, "sac_batch_size": 32})`.
    """
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    nested_names = {f.name for f in dataclasses.fields(recipe)
                    if dataclasses.is_dataclass(getattr(recipe, f.name))}
    accepted = []
    for f in dataclasses.fields(recipe):
        if f.name in nested_names:
            accepted += [f"{f.name}_{g.name}" for g in dataclasses.fields(getattr(recipe, f.name))]
        else:
            accepted.append(f.name)
    for key, value in overrides.items():
        prefix = next((p for p in nested_names if key.startswith(p + "_")), None)
        if key in accepted and prefix is None:
            top[key] = _coerce(type(recipe), key, key, value)
        elif key in accepted and prefix is not None:
            sub = getattr(recipe, prefix)
            inner = key[len(prefix) + 1:]
            nested.setdefault(prefix, {})[inner] = _coerce(type(sub), inner, key, value)
        else:
            raise BenchError(
                f"unknown budget override {key!r} for {type(recipe).__name__}; accepted: {', '.join(accepted)}"
            )
    for prefix, changes in nested.items():
        top[prefix] = dataclasses.replace(getattr(recipe, prefix), **changes)
    return dataclasses.replace(recipe, **top)
