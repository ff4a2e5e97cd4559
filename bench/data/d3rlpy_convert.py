"""Conversion to d3rlpy's `MDPDataset`, which the CQL/BC/IQL/TD3+BC agents train on."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.data.trajectories import TrajectoryDataset


def to_mdp_dataset(dataset: TrajectoryDataset, action_size: int | None = None) -> Any:
    """An `MDPDataset` with the same episodes.

    d3rlpy splits episodes at terminal-or-timeout flags, so an episode that ends with neither (a buffer cut
    mid-episode) gets a timeout on its last step; otherwise it would be merged with the next episode.
    """
    from bench.legacy_gym import quiet_legacy_gym

    quiet_legacy_gym()
    from d3rlpy.constants import ActionSpace
    from d3rlpy.dataset import MDPDataset

    timeouts = dataset.timeouts.copy()
    last = dataset.episode_starts[1:] - 1
    timeouts[last] = ~dataset.terminals[last]
    discrete = dataset.discrete_actions
    return MDPDataset(
        observations=dataset.observations,
        actions=dataset.actions.reshape(-1, 1) if discrete else dataset.actions,
        rewards=dataset.rewards.reshape(-1, 1),
        terminals=dataset.terminals.astype(np.float32),
        timeouts=timeouts.astype(np.float32),
        action_space=ActionSpace.DISCRETE if discrete else ActionSpace.CONTINUOUS,
        action_size=action_size if action_size is not None else dataset.action_dim,
    )
