"""`bench perf`: the harness's speed, measured the same way every time, and compared against a baseline.

Figures: training steps/s and peak memory per agent at the paper's batch and context (each agent in a fresh
subprocess, so peak RSS is its own); evaluation episodes/s and env steps/s of the batched evaluator (window and
cached) against one episode at a time; window-sampler windows/s against the reference per-sample loop; and the
behaviour-policy collector's env steps/s. Where a figure has an in-run baseline it is also stored as a ratio,
which compares across machines; absolute numbers carry the device they came from. `--compare OLD.json` fails
(exit 1) when a ratio, or an absolute figure measured on the same device, drops by more than the threshold.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError

#: (agent, task, overrides, label): the paper's batch and context per task unless the label says otherwise.
TRAIN_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("dt", "hopper-medium", {}, "dt (batch 64, K=20)"),
    ("bc", "hopper-medium", {}, "bc (batch 256)"),
    ("cql", "hopper-medium", {}, "cql (batch 256)"),
    ("iql", "hopper-medium", {}, "iql (batch 256)"),
    ("td3+bc", "hopper-medium", {}, "td3+bc (batch 256)"),
    ("lamo", "hopper-medium", {"lm_layers": 4}, "lamo 4-layer SmolLM2 (batch 64, K=20)"),
    ("lamo", "hopper-medium", {}, "lamo full 30-layer SmolLM2 (batch 64, K=20)"),
]


def device_label() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()} x{os.cpu_count()}"


def synthetic_dataset(obs_dim: int, act_dim: int, transitions: int = 20_000, episode_len: int = 1000) -> Any:
    """Random data of a task's shape: speed does not depend on the values, and no dataset is needed."""
    from bench.data.trajectories import TrajectoryDataset

    rng = np.random.default_rng(0)
    n = transitions
    timeouts = np.zeros(n, bool)
    timeouts[episode_len - 1 :: episode_len] = True
    return TrajectoryDataset.from_flat(
        rng.normal(size=(n, obs_dim)).astype(np.float32),
        rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        rng.normal(size=n).astype(np.float32),
        np.zeros(n, bool),
        timeouts,
        name="synthetic",
    )


def _train_child(agent: str, task_name: str, overrides: dict[str, Any], steps: int, device: str) -> dict[str, Any]:
    """Runs in a fresh process: build the agent, warm up, time `steps` training steps."""
    import torch

    from agents.base import TaskSpec
    from agents.registry import make_agent
    from bench.tasks import get_task

    torch.set_num_threads(1)
    task = get_task(task_name)
    spec = TaskSpec.from_task(task, observation_shape=(11,), action_dim=3)
    data = synthetic_dataset(11, 3)
    a = make_agent(agent, task, spec, overrides, device=device, seed=0)
    a.fit(data, 1)  # warm-up: first-call allocations and lazy builds out of the timing
    start = time.perf_counter()
    a.fit(data, steps)
    elapsed = time.perf_counter() - start
    total, trainable = a.num_params()
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {
        "steps_per_s": steps / elapsed,
        "steps": steps,
        "params_total": total,
        "params_trainable": trainable,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mib": peak_gpu,
        "batch_size": getattr(a.config, "batch_size", None),
    }


def measure_train(
    agent: str, task: str, overrides: dict[str, Any], steps: int, device: str = "cpu", timeout: float = 900.0
) -> dict[str, Any]:
    code = (
        "import json,sys; from bench.perf import _train_child; "
        "print('PERF_JSON', json.dumps(_train_child(*json.loads(sys.argv[1]))))"
    )
    args = json.dumps([agent, task, overrides, steps, device])
    try:
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code, args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    for line in out.stdout.splitlines():
        if line.startswith("PERF_JSON "):
            return dict(json.loads(line[len("PERF_JSON ") :]))
    tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": tail[:300]}


