"""Window sampler throughput: vectorised `WindowSampler` vs the DT reference code's per-sample Python loop.

Run: .venv/bin/python benchmarks/sampler_throughput.py [--transitions 1000000] [--out reports/perf/sampler.json]
The measurement itself is `bench.perf.measure_sampler` (also part of `bench perf`): a synthetic Hopper-shaped
dataset, so it needs no downloaded or generated data; the sampler's cost does not depend on the values.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from bench.atomic import atomic_write_json
from bench.perf import measure_sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("reports/perf/sampler_throughput.json"))
    args = parser.parse_args()
    r = measure_sampler(transitions=args.transitions, batch=args.batch, k=args.k, seconds=args.seconds)
    vec, loop = r["vectorised_windows_per_s"], r["reference_loop_windows_per_s"]
    doc = {
        "benchmark": "sampler_throughput",
        "transitions": args.transitions,
        "batch": args.batch,
        "k": args.k,
        "vectorised_windows_per_s": round(vec),
        "reference_loop_windows_per_s": round(loop),
        "speedup": round(vec / loop, 1),
        "device": f"CPU ({platform.processor() or platform.machine()})",
    }
    atomic_write_json(args.out, doc)
    print(
        f"windows/s: vectorised {vec:,.0f}, reference loop {loop:,.0f} ({vec / loop:.1f}x) "
        f"[{args.transitions:,} transitions, batch {args.batch}, K={args.k}] -> {args.out}"
    )


if __name__ == "__main__":
    main()
