"""PointMaze evaluation environments: D4RL maze2d's evaluation protocol on gymnasium-robotics PointMaze.

D4RL's maze2d reference scores (bench.tasks) were measured on a fixed goal per maze with a 0.5 success
radius (`Farama-Foundation/D4RL`, `d4rl/pointmaze/maze_model.py`: the single 'G' cell of U_MAZE / MEDIUM_MAZE
is the target, `reset_target=False`, sparse reward `1 if ||xy - target|| <= 0.5`, one point per step; start
cell uniform over the empty and goal cells plus U(-0.1, 0.1) noise). gymnasium-robotics instead draws a
goal cell per episode with +-0.25 noise and pays within 0.45, so `D4rlMazeEval` restores D4RL's protocol:
- the goal is the D4RL goal cell's centre, exactly, in every episode (`D4RL_GOAL_CELL`);
- reward 1 for every step the ball is within `D4RL_SUCCESS_RADIUS` = 0.5 of it (continuing task: the ball
  is never reset, the time limit ends the episode);
- the start cell is uniform over the free cells including the goal's (gymnasium-robotics would exclude
  the goal's neighbourhood), with position noise +-0.1 (gymnasium-robotics's `position_noise_range`, 0.25
  by default, which PointMaze-v3 does not take as a keyword, so the wrapper sets it).
Remaining difference: the start velocity is gymnasium-robotics's (D4RL adds N(0, 0.1) to it), and the
simulation is gymnasium-robotics's point model on the `mujoco` package, not D4RL's mujoco-py one.
D4RL's maze coordinates are (row, col) of its grid; gymnasium-robotics maps cells to x = col - width / 2 +
0.5, y = height / 2 - row - 0.5, a rotation of the same layout (the maps are identical), so distances and
the reference scores carry over.

Policies see a flat observation: gymnasium-robotics returns a dict (`observation` [x, y, vx, vy],
`achieved_goal`, `desired_goal`); the datasets (bench.data.build.maze) store [x, y, vx, vy, goal_x, goal_y].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

POINTMAZE_OBS_DIM = 6
# D4RL maze_model.py: the 'G' cell of U_MAZE (row 1, col 1) and of MEDIUM_MAZE (row 6, col 6), in the
# (row, col) indexing that gymnasium-robotics's identical U_MAZE / MEDIUM_MAZE maps use too.
D4RL_GOAL_CELL: dict[str, tuple[int, int]] = {
    "PointMaze_UMaze-v3": (1, 1),
    "PointMaze_Medium-v3": (6, 6),
}
# D4RL maze_model.py MazeEnv.step (sparse): reward 1.0 if np.linalg.norm(ob[0:2] - target) <= 0.5.
D4RL_SUCCESS_RADIUS = 0.5
# D4RL maze_model.py reset_model: qpos = reset_location + U(-0.1, 0.1).
D4RL_RESET_NOISE = 0.1
_RESET_STREAM = 0x4D5A


def d4rl_goal_xy(env: gym.Env[Any, Any], env_id: str) -> np.ndarray:
    """The D4RL goal cell's centre in gymnasium-robotics coordinates."""
    maze = env.unwrapped.maze  # type: ignore[attr-defined]
    return np.asarray(maze.cell_rowcol_to_xy(np.array(D4RL_GOAL_CELL[env_id])), np.float64)


class D4rlMazeEval(gym.Wrapper[Any, Any, Any, Any], gym.utils.RecordConstructorArgs):
    """D4RL maze2d's evaluation protocol (see the module docstring) around a gymnasium-robotics PointMaze."""

    def __init__(self, env: gym.Env[Any, Any], env_id: str) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, env_id=env_id)
        gym.Wrapper.__init__(self, env)
        if env_id not in D4RL_GOAL_CELL:
            raise ValueError(f"no D4RL goal cell for {env_id}; known: {', '.join(D4RL_GOAL_CELL)}")
        self.goal_cell = D4RL_GOAL_CELL[env_id]
        maze = env.unwrapped.maze  # type: ignore[attr-defined]
        self.start_cells = [(r, c) for r, row in enumerate(maze.maze_map) for c, v in enumerate(row) if v != 1]
        self.goal_xy = d4rl_goal_xy(env, env_id)
        env.unwrapped.position_noise_range = D4RL_RESET_NOISE  # type: ignore[attr-defined]
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng([seed, _RESET_STREAM])
        start = self.start_cells[int(self._rng.integers(len(self.start_cells)))]
        obs, info = self.env.reset(
            seed=seed, options={"goal_cell": np.array(self.goal_cell), "reset_cell": np.array(start), **(options or {})}
        )
        inner = self.env.unwrapped
        inner.goal = self.goal_xy.copy()  # type: ignore[attr-defined]  # no goal noise, as D4RL
        inner.update_target_site_pos()  # type: ignore[attr-defined]
        obs = {**obs, "desired_goal": self.goal_xy.copy()}
        info["success"] = self._success(obs)
        return obs, info

    def _success(self, obs: Mapping[str, Any]) -> bool:
        return bool(np.linalg.norm(np.asarray(obs["achieved_goal"]) - self.goal_xy) <= D4RL_SUCCESS_RADIUS)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        success = self._success(obs)
        info["success"] = success
        return obs, float(success), terminated, truncated, info


class PointMazeFlatObservation(gym.ObservationWrapper[np.ndarray, Any, Any], gym.utils.RecordConstructorArgs):
    """PointMaze's dict observation as [observation (4), desired_goal (2)] float32."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(POINTMAZE_OBS_DIM,), dtype=np.float32)

    def observation(self, observation: Mapping[str, Any]) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(observation["observation"], np.float32).reshape(-1),
                np.asarray(observation["desired_goal"], np.float32).reshape(-1),
            ]
        )