def measure_sampler(transitions: int = 1_000_000, batch: int = 64, k: int = 20, seconds: float = 2.0) -> dict[str, Any]:
    """Vectorised window sampling vs the DT reference code's one-window-at-a-time loop."""
    from bench.data.sampler import WindowSampler

    ds = synthetic_dataset(11, 3, transitions)
    sampler = WindowSampler(ds, k, reward_scale=1000.0)
    rng = np.random.default_rng(0)
    lengths = ds.episode_lengths
    p = lengths / lengths.sum()

    def reference() -> None:
        for _ in range(batch):
            ep = int(rng.choice(len(lengths), p=p))
            s0 = int(ds.episode_starts[ep]) + int(rng.integers(0, lengths[ep]))
            e0 = min(s0 + k, int(ds.episode_starts[ep + 1]))
            pad = k - (e0 - s0)
            np.concatenate([np.zeros((pad, 11), np.float32), sampler.obs[s0:e0]])
            np.concatenate([np.zeros((pad, 3), np.float32), ds.actions[s0:e0]])
            np.concatenate([np.zeros(pad, np.float32), sampler.rtg[s0:e0]])
            np.concatenate([np.zeros(pad, np.int64), sampler.timesteps[s0:e0]])

    def rate(fn: Any) -> float:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
            n += 1
        return n * batch / (time.perf_counter() - start)

    vec = rate(lambda: sampler.sample(batch, rng))
    loop = rate(reference)
    return {
        "transitions": transitions,
        "batch": batch,
        "k": k,
        "vectorised_windows_per_s": vec,
        "reference_loop_windows_per_s": loop,
        "ratio": vec / loop,
    }


