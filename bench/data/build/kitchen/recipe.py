"""What a kitchen build makes and how its episodes vary: the recipe, the plans' order and episode styles."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import BenchError
from bench.overrides import check_value, field_types

# Order in which an episode's subtasks are done: D4RL's demonstrations mostly went microwave, kettle,
# burners, light, cabinets, but the hinge cabinet goes first here, as it takes the most steps and succeeds
# reliably only from the arm's start posture (last, it failed or ran out of the 280 steps).
CANONICAL_ORDER = (
    "hinge cabinet",
    "microwave",
    "kettle",
    "bottom burner",
    "top burner",
    "light switch",
    "slide cabinet",
)
_PLAN_STREAM = 104_729
_STYLE_STREAM = 130_363


@dataclass(frozen=True)
class KitchenRecipe:
    """Sizes, mixtures and controller settings of the generated kitchen datasets.

    Sizes follow D4RL (kitchen-complete: 19 human demonstrations, 3,680 steps; kitchen-partial: about 156K
    steps, Minari D4RL/kitchen/partial-v2 156,560) so the paper's sample ratios keep as many episodes as they
    did on D4RL's files (complete at 0.3/0.5/1: about 6/10/19 episodes).
    """

    complete_episodes: int = 19  # D4RL kitchen-complete-v0: 19 demonstrations
    # kitchen-partial is sized in steps, as D4RL's is (Minari D4RL/kitchen/partial-v2: 156,560 steps).
    partial_transitions: int = 156_560
    mixed_episodes: int = 500
    # Fraction of `partial` episodes planned to do exactly the task's four subtasks; the others do four
    # subtasks drawn from all seven with at least one outside the target set, so they can satisfy at most
    # three targets. D4RL's partial file holds the 19 complete demonstrations among ~600 (about 3%).
    partial_target_fraction: float = 0.04
    # Steps per episode (Minari's generation script: 280 for complete, 450 for partial and mixed).
    complete_max_steps: int = 280
    partial_max_steps: int = 450
    # Standard deviation of the Gaussian noise added to every action component (actions lie in [-1, 1]),
    # scaled by `precise_noise_scale` during the fine approach and grasp.
    action_noise: float = 0.05
    precise_noise_scale: float = 0.25
    max_joint_speed: float = 2.0  # rad/s, before the gravity offset
    joint_gain: float = 1.0  # fraction of the remaining joint error commanded per step, before the speed cap
    damping: float = 0.02
    # Random restarts of the inverse kinematics per subtask and margin, searched once for candidate starts.
    ik_restarts: int = 32
    # Steps the arm idles after its last subtask before the episode is cut (as a timeout): drawn per episode
    # between these bounds.
    settle_steps: int = 2
    settle_max_steps: int = 15
    # Variety between episodes (human demonstrations differ in pace, hesitations, paths and grasps; a script
    # without these draws repeats itself to within its action noise). Each episode draws a pace factor in
    # [speed_min, speed_max] for its Cartesian moves and joint-speed cap.
    speed_min: float = 0.8
    speed_max: float = 1.5
    # Before each subtask, with this probability, the arm pauses for 1..pause_max_steps steps.
    pause_probability: float = 0.25
    pause_max_steps: int = 10
    # The pre-grasp point is moved sideways by up to this many metres (uniform in the gripper's plane) and
    # its distance from the handle scaled by 1 +- standoff_jitter, so approach paths differ.
    approach_jitter: float = 0.03
    standoff_jitter: float = 0.3
    # Grasps land off the handle's centre by a Gaussian error of this standard deviation (m, per axis).
    grasp_jitter: float = 0.003
    # With this probability a grasp is fumbled first: the gripper closes short of the handle and reopens.
    fumble_probability: float = 0.12
    # Each subtask may start from one of the planned arm configurations needing at most this much more joint
    # travel (rad) than the cheapest, drawn per episode (different postures and paths into the same subtask).
    # Off by default: at 0.15 and 0.3 the hinge cabinet succeeded in 2/5 and 3/5 seeded episodes and
    # kitchen-complete attempts in 8/12 and 9/12 (python -m bench.data.build.kitchen success, seed 100).
    start_slack: float = 0.0


def kitchen_recipe(overrides: dict[str, Any]) -> KitchenRecipe:
    """The default recipe with some fields replaced; unknown names and wrong types are user errors."""
    fields = field_types(KitchenRecipe)
    default = KitchenRecipe()
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise BenchError(f"unknown budget override {key!r} for KitchenRecipe; accepted: {', '.join(fields)}")
        changes[key] = check_value(value, fields[key], f"budget override {key}")
    return dataclasses.replace(default, **changes)


@dataclass(frozen=True)
class SubtaskStyle:
    """How one subtask of one episode is done: hesitation, approach path and grasp error."""

    pause: int = 0  # steps held still before the subtask starts
    lateral: tuple[float, float] = (0.0, 0.0)  # pre-grasp offset (m) along the gripper's x and y axes
    standoff: float = 1.0  # multiplies the pre-grasp distance from the handle
    grasp: tuple[float, float, float] = (0.0, 0.0, 0.0)  # grasp error (m) in the gripper's frame
    fumble: bool = False  # close short of the handle and reopen before the real grasp
    start_choice: float = 0.0  # which of the near-cheapest planned starts (Planner.start), in [0, 1)


@dataclass(frozen=True)
class EpisodeStyle:
    """One episode's pace and per-subtask styles (the neutral style is the plain script)."""

    speed: float = 1.0
    settle: int = 5
    subtasks: tuple[tuple[str, SubtaskStyle], ...] = ()

    def of(self, name: str) -> SubtaskStyle:
        return dict(self.subtasks).get(name, SubtaskStyle())


def draw_style(recipe: KitchenRecipe, plan: Sequence[str], rng: np.random.Generator) -> EpisodeStyle:
    """An episode's style drawn from `rng` within the recipe's bounds."""
    speed = float(rng.uniform(recipe.speed_min, recipe.speed_max))
    settle = int(rng.integers(recipe.settle_steps, max(recipe.settle_steps, recipe.settle_max_steps) + 1))
    styles = []
    for name in plan:
        pause = int(rng.integers(1, recipe.pause_max_steps + 1)) if rng.random() < recipe.pause_probability else 0
        angle, radius = rng.uniform(0.0, 2 * math.pi), recipe.approach_jitter * math.sqrt(rng.random())
        lateral = (radius * math.cos(angle), radius * math.sin(angle))
        standoff = float(1.0 + recipe.standoff_jitter * rng.uniform(-1.0, 1.0))
        grasp = tuple(float(x) for x in recipe.grasp_jitter * rng.standard_normal(3))
        fumble = bool(rng.random() < recipe.fumble_probability)
        choice = float(rng.random())
        styles.append((name, SubtaskStyle(pause, lateral, standoff, grasp, fumble, choice)))  # type: ignore[arg-type]
    return EpisodeStyle(speed, settle, tuple(styles))
