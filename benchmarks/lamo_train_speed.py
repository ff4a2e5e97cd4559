"""LaMo training speed: steps/s and peak memory per backbone size, batch shape and language-loss weight.

Each measurement runs in a fresh process (so the peak resident memory of one configuration is not inherited by
the next): build the agent, one warm-up step, then `steps` timed steps of `LaMoAgent.fit` on a synthetic
HalfCheetah-shaped dataset (17-dim observations, 6-dim actions, MLP embeddings; only speed matters here).

CPU grid: SmolLM2-135M with all 30 blocks and truncated to 4, at the paper's batch 64 / K=20 (language
sequences of 1024 tokens, batch 2) and at the quick profile's batch 16 / K=5 (language sequences of 256 tokens),
each with lm_loss_weight 0.1 and 0, plus the quick profile's 2-block backbone with language batches of 2 x 256,
2 x 128 and 1 x 128 tokens. Peak memory on CPU is the process's peak resident set size (ru_maxrss),
reported with the resident size right after the agent was built, so the difference is what training adds.

With a GPU (torch.cuda.is_available()) the grid adds the paper's GPT-2-small-size configuration: a GPT-2 small
architecture (12 blocks, 768 wide, 12 heads) with random weights and SmolLM2's tokenizer as a stand-in for the
pre-trained `gpt2` (no hub access is assumed; speed does not depend on the weights), and the full SmolLM2, at
batch 64 / K=20 with bf16 autocast; peak memory there is torch.cuda.max_memory_allocated.

The script also times one evaluation step (`policy.act`, 10 parallel episodes, K=20, history already K steps
long) of the full SmolLM2 in the "window" (default, official) and "cached" (speed option) modes.

    .venv/bin/python benchmarks/lamo_train_speed.py [--threads 1] [--only-cpu] [--no-eval] [--quick]
        [--select TEXT --merge]   (re-measure some rows only, keeping the others in the JSON)

Each CPU measurement runs under an address-space limit of the memory available at its start minus a margin
(--memory-margin-gb): the paper-shape row with the full backbone and the language loss peaks near 21 GB, and on
a shared machine a row that does not fit is reported as out of memory rather than taking others down with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

TASK_NAME = "halfcheetah-medium"


def _dataset(seed: int = 0) -> Any:
    from bench.data.trajectories import TrajectoryDataset

    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(20):
        n = 200
        episodes.append(
            {
                "observations": rng.normal(size=(n, 17)).astype(np.float32),
                "actions": rng.uniform(-1, 1, size=(n, 6)).astype(np.float32),
                "rewards": rng.normal(size=n).astype(np.float32),
                "terminals": np.zeros(n, bool),
                "timeouts": np.arange(n) == n - 1,
            }
        )
    return TrajectoryDataset.from_episodes(episodes, name="synthetic-halfcheetah")


def gpt2_small_standin(folder: Path) -> str:
    """A random GPT-2 small (124M-class) saved as a local model folder, with SmolLM2's tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from agents.lm.backbone import load_tokenizer

    if not (folder / "config.json").is_file():
        tokenizer = load_tokenizer("smollm2-135m")
        torch.manual_seed(0)
        config = GPT2Config(
            vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id
        )  # GPT-2 small: 12 x 768, 12 heads, 1024 positions
        GPT2LMHeadModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _available_mb() -> float:
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) / 1024


