"""MuJoCo locomotion datasets, D4RL's recipe on the gymnasium v5 environments.

- medium: rollouts of the SAC checkpoint whose score is closest to D4RL v2's own medium mean for that
  environment (hopper 44, halfcheetah 41, walker2d 62 normalized; `config.D4RL_V2`), within a band of
  +-8 around it; actions sampled from the policy's own Gaussian as D4RL did;
- medium-replay: every transition of that policy's training run up to the selected medium checkpoint (its
  replay buffer; D4RL v2's medium-replay is the buffer up to its medium policy), even when the run was
  trained further for the expert phase;
- medium-expert: the medium rollouts followed by as many rollouts of the same run trained further, to the
  checkpoint closest to D4RL's expert-v2 mean (hopper 108, halfcheetah 88, walker2d 107) (D4RL concatenated
  its medium and expert datasets, so this is twice `transitions`).
Remaining differences from D4RL, also in each card: gymnasium v5 environments instead of mujoco-py v2 ones;
d3rlpy SAC instead of rlkit SAC; D4RL's expert policy was a separate, fully trained run, ours continues the
medium run; the medium-replay size is wherever our run reached the medium band, not D4RL's.
The three share one work dir per environment and seed, so whichever is built first trains the policy and
the others reuse it. Checkpoint evaluation uses the stochastic policy too, since that is what is collected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.build.card import collection_card, sac_policy_card, timing_card
from bench.data.build.config import D4RL_V2, LocomotionRecipe
from bench.data.build.policy import GaussianActor, create_sac, load_policy
from bench.data.build.replay import load_chunk
from bench.data.build.rollout import RawEpisode, RolloutStats, run_episodes, take_transitions
from bench.data.build.sac_trainer import (
    CONFIRM_STREAM,
    EVAL_STREAM,
    Evaluation,
    SacTrainer,
    Selected,
    derived_seed,
)
from bench.data.build.workdir import WorkDir, default_workdir
from bench.data.build.writer import env_spec, write_dataset
from bench.data.trajectories import TrajectoryDataset
from bench.envs.factory import make_env
from bench.errors import BenchError
from bench.tasks import Task

# Expert-half episodes of medium-expert use seeds seed + EXPERT_SEED_OFFSET + i, apart from the medium half's.
EXPERT_SEED_OFFSET = 10_000_000
DATASETS = ("medium", "medium-replay", "medium-expert")


def replay_episodes(trainer: SacTrainer, upto_step: int) -> list[RawEpisode]:
    """The training run's transitions up to `upto_step`, split into episodes at every recorded end."""
    chunks = [load_chunk(p) for p in trainer.chunk_paths(upto_step)]
    data = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    ends = np.flatnonzero(data["ends"]) + 1
    episodes = []
    start = 0
    for i, stop in enumerate(ends):
        terms = data["terminals"][start:stop].astype(bool)
        episodes.append(
            RawEpisode(
                index=i,
                seed=None,
                observations=np.concatenate(
                    [data["observations"][start:stop], data["next_observations"][stop - 1 : stop]]
                ),
                actions=data["actions"][start:stop],
                rewards=data["rewards"][start:stop],
                terminations=terms,
                truncations=~terms & data["ends"][start:stop],
            )
        )
        start = int(stop)
    return episodes


def d4rl_reference_card(
    task: Task, recipe: LocomotionRecipe, policies: dict[str, Selected], n_episodes: int, n_transitions: int
) -> dict[str, Any]:
    """This dataset's headline figures next to D4RL v2's, and what still differs from D4RL's recipe."""
    ref = D4RL_V2[task.domain]
    doc: dict[str, Any] = {
        "d4rl_v2": {
            "medium_return_mean": ref.medium_raw,
            "medium_normalized_mean": ref.medium_normalized,
            "expert_normalized_mean": ref.expert_normalized,
            "medium_replay_transitions": ref.medium_replay_transitions,
            "medium_transitions": 1_000_000,
            "expert_transitions": 1_000_000,
        },
        "this_dataset": {
            "episodes": n_episodes,
            "transitions": n_transitions,
            **{f"{name}_policy_normalized": round(sel.normalized, 2) for name, sel in policies.items()},
            "medium_band_normalized": list(recipe.medium.band),
            "expert_target_normalized": recipe.expert.target,
        },
        "differences_from_d4rl": [
            f"environment {task.env_id} (gymnasium, mujoco package) instead of D4RL's mujoco-py -v2 one",
            "SAC from d3rlpy instead of rlkit",
            "expert = the medium run trained further, not a separate fully trained run",
            "medium-replay size = training steps until the medium checkpoint, not D4RL's "
            f"{ref.medium_replay_transitions}",
        ],
    }
    return doc


