"""Scripted kitchen episodes, their plans and labels, the uniformity measurements and the dataset build."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from bench.data.build.kitchen.controller import OPEN, ArmController, Command
from bench.data.build.kitchen.planner import Planner, Scene
from bench.data.build.kitchen.recipe import (
    _PLAN_STREAM,
    _STYLE_STREAM,
    CANONICAL_ORDER,
    EpisodeStyle,
    KitchenRecipe,
    draw_style,
    kitchen_recipe,
)
from bench.data.build.kitchen.scripts import subtask_script
from bench.data.build.rollout import NOISE_STREAM, RawEpisode, RolloutStats, take_transitions
from bench.data.build.writer import env_spec, write_dataset
from bench.data.trajectories import TrajectoryDataset
from bench.envs.kitchen import ALL_SUBTASKS, make_kitchen_env, subtasks_done
from bench.errors import BenchError
from bench.tasks import Task

# --- episodes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedEpisode:
    """One scripted episode and which of its planned subtasks were completed (at any step)."""

    episode: RawEpisode
    plan: tuple[str, ...]
    completed: tuple[str, ...]
    style: EpisodeStyle = field(default_factory=EpisodeStyle)


class KitchenDemonstrator:
    """Runs scripted episodes in one FrankaKitchen environment (created by `make`), reusing its plans."""

    def __init__(self, env: gym.Env[Any, Any], recipe: KitchenRecipe, seed: int) -> None:
        self.env, self.recipe = env, recipe
        self.planner = Planner(recipe, seed)
        self.ctrl = ArmController(env, recipe)
        self.scene = Scene(self.ctrl)

    def run(self, plan: Sequence[str], seed: int, index: int = 0, style: EpisodeStyle | None = None) -> ScriptedEpisode:
        """Reset with `seed` and do the subtasks of `plan` in order; the episode ends when the environment ends
        it (its time limit, or all targets done if it terminates then) or, after the plan and the style's
        settle steps, with a cut. Without `style`, one is drawn from `seed` (`EpisodeStyle()` is the plain
        script)."""
        unknown = [name for name in plan if name not in ALL_SUBTASKS]
        if unknown:
            raise BenchError(f"unknown kitchen subtask(s) {', '.join(unknown)}; accepted: {', '.join(ALL_SUBTASKS)}")
        if style is None:
            style = draw_style(self.recipe, plan, np.random.default_rng([seed, _STYLE_STREAM]))
        self.scene.style, self.ctrl.speed = style, style.speed
        rng = np.random.default_rng([seed, NOISE_STREAM])
        obs, _ = self.env.reset(seed=seed)
        self.ctrl.sync()
        observations = [np.asarray(obs, np.float32)]
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        terms: list[bool] = []
        truncs: list[bool] = []
        completed: list[str] = []
        ended = False

        def step(cmd: Command) -> bool:
            noise = self.recipe.action_noise * (self.recipe.precise_noise_scale if cmd.precise else 1.0)
            action = np.clip(self.ctrl.act(cmd) + noise * rng.standard_normal(9), -1.0, 1.0).astype(np.float32)
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self.ctrl.sync()
            observations.append(np.asarray(obs, np.float32))
            actions.append(action)
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated) and not terminated)
            completed.extend(n for n in subtasks_done(self.scene.data.qpos, plan) if n not in completed)
            return bool(terminated or truncated)

        for name in plan:
            for cmd in subtask_script(self.scene, self.planner, name):
                ended = step(cmd)
                if ended:
                    break
            if ended:
                break
        if not ended:
            pos, rot = self.ctrl.pose()
            for _ in range(style.settle):
                if step(Command(pos, rot, OPEN, phase="settle")):
                    break
            truncs[-1] = not terms[-1]  # the scripted episode is over: cut here, as a timeout
        raw = RawEpisode(
            index=index,
            seed=seed,
            observations=np.asarray(observations, np.float32),
            actions=np.asarray(actions, np.float32),
            rewards=np.asarray(rewards, np.float32),
            terminations=np.asarray(terms, bool),
            truncations=np.asarray(truncs, bool),
        )
        return ScriptedEpisode(raw, tuple(plan), tuple(n for n in plan if n in completed), style)


def episode_plan(kind: str, targets: Sequence[str], recipe: KitchenRecipe, seed: int, index: int) -> tuple[str, ...]:
    """The subtasks of episode `index` of a `complete`, `partial` or `mixed` dataset, in the order they are done."""
    targets = tuple(targets)
    if kind == "complete":
        return targets
    if kind not in ("partial", "mixed"):
        raise BenchError(f"no kitchen recipe for dataset {kind!r}; accepted: complete, partial, mixed")
    rng = np.random.default_rng([seed, index, _PLAN_STREAM])
    # `mixed` (D4RL): no episode does exactly the target subtasks.
    if kind == "partial" and rng.random() < recipe.partial_target_fraction:
        return targets
    while True:
        chosen = set(rng.choice(len(ALL_SUBTASKS), size=len(targets), replace=False).tolist())
        names = {ALL_SUBTASKS[i] for i in chosen}
        if names != set(targets):
            return tuple(n for n in CANONICAL_ORDER if n in names)


# --- measurement --------------------------------------------------------------------------------------------


def controller_success(
    subtasks: Sequence[str] = ALL_SUBTASKS,
    episodes: int = 20,
    seed: int = 0,
    recipe: KitchenRecipe | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Fraction of `episodes` single-subtask episodes (env seeds seed+0..) in which each subtask is completed."""
    recipe = recipe or KitchenRecipe()
    env: gym.Env[Any, Any] = make_kitchen_env(list(ALL_SUBTASKS), terminate_on_tasks_completed=False)
    try:
        demo = KitchenDemonstrator(env, recipe, seed)
        rates = {}
        for name in subtasks:
            done = 0
            for i in tqdm(range(episodes), desc=f"scripted {name}", disable=not progress, leave=False):
                done += name in demo.run([name], seed + i, i).completed
            rates[name] = done / episodes
        return rates
    finally:
        env.close()


