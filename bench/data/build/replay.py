"""The SAC replay buffer, persisted as one file per checkpoint segment.

Writing only the transitions gathered since the last checkpoint keeps checkpointing cheap even when the
buffer holds a million transitions, and the same chunk files are the D4RL-style medium-replay dataset: every
transition the behaviour policy saw up to the step where it was stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.atomic import atomic_write

CHUNK_KEYS = ("observations", "actions", "rewards", "train_rewards", "next_observations", "terminals", "ends")


class ReplayBuffer:
    """A FIFO ring of transitions with uniform sampling, plus the list of all transitions added since a mark.

    `rewards` is the task's reward (what a dataset records); `train_rewards` is what SAC learns from (a
    shaped reward for Reacher2d, the same as `rewards` elsewhere). `ends` marks the last transition of an
    episode, whether it ended by termination, time limit or a checkpoint cut.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.train_rewards = np.zeros((capacity, 1), np.float32)
        self.terminals = np.zeros((capacity, 1), np.float32)
        self.size = 0
        self.cursor = 0
        self._pending: dict[str, list[np.ndarray]] = {k: [] for k in CHUNK_KEYS}

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        train_reward: float,
        next_obs: np.ndarray,
        terminal: bool,
        end: bool,
    ) -> None:
        i = self.cursor
        self.obs[i], self.actions[i], self.next_obs[i] = obs, action, next_obs
        self.train_rewards[i, 0] = train_reward
        self.terminals[i, 0] = float(terminal)
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        for key, value in zip(CHUNK_KEYS, (obs, action, reward, train_reward, next_obs, terminal, end), strict=True):
            self._pending[key].append(np.asarray(value))

    def mark_end(self) -> None:
        """Flag the latest transition as an episode end (a checkpoint cuts the running episode there)."""
        if self._pending["ends"]:
            self._pending["ends"][-1] = np.asarray(True)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=batch_size)
        return {
            "observations": self.obs[idx],
            "actions": self.actions[idx],
            "rewards": self.train_rewards[idx],
            "next_observations": self.next_obs[idx],
            "terminals": self.terminals[idx],
        }

    def flush_chunk(self, path: Path) -> None:
        """Write the transitions added since the previous flush to `path` (atomically) and forget them."""
        arrays: dict[str, Any] = {k: np.stack(v) if v else np.zeros((0,)) for k, v in self._pending.items()}
        arrays["rewards"] = arrays["rewards"].astype(np.float32)
        arrays["train_rewards"] = arrays["train_rewards"].astype(np.float32)
        arrays["terminals"] = arrays["terminals"].astype(bool)
        arrays["ends"] = arrays["ends"].astype(bool)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, **arrays)

        atomic_write(path, write)
        self._pending = {k: [] for k in CHUNK_KEYS}

    def restore(self, chunk_paths: list[Path]) -> None:
        """Refill the ring from saved chunks (oldest first), as it was when the last of them was written."""
        for path in chunk_paths:
            chunk = load_chunk(path)
            n = len(chunk["rewards"])
            for start in range(0, n, self.capacity):
                stop = min(n, start + self.capacity)
                m = stop - start
                idx = (self.cursor + np.arange(m)) % self.capacity
                self.obs[idx] = chunk["observations"][start:stop]
                self.actions[idx] = chunk["actions"][start:stop]
                self.next_obs[idx] = chunk["next_observations"][start:stop]
                self.train_rewards[idx, 0] = chunk["train_rewards"][start:stop]
                self.terminals[idx, 0] = chunk["terminals"][start:stop]
                self.cursor = int((self.cursor + m) % self.capacity)
                self.size = min(self.size + m, self.capacity)


def load_chunk(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in CHUNK_KEYS}


def chunk_path(root: Path, index: int) -> Path:
    return root / f"chunk_{index:06d}.npz"
