"""Batched rollouts over several environments, one seed per episode.

The environments are stepped in a plain loop and the policy is called once per step for all of them, which
is what `gymnasium.vector.SyncVectorEnv` does too; a hand-rolled loop is used because gymnasium 1.0's
vector autoreset cannot reset one sub-environment with a chosen seed. Episode i is reset with seed
`seeds(i)` and draws its action noise from its own generator, so it depends on its seed and the policy only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

# Second word of the noise generator's seed, so action noise never shares a stream with the env's own seed.
NOISE_STREAM = 7919

ActionFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RawEpisode:
    """One collected episode; `observations` has one row more than the actions (the final observation)."""

    index: int
    seed: int | None
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def episode_return(self) -> float:
        return float(self.rewards.astype(np.float64).sum())


@dataclass(frozen=True)
class RolloutStats:
    episodes: int
    env_steps: int
    wall_s: float

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / max(self.wall_s, 1e-9)


class _Slot:
    def __init__(self, env: gym.Env[Any, Any], index: int, seed: int, obs: np.ndarray) -> None:
        self.env, self.index, self.seed = env, index, seed
        self.rng = np.random.default_rng([seed, NOISE_STREAM])
        self.obs: list[np.ndarray] = [obs]
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.terms: list[bool] = []
        self.truncs: list[bool] = []

    def finish(self) -> RawEpisode:
        return RawEpisode(
            index=self.index,
            seed=self.seed,
            observations=np.asarray(self.obs, np.float32),
            actions=np.asarray(self.actions, np.float32),
            rewards=np.asarray(self.rewards, np.float32),
            terminations=np.asarray(self.terms, bool),
            truncations=np.asarray(self.truncs, bool),
        )


def run_episodes(
    make_env: Callable[[], gym.Env[Any, Any]],
    action_fn: ActionFn,
    act_dim: int,
    seeds: Callable[[int], int],
    n_envs: int,
    episodes: int | None = None,
    min_transitions: int | None = None,
    observe: Callable[[Any], np.ndarray] = lambda o: np.asarray(o, np.float32),
    progress: bool = False,
    desc: str = "rollouts",
) -> tuple[list[RawEpisode], RolloutStats]:
    """Episodes 0, 1, ... until `episodes` are done, or until at least `min_transitions` steps are collected.

    With `min_transitions`, no episode starts once that many steps exist and the running ones are finished,
    so the episodes returned are exactly 0..M-1 and any prefix of them is the same on every rerun.
    """
    if (episodes is None) == (min_transitions is None):
        raise ValueError("give exactly one of episodes and min_transitions")
    envs = [make_env() for _ in range(n_envs)]
    done: list[RawEpisode] = []
    steps = 0
    next_index = 0
    start = time.perf_counter()
    total = min_transitions if min_transitions is not None else None
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False, mininterval=2.0)

    def may_start() -> bool:
        if episodes is not None:
            return next_index < episodes
        assert min_transitions is not None
        return steps < min_transitions

    def start_slot(env: gym.Env[Any, Any]) -> _Slot | None:
        nonlocal next_index
        if not may_start():
            return None
        seed = int(seeds(next_index))
        obs, _ = env.reset(seed=seed)
        slot = _Slot(env, next_index, seed, observe(obs))
        next_index += 1
        return slot

    try:
        slots = [start_slot(env) for env in envs]
        while any(s is not None for s in slots):
            active = [s for s in slots if s is not None]
            obs = np.stack([s.obs[-1] for s in active])
            eps = np.stack([s.rng.standard_normal(act_dim) for s in active])
            actions = action_fn(obs, eps)
            for k, slot in enumerate(active):
                next_obs, reward, terminated, truncated, _ = slot.env.step(actions[k])
                slot.actions.append(actions[k])
                slot.rewards.append(float(reward))
                slot.terms.append(bool(terminated))
                slot.truncs.append(bool(truncated) and not terminated)
                slot.obs.append(observe(next_obs))
                steps += 1
                if terminated or truncated:
                    done.append(slot.finish())
                    slots[slots.index(slot)] = start_slot(slot.env)
            bar.update(len(active))
    finally:
        bar.close()
        for env in envs:
            env.close()
    done.sort(key=lambda e: e.index)
    return done, RolloutStats(len(done), steps, time.perf_counter() - start)


def take_transitions(episodes: list[RawEpisode], n: int) -> list[RawEpisode]:
    """The first `n` transitions of the episodes in order; a cut episode ends with a truncation (timeout)."""
    kept: list[RawEpisode] = []
    left = n
    for ep in episodes:
        if left <= 0:
            break
        if len(ep) <= left:
            kept.append(ep)
            left -= len(ep)
            continue
        terms = ep.terminations[:left].copy()
        truncs = ep.truncations[:left].copy()
        truncs[-1] = not terms[-1]
        kept.append(
            replace(
                ep,
                observations=ep.observations[: left + 1],
                actions=ep.actions[:left],
                rewards=ep.rewards[:left],
                terminations=terms,
                truncations=truncs,
            )
        )
        left = 0
    return kept
