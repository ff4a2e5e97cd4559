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
    """Reacher2d medium: the official data script's rejection rule over a policy whose kept episodes average ~36.

    Official recipe (`srzer/LaMo-2023` at 3e4fcc8, `data/data_generation_PPO/test.py`): roll out the policy
    with actions sampled at std 0.1, keep an episode only if its return is above 20, and stop once 49 are
    kept (its loop runs `ep` from 1 while `ep < 50`). Its printed "average test reward" divides the kept
    returns' sum by 50, so the paper's 36 is that figure; the kept episodes then average 36 * 50 / 49 = 36.7.
    """

    sac: SacSettings = field(default_factory=lambda: SacSettings(random_steps=2_000, update_start=1_000))
    # Selection score: the mean return of the kept episodes (raw = normalized for this task: random 0,
    # expert 100). Target 36 (paper Appendix C: "average normalized score of 36.0 over 50 episodes").
    # Measured (seed 0, eval every 250 steps): once a policy keeps >= 10% of its episodes, its kept
    # episodes already average 44-47 (steps 9000-9750), then 50-55 by step 11000; lower means (37-43) only
    # occur at acceptance rates of 2-8%. So the band is 36 +- 10 and training stops at the first eligible
    # checkpoint inside it: the lowest kept mean this recipe reaches, not 36 (a documented difference).
    medium: Phase = field(default_factory=lambda: Phase("medium", (26.0, 46.0), 36.0, 10.0, 200_000))
    # Ours: evaluated often, because the kept-episode mean climbs from ineligible to ~70 within about
    # 1,000 SAC steps on this task (measured with seed 0: ineligible at 10K, 69 at 11K steps).
    eval_every: int = 250
    # test.py: `while ep < total_test_episodes` with ep starting at 1 and total_test_episodes = 50.
    episodes: int = 49
    # test.py: `if ep_reward > 20:` the episode is kept, otherwise dropped.
    keep_above: float = 20.0
    # test.py: action_std = 0.1 (PPO samples its actions from N(mean, 0.1^2); the env clips to [-1, 1]).
    action_noise: float = 0.1
    # Ours: rollouts run in batches of `n_envs`; a policy keeping fewer than `min_acceptance` of the
    # episodes of a batch, or not reaching `episodes` kept within `max_attempts`, is not eligible.
    # Measured with seed 0: a floor of 0.1 (at most 1,000 draws) selected step 9000, kept mean 45.2 (355 drawn);
    # 0.04 with 1,500 draws selects step 7000, kept mean 40.2 (582 drawn, 92% rejected, 451 s build), closer
    # to the paper's 36 at the price of longer selection evaluations.
    n_envs: int = 50
    min_acceptance: float = 0.04
    max_attempts: int = 1_500
    # The behaviour policy learns from a shaped reward; the dataset keeps the task's sparse reward.
    shaped_reward: str = "-||fingertip - target||_2"


@dataclass(frozen=True)
class D4rlReference:
    """D4RL v2 statistics a generated locomotion dataset is built to resemble (normalized = D4RL's 0-100 scale).

    Means of the D4RL v2 datasets' episode returns (D4RL paper Table / the datasets themselves, as gathered in
    the project's reference notes; D4RL `Farama-Foundation/D4RL`, `d4rl/infos.py` for the normalization), and
    the size of each medium-replay buffer.
    """

    medium_raw: float
    medium_normalized: float
    expert_normalized: float
    medium_replay_transitions: int


# D4RL v2: hopper-medium 1422 (44.3), halfcheetah-medium 4770 (40.7), walker2d-medium 2852 (62.1);
# expert-v2 about 108 / 88 / 107 normalized; medium-replay-v2 holds 402K / 202K / 302K transitions.
D4RL_V2: dict[str, D4rlReference] = {
    "hopper": D4rlReference(1422.0, 44.3, 108.0, 402_000),
    "halfcheetah": D4rlReference(4770.0, 40.7, 88.0, 202_000),
    "walker2d": D4rlReference(2852.0, 62.1, 107.0, 302_000),
}
# Half-width of the medium band and the early-stop tolerance around D4RL's mean (normalized points).
MEDIUM_HALF_WIDTH = 8.0
MEDIUM_TOLERANCE = 4.0
# The expert band starts this far below D4RL's expert mean and is open above it (a stronger policy is
# accepted, the closest to the mean is kept).
EXPERT_BELOW = 20.0
EXPERT_TOLERANCE = 10.0


