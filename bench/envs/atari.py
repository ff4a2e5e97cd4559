"""Atari games as the DQN literature plays them, built the same way for data collection and evaluation.

The preprocessing is the standard one of the Nature DQN paper and of Dopamine, which recorded the DQN-replay
data the LaMo paper trains on: the raw ALE environment without its own frame skip or sticky actions, then
gymnasium's `AtariPreprocessing` (up to 30 no-op actions at reset, the action repeated for 4 frames with
the last two frames max-pooled, 84x84 grayscale) and a stack of the last 4 frames. Rewards are the game's
raw score changes: scores are reported on them, and only training clips them (`Task.clip_rewards`).
Losing a life does not end an episode. The time limit counts agent steps (27,000 = 108,000 frames).

Datasets keep single 84x84 frames and stack them when read (`bench.data.frames`); at an episode's start the
stack repeats the first frame, which is what `FrameStackObservation` does here at reset, so training windows
and evaluation see the same stacks.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

FRAME_SKIP = 4
SCREEN_SIZE = 84
FRAME_STACK = 4
NOOP_MAX = 30


def register_ale() -> None:
    import ale_py

    gym.register_envs(ale_py)


def make_atari_env(
    env_id: str,
    max_episode_steps: int | None,
    noop_max: int = NOOP_MAX,
    frame_stack: int = FRAME_STACK,
    **env_kwargs: Any,
) -> gym.Env[Any, Any]:
    """`env_id` (e.g. ALE/Pong-v5) with DQN preprocessing; observations are (4, 84, 84) uint8 frame stacks.

    `env_kwargs` reach `gym.make`, except `frameskip`, which is always 1 because frame skipping is the
    preprocessing's. Sticky actions are off unless `env_kwargs` sets `repeat_action_probability` (0.25 for the
    "sticky actions" protocol; the v5 default of 0.25 is not inherited).
    """
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

    register_ale()
    kwargs = {"repeat_action_probability": 0.0, **env_kwargs, "frameskip": 1}
    env: gym.Env[Any, Any] = gym.make(env_id, **kwargs)
    env = AtariPreprocessing(
        env,
        noop_max=noop_max,
        frame_skip=FRAME_SKIP,
        screen_size=SCREEN_SIZE,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    if frame_stack > 1:
        env = FrameStackObservation(env, frame_stack, padding_type="reset")
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=max_episode_steps)
    return env


def ale_of(env: gym.Env[Any, Any]) -> Any:
    """The ALE interface under the wrappers (scripted behaviour policies read the game's RAM through it)."""
    return env.unwrapped.ale  # type: ignore[attr-defined]
