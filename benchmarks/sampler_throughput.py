"""Window sampler throughput: vectorised `WindowSampler` vs the DT reference code's per-sample Python loop.

Run: .venv/bin/python benchmarks/sampler_throughput.py [--transitions 1000000] [--out reports/perf/sampler.json]
Uses a synthetic Hopper-shaped dataset (11-dim observations, 3-dim actions, 1000-step episodes) so it needs no
downloaded or generated data; the sampler's cost does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from bench.data.sampler import WindowSampler
from bench.data.trajectories import TrajectoryDataset


def synthetic(transitions: int, episode_len: int = 1000) -> TrajectoryDataset:
    rng = np.random.default_rng(0)
    n = transitions
    timeouts = np.zeros(n, bool)
    timeouts[episode_len - 1::episode_len] = True
    return TrajectoryDataset.from_flat(rng.normal(size=(n, 11)).astype(np.float32),
                                       rng.uniform(-1, 1, (n, 3)).astype(np.float32),
                                       rng.normal(size=n).astype(np.float32), np.zeros(n, bool), timeouts)


def reference_loop(ds: TrajectoryDataset, sampler: WindowSampler, batch: int, k: int,
                   rng: np.random.Generator) -> None:
    """One window at a time, as the DT/LaMo reference code's get_batch does."""
    lengths = ds.episode_lengths
    p = lengths / lengths.sum()
    for _ in range(batch):
        ep = int(rng.choice(len(lengths), p=p))
        start = int(rng.integers(0, lengths[ep]))
        s0 = int(ds.episode_starts[ep]) + start
        e0 = min(s0 + k, int(ds.episode_starts[ep + 1]))
        pad = k - (e0 - s0)
        np.concatenate([np.zeros((pad, sampler.obs.shape[1]), np.float32), sampler.obs[s0:e0]])
        np.concatenate([np.zeros((pad, 3), np.float32), ds.actions[s0:e0]])
        np.concatenate([np.zeros(pad, np.float32), sampler.rtg[s0:e0]])
        np.concatenate([np.zeros(pad, np.int64), sampler.timesteps[s0:e0]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("reports/perf/sampler_throughput.json"))
    args = parser.parse_args()
    ds = synthetic(args.transitions)
    sampler = WindowSampler(ds, args.k, reward_scale=1000.0)
    rng = np.random.default_rng(0)

    def rate(fn: object) -> float:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            fn()  # type: ignore[operator]
            n += 1
        return n * args.batch / (time.perf_counter() - start)

    vec = rate(lambda: sampler.sample(args.batch, rng))
    loop = rate(lambda: reference_loop(ds, sampler, args.batch, args.k, rng))
    doc = {"benchmark": "sampler_throughput", "transitions": args.transitions, "batch": args.batch, "k": args.k,
           "vectorised_windows_per_s": round(vec), "reference_loop_windows_per_s": round(loop),
           "speedup": round(vec / loop, 1), "device": f"CPU ({platform.processor() or platform.machine()})"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"windows/s: vectorised {vec:,.0f}, reference loop {loop:,.0f} ({vec / loop:.1f}x) "
          f"[{args.transitions:,} transitions, batch {args.batch}, K={args.k}] -> {args.out}")


if __name__ == "__main__":
    main()
