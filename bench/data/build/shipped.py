"""Behaviour policies shipped with the project, so D4RL-style locomotion datasets build without training.

Training a SAC behaviour policy to D4RL's medium level takes about an hour per environment on a CPU; rolling
one out for 1M transitions takes minutes. So the selected checkpoints of our own training runs are committed
as `datasets/policies/<env>-<phase>.safetensors` with a JSON card beside each (`bench data ship-policy`
writes both), and `bench data build hopper-medium` only rolls the shipped policy out (`--retrain` trains
from scratch instead, `bench.data.build.locomotion`).

Where the policies live: `bench.paths.policies_root()`, the repository's `datasets/policies/`, on purpose
*not* under LAMO_BENCH_DATA: they are part of the project (committed, reviewed, hashed in dataset cards),
not part of the regenerable data cache, so a data root elsewhere still finds them. LAMO_BENCH_POLICIES moves
them (tests use it).

Integrity: the card is written after the weights and records their sha256; loading refuses a file whose
hash differs from its card's, so a half-exported pair or an edited file is never rolled out silently.

Determinism: the policy network is evaluated in float64 numpy from the float32 weights (one row per
observation, no torch state involved) and the action is rounded to float32 at the end, so a row's action
does not depend on how many observations are batched with it. Episode i is reset with seed `seed + i` and
draws its noise from its own generator (`rollout.run_episodes`), and episodes are collected in fixed blocks
of `BLOCK_EPISODES` that worker processes run in any order and that are put back in order. So the dataset
is a function of (policy, seed, size) only: the number of parallel envs and of worker processes change the
wall time, never the bytes (tested).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bench.atomic import atomic_write_bytes, atomic_write_json
from bench.data.build.config import D4RL_V2, LocomotionRecipe, SacSettings
from bench.data.build.rollout import RawEpisode, RolloutStats, run_episodes, take_transitions
from bench.data.build.sac_trainer import Selected, derived_seed
from bench.errors import BenchError
from bench.paths import REPO_ROOT, policies_root
from bench.tasks import Task, get_task

PHASES = ("medium", "expert")
# The policies each shipped-policy dataset rolls out, in order (medium-expert: D4RL's medium + expert halves).
DATASET_PHASES: dict[str, tuple[str, ...]] = {"medium": ("medium",), "medium-expert": ("medium", "expert")}
# Expert half of medium-expert: episode i is reset with seed + EXPERT_SEED_OFFSET + i, as in the retrain path
# (`bench.data.build.locomotion.EXPERT_SEED_OFFSET`, repeated here so this module does not import d3rlpy).
EXPERT_SEED_OFFSET = 10_000_000
# Random stream of the card's evaluation episodes (sac_trainer uses 1-4), apart from every dataset seed.
SHIP_EVAL_STREAM = 5
# Episodes per unit of work of the parallel rollout. Any value gives the same dataset; this one keeps a
# block of Hopper or HalfCheetah episodes a few seconds long, so workers stay busy without overshooting much.
BLOCK_EPISODES = 32
CARD_FORMAT = 1
SAFETENSORS_FORMAT = "lamo-bench shipped SAC policy v1"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def policy_files(domain: str, phase: str) -> tuple[Path, Path]:
    """(weights, card) of one shipped policy."""
    root = policies_root()
    return root / f"{domain}-{phase}.safetensors", root / f"{domain}-{phase}.json"


def _display(path: Path) -> str:
    """A path relative to the repository when it is inside it (what a dataset card should name)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _dataset_of_phase(phase: str) -> str:
    return "medium" if phase == "medium" else "medium-expert"


