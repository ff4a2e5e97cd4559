"""PointMaze evaluation environments with the flat observation the generated maze datasets use.

gymnasium-robotics returns a dict (`observation` [x, y, vx, vy], `achieved_goal`, `desired_goal`); the
datasets (bench.data.build.maze) store [x, y, vx, vy, goal_x, goal_y], so evaluation must show policies the
same 6 numbers. Evaluation keeps the goal fixed (`reset_target=False`) and the ball is never reset, so, as in
D4RL's maze2d evaluation, a policy earns 1 for every step it stays within the goal radius, which is what
D4RL's maze2d reference scores (bench.tasks) assume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

POINTMAZE_OBS_DIM = 6


class PointMazeFlatObservation(gym.ObservationWrapper[np.ndarray, Any, Any], gym.utils.RecordConstructorArgs):
    """PointMaze's dict observation as [observation (4), desired_goal (2)] float32."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(POINTMAZE_OBS_DIM,), dtype=np.float32)

    def observation(self, observation: Mapping[str, Any]) -> np.ndarray:
        return np.concatenate([np.asarray(observation["observation"], np.float32).reshape(-1),
                               np.asarray(observation["desired_goal"], np.float32).reshape(-1)])
