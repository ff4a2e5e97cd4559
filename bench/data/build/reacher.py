"""Reacher2d medium: the LaMo paper's recipe (50 episodes of a policy scoring about 36, action noise 0.1).

SAC learns poorly from the sparse reward alone (it is zero almost everywhere for a random arm), so the
behaviour policy is trained on the shaped reward -||fingertip - target||; the dataset records the task's
sparse reward. Every evaluation runs exactly the dataset's recipe (episodes with seeds seed+0..seed+49,
deterministic action plus N(0, 0.1) noise), so the selected checkpoint's score is the dataset's own score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.build.card import collection_card, sac_policy_card, timing_card
from bench.data.build.config import ReacherRecipe
from bench.data.build.policy import GaussianActor, create_sac, load_policy
from bench.data.build.rollout import RawEpisode, RolloutStats, run_episodes
from bench.data.build.sac_trainer import Evaluation, SacTrainer
from bench.data.build.workdir import WorkDir, default_workdir
from bench.data.build.writer import env_spec, write_dataset
from bench.data.trajectories import TrajectoryDataset
from bench.envs.factory import make_env
from bench.tasks import Task

# Observation columns 10:12 are fingertip - target (bench/envs/reacher2d.py).
_DELTA = slice(10, 12)


def shaped_reward(next_obs: np.ndarray, reward: float) -> float:
    """Minus the fingertip-target distance after the step (the task's own reward is ignored)."""
    return -float(np.linalg.norm(next_obs[_DELTA]))


def build_reacher(task: Task, dataset_id: str, seed: int, transitions: int | None, progress: bool,
                  workdir: Path | None, recipe: ReacherRecipe,
                  on_checkpoint: Callable[[int], None] | None = None) -> Path:
    started = time.perf_counter()
    n_episodes = recipe.episodes if transitions is None else math.ceil(transitions / task.max_episode_steps)

    def rollouts(actor: GaussianActor, n: int, show: bool) -> tuple[list[RawEpisode], RolloutStats]:
        return run_episodes(
            lambda: make_env(task), lambda o, e: actor.noisy_mean(o, e, recipe.action_noise), act_dim=2,
            seeds=lambda i: seed + i, n_envs=min(recipe.n_envs, n), episodes=n, progress=show,
            desc="collect reacher2d",
        )

    def evaluate(actor: GaussianActor) -> Evaluation:
        eps, _ = rollouts(actor, recipe.episodes, False)
        raw = float(np.mean([e.episode_return for e in eps]))
        return Evaluation(raw, task.normalize(raw))

    trainer = SacTrainer(
        WorkDir(workdir or default_workdir(task, seed)), recipe.sac, lambda: make_env(task), evaluate,
        recipe.eval_every, seed,
        identity={"recipe": "reacher2d", "episodes": recipe.episodes, "action_noise": recipe.action_noise,
                  "shaped_reward": recipe.shaped_reward},
        train_reward=shaped_reward, progress=progress, on_checkpoint=on_checkpoint,
    )
    selected = trainer.run_phase(recipe.medium)
    algo = create_sac(recipe.sac, trainer.obs_dim, trainer.act_dim, seed)
    load_policy(algo, selected.policy_path)
    episodes, stats = rollouts(GaussianActor(algo), n_episodes, progress)

    def card(_: TrajectoryDataset) -> dict[str, Any]:
        return {
            "recipe": "LaMo paper Reacher2d medium: rollouts of a SAC policy stopped near normalized 36",
            "seed": seed,
            "behaviour_policy": sac_policy_card(
                recipe.sac, selected, recipe.medium, trainer,
                training_reward=f"shaped {recipe.shaped_reward}; the dataset records the task's sparse reward",
                evaluation=(f"{recipe.episodes} episodes with the dataset's recipe (seeds seed+i, tanh(mean) + "
                            f"N(0, {recipe.action_noise}) clipped to [-1, 1])"),
            ),
            "learning_curve": trainer.curve,
            "collection": collection_card(
                stats, min(recipe.n_envs, n_episodes),
                actions=f"tanh(mean) + N(0, {recipe.action_noise}) noise, clipped to [-1, 1]",
                seeds="episode i is reset with seed + i",
            ),
            **timing_card(started, trainer),
        }

    lo, hi = recipe.medium.band
    return write_dataset(
        task, dataset_id, episodes, env_spec(task), card,
        description=(f"Reacher2d medium (LaMo paper recipe): rollouts of a SAC policy whose evaluated sparse "
                     f"normalized score is closest to {recipe.medium.target:g} within [{lo:g}, {hi:g}]; "
                     "see card.json"),
        algorithm_name="SAC behaviour policy + Gaussian action noise 0.1",
    )
