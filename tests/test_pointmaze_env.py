"""PointMaze evaluation sees the generated datasets' flat observation layout."""

from __future__ import annotations

import numpy as np

from bench.envs.factory import env_spaces, make_env
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
