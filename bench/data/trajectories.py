"""The one in-memory trajectory format every loader produces and every agent reads.

Episodes are stored back to back in flat arrays with an offsets array, not as a list of per-episode
objects: the window sampler and the d3rlpy conversion then work with vectorised indexing over the whole
dataset, and an episode is just a slice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.errors import BenchError


@dataclass(frozen=True)
class Episode:
    """A view of one episode (slices of the parent dataset's arrays, no copies)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())


@dataclass(frozen=True)
class TrajectoryDataset:
    """Episodes of observations, actions, rewards, terminals and timeouts.

    `episode_starts` has one entry per episode plus a final entry equal to the number of transitions, so
    episode i is `[episode_starts[i], episode_starts[i+1])`. Continuous actions are float32 (N, act_dim);
    discrete actions are int64 (N,). Observations are float32 vectors, or uint8 frames for pixel tasks:
    single (N, H, W) frames with `metadata["frame_stack"]` = n, read as stacks by `observations_at`.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_starts: np.ndarray
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.rewards.shape[0]
        for key in ("observations", "actions", "terminals", "timeouts"):
            if getattr(self, key).shape[0] != n:
                raise BenchError(
                    f"dataset {self.name!r}: {key} has {getattr(self, key).shape[0]} rows, rewards has {n}"
                )
        starts = self.episode_starts
        if starts.ndim != 1 or len(starts) < 2 or starts[0] != 0 or starts[-1] != n or np.any(np.diff(starts) <= 0):
            raise BenchError(f"dataset {self.name!r}: episode offsets are not increasing from 0 to {n}")

    # --- construction -------------------------------------------------------------------------------------

    @classmethod
    def from_episodes(
        cls, episodes: list[dict[str, np.ndarray]], name: str = "", metadata: dict[str, Any] | None = None
    ) -> TrajectoryDataset:
        """Concatenate per-episode arrays (keys: observations, actions, rewards, terminals, timeouts)."""
        episodes = [e for e in episodes if len(e["rewards"]) > 0]
        if not episodes:
            raise BenchError(f"dataset {name!r} has no non-empty episodes")
        lengths = np.array([len(e["rewards"]) for e in episodes], dtype=np.int64)

        def cat(key: str, dtype: Any) -> np.ndarray:
            return np.concatenate([np.asarray(e[key], dtype=dtype) for e in episodes], axis=0)

        actions = np.concatenate([np.asarray(e["actions"]) for e in episodes], axis=0)
        actions = actions.astype(np.int64) if np.issubdtype(actions.dtype, np.integer) else actions.astype(np.float32)
        obs = np.concatenate([np.asarray(e["observations"]) for e in episodes], axis=0)
        obs = obs if obs.dtype == np.uint8 else obs.astype(np.float32)
        return cls(
            observations=obs,
            actions=actions,
            rewards=cat("rewards", np.float32),
            terminals=cat("terminals", bool),
            timeouts=cat("timeouts", bool),
            episode_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            name=name,
            metadata=dict(metadata or {}),
        )

    @classmethod
    def from_flat(
        cls,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray,
        name: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> TrajectoryDataset:
        """Split flat D4RL-style arrays into episodes at every terminal or timeout.

        A trailing segment with neither flag (a buffer cut mid-episode) is kept as its own episode. This is
        the correct split; the LaMo reference code's fixed 1000-step split drifts across episode boundaries.
        """
        n = len(rewards)
        ends = np.flatnonzero(np.asarray(terminals, bool) | np.asarray(timeouts, bool)) + 1
        starts = np.unique(np.concatenate([[0], ends, [n]])).astype(np.int64)
        actions = np.asarray(actions)
        actions = actions.astype(np.int64) if np.issubdtype(actions.dtype, np.integer) else actions.astype(np.float32)
        obs = np.asarray(observations)
        obs = obs if obs.dtype == np.uint8 else obs.astype(np.float32)
        return cls(
            observations=obs,
            actions=actions,
            rewards=np.asarray(rewards, np.float32).reshape(-1),
            terminals=np.asarray(terminals, bool).reshape(-1),
            timeouts=np.asarray(timeouts, bool).reshape(-1),
            episode_starts=starts,
            name=name,
            metadata=dict(metadata or {}),
        )

    # --- shape --------------------------------------------------------------------------------------------

    @property
    def num_transitions(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(len(self.episode_starts) - 1)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self.episode_starts)

    @property
    def discrete_actions(self) -> bool:
        return bool(np.issubdtype(self.actions.dtype, np.integer))

    @property
    def frame_stack(self) -> int:
        """Frames per observation (pixel datasets store single frames; 1 for vector observations)."""
        return int(self.metadata.get("frame_stack", 1))

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """Shape of one observation as a policy sees it (a frame stack for pixel datasets)."""
        shape = tuple(int(d) for d in self.observations.shape[1:])
        return (self.frame_stack, *shape) if self.frame_stack > 1 else shape

    def episode_first_index(self) -> np.ndarray:
        """Index of the first transition of each transition's episode (N,)."""
        return np.repeat(self.episode_starts[:-1], self.episode_lengths)

    def observations_at(self, index: np.ndarray, episode_first: np.ndarray | None = None) -> np.ndarray:
        """Observations of the given transitions, shape (*index.shape, *observation_shape)."""
        if self.frame_stack <= 1:
            out: np.ndarray = self.observations[index]
            return out
        from bench.data.frames import stack_frames

        first = self.episode_first_index()[index] if episode_first is None else episode_first
        return stack_frames(self.observations, index, first, self.frame_stack)

    @property
    def action_dim(self) -> int:
        """Width of a continuous action, or the number of discrete actions seen (max id + 1)."""
        if self.discrete_actions:
            return int(self.actions.max()) + 1
        return int(self.actions.shape[1])

    def episode(self, i: int) -> Episode:
        s, e = int(self.episode_starts[i]), int(self.episode_starts[i + 1])
        return Episode(
            self.observations[s:e], self.actions[s:e], self.rewards[s:e], self.terminals[s:e], self.timeouts[s:e]
        )

    def episodes(self) -> Iterator[Episode]:
        for i in range(self.num_episodes):
            yield self.episode(i)

    # --- derived quantities -------------------------------------------------------------------------------

    @property
    def episode_index(self) -> np.ndarray:
        """Episode id of every transition (N,)."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths)

    def episode_returns(self) -> np.ndarray:
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts[:-1])

    def returns_to_go(self, clip_rewards: bool = False) -> np.ndarray:
        """Undiscounted return from each step to the end of its episode (N,), float32; with `clip_rewards`,
        of rewards clipped to [-1, 1] (the DQN convention Atari agents train on)."""
        rewards = np.clip(self.rewards, -1.0, 1.0) if clip_rewards else self.rewards
        csum = np.cumsum(rewards.astype(np.float64))
        end_csum = csum[self.episode_starts[1:] - 1]
        rtg = end_csum[self.episode_index] - csum + rewards
        out: np.ndarray = rtg.astype(np.float32)
        return out

    def timesteps(self) -> np.ndarray:
        """Step index within its episode for every transition (N,), int64."""
        out: np.ndarray = np.arange(self.num_transitions) - np.repeat(self.episode_starts[:-1], self.episode_lengths)
        return out

    def state_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and std of observations (std floored at 1e-6), as in the DT reference code."""
        obs = self.observations.reshape(self.num_transitions, -1).astype(np.float64)
        return obs.mean(0).astype(np.float32), (obs.std(0) + 1e-6).astype(np.float32)

    def select_episodes(self, ids: np.ndarray, name: str | None = None) -> TrajectoryDataset:
        """A new dataset holding the given episodes, in the given order."""
        ids = np.asarray(ids, dtype=np.int64)
        lengths = self.episode_lengths[ids]
        index = np.concatenate([np.arange(self.episode_starts[i], self.episode_starts[i + 1]) for i in ids])
        return TrajectoryDataset(
            observations=self.observations[index],
            actions=self.actions[index],
            rewards=self.rewards[index],
            terminals=self.terminals[index],
            timeouts=self.timeouts[index],
            episode_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            name=self.name if name is None else name,
            metadata=dict(self.metadata),
        )

    def check_finite(self) -> None:
        """Refuse NaN or infinite observations, actions or rewards: they load fine but poison every loss and
        return statistic downstream, so the first bad value is named with its episode and step."""
        for key in ("observations", "actions", "rewards"):
            arr = getattr(self, key)
            if not np.issubdtype(arr.dtype, np.floating):
                continue  # integer actions and uint8 frames cannot hold NaN or inf
            bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
            if bad.any():
                row = int(np.argmax(bad))
                episode = int(np.searchsorted(self.episode_starts, row, side="right")) - 1
                value = arr.reshape(arr.shape[0], -1)[row]
                kind = "NaN" if np.isnan(value).any() else "infinite value"
                raise BenchError(
                    f"dataset {self.name!r}: {key} has a {kind} in episode {episode} (step "
                    f"{row - int(self.episode_starts[episode])}); accepted: finite {key} only, rebuild or fix the data"
                )

    def content_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of every array, so two datasets with equal hashes are equal."""
        h = hashlib.sha256()
        for arr in (self.observations, self.actions, self.rewards, self.terminals, self.timeouts, self.episode_starts):
            a = np.ascontiguousarray(arr)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]
