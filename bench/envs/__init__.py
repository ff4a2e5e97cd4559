"""Environments this project defines itself, registered with gymnasium on import."""

import gymnasium as gym

from bench.envs.reacher2d import EPISODE_STEPS, Reacher2dEnv

if "bench/Reacher2d-v0" not in gym.registry:
    gym.register(
        id="bench/Reacher2d-v0", entry_point="bench.envs.reacher2d:Reacher2dEnv", max_episode_steps=EPISODE_STEPS
    )

__all__ = ["Reacher2dEnv"]