def measure(row: dict[str, Any]) -> dict[str, Any]:
    """One configuration in a fresh process; a configuration that does not fit its memory limit is reported
    as such instead of running the machine out of memory (other jobs share it)."""
    limit = row.get("memory_limit_mb")
    if limit:
        cap = int(limit * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        return _measure(row)
    except Exception as err:  # reported in the row: one failed configuration must not lose the others
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return {**row, "error": f"{type(err).__name__} under a {limit} MiB address-space limit: {text[:160]}"}


def _measure(row: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(int(row["threads"]))
    from agents.base import TaskSpec
    from agents.lamo import LaMoAgent
    from bench.tasks import get_task

    task = get_task(TASK_NAME)
    dataset = _dataset()
    device = row["device"]
    overrides = {
        "lm_source": row["lm_source"],
        "lm_layers": row["lm_layers"],
        "batch_size": row["batch_size"],
        "context_length": row["context_length"],
        "lm_loss_weight": row["lm_loss_weight"],
        "lm_block_size": row["lm_block_size"],
        "lm_batch_size": row.get("lm_batch_size", 2),
        "warmup_steps": 1,
        "compile": row.get("compile", False),
        "amp": row.get("amp", True),
    }
    start = time.perf_counter()
    agent = LaMoAgent(
        LaMoAgent.default_config(task).with_overrides(overrides),
        TaskSpec.from_task(task, dataset),
        device=device,
        seed=0,
    )
    if row["lm_loss_weight"] > 0:
        _ = agent.corpus  # built or read from its cache outside the timing
    build_s = time.perf_counter() - start
    rss_built = _rss_mb()
    cuda = device.startswith("cuda")
    agent.fit(dataset, 1)  # warm-up: allocator, first-call and (if any) compilation costs
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    agent.fit(dataset, int(row["steps"]))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    total, trainable = agent.num_params()
    out = {
        **row,
        "build_s": round(build_s, 2),
        "timed_s": round(seconds, 2),
        "steps_per_s": round(row["steps"] / seconds, 4),
        "s_per_step": round(seconds / row["steps"], 3),
        "params_total": total,
        "params_trainable": trainable,
    }
    if cuda:
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        out["rss_after_build_mb"] = round(rss_built, 1)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["training_extra_mb"] = round(out["peak_rss_mb"] - rss_built, 1)
    return out


def measure_eval(threads: int, device: str, num_envs: int = 10, timed: int = 3) -> dict[str, Any]:
    """Seconds per `act` of the full SmolLM2 LaMo policy at K=20 once the history is K steps long."""
    torch.set_num_threads(threads)
    from agents.base import TaskSpec
    from agents.lamo import LaMoAgent
    from bench.tasks import get_task

    task = get_task(TASK_NAME)
    dataset = _dataset()
    agent = LaMoAgent(
        LaMoAgent.default_config(task).with_overrides({"lm_loss_weight": 0.0}),
        TaskSpec.from_task(task, dataset),
        device=device,
        seed=0,
    )
    rng = np.random.default_rng(0)
    result: dict[str, Any] = {"num_envs": num_envs, "context_length": 20, "device": device, "threads": threads}
    for mode in ("cached", "window"):
        policy = agent.make_policy(num_envs, 6000.0, mode=mode)
        k = agent.config.context_length
        for _ in range(k - 1):  # fill the history; not timed
            policy.act(rng.normal(size=(num_envs, 17)).astype(np.float32))
            policy.observe(np.zeros(num_envs))
        start = time.perf_counter()
        for _ in range(timed):
            policy.act(rng.normal(size=(num_envs, 17)).astype(np.float32))
            policy.observe(np.zeros(num_envs))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        result[f"{mode}_s_per_act"] = round((time.perf_counter() - start) / timed, 4)
    result["window_over_cached"] = round(result["window_s_per_act"] / result["cached_s_per_act"], 1)
    return result


def grid(threads: int, quick: bool, cuda: bool, standin: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    shapes = [(64, 20, 1024), (16, 5, 256)]
    for lm_layers in (None, 4):
        for batch, k, block in shapes:
            for weight in (0.1, 0.0):
                full_big = lm_layers is None and batch == 64
                steps = 1 if quick else (2 if full_big else (3 if lm_layers is None else 5))
                rows.append(
                    {
                        "device": "cpu",
                        "threads": threads,
                        "lm_source": "smollm2-135m",
                        "lm_layers": lm_layers,
                        "batch_size": batch,
                        "context_length": k,
                        "lm_block_size": block,
                        "lm_loss_weight": weight,
                        "steps": steps,
                    }
                )
    # The quick profile's own backbone (2 blocks), with language batches from 2 x 256 tokens down to 1 x 128.
    for block, lm_batch, weight in ((256, 2, 0.1), (128, 2, 0.1), (128, 1, 0.1), (256, 2, 0.0)):
        rows.append(
            {
                "device": "cpu",
                "threads": threads,
                "lm_source": "smollm2-135m",
                "lm_layers": 2,
                "batch_size": 16,
                "context_length": 5,
                "lm_block_size": block,
                "lm_batch_size": lm_batch,
                "lm_loss_weight": weight,
                "steps": 1 if quick else 10,
            }
        )
    if cuda:
        for source, layers in ((standin, None), ("smollm2-135m", None)):
            for weight in (0.1, 0.0):
                rows.append(
                    {
                        "device": "cuda",
                        "threads": threads,
                        "lm_source": source,
                        "lm_layers": layers,
                        "batch_size": 64,
                        "context_length": 20,
                        "lm_block_size": 1024,
                        "lm_loss_weight": weight,
                        "steps": 20,
                        "amp": True,
                    }
                )
    return rows


def _label(row: dict[str, Any]) -> str:
    source = "gpt2-small(random)" if str(row["lm_source"]).endswith("gpt2-small-standin") else row["lm_source"]
    layers = "all" if row["lm_layers"] is None else row["lm_layers"]
    return (
        f"{row['device']} {source} layers={layers} B={row['batch_size']} K={row['context_length']} "
        f"lambda={row['lm_loss_weight']} lm={row.get('lm_batch_size', 2)}x{row['lm_block_size']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per measurement")
    parser.add_argument("--only-cpu", action="store_true", help="skip the GPU rows even when a GPU is present")
    parser.add_argument("--no-eval", action="store_true", help="skip the window/cached evaluation timing")
    parser.add_argument("--quick", action="store_true", help="one timed step per configuration")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default reports/perf/...)")
    parser.add_argument("--select", default="", help="only the rows whose label contains this text")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update the rows (and evaluation) measured now in the existing JSON, keep the others",
    )
    parser.add_argument(
        "--memory-margin-gb",
        type=float,
        default=2.0,
        help="each measurement may use the memory available at its start minus this margin",
    )
    args = parser.parse_args(argv)
    from bench.atomic import atomic_write_json
    from bench.paths import reports_root

    out = args.out or reports_root() / "perf" / "lamo_train_speed.json"
    cuda = torch.cuda.is_available() and not args.only_cpu
    standin = gpt2_small_standin(Path(tempfile.gettempdir()) / "lamo-gpt2-small-standin") if cuda else None
    rows = [row for row in grid(args.threads, args.quick, cuda, standin) if args.select in _label(row)]
    results: list[dict[str, Any]] = []
    context = get_context("spawn")
    for row in rows:
        row = {**row, "label": _label(row)}
        if row["device"] == "cpu":
            row["memory_limit_mb"] = round(_available_mb() - 1024 * args.memory_margin_gb)
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                result = pool.submit(measure, row).result()
        except BrokenProcessPool:
            result = {**row, "error": "the measuring process died (killed for memory?)"}
        results.append(result)
        if "error" in result:
            print(f"{row['label']:<75} {result['error']}", flush=True)
            continue
        memory = (
            f"peak CUDA {result['peak_cuda_mb']} MiB"
            if "peak_cuda_mb" in result
            else f"peak RSS {result['peak_rss_mb']} MiB (+{result['training_extra_mb']} over the built agent)"
        )
        print(f"{row['label']:<75} {result['steps_per_s']:8.4f} steps/s  {memory}", flush=True)
    evaluation: dict[str, Any] | None = None
    if not args.no_eval:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            evaluation = pool.submit(measure_eval, args.threads, "cpu").result()
        print(
            f"evaluation (full SmolLM2, 10 episodes, K=20): window {evaluation['window_s_per_act']} s/act, "
            f"cached {evaluation['cached_s_per_act']} s/act ({evaluation['window_over_cached']}x)",
            flush=True,
        )
    report: dict[str, Any] = {
        "benchmark": "lamo_train_speed",
        "task_shape": TASK_NAME,
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "notes": (
            "steps/s of LaMoAgent.fit after one warm-up step; CPU memory is peak RSS of a fresh process; "
            "GPU rows use bf16 autocast and a random-weight GPT-2 small stand-in for gpt2"
        ),
        "rows": results,
        "evaluation": evaluation,
    }
    if args.merge and out.is_file():
        previous = json.loads(out.read_text())
        fresh = {r["label"] for r in results}
        kept = [{**r, "label": r.get("label", _label(r))} for r in previous.get("rows", [])]
        report["rows"] = [r for r in kept if r["label"] not in fresh] + results
        report["evaluation"] = evaluation or previous.get("evaluation")
        report["commands"] = [*previous.get("commands", [previous.get("command")]), report["command"]]
    atomic_write_json(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
