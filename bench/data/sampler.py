"""Batches of length-K windows for sequence models (DT, LaMo), sampled with vectorised indexing.

Sampling a window start uniformly over all timesteps is the same distribution as the DT reference code's
"pick a trajectory with probability proportional to its length, then a uniform start inside it". Windows that
run past the end of their episode are left-padded to K, as the reference code does, with mask 0 on padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.trajectories import TrajectoryDataset


@dataclass
class WindowBatch:
    """One batch; arrays have leading shape (B, K)."""

    observations: np.ndarray  # (B, K, *obs_shape), normalized float32 (raw uint8 frame stacks for pixels)
    actions: np.ndarray  # (B, K, act_dim) float32, or (B, K) int64 for discrete actions
    returns_to_go: np.ndarray  # (B, K, 1) float32, divided by reward_scale
    timesteps: np.ndarray  # (B, K) int64, clipped to max_timestep
    mask: np.ndarray  # (B, K) float32, 1 on real steps and 0 on left padding


class WindowSampler:
    """Draws `WindowBatch`es from a dataset; precomputes returns-to-go and normalized observations once."""

    def __init__(
        self,
        dataset: TrajectoryDataset,
        context_length: int,
        reward_scale: float = 1.0,
        max_timestep: int = 1000,
        normalize_observations: bool = True,
        clip_rewards: bool = False,
    ) -> None:
        self.dataset = dataset
        self.k = int(context_length)
        self.max_timestep = int(max_timestep)
        if dataset.observations.dtype == np.uint8 or not normalize_observations:
            self.obs = dataset.observations
            dim = int(np.prod(dataset.observation_shape))
            self.obs_mean, self.obs_std = np.zeros(dim, np.float32), np.ones(dim, np.float32)
        else:
            self.obs_mean, self.obs_std = dataset.state_stats()
            self.obs = ((dataset.observations - self.obs_mean) / self.obs_std).astype(np.float32)
        self.rtg = (dataset.returns_to_go(clip_rewards) / reward_scale).astype(np.float32)
        self.episode_first = dataset.episode_first_index()
        self.timesteps = np.minimum(dataset.timesteps(), self.max_timestep - 1)
        # Last valid index (exclusive) of the episode each transition belongs to.
        self.episode_end = np.repeat(dataset.episode_starts[1:], dataset.episode_lengths)

    def sample(self, batch_size: int, rng: np.random.Generator) -> WindowBatch:
        n = self.dataset.num_transitions
        start = rng.integers(0, n, size=batch_size)
        n_valid = np.minimum(self.episode_end[start] - start, self.k)  # (B,)
        offsets = np.arange(self.k)[None, :]  # (1, K)
        pad = (self.k - n_valid)[:, None]  # (B, 1)
        mask = offsets >= pad
        index = np.where(mask, start[:, None] + offsets - pad, start[:, None])  # padding reads a valid row
        obs = (
            self.dataset.observations_at(index, self.episode_first[index])
            if self.dataset.frame_stack > 1
            else self.obs[index]
        )
        actions = self.dataset.actions[index]
        rtg = self.rtg[index][..., None]
        ts = self.timesteps[index]
        # Zero the padded positions so padding carries no information from real steps.
        m = mask.reshape(mask.shape + (1,) * (obs.ndim - 2))
        obs = np.where(m, obs, np.zeros((), obs.dtype))
        actions = np.where(mask.reshape(mask.shape + (1,) * (actions.ndim - 2)), actions, np.zeros((), actions.dtype))
        rtg = np.where(mask[..., None], rtg, 0.0).astype(np.float32)
        ts = np.where(mask, ts, 0)
        return WindowBatch(
            observations=obs, actions=actions, returns_to_go=rtg, timesteps=ts, mask=mask.astype(np.float32)
        )