def medium_phase(domain: str) -> Phase:
    """The medium band of one environment: centred on D4RL v2's medium mean, so each env's data matches its own."""
    ref = D4RL_V2[domain]
    centre = round(ref.medium_normalized)
    return Phase(
        "medium", (centre - MEDIUM_HALF_WIDTH, centre + MEDIUM_HALF_WIDTH), float(centre), MEDIUM_TOLERANCE, 1_000_000
    )


def expert_phase(domain: str) -> Phase:
    """The expert band of one environment: aimed at D4RL's expert-v2 mean."""
    ref = D4RL_V2[domain]
    return Phase(
        "expert", (ref.expert_normalized - EXPERT_BELOW, 1_000.0), ref.expert_normalized, EXPERT_TOLERANCE, 1_500_000
    )


@dataclass(frozen=True)
class LocomotionRecipe:
    """D4RL MuJoCo recipe: SAC stopped early (medium), its replay buffer, and a further-trained (expert) policy.

    The defaults are Hopper's; `for_env` gives each environment its own bands (D4RL's medium policies are
    not one fraction of expert: walker2d-medium-v2 scores 62, hopper 44, halfcheetah 41).
    """

    sac: SacSettings = field(default_factory=SacSettings)
    medium: Phase = field(default_factory=lambda: medium_phase("hopper"))
    expert: Phase = field(default_factory=lambda: expert_phase("hopper"))
    eval_every: int = 5_000
    eval_episodes: int = 10
    # A 10-episode score has a standard error of ~3 normalized points on Hopper; in-band scores are
    # re-measured on this many episodes so the selected policy's dataset lands inside the band.
    confirm_episodes: int = 100
    # D4RL medium and expert datasets hold 1M transitions each.
    transitions: int = 1_000_000
    n_envs: int = 16
    # Ours: worker processes rolling out a shipped policy (0: one per CPU core, at most 8); any number gives
    # the same dataset (bench.data.build.shipped).
    workers: int = 0

    @classmethod
    def for_env(cls, domain: str) -> LocomotionRecipe:
        if domain not in D4RL_V2:
            raise BenchError(f"no locomotion recipe for {domain!r}; accepted: {', '.join(D4RL_V2)}")
        return cls(medium=medium_phase(domain), expert=expert_phase(domain))


# D4RL's maze2d dataset each PointMaze task stands for, and its size (maze2d-umaze-v1: 1M transitions,
# maze2d-medium-v1: 2M; D4RL paper Table / dataset files, generate_maze2d_datasets.py --num_samples).
D4RL_MAZE: dict[str, tuple[str, int]] = {
    "PointMaze_UMaze-v3": ("maze2d-umaze-v1", 1_000_000),
    "PointMaze_Medium-v3": ("maze2d-medium-v1", 2_000_000),
}


@dataclass(frozen=True)
class MazeRecipe:
    """D4RL maze2d recipe on gymnasium-robotics PointMaze: waypoint planner + PD controller + Gaussian noise."""

    # None: D4RL's own size for the maze (`D4RL_MAZE`).
    transitions: int | None = None
    # generate_maze2d_datasets.py --noisy: act + N(0, 0.5); waypoint_controller.py p_gain 10, d_gain -1.
    action_noise: float = 0.5
    kp: float = 10.0
    kd: float = -1.0
    # A target counts as reached (and is resampled) within this distance, as in the PointMaze env itself.
    goal_radius: float = 0.45
    n_envs: int = 8

    def transitions_for(self, env_id: str) -> int:
        return self.transitions if self.transitions is not None else D4RL_MAZE[env_id][1]


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
    nested_names = {f.name for f in dataclasses.fields(recipe) if dataclasses.is_dataclass(getattr(recipe, f.name))}
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
            inner = key[len(prefix) + 1 :]
            nested.setdefault(prefix, {})[inner] = _coerce(type(sub), inner, key, value)
        else:
            raise BenchError(
                f"unknown budget override {key!r} for {type(recipe).__name__}; accepted: {', '.join(accepted)}"
            )
    for prefix, changes in nested.items():
        top[prefix] = dataclasses.replace(getattr(recipe, prefix), **changes)
    return dataclasses.replace(recipe, **top)
