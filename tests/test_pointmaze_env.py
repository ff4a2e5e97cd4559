"""PointMaze evaluation: D4RL maze2d's protocol (fixed goal, 0.5 radius) and the generated data's flat layout."""

from __future__ import annotations

import numpy as np

from bench.data.build.config import D4RL_MAZE, MazeRecipe
from bench.envs.factory import env_spaces, make_env
from bench.envs.pointmaze import D4RL_GOAL_CELL, D4RL_SUCCESS_RADIUS
from bench.tasks import get_task


def test_pointmaze_eval_env_is_flat_and_keeps_its_goal() -> None:
    task = get_task("pointmaze-umaze")
    assert env_spaces(task) == ((6,), 2)
    env = make_env(task)
    try:
        obs, _ = env.reset(seed=3)
        assert obs.shape == (6,) and obs.dtype == np.float32
        goal = np.asarray(env.unwrapped.goal, np.float32)  # type: ignore[attr-defined]
        np.testing.assert_allclose(obs[4:], goal)
        for _ in range(20):
            obs, reward, terminated, _, _ = env.step(env.action_space.sample())
            assert not terminated  # continuing task: episodes end on the time limit only
            np.testing.assert_allclose(obs[4:], goal)  # reset_target=False: the goal never moves
            assert reward in (0.0, 1.0)
    finally:
        env.close()


def test_goal_is_d4rls_fixed_goal_cell_in_every_episode() -> None:
    # D4RL maze_model.py: U_MAZE's 'G' at (row 1, col 1), MEDIUM_MAZE's at (row 6, col 6).
    assert D4RL_GOAL_CELL == {"PointMaze_UMaze-v3": (1, 1), "PointMaze_Medium-v3": (6, 6)}
    # gymnasium-robotics cell centres: x = col - width/2 + 0.5, y = height/2 - row - 0.5.
    for name, xy in (("pointmaze-umaze", (-1.0, 1.0)), ("pointmaze-medium", (2.5, -2.5))):
        env = make_env(get_task(name))
        try:
            starts = []
            for seed in range(12):
                obs, _ = env.reset(seed=seed)
                np.testing.assert_allclose(obs[4:], xy, atol=1e-6)  # exact: no goal noise
                starts.append(obs[:2].copy())
            assert len({tuple(np.round(s, 3)) for s in starts}) > 3  # starts vary, the goal does not
        finally:
            env.close()


def test_reward_radius_and_start_noise_are_d4rls() -> None:
    assert D4RL_SUCCESS_RADIUS == 0.5
    env = make_env(get_task("pointmaze-umaze"))
    inner = env.unwrapped
    try:
        # Start cells include the goal's own cell (D4RL samples empty and goal cells), with +-0.1 noise.
        offsets = []
        for seed in range(60):
            obs, _ = env.reset(seed=seed)
            cell = np.array(inner.maze.cell_xy_to_rowcol(obs[:2]))  # type: ignore[attr-defined]
            centre = np.asarray(inner.maze.cell_rowcol_to_xy(cell))  # type: ignore[attr-defined]
            offsets.append(np.abs(obs[:2] - centre).max())
            if tuple(cell) == (1, 1):
                break
        assert tuple(cell) == (1, 1) and max(offsets) <= 0.1 + 1e-9
        # Put the ball 0.48 from the goal (inside D4RL's 0.5, outside gymnasium-robotics's 0.45): reward 1.
        goal = obs[4:].astype(np.float64)
        point = inner.point_env  # type: ignore[attr-defined]
        point.set_state(np.array([goal[0] + 0.48, goal[1]]), np.zeros(2))
        _, reward, *_ = env.step(np.zeros(2))
        assert reward == 1.0
        point.set_state(np.array([goal[0] + 0.52, goal[1]]), np.zeros(2))
        _, reward, *_ = env.step(np.zeros(2))
        assert reward == 0.0
    finally:
        env.close()


def test_dataset_sizes_are_d4rls() -> None:
    # maze2d-umaze-v1 holds 1M transitions, maze2d-medium-v1 2M; episodes 300 / 600 steps (D4RL registry).
    recipe = MazeRecipe()
    assert recipe.transitions_for("PointMaze_UMaze-v3") == 1_000_000
    assert recipe.transitions_for("PointMaze_Medium-v3") == 2_000_000
    assert D4RL_MAZE["PointMaze_UMaze-v3"][0] == "maze2d-umaze-v1"
    assert (get_task("pointmaze-umaze").max_episode_steps, get_task("pointmaze-medium").max_episode_steps) == (300, 600)
    assert recipe.action_noise == 0.5
