"""What LaMo's `cached` inference mode changes in score: one checkpoint, both modes, the same episodes.

`window` (LaMo's default) re-encodes the last K steps every step, as the model was trained and as the official
evaluation runs; `cached` keeps a sliding-window key/value cache (agents.models.trajectory): identical for the
first K steps, different afterwards because deeper layers see context from beyond the window. This script loads
a LaMo checkpoint written by `bench train lamo ...` (its config is read from the checkpoint), evaluates it in
both modes with the same episode seeds for every return-to-go target, and writes the per-target scores, the
per-episode score differences and the wall time of each mode. Sparse-reward scores can hide a change, so it
also records every action and reports how far the cached actions are from the window's: before step K (where the
two must agree) and from step K on, up to the first step where the episodes can have drifted apart (the first
action difference changes the next state; the gap after that mixes model and state differences).

    bench train lamo reacher2d-medium --steps 300 --eval-every 300 --episodes 2 --name lamo-cached-vs-window \\
        --set lm_layers=2 --set batch_size=8 --set lm_batch_size=1 --set lm_block_size=32 --set warmup_steps=20
    .venv/bin/python benchmarks/lamo_cached_vs_window.py results/lamo-cached-vs-window/<trial>/checkpoint \\
        [--episodes 20] [--seed 0] [--out results/lamo_cached_vs_window.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import TaskSpec
from agents.checkpoint import read_checkpoint
from agents.dt import CHECKPOINT_FILE
from agents.lamo import LaMoAgent, LaMoConfig
from bench.atomic import atomic_write_json
from bench.errors import BenchError
from bench.evaluate import evaluate
from bench.tasks import get_task


def load_agent(checkpoint: Path) -> LaMoAgent:
    payload = read_checkpoint(checkpoint, CHECKPOINT_FILE, "lamo")
    config = LaMoConfig(**payload["config"])
    spec_fields = dict(payload["spec"])
    spec_fields["observation_shape"] = tuple(spec_fields["observation_shape"])
    spec_fields["rtg_targets"] = tuple(spec_fields["rtg_targets"])
    agent = LaMoAgent(config, TaskSpec(**spec_fields), seed=int(payload["seed"]))
    agent.load(checkpoint)
    return agent


class RecordingPolicy:
    """Delegates to a policy and keeps every batch of actions it returns."""

    def __init__(self, policy: Any, log: list[np.ndarray]) -> None:
        self.policy, self.log = policy, log

    def act(self, observations: np.ndarray) -> np.ndarray:
        action: np.ndarray = self.policy.act(observations)
        self.log.append(np.array(action, dtype=np.float64))
        return action

    def observe(self, rewards: np.ndarray) -> None:
        self.policy.observe(rewards)


def _action_gap(window: list[np.ndarray], cached: list[np.ndarray], k: int) -> dict[str, float]:
    steps = min(len(window), len(cached))
    gaps = [float(np.abs(window[t] - cached[t]).max()) for t in range(steps)]
    first = next((t for t, g in enumerate(gaps) if g > 1e-5), steps)
    return {
        "max_abs_gap_before_k": max(gaps[:k], default=0.0),
        "first_step_differing": first,
        "max_abs_gap_at_first_difference": gaps[first] if first < steps else 0.0,
        "mean_abs_gap_from_k": float(np.mean(gaps[k:])) if steps > k else 0.0,
    }


def run(checkpoint: Path, episodes: int, seed: int) -> dict[str, Any]:
    agent = load_agent(checkpoint)
    task = get_task(agent.spec.task)
    modes: dict[str, Any] = {}
    actions: dict[str, dict[str, list[np.ndarray]]] = {"window": {}, "cached": {}}
    for mode in ("window", "cached"):

        def factory(n: int, t: float | None, m: str = mode) -> RecordingPolicy:
            log = actions[m].setdefault(str(t), [])
            return RecordingPolicy(agent.make_policy(n, t, mode=m), log)  # type: ignore[arg-type]

        results = evaluate(agent, task, episodes, seed, policy_factory=factory)  # type: ignore[arg-type]
        modes[mode] = {
            str(r.target): {
                "score_mean": float(np.mean(r.scores)),
                "score_std": float(np.std(r.scores)),
                "scores": list(r.scores),
                "seeds": list(r.seeds),
                "wall_s": round(r.wall_time_s, 2),
            }
            for r in results
        }
    diffs = {}
    for target, w in modes["window"].items():
        c = modes["cached"][target]
        assert w["seeds"] == c["seeds"]
        gap = np.subtract(c["scores"], w["scores"])
        diffs[target] = {
            "mean_cached_minus_window": float(gap.mean()),
            "max_abs_episode_gap": float(np.abs(gap).max()),
            "episodes_identical": int((gap == 0).sum()),
            **_action_gap(actions["window"][target], actions["cached"][target], agent.config.context_length),
        }
    return {
        "checkpoint": str(checkpoint),
        "task": task.name,
        "episodes": episodes,
        "seed": seed,
        "context_length": agent.config.context_length,
        "max_episode_steps": task.max_episode_steps,
        "config": {k: agent.config.to_dict()[k] for k in ("lm_source", "lm_layers", "batch_size", "lm_block_size")},
        "modes": modes,
        "cached_minus_window": diffs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/lamo_cached_vs_window.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        out = run(args.checkpoint, args.episodes, args.seed)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_json(args.out, out)
    for target, d in out["cached_minus_window"].items():
        w, c = out["modes"]["window"][target], out["modes"]["cached"][target]
        print(
            f"target {target}: window {w['score_mean']:.2f} ± {w['score_std']:.2f} ({w['wall_s']} s), "
            f"cached {c['score_mean']:.2f} ± {c['score_std']:.2f} ({c['wall_s']} s), "
            f"mean gap {d['mean_cached_minus_window']:+.2f}, identical episodes {d['episodes_identical']}"
            f"/{out['episodes']}; actions: max gap before K {d['max_abs_gap_before_k']:.1e}, first differing "
            f"step {d['first_step_differing']} (gap {d['max_abs_gap_at_first_difference']:.3f}), mean gap from "
            f"K {d['mean_abs_gap_from_k']:.3f}"
        )
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
