"""Shared fixtures: small datasets written by the tests themselves, in every supported format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data.trajectories import TrajectoryDataset

torch.set_num_threads(1)
os.environ.setdefault("MUJOCO_GL", "egl")


def make_episodes(num: int, obs_dim: int = 3, act_dim: int = 2, seed: int = 0,
                  min_len: int = 5, max_len: int = 30) -> list[dict[str, np.ndarray]]:
    """Random episodes of varying length; the last one ends by timeout, the others by termination."""
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(num):
        n = int(rng.integers(min_len, max_len + 1))
        term = np.zeros(n, bool)
        tout = np.zeros(n, bool)
        if i % 2 == 0:
            term[-1] = True
        else:
            tout[-1] = True
        episodes.append({
            "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "terminals": term, "timeouts": tout,
        })
    return episodes


@pytest.fixture
def small_dataset() -> TrajectoryDataset:
    return TrajectoryDataset.from_episodes(make_episodes(12), name="synthetic")


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root for the duration of a test."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("LAMO_BENCH_DATA", str(root))
    return root


def random_reacher_episodes(num: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Random-policy Reacher2d episodes (100 steps each) from the real environment."""
    import gymnasium as gym

    import bench.envs  # noqa: F401

    env = gym.make("bench/Reacher2d-v0")
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(num):
        obs, _ = env.reset(seed=seed * 1000 + i)
        rows, acts, rews = [], [], []
        done = False
        while not done:
            act = rng.uniform(-1, 1, 2).astype(np.float32)
            rows.append(obs)
            acts.append(act)
            obs, r, term, trunc, _ = env.step(act)
            rews.append(r)
            done = term or trunc
        n = len(rews)
        tout = np.zeros(n, bool)
        tout[-1] = True
        episodes.append({"observations": np.array(rows, np.float32), "actions": np.array(acts),
                         "rewards": np.array(rews, np.float32), "terminals": np.zeros(n, bool), "timeouts": tout})
    return episodes


@pytest.fixture
def reacher_data_root(data_root: Path) -> Path:
    """A data root holding a small random-policy reacher2d-medium dataset in the generated (Minari) slot."""
    from tests.test_loaders import write_minari

    write_minari(data_root / "minari", "lamo-bench/reacher2d/medium-v0", random_reacher_episodes(10))
    return data_root
