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
        **({"kitchen": kitchen_summary(task, dataset)} if task.domain == "kitchen" else {}),
    }


def kitchen_summary(task: Task, dataset: TrajectoryDataset) -> dict[str, Any]:
    """How a kitchen dataset's rewards are labelled and how many episodes reach the targets.

    D4RL's and Minari's files are labelled Markovian (each step: targets satisfied then); a file labelled the
    task-removing way (each subtask once) has returns of at most the number of targets. Which one a file
    uses is inferred from its returns, so mixing files of the two kinds shows up here.
    """
    n_targets = len(task.env_kwargs.get("tasks_to_complete", ()))
    returns = dataset.episode_returns()
    markovian = bool(returns.max(initial=0.0) > n_targets)
    peaks = np.array([float(ep.rewards.max(initial=0.0)) for ep in dataset.episodes()])
    finals = np.array([float(ep.rewards[-1]) if len(ep.rewards) else 0.0 for ep in dataset.episodes()])
    solved = int((peaks >= n_targets).sum()) if markovian else int((returns >= n_targets).sum())
    summary: dict[str, Any] = {
        "targets": n_targets,
        "reward_labels": (
            "markovian: targets satisfied at each step (D4RL/Minari)"
            if markovian
            else "each subtask once (task-removing); returns at most the number of targets"
        ),
        "episodes_satisfying_all_targets": {"count": solved, "fraction": round(solved / max(1, len(returns)), 4)},
    }
    if markovian:
        summary["note"] = (
            "normalized_return applies the evaluation scale (each subtask once, 0-4) to Markovian "
            "returns, so it is far above 100 here and is not a score"
        )
        summary["targets_satisfied_at_episode_end"] = {
            "mean": float(finals.mean()),
            "min": float(finals.min()),
            "max": float(finals.max()),
        }
        summary["most_targets_satisfied_at_once"] = {str(k): int((peaks == k).sum()) for k in range(n_targets + 1)}
    return summary


def d4rl_comparison(task: Task, normalized_mean: float) -> dict[str, Any] | None:
    """A locomotion dataset's mean normalized return next to the D4RL v2 figures it is built to resemble.

    D4RL v2 publishes its medium and expert policies' means (`bench.data.build.config.D4RL_V2`); a medium
    dataset should sit near the first, a medium-expert one between the two, a medium-replay one below the
    first (it is the training buffer up to that policy). None for tasks without a D4RL locomotion recipe.
    """
    from bench.data.build.config import D4RL_V2

    ref = D4RL_V2.get(task.domain)
    if ref is None:
        return None
    doc: dict[str, Any] = {
        "normalized_mean": round(normalized_mean, 2),
        "d4rl_v2_medium_normalized": ref.medium_normalized,
    }
    if task.dataset == "medium-expert":
        doc["d4rl_v2_expert_normalized"] = ref.expert_normalized
    return doc


def d4rl_line(doc: dict[str, Any]) -> str:
    ref = f"D4RL v2 medium {doc['d4rl_v2_medium_normalized']:g}"
    if "d4rl_v2_expert_normalized" in doc:
        ref += f", expert {doc['d4rl_v2_expert_normalized']:g}"
    return f"normalized mean {doc['normalized_mean']:.1f} ({ref})"


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
