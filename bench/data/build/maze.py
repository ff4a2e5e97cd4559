"""PointMaze datasets, D4RL's maze2d recipe on gymnasium-robotics PointMaze (sparse reward).

D4RL's recipe (`Farama-Foundation/D4RL`, `scripts/generation/generate_maze2d_datasets.py`,
`scripts/generation/relabel_maze2d_rewards.py`, `d4rl/pointmaze/waypoint_controller.py`): a waypoint
controller (p gain 10, d gain -1) drives the ball to a random target cell, with N(0, 0.5) action noise
(`--noisy`) and actions clipped to [-1, 1]; a new random target is set whenever the controller reaches the
current one and at every episode boundary (`max_episode_steps`: 300 umaze, 600 medium); the stream is never
reset. The sparse rewards are then relabelled against the maze's fixed evaluation goal (its 'G' cell):
1 when the ball is within 0.5 of it. D4RL's maze2d-umaze-v1 holds 1M transitions, maze2d-medium-v1 2M.

Here: breadth-first search over the maze grid gives, for every free cell, the neighbouring cell one step
closer to the target's cell; a PD controller drives the ball towards that cell's centre (towards the target
itself once in its cell), Gaussian noise is added and the action clipped. The environment runs as one
continuing stream (`continuing_task=True, reset_target=True`: a new target is drawn as soon as the current
one is reached, and the ball is never reset), cut into consecutive episodes of the task's
`max_episode_steps`, each ending with a timeout. Rewards are relabelled as D4RL's: 1 when the ball is within
0.5 of the D4RL goal (bench.envs.pointmaze), which is also what evaluation pays, so dataset returns and
evaluation returns are on one scale and D4RL's reference scores apply to both.

Observations are stored flat as [x, y, vx, vy, goal_x, goal_y] (6 dims): the env's `observation` and the
fixed evaluation goal (D4RL's maze2d observation is [x, y, vx, vy] with no target at all, so the goal
columns carry the same information: none that varies; the controller's moving target is not shown).

Remaining differences from D4RL (also in the card): the controller targets switch when gymnasium-robotics
says the target is reached (within 0.45) rather than when D4RL's controller is within 0.1 and slow, and not
at episode boundaries; the reward is labelled on the observation after each step (what evaluation pays),
where D4RL's relabelling uses the observation before it; gymnasium-robotics's point model, not mujoco-py's.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from bench.data.build.config import D4RL_MAZE, MazeRecipe
from bench.data.build.rollout import RawEpisode, RolloutStats
from bench.data.build.writer import env_spec, write_dataset
from bench.data.trajectories import TrajectoryDataset
from bench.envs.pointmaze import D4RL_GOAL_CELL, D4RL_SUCCESS_RADIUS, d4rl_goal_xy
from bench.tasks import Task

Cell = tuple[int, int]


class WaypointPlanner:
    """Next cell towards a goal cell, from a BFS table over the free cells of a maze map."""

    def __init__(self, maze_map: list[list[Any]]) -> None:
        self.free = {(r, c) for r, row in enumerate(maze_map) for c, v in enumerate(row) if v != 1}
        self._next: dict[Cell, dict[Cell, Cell]] = {goal: self._bfs(goal) for goal in self.free}

    def _bfs(self, goal: Cell) -> dict[Cell, Cell]:
        """For each free cell, the neighbour on a shortest path to `goal` (the goal maps to itself)."""
        toward = {goal: goal}
        queue = deque([goal])
        while queue:
            cell = queue.popleft()
            r, c = cell
            for nb in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if nb in self.free and nb not in toward:
                    toward[nb] = cell
                    queue.append(nb)
        return toward

    def next_cell(self, cell: Cell, goal: Cell) -> Cell:
        return self._next[goal].get(cell, goal)


class MazeController:
    """PD control towards the planner's waypoint, plus clipped Gaussian action noise."""

    def __init__(self, env: gym.Env[Any, Any], recipe: MazeRecipe, rng: np.random.Generator) -> None:
        self.maze = env.unwrapped.maze  # type: ignore[attr-defined]
        self.planner = WaypointPlanner(self.maze.maze_map)
        self.recipe, self.rng = recipe, rng

    def _cell(self, xy: np.ndarray) -> Cell:
        r, c = self.maze.cell_xy_to_rowcol(xy)
        return int(r), int(c)

    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        pos, vel = obs[:2], obs[2:4]
        here, goal_cell = self._cell(pos), self._cell(goal)
        if here == goal_cell or here not in self.planner.free:
            waypoint = goal
        else:
            waypoint = np.asarray(self.maze.cell_rowcol_to_xy(np.array(self.planner.next_cell(here, goal_cell))))
        action = self.recipe.kp * (waypoint - pos) + self.recipe.kd * vel
        action = np.clip(action, -1.0, 1.0) + self.recipe.action_noise * self.rng.standard_normal(2)
        out: np.ndarray = np.clip(action, -1.0, 1.0).astype(np.float32)
        return out


def _make_stream_env(task: Task) -> gym.Env[Any, Any]:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    # No time limit: the stream is cut into episodes here, without resetting the ball.
    env = gym.make(task.env_id, continuing_task=True, reset_target=True, max_episode_steps=None)
    return env.env if isinstance(env, gym.wrappers.TimeLimit) else env