# --- dataset build ------------------------------------------------------------------------------------------

_RECIPE_TEXT = {
    "complete": "every episode does the four target subtasks in order (failed attempts are discarded)",
    "partial": (
        "{fraction:.0%} of episodes are planned to do the four target subtasks, the others four subtasks "
        "drawn from all seven with at least one outside the targets"
    ),
    "mixed": "every episode does four subtasks drawn from all seven, never exactly the four targets",
}

#: How the generated data still differs from D4RL's human demonstrations (written into every card).
D4RL_DIFFERENCES = (
    "scripted, not human: every episode of a plan follows the same waypoint recipe, varied only by the drawn "
    "pace, pauses, approach offsets, grasp errors, fumbles and Gaussian action noise; D4RL's teleoperated "
    "demonstrations differ in strategy, order and timing far more",
    "partial: the non-target episodes do four subtasks drawn at random from all seven, where D4RL's partial file "
    "holds the relay-policy-learning task combinations its operators chose",
    "recorded in gymnasium-robotics FrankaKitchen-v1 (its observation noise 0.01 robot / 0.0005 objects, as "
    "Minari's D4RL/kitchen-v2 files), not D4RL's KitchenV0 (noise 0.1)",
    "rewards are counted on the state after each step, as Minari's files are; D4RL's hdf5 files count the "
    "targets satisfied in the observation before the step (one step earlier)",
)


def data_env(targets: Sequence[str], kind: str, recipe: KitchenRecipe) -> gym.Env[Any, Any]:
    """The environment demonstrations are recorded in, set up as Minari's kitchen generation script sets it.

    `remove_task_when_completed=False` makes the reward Markovian, as D4RL's generation script does
    (`REMOVE_TASKS_WHEN_COMPLETE = False`, D4RL scripts/generation/generate_kitchen_datasets.py): every step
    earns the number of target subtasks satisfied in the state it reaches, so a step after the microwave is
    open earns 1 again, and an episode's return is far above 4. Episodes do not end when the targets are done
    (Minari: `terminate_on_tasks_completed=False`; time limits 280 complete, 450 partial and mixed).
    Evaluation is different: it keeps the task-removing environment, so each subtask counts once (score 0-4).
    """
    steps = recipe.complete_max_steps if kind == "complete" else recipe.partial_max_steps
    return make_kitchen_env(
        targets, max_episode_steps=steps, remove_task_when_completed=False, terminate_on_tasks_completed=False
    )


