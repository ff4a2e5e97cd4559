from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.data.subsample import subsample, subsample_ids
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from tests.conftest import make_episodes


@pytest.fixture
def ds() -> TrajectoryDataset:
    return TrajectoryDataset.from_episodes(make_episodes(200, max_len=8), name="hopper-medium")


def _episode_keys(d: TrajectoryDataset) -> set[bytes]:
    return {e.observations.tobytes() for e in d.episodes()}


def test_same_seed_same_trajectories(ds: TrajectoryDataset) -> None:
    a, b = subsample(ds, 0.1, seed=3), subsample(ds, 0.1, seed=3)
    assert a.content_hash() == b.content_hash()
    assert a.num_episodes == 20


def test_different_seed_different_trajectories(ds: TrajectoryDataset) -> None:
    assert _episode_keys(subsample(ds, 0.1, seed=0)) != _episode_keys(subsample(ds, 0.1, seed=1))


def test_ratios_nest_for_a_seed(ds: TrajectoryDataset) -> None:
    ratios = [0.005, 0.01, 0.1, 0.3, 1.0]
    kept = [_episode_keys(subsample(ds, r, seed=7)) for r in ratios]
    for small, large in itertools.pairwise(kept):
        assert small <= large
    assert [len(k) for k in kept] == [1, 2, 20, 60, 200]


def test_subsample_is_independent_of_agent_and_ratio_order(ds: TrajectoryDataset) -> None:
    first = subsample_ids(ds, 0.3, seed=2)
    subsample_ids(ds, 0.1, seed=5)  # other draws in between must not matter
    np.testing.assert_array_equal(first, subsample_ids(ds, 0.3, seed=2))


def test_keeps_at_least_one_and_rejects_too_small(ds: TrajectoryDataset) -> None:
    assert subsample(ds, 0.003, seed=0).num_episodes == 1  # 0.6 trajectories rounds to one
    with pytest.raises(BenchError, match=r"sample ratio 0.001 is too small .*accepted: a ratio >= 0.0025"):
        subsample(ds, 0.001, seed=0)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), float("inf")])
def test_ratio_out_of_range(ds: TrajectoryDataset, bad: float) -> None:
    with pytest.raises(BenchError, match=r"out of range; accepted: a number in \(0, 1\]"):
        subsample(ds, bad, seed=0)


def test_full_ratio_is_identity(ds: TrajectoryDataset) -> None:
    assert subsample(ds, 1.0, seed=9) is ds
