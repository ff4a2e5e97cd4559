"""The recipe-specific half of a dataset card: who produced the data, how, and how long it took.

`writer.write_dataset` adds the half that is computed from the data itself (sizes, return statistics,
content hash, versions).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from importlib import metadata
from typing import Any

from bench.data.build.config import Phase, SacSettings
from bench.data.build.rollout import RolloutStats
from bench.data.build.sac_trainer import SacTrainer, Selected


def sac_policy_card(
    settings: SacSettings, selected: Selected, phase: Phase, trainer: SacTrainer, training_reward: str, evaluation: str
) -> dict[str, Any]:
    return {
        "algorithm": f"SAC (d3rlpy {metadata.version('d3rlpy')}), trained online from scratch",
        "hyperparameters": asdict(settings),
        "training_steps": selected.step,
        "training_reward": training_reward,
        "selection": {
            "phase": phase.name,
            "band_normalized": list(phase.band),
            "target_normalized": phase.target,
            "stop_within": phase.tolerance,
            "max_steps": phase.max_steps,
            "evaluation": evaluation,
            "selected_step": selected.step,
            "selected_return": selected.raw,
            "selected_normalized": selected.normalized,
        },
    }


def collection_card(stats: RolloutStats, n_envs: int, actions: str, seeds: str) -> dict[str, Any]:
    return {
        "actions": actions,
        "episode_seeds": seeds,
        "parallel_envs": n_envs,
        "env_steps": stats.env_steps,
        "wall_s": round(stats.wall_s, 3),
        "env_steps_per_s": round(stats.steps_per_s, 1),
    }


def timing_card(started: float, trainer: SacTrainer | None) -> dict[str, Any]:
    """Wall times: this invocation, the policy's training summed over all runs, and the build as a whole.

    `build_wall_time_s` is what a build from scratch took: all checkpointed training (whichever process did
    it) plus this invocation's own collection and writing. Time lost in killed runs after their last
    checkpoint is not counted.
    """
    this_run = time.perf_counter() - started
    doc: dict[str, Any] = {"build_wall_time_s": round(this_run, 3), "this_invocation_wall_time_s": round(this_run, 3)}
    if trainer is not None:
        training = float(trainer.state["train_wall_s"])
        doc["build_wall_time_s"] = round(training + this_run - trainer.session_train_s, 3)
        doc["training_wall_time_s"] = round(training, 3)
        doc["training_runs_started_at_steps"] = [int(s) for s in trainer.state["starts"]]
    return doc
