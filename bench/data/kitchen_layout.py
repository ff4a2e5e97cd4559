"""Flattening FrankaKitchen's dict observation into D4RL's 60-dim kitchen layout.

D4RL kitchen observations are [robot joint positions (9), object joint positions (21), goal (30)], where the
goal vector is zero except at the object-position indices of the task's subtasks, which hold their target
positions. gymnasium-robotics' `observation` is [robot qpos (9), robot qvel (9), object qpos (21), object
qvel (20)] and the goals come as a dict, so policies trained on D4RL-format data need this mapping.

D4RL's hdf5 files fill the goal slots the same way: scripts/generation/generate_kitchen_datasets.py
(Farama-Foundation/D4RL, commit 89141a6) overwrites every observation's `[30:]` with the environment's
`_get_task_goal()`, which is zero except the task's subtasks' OBS_ELEMENT_GOALS at their OBS_ELEMENT_INDICES
(d4rl/kitchen/kitchen_envs.py); Minari's D4RL/kitchen-v2 `desired_goal` holds exactly those subtasks, with
gymnasium-robotics' goal values, which equal D4RL's. So a D4RL file and a flattened Minari file of the same
task agree slot for slot (tests/test_kitchen.py builds a small D4RL-layout file and checks this).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Indices of each subtask's joints within the 30-dim [robot qpos, object qpos] vector (D4RL kitchen).
OBS_ELEMENT_INDICES: dict[str, list[int]] = {
    "bottom burner": [11, 12],
    "top burner": [15, 16],
    "light switch": [17, 18],
    "slide cabinet": [19],
    "hinge cabinet": [20, 21],
    "microwave": [22],
    "kettle": [23, 24, 25, 26, 27, 28, 29],
}
D4RL_KITCHEN_OBS_DIM = 60


def flatten_kitchen_observation(observation: np.ndarray, desired_goal: Mapping[str, np.ndarray]) -> np.ndarray:
    """Map gymnasium-robotics kitchen observations (T, 59) plus goals to D4RL's layout (T, 60)."""
    obs = np.atleast_2d(np.asarray(observation, dtype=np.float32))
    t = obs.shape[0]
    robot_qpos = obs[:, 0:9]
    object_qpos = obs[:, 18:39]
    goal = np.zeros((t, 30), dtype=np.float32)
    for name, value in desired_goal.items():
        idx = OBS_ELEMENT_INDICES[name]
        goal[:, idx] = np.asarray(value, dtype=np.float32).reshape(-1, len(idx))
    return np.concatenate([robot_qpos, object_qpos, goal], axis=1)
