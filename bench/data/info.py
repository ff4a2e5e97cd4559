"""Summary statistics of a dataset, as printed by `bench data info` and stored in dataset cards."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.data.trajectories import TrajectoryDataset
from bench.tasks import Task


def dataset_summary(task: Task, dataset: TrajectoryDataset) -> dict[str, Any]:
    returns = dataset.episode_returns()
    normalized = np.array([task.normalize(r) for r in returns])
    lengths = dataset.episode_lengths

    def stats(x: np.ndarray) -> dict[str, float]:
        return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}

    return {
        "task": task.name,
        "source": dataset.metadata.get("source", ""),
        "episodes": dataset.num_episodes,
        "transitions": dataset.num_transitions,
        "observation_shape": list(dataset.observation_shape),
        "action": ("discrete" if dataset.discrete_actions else "continuous", dataset.action_dim),
        "episode_length": stats(lengths.astype(np.float64)),
        "return": stats(returns),
        "normalized_return": stats(normalized),
        "terminals": int(dataset.terminals.sum()),
        "timeouts": int(dataset.timeouts.sum()),
        "content_hash": dataset.content_hash(),
    }