def eval_comparison(
    task_name: str = "hopper-medium",
    episodes: int = 20,
    max_steps: int = 300,
    k: int = 20,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[Any, Any, dict[str, Any]]:
    """(task, agent, {evaluator: EvalResult}): the same untrained DT evaluated one episode at a time (the
    reference evaluators' way) and batched in window and cached modes, on the same episodes.

    Hopper and Walker2d run without early termination so an untrained policy's episodes last `max_steps` and
    fill the window. `benchmarks/eval_throughput.py` reports the same runs in more detail.
    """
    from agents.base import TaskSpec
    from agents.dt import DTAgent
    from bench.evaluate import evaluate, evaluate_sequential
    from bench.tasks import get_task

    base = get_task(task_name)
    kwargs = dict(base.env_kwargs)
    if base.domain in ("hopper", "walker2d"):
        kwargs["terminate_when_unhealthy"] = False
    task = dataclasses.replace(base, max_episode_steps=max_steps, env_kwargs=kwargs, context_length=k)
    agent = DTAgent(
        DTAgent.default_config(base).with_overrides({"context_length": k}),
        TaskSpec.from_task(task),
        device=device,
        seed=seed,
    )
    target = [task.rtg_targets[0]]
    evaluate(agent, task, 2, seed, target)  # warm-up: first-call costs out of the timings

    def factory(mode: Any) -> Any:
        return lambda n, t: agent.make_policy(n, t, mode=mode)

    runs = {
        "sequential_window": evaluate_sequential(agent, task, episodes, seed, target, policy_factory=factory("window")),
        "batched_window": evaluate(agent, task, episodes, seed, target, policy_factory=factory("window")),
        "batched_cached": evaluate(agent, task, episodes, seed, target, policy_factory=factory("cached")),
    }
    return task, agent, {name: results[0] for name, results in runs.items()}


def measure_eval(
    task_name: str = "hopper-medium", episodes: int = 20, max_steps: int = 300, k: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Episodes/s and env steps/s of each evaluator in `eval_comparison`, and the batched ones' speed-ups."""
    _, _, runs = eval_comparison(task_name, episodes, max_steps, k, seed)
    out: dict[str, Any] = {"task": task_name, "episodes": episodes, "max_steps": max_steps, "k": k}
    for name, res in runs.items():
        out[name] = {"episodes_per_s": episodes / res.wall_time_s, "env_steps_per_s": res.env_steps / res.wall_time_s}
    seq = runs["sequential_window"].wall_time_s
    out["ratio_batched_window"] = seq / runs["batched_window"].wall_time_s
    out["ratio_batched_cached"] = seq / runs["batched_cached"].wall_time_s
    return out


def measure_collector(task_name: str = "hopper-medium", num_envs: int = 10, steps: int = 5000) -> dict[str, Any]:
    """Env steps/s of the dataset builder's collector: vectorised envs + one batched policy forward per step."""
    import torch

    from bench.data.build.config import SacSettings
    from bench.data.build.policy import GaussianActor, create_sac
    from bench.data.build.rollout import run_episodes
    from bench.envs.factory import make_env
    from bench.tasks import get_task

    torch.set_num_threads(1)
    task = get_task(task_name)
    actor = GaussianActor(create_sac(SacSettings(), 11, 3, seed=0))  # untrained: speed only
    _, stats = run_episodes(
        lambda: make_env(task), actor.sample, 3, seeds=lambda i: i, n_envs=num_envs, min_transitions=steps
    )
    return {"task": task_name, "num_envs": num_envs, "env_steps": stats.env_steps, "env_steps_per_s": stats.steps_per_s}


def _ratios(doc: dict[str, Any]) -> dict[str, float]:
    """The machine-independent figures of a perf document (name -> value, higher is better)."""
    out = {}
    if "sampler" in doc:
        out["sampler.ratio"] = doc["sampler"]["ratio"]
    if "eval" in doc:
        out["eval.ratio_batched_window"] = doc["eval"]["ratio_batched_window"]
        out["eval.ratio_batched_cached"] = doc["eval"]["ratio_batched_cached"]
    return out


def _absolute(doc: dict[str, Any]) -> dict[str, float]:
    out = {}
    for label, r in doc.get("train", {}).items():
        if "steps_per_s" in r:
            out[f"train.{label}"] = r["steps_per_s"]
    if "sampler" in doc:
        out["sampler.vectorised_windows_per_s"] = doc["sampler"]["vectorised_windows_per_s"]
    if "eval" in doc:
        out["eval.batched_cached.env_steps_per_s"] = doc["eval"]["batched_cached"]["env_steps_per_s"]
    if "collector" in doc and "env_steps_per_s" in doc["collector"]:
        out["collector.env_steps_per_s"] = doc["collector"]["env_steps_per_s"]
    return out


def compare(new: dict[str, Any], old: dict[str, Any], threshold: float) -> tuple[list[dict[str, Any]], bool]:
    """Rows of (figure, old, new, change) and whether any figure regressed by more than `threshold`.

    Ratios always compare; absolute figures only when both documents come from the same device."""
    rows = []
    regressed = False
    pairs = [(k, v, _ratios(old).get(k)) for k, v in _ratios(new).items()]
    if new.get("device") == old.get("device"):
        pairs += [(k, v, _absolute(old).get(k)) for k, v in _absolute(new).items()]
    for key, value, before in pairs:
        if before is None or before == 0:
            continue
        change = value / before - 1.0
        bad = change < -threshold
        regressed |= bad
        rows.append({"figure": key, "old": before, "new": value, "change": change, "regression": bad})
    return rows, regressed


def run_perf(quick: bool = False, agents: list[str] | None = None, device: str = "cpu") -> dict[str, Any]:
    """All figures; `quick` shrinks every measurement (for CI), the full run stays under 10 minutes on 2 cores."""
    from agents.registry import get_entry

    doc: dict[str, Any] = {
        "device": device_label(),
        "python": platform.python_version(),
        "quick": quick,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train": {},
    }
    for agent, task, overrides, label in TRAIN_CASES:
        if agents and agent not in agents:
            continue
        lamo = get_entry(agent).family == "lamo"
        full_lm = lamo and "lm_layers" not in overrides
        if quick and full_lm:
            continue
        # LaMo steps take 20-50 s on one CPU core at the paper's batch: a few are enough for a rate, and
        # the whole command stays under 10 minutes.
        steps = (2 if full_lm else 4) if lamo and device == "cpu" else (5 if quick else 20)
        doc["train"][label] = measure_train(agent, task, overrides, steps, device)
    doc["sampler"] = measure_sampler(transitions=200_000 if quick else 1_000_000, seconds=1.0 if quick else 2.0)
    doc["eval"] = measure_eval(episodes=10 if quick else 20, max_steps=100 if quick else 300)
    try:
        doc["collector"] = measure_collector(steps=1000 if quick else 5000)
    except (ImportError, BenchError) as e:
        doc["collector"] = {"error": str(e)}
    return doc


def check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise BenchError(f"threshold {threshold} is out of range; accepted: a fraction in (0, 1), e.g. 0.3")
    return threshold


def load_perf(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise BenchError(f"perf file {path} does not exist; accepted: a JSON written by `bench perf`") from None
    except json.JSONDecodeError as e:
        raise BenchError(f"perf file {path} is not valid JSON: {e}") from None
