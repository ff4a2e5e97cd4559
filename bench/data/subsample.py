"""Trajectory-level subsampling by sample ratio: the paper's low-data regime.

Rules (documented in the README, proved by tests):
- deterministic for a (dataset name, ratio, seed) triple, and the same for every agent;
- for one seed, ratios nest: the trajectories kept at ratio r are a prefix of one seeded permutation, so the
  subset at a smaller ratio is contained in the subset at a larger one;
- keeps round(ratio * episodes) trajectories (halves round up), at least one; a ratio whose expected count is
  below half a trajectory is rejected as too small rather than silently promoted to a whole trajectory.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError


def check_ratio(ratio: float) -> float:
    if not (isinstance(ratio, int | float) and math.isfinite(ratio) and 0.0 < ratio <= 1.0):
        raise BenchError(f"sample ratio {ratio!r} is out of range; accepted: a number in (0, 1], e.g. 0.01")
    return float(ratio)


def num_kept(num_episodes: int, ratio: float) -> int:
    return max(1, math.floor(ratio * num_episodes + 0.5))


def subsample_ids(dataset: TrajectoryDataset, ratio: float, seed: int) -> np.ndarray:
    """Episode ids kept at this ratio and seed, in permutation order."""
    ratio = check_ratio(ratio)
    n = dataset.num_episodes
    if ratio * n < 0.5:
        smallest = 0.5 / n
        raise BenchError(
            f"sample ratio {ratio} is too small for {dataset.name or 'this dataset'} ({n} trajectories keeps "
            f"{ratio * n:.2f}); accepted: a ratio >= {smallest:.2g}"
        )
    # Seed from (seed, dataset name) only, so every agent and every ratio sees the same permutation.
    name_key = zlib.crc32(dataset.name.encode())
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), name_key]))
    return rng.permutation(n)[: num_kept(n, ratio)]


def subsample(dataset: TrajectoryDataset, ratio: float, seed: int) -> TrajectoryDataset:
    """The dataset restricted to the trajectories kept at this ratio and seed (ratio 1 keeps all, in order)."""
    ratio = check_ratio(ratio)
    if ratio == 1.0:
        return dataset
    ids = np.sort(subsample_ids(dataset, ratio, seed))
    out = dataset.select_episodes(ids)
    out.metadata.update({"sample_ratio": ratio, "subsample_seed": int(seed), "parent_hash": dataset.content_hash()})
    return out
