"""FrankaKitchen-v1 as the D4RL kitchen tasks: D4RL's 60-dim observation, its subtask sets and its evaluation.

Policies here are trained on D4RL-format data (a flat [robot qpos 9, object qpos 21, goal 30] vector), while
gymnasium-robotics returns a dict observation; `KitchenD4RLObservation` converts with the same function the
Minari loader uses, so training data and evaluation see one layout.

Two reward conventions meet here, as in D4RL:
- datasets (D4RL's hdf5 files, Minari's D4RL/kitchen-v2, and ours) are labelled Markovian: each step earns the
  number of target subtasks satisfied at that step, nothing removed (D4RL generate_kitchen_datasets.py sets
  `REMOVE_TASKS_WHEN_COMPLETE = False`; Minari's script makes the env with `remove_task_when_completed=False`),
  so an episode's return is the sum of those counts, far above 4;
- evaluation keeps the task-removing environment (`remove_task_when_completed=True`,
  `terminate_on_tasks_completed=True`, gymnasium-robotics' defaults, D4RL KitchenBase's
  `REMOVE_TASKS_WHEN_COMPLETE = True`): each subtask counts once, the episode ends when all are done, and the
  return is the number of completed subtasks (0-4), D4RL's score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from bench.data.kitchen_layout import D4RL_KITCHEN_OBS_DIM, OBS_ELEMENT_INDICES, flatten_kitchen_observation

ENV_ID = "FrankaKitchen-v1"

#: D4RL's evaluation subtasks per dataset: kitchen-complete and kitchen-partial were recorded against
#: KitchenMicrowaveKettleLightSliderV0, kitchen-mixed against KitchenMicrowaveKettleBottomBurnerLightV0
#: (Minari's D4RL/kitchen/*-v2 datasets record the same `tasks_to_complete`).
D4RL_TASK_SETS: dict[str, tuple[str, ...]] = {
    "complete": ("microwave", "kettle", "light switch", "slide cabinet"),
    "partial": ("microwave", "kettle", "light switch", "slide cabinet"),
    "mixed": ("microwave", "kettle", "bottom burner", "light switch"),
}

#: Every subtask the environment knows, in D4RL's observation order.
ALL_SUBTASKS: tuple[str, ...] = tuple(OBS_ELEMENT_INDICES)

#: A subtask counts as done when its joints are within this distance of the goal (the environment's BONUS_THRESH).
COMPLETION_THRESHOLD = 0.3

#: D4RL's evaluation noise: KitchenTaskRelaxV1 sets `robot_noise_ratio = 0.1` and its robot's `get_obs` scales
#: both robot and object position noise by it, times `pos_noise_amp = 0.1` (franka_config.xml), i.e. uniform
#: noise of at most 0.01 (D4RL d4rl/kitchen/adept_envs/franka/kitchen_multitask_v0.py, robot/franka_robot.py,
#: commit 89141a6). gymnasium-robotics' defaults are 0.01 (robot) and 0.0005 (objects) on the same amplitudes.
D4RL_NOISE_KWARGS: dict[str, float] = {"robot_noise_ratio": 0.1, "object_noise_ratio": 0.1}

#: How evaluation here still differs from D4RL's KitchenV0 (for the run manifest; see `eval_deviations`).
EVAL_DEVIATIONS: tuple[str, ...] = (
    "Kitchen evaluation: subtask completion is checked on the true joint positions (gymnasium-robotics "
    "FrankaKitchen-v1 `achieved_goal`), where D4RL's KitchenV0 checks the noisy observation; with D4RL's "
    "observation noise (at most 0.01 per coordinate) against the 0.3 completion threshold this changes a "
    "subtask's completion only within about 0.03 of the threshold.",
    "Kitchen evaluation runs gymnasium-robotics FrankaKitchen-v1 (new MuJoCo bindings, its own model files), "
    "not D4RL's mujoco-py KitchenV0; the 280-step limit and the 0.3 threshold are the same.",
)


def eval_deviations(env_kwargs: Mapping[str, Any]) -> list[str]:
    """Known differences of a kitchen task's evaluation environment from D4RL's (for the run manifest).

    Noise below D4RL's is added to the list, so a task made without `D4RL_NOISE_KWARGS` says so.
    """
    out = list(EVAL_DEVIATIONS)
    for key, value in D4RL_NOISE_KWARGS.items():
        got = float(env_kwargs.get(key, 0.01 if key == "robot_noise_ratio" else 0.0005))
        if got != value:
            out.append(f"Kitchen evaluation: {key}={got} where D4RL's KitchenV0 uses {value}.")
    return out


def _env_goals() -> dict[str, np.ndarray]:
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS

    return {name: np.asarray(OBS_ELEMENT_GOALS[name], np.float64) for name in ALL_SUBTASKS}


#: Goal joint values of each subtask, taken from gymnasium-robotics so the two can never disagree.
SUBTASK_GOALS: dict[str, np.ndarray] = _env_goals()


def subtask_distance(qpos: np.ndarray, name: str) -> float:
    """Distance of a subtask's joints (in the full 30-dim qpos) from their goal, as the environment measures it."""
    return float(np.linalg.norm(np.asarray(qpos)[OBS_ELEMENT_INDICES[name]] - SUBTASK_GOALS[name]))


def subtasks_done(qpos: np.ndarray, names: Sequence[str] = ALL_SUBTASKS) -> list[str]:
    """The subtasks among `names` whose joints are at their goal in this state (not only target subtasks)."""
    return [n for n in names if subtask_distance(qpos, n) < COMPLETION_THRESHOLD]


class KitchenD4RLObservation(gym.ObservationWrapper[np.ndarray, Any, Any], gym.utils.RecordConstructorArgs):
    """FrankaKitchen's dict observation as D4RL's flat 60-dim float32 vector."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(D4RL_KITCHEN_OBS_DIM,), dtype=np.float32)

    def observation(self, observation: Mapping[str, Any]) -> np.ndarray:
        flat = flatten_kitchen_observation(observation["observation"], observation["desired_goal"])
        out: np.ndarray = flat[0]
        return out


def make_kitchen_env(
    tasks_to_complete: Sequence[str], max_episode_steps: int = 280, **kwargs: Any
) -> KitchenD4RLObservation:
    """FrankaKitchen-v1 with D4RL observations, for callers that have no `Task` (tests, the data builder)."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make(ENV_ID, tasks_to_complete=list(tasks_to_complete), max_episode_steps=max_episode_steps, **kwargs)
    return KitchenD4RLObservation(env)
