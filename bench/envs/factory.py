"""Making evaluation environments for a task, in one place, so training data and evaluation agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from bench.errors import BenchError
from bench.tasks import Task


def make_env(task: Task) -> gym.Env[Any, Any]:
    """The task's evaluation environment with its time limit."""
    import bench.envs  # noqa: F401  (registers bench/Reacher2d-v0)

    if task.domain == "kitchen" or task.domain == "pointmaze":
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
    try:
        if task.env_id.startswith("ALE/"):
            from bench.envs.atari import make_atari_env

            # DQN preprocessing; the time limit counts agent steps, after the 4-frame skip.
            return make_atari_env(task.env_id, task.max_episode_steps, **task.env_kwargs)
        env = gym.make(task.env_id, max_episode_steps=task.max_episode_steps, **task.env_kwargs)
    except gym.error.Error as e:
        raise BenchError(f"cannot make environment {task.env_id} for {task.name}: {e}") from None
    if task.domain == "kitchen":
        from bench.envs.kitchen import KitchenD4RLObservation

        # Policies see D4RL's flat 60-dim kitchen observation, as in the datasets they are trained on.
        return KitchenD4RLObservation(env)
    if task.domain == "pointmaze":
        from bench.envs.pointmaze import D4rlMazeEval, PointMazeFlatObservation

        # D4RL maze2d's fixed goal and 0.5 success radius (its reference scores apply); policies see the
        # generated datasets' flat [x, y, vx, vy, goal_x, goal_y].
        return PointMazeFlatObservation(D4rlMazeEval(env, task.env_id))
    return env


def env_factory(task: Task) -> Callable[[], gym.Env[Any, Any]]:
    return lambda: make_env(task)


def env_spaces(task: Task) -> tuple[tuple[int, ...], int]:
    """(observation shape, action width or number of actions) of the task's environment."""
    env = make_env(task)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        if isinstance(act_space, gym.spaces.Discrete):
            act_dim = int(act_space.n)
        else:
            act_dim = int(np.prod(act_space.shape or (1,)))
        shape = tuple(obs_space.shape or ())
        return shape, act_dim
    finally:
        env.close()