class NumpyGaussianActor:
    """d3rlpy's SAC `NormalPolicy` (ReLU MLP encoder, linear mu and clamped linear log-std), in float64 numpy.

    Same function as `policy.GaussianActor` on d3rlpy's module (checked at export and in the tests), but each
    observation's action is computed independently of the batch it is in, with no torch random state.
    """

    def __init__(self, weights: dict[str, np.ndarray], min_logstd: float, max_logstd: float) -> None:
        n_layers = len([k for k in weights if k.startswith("_encoder._layers.") and k.endswith(".weight")])
        indices = sorted(
            int(k.split(".")[2]) for k in weights if k.startswith("_encoder._layers.") and k.endswith(".weight")
        )
        if n_layers == 0 or "_mu.weight" not in weights or "_logstd.weight" not in weights:
            raise ValueError(f"not a d3rlpy NormalPolicy state dict (keys: {', '.join(sorted(weights))})")
        self.hidden = [
            (
                weights[f"_encoder._layers.{i}.weight"].astype(np.float64).T,
                weights[f"_encoder._layers.{i}.bias"].astype(np.float64),
            )
            for i in indices
        ]
        self.mu = (weights["_mu.weight"].astype(np.float64).T, weights["_mu.bias"].astype(np.float64))
        self.logstd = (weights["_logstd.weight"].astype(np.float64).T, weights["_logstd.bias"].astype(np.float64))
        self.min_logstd, self.max_logstd = float(min_logstd), float(max_logstd)
        self.obs_dim = int(self.hidden[0][0].shape[0])
        self.act_dim = int(self.mu[0].shape[1])

    def mean_logstd(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.asarray(obs, np.float64)
        for w, b in self.hidden:
            h = np.maximum(h @ w + b, 0.0)
        mu = h @ self.mu[0] + self.mu[1]
        logstd = np.clip(h @ self.logstd[0] + self.logstd[1], self.min_logstd, self.max_logstd)
        return mu, logstd

    def sample(self, obs: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """tanh(mu + std * eps): the SAC policy's own stochastic action, as D4RL collected."""
        mu, logstd = self.mean_logstd(obs)
        out: np.ndarray = np.tanh(mu + np.exp(logstd) * eps).astype(np.float32)
        return out


# --- the safetensors file -----------------------------------------------------------------------------------


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file: 8-byte little-endian header length, then a JSON header."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta: dict[str, str] = header.get("__metadata__", {})
    return meta


def encode_policy(weights: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    from safetensors.numpy import save

    return bytes(save({k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}, metadata=meta))


def decode_policy(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors.numpy import load

    weights = load(data)
    return weights, _safetensors_metadata(data)


# --- loading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedPolicy:
    """One shipped policy, its card and the actor that rolls it out."""

    domain: str
    phase: str
    path: Path
    card: dict[str, Any]
    actor: NumpyGaussianActor
    weights: dict[str, np.ndarray]

    @property
    def sha256(self) -> str:
        return str(self.card["sha256"])

    def selected(self) -> Selected:
        """The card's selection as the trainer's `Selected`, for the D4RL reference part of dataset cards."""
        sel = self.card["selection"]
        return Selected(
            self.phase, int(self.card["training_steps"]), float(sel["raw"]), float(sel["normalized"]), self.path
        )


def _export_hint(domain: str, phase: str) -> str:
    return (
        f"export it with `bench data ship-policy {domain} --phase {phase}` from a trained work dir, or build with "
        f"--retrain to train one here"
    )


def load_shipped(domain: str, phase: str) -> ShippedPolicy:
    """The shipped policy, refused with one line when missing, unreadable or not the file its card describes."""
    weights_path, card_path = policy_files(domain, phase)
    restore = f"restore it with `git checkout -- {_display(weights_path.parent)}` or re-export it"
    if not weights_path.is_file() or not card_path.is_file():
        missing = weights_path if not weights_path.is_file() else card_path
        raise BenchError(f"no shipped {phase} policy for {domain}: {missing} is missing; {_export_hint(domain, phase)}")
    try:
        card = json.loads(card_path.read_text())
        expected = str(card["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BenchError(f"unreadable policy card {card_path} ({type(e).__name__}: {e}); {restore}") from None
    data = weights_path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BenchError(
            f"shipped policy {weights_path} has sha256 {actual[:12]}..., its card {card_path.name} says "
            f"{expected[:12]}...; {restore}"
        )
    try:
        weights, meta = decode_policy(data)
        actor = NumpyGaussianActor(weights, float(meta["min_logstd"]), float(meta["max_logstd"]))
    except Exception as e:  # safetensors raises its own error types; any of them means a bad file
        raise BenchError(f"cannot read shipped policy {weights_path} ({type(e).__name__}: {e}); {restore}") from None
    if (actor.obs_dim, actor.act_dim) != (int(card["obs_dim"]), int(card["act_dim"])):
        raise BenchError(
            f"shipped policy {weights_path} maps {actor.obs_dim} -> {actor.act_dim} dims, its card says "
            f"{card['obs_dim']} -> {card['act_dim']}; {restore}"
        )
    return ShippedPolicy(domain, phase, weights_path, card, actor, weights)


def shipped_cards() -> list[Path]:
    """Every committed policy card (the band test runs over these)."""
    root = policies_root()
    return sorted(root.glob("*.json")) if root.is_dir() else []


# --- rollouts -----------------------------------------------------------------------------------------------


def _run_block(
    task_name: str,
    weights: dict[str, np.ndarray],
    bounds: tuple[float, float],
    seeds: list[int],
    n_envs: int,
    first_index: int,
) -> tuple[list[RawEpisode], RolloutStats]:
    """One block of episodes (a worker process's unit of work; also run in-process when workers == 1)."""
    from bench.envs.factory import make_env

    task = get_task(task_name)
    actor = NumpyGaussianActor(weights, *bounds)
    eps, stats = run_episodes(
        lambda: make_env(task),
        actor.sample,
        actor.act_dim,
        seeds=lambda j: seeds[j],
        n_envs=min(n_envs, len(seeds)),
        episodes=len(seeds),
    )
    from dataclasses import replace

    return [replace(e, index=first_index + e.index) for e in eps], stats


def _worker_init() -> None:
    # One BLAS thread per worker process: the workers are the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class _Blocks:
    """Blocks of episodes collected in order, and whether they already cover what a rollout asked for."""

    def __init__(self, block_args: Any, episodes: int | None, transitions: int | None) -> None:
        self.block_args, self.episodes, self.transitions = block_args, episodes, transitions
        self.results: dict[int, tuple[list[RawEpisode], RolloutStats]] = {}
        self.next_block = 0

    def enough(self) -> bool:
        """The blocks collected in order so far cover what was asked."""
        done_steps, b = 0, 0
        while b in self.results:
            done_steps += self.results[b][1].env_steps
            b += 1
        if self.episodes is not None:
            return b * BLOCK_EPISODES >= self.episodes
        assert self.transitions is not None
        return done_steps >= self.transitions

    def likely_enough(self, running: int) -> bool:
        """The blocks done and `running` will probably cover `transitions` (at the done blocks' mean length),
        so no more are started: only the order of blocks matters for the data, this only saves work."""
        if self.transitions is None or not self.results:
            return False
        mean = sum(s.env_steps for _, s in self.results.values()) / len(self.results)
        return (len(self.results) + running) * mean >= self.transitions

    def more(self) -> bool:
        return self.episodes is None or self.next_block * BLOCK_EPISODES < self.episodes

    def done(self, b: int, result: tuple[list[RawEpisode], RolloutStats], bar: Any) -> None:
        self.results[b] = result
        bar.update(result[1].env_steps if self.transitions else len(result[0]))

    def collect_here(self, bar: Any) -> None:
        while not self.enough() and self.more():
            self.done(self.next_block, _run_block(*self.block_args(self.next_block)), bar)
            self.next_block += 1

    def collect_in_pool(self, workers: int, bar: Any) -> None:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            running: dict[int, Future[tuple[list[RawEpisode], RolloutStats]]] = {}
            while not self.enough():
                while len(running) < 2 * workers and self.more() and not (running and self.likely_enough(len(running))):
                    running[self.next_block] = pool.submit(_run_block, *self.block_args(self.next_block))
                    self.next_block += 1
                # Wait for the oldest block: results are used in order, so it is the one that decides.
                oldest = min(running)
                self.done(oldest, running.pop(oldest).result(), bar)
            for f in running.values():
                f.cancel()

    def episodes_in_order(self) -> list[RawEpisode]:
        collected: list[RawEpisode] = []
        b = 0
        while b in self.results:
            collected += self.results[b][0]
            b += 1
        return collected


def rollout(
    task: Task,
    policy: ShippedPolicy,
    seed_of: Any,
    *,
    transitions: int | None = None,
    episodes: int | None = None,
    n_envs: int = 16,
    workers: int = 1,
    progress: bool = False,
    desc: str = "rollouts",
) -> tuple[list[RawEpisode], RolloutStats]:
    """Episodes 0, 1, ... of the policy (episode i reset with `seed_of(i)`), in blocks of `BLOCK_EPISODES`.

    With `transitions`, blocks are collected until their episodes hold at least that many steps and the first
    `transitions` are returned (`take_transitions`): the same episodes, cut at the same step, as a single
    `run_episodes(min_transitions=...)` would give. With `episodes`, exactly those episodes.
    """
    if (episodes is None) == (transitions is None):
        raise ValueError("give exactly one of episodes and transitions")
    from tqdm import tqdm

    bounds = (policy.actor.min_logstd, policy.actor.max_logstd)
    started = time.perf_counter()

    def block_args(b: int) -> tuple[Any, ...]:
        first = b * BLOCK_EPISODES
        last = first + BLOCK_EPISODES if episodes is None else min(first + BLOCK_EPISODES, episodes)
        return (task.name, policy.weights, bounds, [int(seed_of(i)) for i in range(first, last)], n_envs, first)

    blocks = _Blocks(block_args, episodes, transitions)
    bar = tqdm(
        total=transitions or episodes,
        desc=desc,
        unit="step" if transitions else "ep",
        disable=not progress,
        leave=False,
        mininterval=2.0,
    )
    try:
        if workers <= 1:
            blocks.collect_here(bar)
        else:
            blocks.collect_in_pool(workers, bar)
    finally:
        bar.close()
    collected = blocks.episodes_in_order()
    if transitions is not None:
        collected = take_transitions(collected, transitions)
    elif episodes is not None:
        collected = collected[:episodes]
    steps = sum(s.env_steps for _, s in blocks.results.values())
    return collected, RolloutStats(len(collected), steps, time.perf_counter() - started)


def evaluate(
    task: Task, policy: ShippedPolicy, seed: int, episodes: int, workers: int = 1, first: int = 0
) -> dict[str, Any]:
    """Normalized and raw returns of `episodes` stochastic episodes on the card's evaluation seeds."""
    eps, stats = rollout(
        task,
        policy,
        lambda i: derived_seed(seed, SHIP_EVAL_STREAM, first + i),
        episodes=episodes,
        n_envs=min(episodes, 16),
        workers=workers,
    )
    raw = np.array([e.episode_return for e in eps])
    normalized = np.array([task.normalize(r) for r in raw])
    return {
        "episodes": episodes,
        "normalized_mean": round(float(normalized.mean()), 3),
        "normalized_std": round(float(normalized.std()), 3),
        "raw_mean": round(float(raw.mean()), 3),
        "raw_std": round(float(raw.std()), 3),
        "actions": "sampled from the policy's squashed Gaussian (stochastic), as in dataset collection",
        "episode_seeds": f"episode i is reset with derived_seed(seed={seed}, stream={SHIP_EVAL_STREAM}, i), "
        "apart from every dataset episode's seed",
        "seed": seed,
        "episode_returns": [round(float(r), 4) for r in raw],
        "wall_s": round(stats.wall_s, 3),
    }


# --- export -------------------------------------------------------------------------------------------------


def _read_state(workdir: Path, domain: str) -> dict[str, Any]:
    state_path = workdir / "state.json"
    if not state_path.is_file():
        raise BenchError(
            f"no training state at {state_path}; train the policy first with `bench data build "
            f"{domain}-medium --retrain` or pass --workdir"
        )
    try:
        state: dict[str, Any] = json.loads(state_path.read_text())
    except (OSError, ValueError) as e:
        raise BenchError(f"unreadable training state {state_path} ({e})") from None
    recipe = state.get("identity", {}).get("recipe")
    if recipe != f"d4rl-{domain}":
        raise BenchError(f"work dir {workdir} holds a {recipe!r} run, not d4rl-{domain}; pass the {domain} work dir")
    return state


def export_policy(
    domain: str,
    phase: str = "medium",
    *,
    workdir: Path | None = None,
    seed: int = 0,
    eval_episodes: int = 100,
    workers: int | None = None,
    train_command: str | None = None,
    export_command: str | None = None,
    allow_outside_band: bool = False,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Write `<env>-<phase>.safetensors` and its card from a work dir's selected checkpoint; return the card.

    The shipped bytes are evaluated first; a policy whose evaluation falls outside its band is refused unless
    `allow_outside_band` (then the card says `"in_band": false`). Then the weights are written and the card
    (holding their sha256) last, each atomically: a kill between the two leaves a pair that `load_shipped`
    refuses (hash mismatch), never one that loads wrongly.
    """
    from bench.data.build.workdir import default_workdir
    from bench.envs.factory import env_spaces

    if domain not in D4RL_V2:
        raise BenchError(f"no shipped-policy recipe for {domain!r}; accepted: {', '.join(D4RL_V2)}")
    if phase not in PHASES:
        raise BenchError(f"phase {phase!r} is not accepted; use one of {', '.join(PHASES)}")
    if eval_episodes < 1:
        raise BenchError(f"--eval-episodes {eval_episodes} is not accepted; use 1 or more")
    started = time.perf_counter()
    task = get_task(f"{domain}-{_dataset_of_phase(phase)}")
    wd = Path(workdir) if workdir is not None else default_workdir(task, seed)
    state = _read_state(wd, domain)
    entry = state.get("phases", {}).get(phase) or {}
    if entry.get("step") is None or not entry.get("done"):
        status = f"selected step {entry['step']}, phase still training" if entry.get("step") else "none selected yet"
        raise BenchError(
            f"work dir {wd} has no finished {phase} phase ({status}; trained to step {state.get('step')}); let "
            f"`bench data build {task.name} --retrain --seed {seed}` finish first"
        )
    identity = state["identity"]
    sac: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in identity["sac"].items()}
    settings = SacSettings(**sac)
    pt_path = wd / entry["policy"]
    obs_shape, act_dim = env_spaces(task)
    obs_dim = int(np.prod(obs_shape))
    weights, bounds = _checked_weights(pt_path, settings, obs_dim, act_dim, seed)
    meta = {
        "format": SAFETENSORS_FORMAT,
        "env_id": task.env_id,
        "phase": phase,
        "min_logstd": repr(bounds[0]),
        "max_logstd": repr(bounds[1]),
    }
    weights_path, card_path = policy_files(domain, phase)
    data = encode_policy(weights, meta)
    digest = hashlib.sha256(data).hexdigest()
    band, target, tolerance = identity["bands"][phase]
    ref = D4RL_V2[domain]
    workers = default_workers() if workers is None else workers
    # Evaluate the very bytes that will be shipped, before anything is written.
    shipped_weights, _ = decode_policy(data)
    shipped = ShippedPolicy(
        domain, phase, weights_path, {"sha256": digest}, NumpyGaussianActor(shipped_weights, *bounds), shipped_weights
    )
    evaluation = evaluate(task, shipped, seed, eval_episodes, workers=workers)
    in_band = bool(band[0] <= evaluation["normalized_mean"] <= band[1])
    if not in_band and not allow_outside_band:
        raise BenchError(
            f"the {phase} policy of {wd} scores {evaluation['normalized_mean']:.1f} normalized on {eval_episodes} "
            f"episodes, outside its band [{band[0]:g}, {band[1]:g}]; nothing written (pass --allow-outside-band "
            "to ship it anyway, flagged in its card)"
        )
    evaluation["in_band"] = in_band
    atomic_write_bytes(weights_path, data)
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "file": weights_path.name,
        "sha256": digest,
        "env": domain,
        "env_id": task.env_id,
        "phase": phase,
        "algorithm": f"SAC (d3rlpy {metadata.version('d3rlpy')}), trained online from scratch",
        "sac_settings": identity["sac"],
        "hidden_units": list(settings.hidden_units),
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "policy": "squashed Gaussian: action = tanh(mu + exp(clip(logstd, min, max)) * eps), eps ~ N(0, I); "
        "weights float32 (d3rlpy's NormalPolicy state dict), evaluated in float64",
        "logstd_bounds": list(bounds),
        "training_steps": int(entry["step"]),
        "seed": int(identity["seed"]),
        "selection": {
            "raw": float(entry["raw"]),
            "normalized": float(entry["normalized"]),
            "how": f"{identity['eval_episodes']} stochastic episodes every {identity['eval_every']} steps; a score "
            f"inside the band re-measured on {identity['confirm_episodes']} episodes; the checkpoint closest to "
            "the target kept",
            "band_normalized": list(band),
            "target_normalized": target,
            "stop_within": tolerance,
        },
        "evaluation": evaluation,
        "d4rl_v2_reference_normalized": ref.medium_normalized if phase == "medium" else ref.expert_normalized,
        "learning_curve": state.get("curve", []),
        "train_wall_s": round(float(state.get("train_wall_s", 0.0)), 1),
        "train_command": train_command
        or f"bench data build {task.name} --retrain --seed {int(identity['seed'])}  (work dir {wd})",
        "export_command": export_command
        or f"bench data ship-policy {domain} --phase {phase} --seed {seed} --workdir {wd} "
        f"--eval-episodes {eval_episodes}",
        "source_checkpoint": {"workdir": str(wd), "file": entry["policy"], "sha256": sha256_of(pt_path)},
        "export_wall_s": round(time.perf_counter() - started, 1),
        "versions": {
            n: metadata.version(n) for n in ("d3rlpy", "torch", "numpy", "gymnasium", "mujoco", "safetensors")
        },
    }
    atomic_write_json(card_path, card)
    if progress:
        print(
            f"{weights_path}: sha256 {digest}, {eval_episodes} episodes normalized {evaluation['normalized_mean']:.1f}"
        )
    return card_path, card


def _checked_weights(
    pt_path: Path, settings: SacSettings, obs_dim: int, act_dim: int, seed: int
) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """The checkpoint's policy weights, loaded through d3rlpy's own module (which checks every key and shape),
    with its log-std bounds; refused if the numpy actor does not reproduce the module's outputs."""
    import torch

    from bench.data.build.policy import create_sac, load_policy, policy_module

    if not pt_path.is_file():
        raise BenchError(f"selected checkpoint {pt_path} is missing; the work dir is incomplete")
    algo = create_sac(settings, obs_dim, act_dim, seed)
    try:
        load_policy(algo, pt_path)
    except (RuntimeError, OSError, ValueError) as e:
        raise BenchError(f"cannot load checkpoint {pt_path} into a SAC policy ({type(e).__name__}: {e})") from None
    module = policy_module(algo)
    weights = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}
    lo: Any = module._min_logstd
    hi: Any = module._max_logstd
    bounds = (float(lo), float(hi))
    actor = NumpyGaussianActor(weights, *bounds)
    probe = np.random.default_rng(0).standard_normal((64, obs_dim)).astype(np.float32)
    with torch.no_grad():
        out = module(torch.as_tensor(probe))
    mu, logstd = actor.mean_logstd(probe)
    if not (np.allclose(mu, out.mu.numpy(), atol=1e-4) and np.allclose(logstd, out.logstd.numpy(), atol=1e-4)):
        raise BenchError(f"the numpy policy does not reproduce d3rlpy's module for {pt_path}; d3rlpy's policy changed?")
    return weights, bounds


# --- datasets from shipped policies -------------------------------------------------------------------------


SHIPPED_OVERRIDES = ("n_envs", "workers", "transitions")


def build_from_shipped(
    task: Task, dataset_id: str, seed: int, transitions: int | None, progress: bool, recipe: LocomotionRecipe
) -> Path:
    """medium / medium-expert of a locomotion task, rolled out from the shipped policies only."""
    from bench.data.build.card import collection_card, timing_card
    from bench.data.build.locomotion import d4rl_reference_card
    from bench.data.build.writer import env_spec, write_dataset

    if task.dataset not in DATASET_PHASES:
        raise BenchError(f"{task.name} is not built from shipped policies (accepted: {', '.join(DATASET_PHASES)})")
    started = time.perf_counter()
    policies = {phase: load_shipped(task.domain, phase) for phase in DATASET_PHASES[task.dataset]}
    n = transitions or recipe.transitions
    workers = recipe.workers or default_workers()
    episodes: list[RawEpisode] = []
    collection: dict[str, Any] = {}
    sampled = "sampled from the shipped SAC policy's squashed Gaussian (its own stochasticity), as D4RL did"
    for phase, policy in policies.items():
        offset = 0 if phase == "medium" else EXPERT_SEED_OFFSET
        eps, stats = rollout(
            task,
            policy,
            lambda i, o=offset: seed + o + i,
            transitions=n,
            n_envs=recipe.n_envs,
            workers=workers,
            progress=progress,
            desc=f"collect {phase}",
        )
        episodes += [e for e in eps]
        seeds = "episode i is reset with seed + i" if offset == 0 else f"episode i is reset with seed + {offset} + i"
        collection[phase] = {
            **collection_card(stats, recipe.n_envs, sampled, seeds),
            "worker_processes": workers,
            "note": "the data do not depend on parallel_envs or worker_processes (bench.data.build.shipped)",
        }

    def card(_: Any) -> dict[str, Any]:
        return {
            "recipe": f"D4RL {task.dataset}: rollouts of the shipped SAC behaviour "
            f"polic{'y' if len(policies) == 1 else 'ies'} on {task.env_id} (no training)",
            "seed": seed,
            "behaviour_policy": {
                phase: {
                    "shipped_policy": _display(p.path),
                    "sha256": p.sha256,
                    "card": _display(p.path.with_suffix(".json")),
                    "algorithm": p.card.get("algorithm"),
                    "training_steps": p.card.get("training_steps"),
                    "selection": p.card.get("selection"),
                    "evaluation_normalized": {
                        k: p.card.get("evaluation", {}).get(k)
                        for k in ("episodes", "normalized_mean", "normalized_std")
                    },
                    "train_wall_s": p.card.get("train_wall_s"),
                }
                for phase, p in policies.items()
            },
            "collection": collection,
            "reference": d4rl_reference_card(
                task,
                recipe,
                {phase: p.selected() for phase, p in policies.items()},
                len(episodes),
                sum(len(e) for e in episodes),
            ),
            **timing_card(started, None),
        }

    return write_dataset(
        task,
        dataset_id,
        episodes,
        env_spec(task),
        card,
        description=f"{task.name}: D4RL-style {task.dataset} data rolled out from the shipped policy on "
        f"{task.env_id}; see card.json",
        algorithm_name="SAC (d3rlpy), shipped policy",
    )


def replay_needs_training(task: Task) -> BenchError:
    """medium-replay is a training run's buffer: it cannot come from a shipped policy alone."""
    _, card_path = policy_files(task.domain, "medium")
    took = ""
    if card_path.is_file():
        try:
            hours = float(json.loads(card_path.read_text())["train_wall_s"]) / 3600
            took = f" (the shipped medium policy's training took {hours:.1f} h)"
        except (OSError, ValueError, KeyError, TypeError):
            took = ""
    return BenchError(
        f"{task.name} is the behaviour policy's training buffer, which is not shipped (only the final policy is) "
        f"and no trained work dir was found: build it with `bench data build {task.name} --retrain`{took}"
    )