def collect_stream(
    task: Task, recipe: MazeRecipe, seed: int, transitions: int, progress: bool
) -> tuple[list[RawEpisode], RolloutStats]:
    env = _make_stream_env(task)
    controller = MazeController(env, recipe, np.random.default_rng([seed, 11]))
    obs_dict, _ = env.reset(seed=seed)
    eval_goal = d4rl_goal_xy(env, task.env_id)
    flat = np.concatenate([obs_dict["observation"], eval_goal]).astype(np.float32)
    # The controller's own target (the env's moving goal) is tracked apart from what is stored.
    target = np.asarray(env.unwrapped.goal, np.float64)  # type: ignore[attr-defined]
    length = task.max_episode_steps
    episodes: list[RawEpisode] = []
    started = time.perf_counter()
    bar = tqdm(total=transitions, desc=f"collect {task.name}", unit="step", disable=not progress, mininterval=2.0)
    try:
        while sum(len(e) for e in episodes) < transitions:
            n = min(length, transitions - sum(len(e) for e in episodes))
            obs = np.zeros((n + 1, 6), np.float32)
            acts = np.zeros((n, 2), np.float32)
            rews = np.zeros(n, np.float32)
            obs[0] = flat
            for t in range(n):
                acts[t] = controller.act(obs[t, :4].astype(np.float64), target)
                obs_dict, _, _, _, _ = env.step(acts[t])
                # D4RL's relabelling: 1 within 0.5 of the fixed evaluation goal, whatever the target was.
                xy = np.asarray(obs_dict["observation"][:2], np.float64)
                rews[t] = float(np.linalg.norm(xy - eval_goal) <= D4RL_SUCCESS_RADIUS)
                obs[t + 1] = np.concatenate([obs_dict["observation"], eval_goal])
                # The env has already drawn the next target if this one was reached.
                target = np.asarray(env.unwrapped.goal, np.float64)  # type: ignore[attr-defined]
            flat = obs[n]
            truncs = np.zeros(n, bool)
            truncs[-1] = True
            episodes.append(
                RawEpisode(
                    index=len(episodes),
                    seed=seed if not episodes else None,
                    observations=obs,
                    actions=acts,
                    rewards=rews,
                    terminations=np.zeros(n, bool),
                    truncations=truncs,
                )
            )
            bar.update(n)
    finally:
        bar.close()
        env.close()
    return episodes, RolloutStats(len(episodes), transitions, time.perf_counter() - started)


def build_maze(
    task: Task, dataset_id: str, seed: int, transitions: int | None, progress: bool, recipe: MazeRecipe
) -> Path:
    started = time.perf_counter()
    n = transitions or recipe.transitions_for(task.env_id)
    episodes, stats = collect_stream(task, recipe, seed, n, progress)

    def card(_: TrajectoryDataset) -> dict[str, Any]:
        return {
            "recipe": "D4RL maze2d: BFS waypoint planner over the maze grid + PD controller + Gaussian noise",
            "seed": seed,
            "behaviour_policy": {
                "algorithm": "waypoint planner (BFS over free cells) with a PD controller, no learning",
                "hyperparameters": {
                    "kp": recipe.kp,
                    "kd": recipe.kd,
                    "action_noise_std": recipe.action_noise,
                    "goal_radius": recipe.goal_radius,
                },
                "training_steps": 0,
            },
            "observation": (
                "flat [x, y, vx, vy, goal_x, goal_y]: the env's observation and the fixed D4RL "
                "evaluation goal (D4RL's observation has no goal)"
            ),
            "rewards": (
                f"relabelled as D4RL's relabel_maze2d_rewards.py: 1 within {D4RL_SUCCESS_RADIUS} of the "
                f"D4RL goal cell {list(D4RL_GOAL_CELL[task.env_id])} (row, col)"
            ),
            "reference": {
                "d4rl": {
                    "dataset": D4RL_MAZE[task.env_id][0],
                    "transitions": D4RL_MAZE[task.env_id][1],
                    "episode_steps": task.max_episode_steps,
                    "action_noise_std": 0.5,
                    "success_radius": D4RL_SUCCESS_RADIUS,
                    "reference_scores": [task.random_score, task.expert_score],
                },
                "this_dataset": {
                    "transitions": n,
                    "episode_steps": task.max_episode_steps,
                    "action_noise_std": recipe.action_noise,
                },
                "differences_from_d4rl": [
                    "targets switch when gymnasium-robotics's goal is reached (0.45) instead of when D4RL's "
                    "controller is within 0.1 and slow, and not at episode boundaries",
                    "reward labelled on the observation after each step (as evaluation pays); D4RL relabels "
                    "the observation before it",
                    "gymnasium-robotics point model on the mujoco package instead of D4RL's mujoco-py one",
                ],
            },
            "collection": {
                "env": f"{task.env_id}(continuing_task=True, reset_target=True), one stream reset once with seed",
                "episodes": f"consecutive windows of {task.max_episode_steps} steps, each ending with a timeout",
                "env_steps": stats.env_steps,
                "wall_s": round(stats.wall_s, 3),
                "env_steps_per_s": round(stats.steps_per_s, 1),
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
            f"{task.name}: D4RL maze2d-style data on {task.env_id}; flat 6-dim observations "
            "[observation, desired_goal]; see card.json"
        ),
        algorithm_name="BFS waypoint planner + PD controller + Gaussian noise",
    )
