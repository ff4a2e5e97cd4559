"""FrankaKitchen-v1 as the D4RL kitchen tasks: D4RL's 60-dim observation and its subtask sets.

Policies here are trained on D4RL-format data (a flat [robot qpos 9, object qpos 21, goal 30] vector), while
gymnasium-robotics returns a dict observation; `KitchenD4RLObservation` converts with the same function the
Minari loader uses, so training data and evaluation see one layout. Rewards are left as the environment
gives them: with its defaults (`remove_task_when_completed=True`, `terminate_on_tasks_completed=True`) a step
earns the number of target subtasks completed at that step, each subtask counts once, and the episode ends
when all are done, so an episode's return is the number of completed subtasks (0-4), as in D4RL.
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
        return flat[0]


def make_kitchen_env(tasks_to_complete: Sequence[str], max_episode_steps: int = 280,
                     **kwargs: Any) -> KitchenD4RLObservation:
    """FrankaKitchen-v1 with D4RL observations, for callers that have no `Task` (tests, the data builder)."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make(ENV_ID, tasks_to_complete=list(tasks_to_complete), max_episode_steps=max_episode_steps, **kwargs)
    return KitchenD4RLObservation(env)
