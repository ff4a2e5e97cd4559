"""Does LaMo's auxiliary language loss keep the LM's language ability? (the paper's claim, measured)

Held-out perplexity of the LaMo LM (python-docs eval split, first 20 blocks of 256 tokens) before LaMo training
and after the same short training with lm_loss_weight 0.1 and 0: same seed, steps, decision batches and
initial weights; only the weight differs (core: `agents.lamo.language_retention`).

Defaults and why:
- the full 30-block SmolLM2. A truncated SmolLM2 is not a language model any more (perplexity on this split:
  18.5 with 30 blocks, about 6e5 with 24, 1e7 to 4e8 with 16, 8, 4 or 2), so "keeping its language ability"
  can only be measured on the whole one.
- learning rate 1e-3 (10x the paper's 1e-4) with 5 warm-up steps instead of 2500, so a CPU-sized run of a few
  dozen steps moves the LoRA adapters as far as a long paper-rate run would start to; batch 16 decision
  windows (K=5) and language batches of 2 x 256 tokens.
- data: the committed Reacher2d medium dataset when present, else 20 random-policy Reacher2d episodes rolled
  out here.

    .venv/bin/python benchmarks/lamo_language_retention.py [--steps 60] [--lm-layers N] [--lr 1e-3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.lamo import language_retention
from bench.atomic import atomic_write_json
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.paths import reports_root
from bench.tasks import get_task


def random_reacher(episodes: int = 20, seed: int = 0) -> TrajectoryDataset:
    import gymnasium as gym

    import bench.envs  # noqa: F401  (registers bench/Reacher2d-v0)

    env = gym.make("bench/Reacher2d-v0")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + i)
        rows: dict[str, list[Any]] = {"observations": [], "actions": [], "rewards": []}
        done = False
        while not done:
            action = rng.uniform(-1, 1, 2).astype(np.float32)
            rows["observations"].append(obs)
            rows["actions"].append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            rows["rewards"].append(reward)
            done = bool(terminated or truncated)
        n = len(rows["rewards"])
        out.append(
            {
                "observations": np.asarray(rows["observations"], np.float32),
                "actions": np.asarray(rows["actions"], np.float32),
                "rewards": np.asarray(rows["rewards"], np.float32),
                "terminals": np.zeros(n, bool),
                "timeouts": np.arange(n) == n - 1,
            }
        )
    env.close()
    return TrajectoryDataset.from_episodes(out, name="reacher2d-random")


def task_dataset() -> TrajectoryDataset:
    from bench.data.loaders import load_task_dataset

    try:
        return load_task_dataset(get_task("reacher2d-medium"))
    except BenchError as err:
        print(f"committed reacher2d dataset unavailable ({err}); rolling out a random policy")
        return random_reacher()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lm-layers", type=int, default=None, help="truncate the LM (default: all blocks)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lm-block-size", type=int, default=256)
    parser.add_argument("--eval-blocks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = get_task("reacher2d-medium")
    dataset = task_dataset()
    overrides = {
        "lm_layers": args.lm_layers,
        "learning_rate": args.lr,
        "warmup_steps": 5,
        "batch_size": args.batch_size,
        "lm_block_size": args.lm_block_size,
    }
    start = time.perf_counter()
    result = language_retention(
        task,
        dataset,
        steps=args.steps,
        overrides=overrides,
        eval_blocks=args.eval_blocks,
        seed=args.seed,
        log_every=max(1, args.steps // 6),
        progress=lambda msg: print(msg, flush=True),
    )
    result.update(
        {
            "benchmark": "lamo_language_retention",
            "command": " ".join([sys.executable, *sys.argv]),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "threads": args.threads,
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__},
        }
    )
    print()
    print(f"{'lm_loss_weight':>14} {'ppl before':>11} {'ppl after':>10} {'ratio':>7} {'decision loss':>20}")
    for run in result["runs"]:
        print(
            f"{run['lm_loss_weight']:>14} {result['perplexity_before']:>11.3f} {run['perplexity_after']:>10.3f} "
            f"{run['perplexity_ratio']:>7.3f} {run['decision_loss_first']:>9.4f} -> {run['decision_loss_last']:.4f}"
        )
    out = args.out or reports_root() / "perf" / "lamo_language_retention.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
