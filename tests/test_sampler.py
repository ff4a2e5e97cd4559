from __future__ import annotations

import numpy as np

from bench.data.sampler import WindowSampler
from bench.data.trajectories import TrajectoryDataset


def _reference_window(ds: TrajectoryDataset, sampler: WindowSampler, start: int, k: int) -> dict[str, np.ndarray]:
    """The DT reference code's per-sample loop: take [start, start+K) within the episode, left-pad to K."""
    ep = int(np.searchsorted(ds.episode_starts, start, side="right") - 1)
    end = int(min(ds.episode_starts[ep + 1], start + k))
    idx = np.arange(start, end)
    pad = k - len(idx)
    obs = np.concatenate([np.zeros((pad, sampler.obs.shape[1]), np.float32), sampler.obs[idx]])
    act = np.concatenate([np.zeros((pad, ds.actions.shape[1]), np.float32), ds.actions[idx]])
    rtg = np.concatenate([np.zeros(pad, np.float32), sampler.rtg[idx]])
    ts = np.concatenate([np.zeros(pad, np.int64), sampler.timesteps[idx]])
    mask = np.concatenate([np.zeros(pad), np.ones(len(idx))])
    return {"obs": obs, "act": act, "rtg": rtg, "ts": ts, "mask": mask}


def test_windows_match_reference_loop(small_dataset: TrajectoryDataset) -> None:
    k = 6
    sampler = WindowSampler(small_dataset, context_length=k, reward_scale=10.0)
    rng = np.random.default_rng(0)
    batch = sampler.sample(256, rng)
    starts = np.random.default_rng(0).integers(0, small_dataset.num_transitions, size=256)
    for b, start in enumerate(starts):
        ref = _reference_window(small_dataset, sampler, int(start), k)
        np.testing.assert_allclose(batch.observations[b], ref["obs"])
        np.testing.assert_allclose(batch.actions[b], ref["act"])
        np.testing.assert_allclose(batch.returns_to_go[b, :, 0], ref["rtg"])
        np.testing.assert_array_equal(batch.timesteps[b], ref["ts"])
        np.testing.assert_array_equal(batch.mask[b], ref["mask"])


def test_shapes_scaling_and_normalization(small_dataset: TrajectoryDataset) -> None:
    sampler = WindowSampler(small_dataset, context_length=4, reward_scale=10.0)
    batch = sampler.sample(32, np.random.default_rng(1))
    assert batch.observations.shape == (32, 4, 3)
    assert batch.actions.shape == (32, 4, 2)
    assert batch.returns_to_go.shape == (32, 4, 1)
    assert batch.timesteps.shape == batch.mask.shape == (32, 4)
    np.testing.assert_allclose(sampler.rtg * 10.0, small_dataset.returns_to_go(), rtol=1e-5)
    assert abs(float(sampler.obs.mean())) < 0.05
    assert (batch.mask[:, -1] == 1).all()  # the newest step of a window is always real


def test_same_rng_same_batch(small_dataset: TrajectoryDataset) -> None:
    sampler = WindowSampler(small_dataset, context_length=5)
    a = sampler.sample(16, np.random.default_rng(5))
    b = sampler.sample(16, np.random.default_rng(5))
    np.testing.assert_array_equal(a.observations, b.observations)