def build_locomotion(
    task: Task,
    dataset_id: str,
    seed: int,
    transitions: int | None,
    progress: bool,
    workdir: Path | None,
    recipe: LocomotionRecipe,
    on_checkpoint: Callable[[int], None] | None = None,
) -> Path:
    if task.dataset not in DATASETS:
        raise BenchError(f"no recipe for dataset {task.dataset!r} of {task.domain}; accepted: {', '.join(DATASETS)}")
    started = time.perf_counter()
    probe = make_env(task)
    act_dim = int(np.prod(probe.action_space.shape or (1,)))
    probe.close()

    def evaluator(stream: int, episodes: int) -> Callable[[GaussianActor], Evaluation]:
        def evaluate(actor: GaussianActor) -> Evaluation:
            eps, _ = run_episodes(
                lambda: make_env(task),
                actor.sample,
                act_dim,
                seeds=lambda j: derived_seed(seed, stream, j),
                n_envs=min(episodes, 50),
                episodes=episodes,
            )
            raw = float(np.mean([e.episode_return for e in eps]))
            return Evaluation(raw, task.normalize(raw))

        return evaluate

    trainer = SacTrainer(
        WorkDir(workdir or default_workdir(task, seed)),
        recipe.sac,
        lambda: make_env(task),
        evaluator(EVAL_STREAM, recipe.eval_episodes),
        recipe.eval_every,
        seed,
        # The bands decide which checkpoint is selected, so a resumed build must have the same ones
        # (max_steps may be raised to continue a run that did not reach its band).
        identity={
            "recipe": f"d4rl-{task.domain}",
            "eval_episodes": recipe.eval_episodes,
            "confirm_episodes": recipe.confirm_episodes,
            "bands": {p.name: [list(p.band), p.target, p.tolerance] for p in (recipe.medium, recipe.expert)},
        },
        progress=progress,
        on_checkpoint=on_checkpoint,
        confirm=evaluator(CONFIRM_STREAM, recipe.confirm_episodes) if recipe.confirm_episodes > 0 else None,
    )
    medium = trainer.run_phase(recipe.medium)
    n = transitions or recipe.transitions

    def collect(sel: Selected, offset: int, label: str) -> tuple[list[RawEpisode], RolloutStats]:
        algo = create_sac(recipe.sac, trainer.obs_dim, trainer.act_dim, seed)
        load_policy(algo, sel.policy_path)
        eps, stats = run_episodes(
            lambda: make_env(task),
            GaussianActor(algo).sample,
            act_dim,
            seeds=lambda i: seed + offset + i,
            n_envs=recipe.n_envs,
            min_transitions=n,
            progress=progress,
            desc=f"collect {label}",
        )
        return take_transitions(eps, n), stats

    policies: dict[str, Any] = {}
    collection: dict[str, Any] = {}
    seeds_note = "episode i is reset with seed + i"
    sampled = "sampled from the SAC policy's squashed Gaussian (its own stochasticity), as D4RL did"
    if task.dataset == "medium-replay":
        episodes = replay_episodes(trainer, medium.step)
        if transitions is not None:
            episodes = take_transitions(episodes, transitions)
        collection = {
            "source": f"replay buffer of training steps 1..{medium.step} (random actions for the first "
            f"{recipe.sac.random_steps}), episodes cut at every checkpoint are timeouts"
        }
        policies["medium"] = medium
    else:
        episodes, stats = collect(medium, 0, "medium")
        collection["medium"] = collection_card(stats, recipe.n_envs, sampled, seeds_note)
        policies["medium"] = medium
        if task.dataset == "medium-expert":
            expert = trainer.run_phase(recipe.expert)
            expert_eps, expert_stats = collect(expert, EXPERT_SEED_OFFSET, "expert")
            episodes = episodes + expert_eps
            collection["expert"] = collection_card(
                expert_stats, recipe.n_envs, sampled, f"episode i is reset with seed + {EXPERT_SEED_OFFSET} + i"
            )
            policies["expert"] = expert
    evaluation = (
        f"{recipe.eval_episodes} episodes of the stochastic policy every {recipe.eval_every} steps; "
        f"a score inside the band is re-measured on {recipe.confirm_episodes} episodes and that decides "
        "(evaluation seeds apart from the dataset's)"
    )
    phases = {"medium": recipe.medium, "expert": recipe.expert}

    def card(_: TrajectoryDataset) -> dict[str, Any]:
        return {
            "recipe": f"D4RL {task.dataset}: SAC behaviour policy trained online on {task.env_id}",
            "seed": seed,
            "behaviour_policy": {
                name: sac_policy_card(recipe.sac, sel, phases[name], trainer, "the task's dense reward", evaluation)
                for name, sel in policies.items()
            },
            "learning_curve": trainer.curve,
            "collection": collection,
            "reference": d4rl_reference_card(task, recipe, policies, len(episodes), sum(len(e) for e in episodes)),
            **timing_card(started, trainer),
        }

    return write_dataset(
        task,
        dataset_id,
        episodes,
        env_spec(task),
        card,
        description=f"{task.name}: D4RL-style {task.dataset} data generated on {task.env_id}; see card.json",
        algorithm_name="SAC (d3rlpy)",
    )