def targets_satisfied(episode: RawEpisode, targets: Sequence[str]) -> np.ndarray:
    """Per step, the number of targets satisfied in the observation the step reaches (the label's definition)."""
    obj = np.asarray(episode.observations[1:, :30], np.float64)
    return np.array([len(subtasks_done(q, targets)) for q in obj], np.float64)


def uniformity(
    collected: Sequence[ScriptedEpisode], targets: Sequence[str], attempted: Sequence[ScriptedEpisode] | None = None
) -> dict[str, Any]:
    """How alike the kept episodes are: length spread, full solves, drawn variety; and the subtask success of
    every `attempted` episode (discarded ones included; default: the kept ones)."""
    lengths = np.array([len(c.episode) for c in collected], np.float64)
    attempts: dict[str, list[int]] = {name: [0, 0] for name in ALL_SUBTASKS}
    for c in collected if attempted is None else attempted:
        for name in c.plan:
            attempts[name][0] += 1
            attempts[name][1] += name in c.completed
    # All four targets satisfied at one step (the Markovian reward reaches the number of targets).
    full = sum(float(c.episode.rewards.max(initial=0.0)) >= len(targets) for c in collected)
    styles = [c.style for c in collected]
    subtask_styles = [st for style in styles for _, st in style.subtasks]
    return {
        # Whole scripted episodes, before a `transitions` cut (the card's `episode_length` is the written data's).
        "scripted_episode_length": {
            "mean": round(float(lengths.mean()), 2),
            "std": round(float(lengths.std()), 2),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
            "cv": round(float(lengths.std() / lengths.mean()), 4),
        },
        "scripted_subtask_success": {
            name: {"attempted": a, "completed": c, "rate": round(c / a, 4)} for name, (a, c) in attempts.items() if a
        },
        "episodes_satisfying_all_targets": {"count": int(full), "fraction": round(full / len(collected), 4)},
        "variety": {
            "pace": {"min": round(min(s.speed for s in styles), 3), "max": round(max(s.speed for s in styles), 3)},
            "subtasks_with_pause": sum(st.pause > 0 for st in subtask_styles),
            "subtasks_with_fumble": sum(st.fumble for st in subtask_styles),
            "subtasks": len(subtask_styles),
        },
    }


