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
