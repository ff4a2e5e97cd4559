"""Summary statistics of a dataset, as printed by `bench data info` and stored in dataset cards."""

from __future__ import annotations

import json
from pathlib import Path
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


# Card fields that describe how a generated dataset compares with the original recipe (D4RL's, the paper's).
CARD_DIGEST_KEYS = ("recipe", "selection_rule", "reference", "differences_from_official", "rewards")


def card_digest(dataset_dir: Path, content_hash: str) -> dict[str, Any] | None:
    """The recipe-comparison part of a generated dataset's card.json, or None when it has no card.

    `card_matches_data` says whether the card was written for these very arrays (same content hash), so a
    card left beside replaced data is not shown as if it described them.
    """
    card_path = dataset_dir / "card.json"
    if not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return {"card_matches_data": False, "error": f"unreadable {card_path}"}
    digest = {k: card[k] for k in CARD_DIGEST_KEYS if k in card}
    digest["card_matches_data"] = card.get("content_hash") == content_hash
    return digest