def build_kitchen(
    task: Task, dataset_id: str, seed: int, transitions: int | None, progress: bool, recipe: KitchenRecipe
) -> Path:
    """Generate the task's scripted dataset (`complete` or `partial`) and write it as a Minari dataset.

    Attempt i resets with seed + i. `complete` keeps only attempts that satisfy all four targets at some step
    (D4RL's complete demonstrations all do) until `complete_episodes` are kept; `partial` collects episodes
    until `partial_transitions` steps exist. With `transitions`, episodes are collected until that many steps
    exist and the last one is cut there (a timeout).
    """
    started = time.perf_counter()
    targets = tuple(task.env_kwargs.get("tasks_to_complete", ()))
    if task.domain != "kitchen" or not targets:
        raise BenchError(f"task {task.name} is not a kitchen task with tasks_to_complete")
    kind = task.dataset
    episode_plan(kind, targets, recipe, seed, 0)  # rejects an unknown dataset kind before any work
    n_episodes = recipe.complete_episodes if kind == "complete" else recipe.mixed_episodes
    wanted_steps = transitions or (recipe.partial_transitions if kind == "partial" else None)
    env = data_env(targets, kind, recipe)
    collected: list[ScriptedEpisode] = []
    discarded: list[ScriptedEpisode] = []
    steps = 0
    bar = tqdm(
        total=wanted_steps or n_episodes,
        desc=f"collect {task.name}",
        disable=not progress,
        unit="step" if wanted_steps else "episode",
        mininterval=2.0,
    )
    try:
        demo = KitchenDemonstrator(env, recipe, seed)
        i = 0
        while (steps < wanted_steps) if wanted_steps else (len(collected) < n_episodes):
            result = demo.run(episode_plan(kind, targets, recipe, seed, i), seed + i, len(collected))
            i += 1
            if kind == "complete" and float(result.episode.rewards.max(initial=0.0)) < len(targets):
                discarded.append(result)
                if len(discarded) > 5 * n_episodes + 20:
                    raise BenchError(
                        f"the scripted controller solved only {len(collected)} of {i} kitchen-complete "
                        f"attempts; check the recipe (action_noise, grasp_jitter, ...)"
                    )
                continue
            collected.append(result)
            steps += len(result.episode)
            bar.update(len(result.episode) if wanted_steps else 1)
    finally:
        bar.close()
        env.close()
    collect_wall = time.perf_counter() - started
    episodes = [c.episode for c in collected]
    if wanted_steps:
        episodes = take_transitions(episodes, wanted_steps)
    stats = RolloutStats(len(collected), steps, collect_wall)

    def card(_: TrajectoryDataset) -> dict[str, Any]:
        plans: dict[str, int] = {}
        for c in collected:
            key = ", ".join(c.plan)
            plans[key] = plans.get(key, 0) + 1
        return {
            "recipe": f"D4RL kitchen-{kind} style data from a scripted controller (no human demonstrations): "
            + _RECIPE_TEXT[kind].format(fraction=recipe.partial_target_fraction),
            "seed": seed,
            "behaviour_policy": {
                "algorithm": (
                    "scripted end-effector waypoints per subtask; damped-least-squares inverse "
                    "kinematics on the end-effector site's MuJoCo Jacobian; joint-velocity actions; "
                    "per-episode pace, pauses, approach offsets, grasp errors and fumbles; Gaussian "
                    "action noise"
                ),
                "hyperparameters": dataclasses.asdict(recipe),
                "training_steps": 0,
            },
            "target_subtasks": list(targets),
            "observation": "D4RL's 60-dim kitchen layout [robot qpos 9, object qpos 21, goal 30]",
            "reward": (
                "D4RL/Minari labels (Markovian): each step earns the number of target subtasks satisfied in "
                "the state it reaches (no removal), so returns exceed 4; evaluation scores each subtask "
                "once (0-4)"
            ),
            "plans": plans,
            **uniformity(collected, targets, [*collected, *discarded]),
            "discarded_attempts": len(discarded),
            "differences_from_d4rl": list(D4RL_DIFFERENCES),
            "collection": {
                "episodes_collected": stats.episodes,
                "env_steps": stats.env_steps,
                "wall_s": round(stats.wall_s, 3),
                "env_steps_per_s": round(stats.steps_per_s, 1),
                "episode_seeds": "attempt i is reset with seed + i",
            },
            "build_wall_time_s": round(time.perf_counter() - started, 3),
        }

    return write_dataset(
        task,
        dataset_id,
        episodes,
        env_spec(task),
        card,
        description=(
            f"{task.name}: scripted-controller demonstrations on {task.env_id} in D4RL's 60-dim "
            f"observation layout ({kind} recipe, D4RL's Markovian reward labels); see card.json"
        ),
        algorithm_name="scripted waypoint controller (Jacobian IK) + varied pace/paths/grasps + action noise",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m bench.data.build.kitchen success|build ...`: measurements behind the dataset card."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.data.build.kitchen")
    sub = parser.add_subparsers(dest="command", required=True)
    p_success = sub.add_parser("success", help="per-subtask success rate of the scripted controller")
    p_success.add_argument("--episodes", type=int, default=20)
    p_success.add_argument("--seed", type=int, default=0)
    p_success.add_argument("--subtasks", default=",".join(ALL_SUBTASKS))
    p_build = sub.add_parser("build", help="build a kitchen dataset (as `bench data build` does)")
    p_build.add_argument("task", help="kitchen-complete or kitchen-partial (a registered kitchen task)")
    p_build.add_argument("--seed", type=int, default=0)
    p_build.add_argument("--transitions", type=int, default=None)
    p_build.add_argument("--episodes", type=int, default=None, help="complete: episodes to keep")
    args = parser.parse_args(argv)
    if args.command == "success":
        started = time.perf_counter()
        rates = controller_success(args.subtasks.split(","), args.episodes, args.seed, progress=True)
        print(
            json.dumps(
                {
                    "episodes": args.episodes,
                    "seed": args.seed,
                    "success": rates,
                    "wall_s": round(time.perf_counter() - started, 1),
                },
                indent=2,
            )
        )
        return
    from bench.tasks import get_task

    task = get_task(args.task)
    overrides = {} if args.episodes is None else {"complete_episodes": args.episodes}
    source = next(s for s in task.sources if s.kind == "generated")
    path = build_kitchen(task, source.id, args.seed, args.transitions, True, kitchen_recipe(overrides))
    print(path)


if __name__ == "__main__":
    main()
