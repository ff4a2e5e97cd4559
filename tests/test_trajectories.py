from __future__ import annotations

import numpy as np
import pytest

from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from tests.conftest import make_episodes


def test_from_episodes_offsets_and_views(small_dataset: TrajectoryDataset) -> None:
    eps = make_episodes(12)
    assert small_dataset.num_episodes == 12
    assert small_dataset.num_transitions == sum(len(e["rewards"]) for e in eps)
    for i, e in enumerate(eps):
        ep = small_dataset.episode(i)
        np.testing.assert_array_equal(ep.rewards, e["rewards"])
        np.testing.assert_array_equal(ep.observations, e["observations"])


def test_returns_to_go_and_timesteps(small_dataset: TrajectoryDataset) -> None:
    rtg = small_dataset.returns_to_go()
    ts = small_dataset.timesteps()
    for i, ep in enumerate(small_dataset.episodes()):
        s = small_dataset.episode_starts[i]
        expected = np.cumsum(ep.rewards[::-1])[::-1]
        np.testing.assert_allclose(rtg[s : s + len(ep)], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ts[s : s + len(ep)], np.arange(len(ep)))
    np.testing.assert_allclose(
        small_dataset.episode_returns(), [e.episode_return for e in small_dataset.episodes()], rtol=1e-5
    )


def test_from_flat_splits_on_terminals_and_timeouts() -> None:
    # episodes: [0..2] terminal, [3..6] timeout, [7..8] cut mid-episode (no flag)
    n = 9
    term = np.zeros(n, bool)
    tout = np.zeros(n, bool)
    term[2] = True
    tout[6] = True
    ds = TrajectoryDataset.from_flat(np.zeros((n, 2)), np.zeros((n, 1)), np.arange(n, dtype=np.float32), term, tout)
    np.testing.assert_array_equal(ds.episode_starts, [0, 3, 7, 9])
    np.testing.assert_allclose(ds.episode_returns(), [0 + 1 + 2, 3 + 4 + 5 + 6, 7 + 8])


def test_content_hash_detects_any_change(small_dataset: TrajectoryDataset) -> None:
    h = small_dataset.content_hash()
    assert h == TrajectoryDataset.from_episodes(make_episodes(12), name="other").content_hash()
    eps = make_episodes(12)
    eps[3]["rewards"][0] += 1e-3
    assert TrajectoryDataset.from_episodes(eps).content_hash() != h


def test_mismatched_arrays_rejected() -> None:
    with pytest.raises(BenchError, match="actions has 3 rows"):
        TrajectoryDataset(
            np.zeros((4, 1)), np.zeros((3, 1)), np.zeros(4), np.zeros(4, bool), np.zeros(4, bool), np.array([0, 4])
        )


def test_select_episodes_keeps_order(small_dataset: TrajectoryDataset) -> None:
    sub = small_dataset.select_episodes(np.array([5, 1]))
    np.testing.assert_array_equal(sub.episode(0).rewards, small_dataset.episode(5).rewards)
    np.testing.assert_array_equal(sub.episode(1).rewards, small_dataset.episode(1).rewards)
