"""The `bench` command line. Each subcommand is a thin layer over a library function.

Heavy imports (torch, ray, d3rlpy) happen inside the commands that need them, so `bench --help` and
`bench tasks` answer instantly. A `BenchError` anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bench.errors import BenchError, RunInterrupted

if TYPE_CHECKING:
    from bench.orchestrator import GridPlan
    from bench.suites import Profile, Suite
    from bench.trial import TrialResult, TrialSpec

# no_args_is_help is off on purpose: with it, typer prints the whole help panel and then raises; without it,
# `bench` alone is the one-line "missing command" usage error that main() prints (exit code 2).
app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    help="lamo-bench: LaMo vs Decision Transformer, CQL and BC on offline RL tasks.",
)
data_app = typer.Typer(no_args_is_help=False, help="Inspect and build datasets.")
app.add_typer(data_app, name="data")

# Wide enough for the task table when stdout is a pipe or a CI log (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 200)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of a table.")]


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _fmt_ratio(r: float) -> str:
    return f"{r:g}"


@app.command("tasks")
def tasks_cmd(as_json: JsonFlag = False) -> None:
    """List every benchmark task with its environment, data sources, normalization and paper settings."""
    from bench.tasks import TASKS

    if as_json:
        _print_json([t.to_dict() for t in TASKS.values()])
        return
    table = Table(title="lamo-bench tasks", show_lines=False)
    for col in ("task", "reward", "env", "sources", "random/expert", "K", "RTG targets", "ratios", "lr/wd", "steps"):
        table.add_column(col)
    for t in TASKS.values():
        table.add_row(
            t.name,
            t.reward_type,
            t.env_id,
            "\n".join(str(s) for s in t.sources),
            f"{t.random_score:g} / {t.expert_score:g}",
            str(t.context_length),
            ", ".join(f"{x:g}" for x in t.rtg_targets),
            ", ".join(_fmt_ratio(r) for r in t.sample_ratios),
            f"{t.paper.learning_rate:g} / {t.paper.weight_decay:g}",
            f"{t.paper.train_steps // 1000}K",
        )
    console.print(table)


@data_app.command("info")
def data_info_cmd(
    task: Annotated[str, typer.Argument(help="Task name (see `bench tasks`).")],
    source: Annotated[str | None, typer.Option(help="Data source kind or kind:id; default: first present.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Size, episodes, return statistics (raw and normalized) and content hash of a task's dataset."""
    from bench.data.info import card_digest, d4rl_comparison, d4rl_line, dataset_summary
    from bench.data.loaders import load_task_dataset, resolve_source, source_path
    from bench.tasks import get_task

    t = get_task(task)
    summary = dataset_summary(t, load_task_dataset(t, source))
    versus = d4rl_comparison(t, summary["normalized_return"]["mean"])
    if versus is not None:
        summary["vs_d4rl"] = versus
    chosen = resolve_source(t, source)
    if chosen.kind == "generated":
        # How the generated data compares with the original recipe (statistics next to D4RL's / the paper's).
        digest = card_digest(source_path(chosen), summary["content_hash"])
        if digest is not None:
            summary["card"] = digest
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"{t.name} ({summary['source']})", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key, value in summary.items():
        if key == "card":
            value = f"{value.get('recipe', '')} (full comparison: --json)"
        elif key == "vs_d4rl":
            value = d4rl_line(value)
        elif isinstance(value, dict):
            value = "  ".join(f"{k} {v:.2f}" for k, v in value.items())
        table.add_row(key, str(value))
    console.print(table)


@data_app.command("build")
def data_build_cmd(
    task: Annotated[str, typer.Argument(help="Task name (see `bench tasks`).")],
    seed: Annotated[int, typer.Option(help="Seed of behaviour-policy training and rollouts.")] = 0,
    transitions: Annotated[
        int | None, typer.Option(help="Dataset size in transitions (default: the recipe's).")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Recipe budget override key=value.")] = None,
    if_missing: Annotated[bool, typer.Option(help="Do nothing when the generated dataset is already there.")] = False,
    retrain: Annotated[
        bool, typer.Option(help="MuJoCo: train the behaviour policy here instead of rolling out the shipped one.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate a task's dataset here, D4RL-style (behaviour policy + rollouts); resumable after a kill."""
    from bench.data.build import build_dataset
    from bench.data.info import dataset_summary
    from bench.data.loaders import load_task_dataset, source_available, source_path
    from bench.tasks import get_task

    _check_seeds("--seed", [seed])
    t = get_task(task)
    generated = [src for src in t.sources if src.kind == "generated"]
    if if_missing and generated and source_available(generated[0]):
        console.print(f"{t.name}: generated dataset already at {source_path(generated[0])}; nothing to do")
        return
    start = time.perf_counter()
    path = build_dataset(
        t,
        seed=seed,
        transitions=transitions,
        progress=not as_json,
        retrain=retrain,
        **_parse_overrides(overrides or []),
    )
    summary = dataset_summary(t, load_task_dataset(t, source="generated"))
    summary["path"] = str(path)
    summary["build_wall_time_s"] = round(time.perf_counter() - start, 1)
    if as_json:
        _print_json(summary)
        return
    console.print(f"built {t.name} at {path} in {summary['build_wall_time_s']}s")
    nr = summary["normalized_return"]
    console.print(
        f"{summary['episodes']} episodes, {summary['transitions']} transitions, normalized return "
        f"{nr['mean']:.1f} ± {nr['std']:.1f} (min {nr['min']:.1f}, max {nr['max']:.1f}), "
        f"hash {summary['content_hash']}"
    )


@data_app.command("build-missing")
def data_build_missing_cmd(
    suites: Annotated[list[str], typer.Argument(help="Suite names or .toml paths whose tasks need data.")],
    workers: Annotated[int, typer.Option(help="Builds at once (each is single-threaded).")] = 2,
) -> None:
    """Build, `--workers` at a time, the generated datasets the suites' tasks lack (as `bench run
    --build-missing`, but for several suites at once, so `make run` builds every dataset in one pooled stage
    instead of one stage per suite). Tasks with any dataset present are left alone; one line per task."""
    from bench.orchestrator import build_missing_datasets
    from bench.suites import load_suite

    if workers < 1:
        raise BenchError(f"--workers {workers} is not accepted; use 1 or more")
    tasks = list(dict.fromkeys(t for name in suites for t in load_suite(name).tasks))
    lines = build_missing_datasets(tasks, workers=workers)
    for line in lines:
        console.print(line)
    if not lines:
        console.print(f"every dataset of {', '.join(tasks)} is present; nothing to build")


@data_app.command("ship-policy")
def data_ship_policy_cmd(
    env: Annotated[str, typer.Argument(help="hopper, halfcheetah or walker2d.")],
    phase: Annotated[str, typer.Option(help="medium or expert.")] = "medium",
    workdir: Annotated[
        Path | None, typer.Option(help="Training work dir (default: <data root>/build/<env>-seed<seed>/).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the training run, and of the card's evaluation.")] = 0,
    eval_episodes: Annotated[int, typer.Option(help="Episodes of the card's evaluation.")] = 100,
    train_command: Annotated[
        str | None, typer.Option(help="How the work dir was trained, for the card (default: reconstructed).")
    ] = None,
    allow_outside_band: Annotated[
        bool, typer.Option(help="Ship a policy whose evaluation falls outside its band (flagged in the card).")
    ] = False,
) -> None:
    """Export a trained work dir's selected policy to datasets/policies/<env>-<phase>.safetensors + card."""
    from bench.data.build.shipped import export_policy

    _check_seeds("--seed", [seed])
    start = time.perf_counter()
    card_path, card = export_policy(
        env,
        phase,
        workdir=workdir,
        seed=seed,
        eval_episodes=eval_episodes,
        train_command=train_command,
        allow_outside_band=allow_outside_band,
    )
    ev = card["evaluation"]
    console.print(
        f"wrote {card_path.with_suffix('.safetensors')} (sha256 {card['sha256']}) and {card_path.name} in "
        f"{time.perf_counter() - start:.1f}s: step {card['training_steps']}, {ev['episodes']} episodes normalized "
        f"{ev['normalized_mean']:.1f} ± {ev['normalized_std']:.1f} (band {card['selection']['band_normalized']}, "
        f"D4RL v2 {card['d4rl_v2_reference_normalized']})"
    )


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs as {key: CliText}: the config they go to parses each value by its field's type
    (bench.overrides), so `batch_size=2.5` or `learning_rate=fast` is refused before anything runs."""
    from bench.overrides import parse_pairs

    return dict(parse_pairs(pairs))


def _check_seeds(flag: str, seeds: list[int] | None) -> None:
    """Seeds index environment and subsample streams (seed * 10000 + episode); a negative one is refused."""
    for seed in seeds or []:
        if seed < 0:
            raise BenchError(f"{flag} {seed} is not accepted; use an integer >= 0")


def _lamo_switches(
    lm_source: str | None,
    lm_layers: int | None,
    lm_loss: float | None,
    full_finetune: bool,
    linear_embeddings: bool,
    random_init: bool,
) -> dict[str, Any]:
    """`bench train`'s LaMo options as config overrides; only the options given, so other agents can refuse them."""
    switches: dict[str, Any] = {}
    if lm_source is not None:
        switches["lm_source"] = lm_source
    if lm_layers is not None:
        switches["lm_layers"] = lm_layers
    if lm_loss is not None:
        switches["lm_loss_weight"] = lm_loss
    if full_finetune:
        switches["full_finetune"] = True
    if linear_embeddings:
        switches.update(mlp_embedding=False, mlp_head=False)
    if random_init:
        switches["random_init"] = True
    return switches


def _print_trial_result(spec: TrialSpec, result: TrialResult, lamo: bool) -> None:
    """`bench train`'s human output: one row per evaluation, then the final score line."""
    f = result.final
    table = Table(title=f"{spec.agent} on {spec.task} (ratio {spec.ratio:g}, seed {spec.seed})")
    for col in ("step", "rtg target", "loss", "normalized score", "return", "wall s"):
        table.add_column(col, justify="right")
    for r in result.evals:
        table.add_row(
            str(r.step),
            "-" if r.rtg_target is None else f"{r.rtg_target:g}",
            "-" if r.loss is None else f"{r.loss:.4f}",
            f"{r.score_mean:.1f} ± {r.score_std:.1f}",
            f"{r.return_mean:.1f}",
            f"{r.wall_time_s:.1f}",
        )
    console.print(table)
    target = "-" if f.rtg_target is None else f"{f.rtg_target:g}"
    console.print(
        f"final (mean of last {f.extra['report_window']} steps, target {target}): {f.final_score:.1f}   "
        f"last {f.last_score:.1f}   best {f.best_score:.1f}   params {f.params_total:,} total / "
        f"{f.params_trainable:,} trainable   wall {f.wall_time_s:.1f}s"
    )
    if lamo:
        console.print(
            f"trainable / total parameters: {f.params_trainable:,} / {f.params_total:,} "
            f"({100 * f.params_trainable / max(1, f.params_total):.2f}%)"
        )
    if f.extra.get("resumed_from_step"):
        console.print(f"resumed from the checkpoint at step {f.extra['resumed_from_step']}")


@app.command("train")
def train_cmd(
    agent: Annotated[str, typer.Argument(help="Agent name (dt, cql, bc, iql, td3+bc, lamo, ...).")],
    task: Annotated[str, typer.Argument(help="Task name (see `bench tasks`).")],
    ratio: Annotated[float, typer.Option(help="Sample ratio of trajectories, in (0, 1].")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed: subsample, weight init, batches and eval episodes.")] = 0,
    steps: Annotated[int, typer.Option(help="Gradient steps.")] = 2000,
    eval_every: Annotated[int, typer.Option(help="Evaluate every this many steps (and at the end).")] = 500,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per return-to-go target.")] = 10,
    source: Annotated[str | None, typer.Option(help="Data source kind or kind:id; default: first present.")] = None,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda:0.")] = "cpu",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Agent config override key=value.")] = None,
    name: Annotated[str, typer.Option(help="Results folder under results/.")] = "train",
    threads: Annotated[int, typer.Option(help="torch CPU threads (1 is fastest for small models on a busy CPU).")] = 1,
    lm_source: Annotated[str | None, typer.Option(help="LaMo: backbone (smollm2-135m, gpt2, a model folder).")] = None,
    lm_layers: Annotated[int | None, typer.Option(help="LaMo: keep only the first N LM blocks.")] = None,
    lm_loss: Annotated[float | None, typer.Option(help="LaMo: weight lambda of the language loss (0 = off).")] = None,
    full_finetune: Annotated[bool, typer.Option(help="LaMo: train every backbone weight, no LoRA.")] = False,
    linear_embeddings: Annotated[bool, typer.Option(help="LaMo: linear embeddings and head, not MLPs.")] = False,
    random_init: Annotated[bool, typer.Option(help="LaMo: same architecture, no pre-training.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue this trial from its last mid-trial checkpoint, if any.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train one agent on one subsampled dataset, evaluate periodically, write result rows and a checkpoint."""
    _check_seeds("--seed", [seed])
    import torch

    from bench.results import RunStore, run_dir
    from bench.trial import TrialSpec, run_trial

    switches = _lamo_switches(lm_source, lm_layers, lm_loss, full_finetune, linear_embeddings, random_init)
    from agents.registry import get_entry

    family = get_entry(agent).family
    if switches and family != "lamo":
        raise BenchError(f"options {', '.join(switches)} apply to lamo agents only, not {agent!r}")
    # Every override is checked against the agent's config (field names and types, value ranges) before
    # any data is loaded; the trial gets the typed values, so its manifest and rows record numbers, not text.
    from agents.registry import make_config
    from bench.tasks import get_task

    wanted = {**switches, **_parse_overrides(overrides or [])}
    config = make_config(agent, get_task(task), wanted)
    spec = TrialSpec(
        agent=agent,
        task=task,
        ratio=ratio,
        seed=seed,
        steps=steps,
        eval_every=eval_every,
        eval_episodes=episodes,
        overrides={k: getattr(config, k) for k in wanted},
        source=source,
        device=device,
    )
    if threads < 1:
        raise BenchError(f"--threads {threads} is not accepted; use 1 or more")
    torch.set_num_threads(threads)
    store = RunStore(run_dir(name))

    def progress(step: int, metrics: dict[str, float]) -> None:
        if not as_json:
            console.print(f"step {step}: loss {metrics['loss']:.4f}, best target score {metrics['score']:.1f}")

    result = run_trial(spec, run=name, on_report=progress, trial_dir=store.trial_dir(spec.trial_id), resume=resume)
    store.write_trial(spec.trial_id, result.evals, result.final)
    store.merge()
    if as_json:
        from dataclasses import asdict

        _print_json({"final": asdict(result.final), "evals": [asdict(r) for r in result.evals]})
        return
    _print_trial_result(spec, result, lamo=family == "lamo")
    console.print(f"results: {store.root}  checkpoint: {store.trial_dir(spec.trial_id) / 'checkpoint'}")


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder or file (a trial's checkpoint/ folder).")],
    episodes: Annotated[int, typer.Option(help="Episodes per return-to-go target.")] = 10,
    targets: Annotated[
        list[str] | None,
        typer.Option(
            help="Return-to-go targets (repeat or comma-separate); default: the task's. Ignored by agents that "
            "take no target."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Evaluation seed; default: the checkpoint's training seed.")] = None,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Re-evaluate a saved agent: rebuilt from its checkpoint alone, scored per return-to-go target."""
    from agents.loading import load_agent, variant_of
    from bench.evaluate import evaluate
    from bench.tasks import get_task

    if episodes < 1:
        raise BenchError(f"--episodes {episodes} is not accepted; use 1 or more")
    agent = load_agent(checkpoint, device=device)
    variant = variant_of(agent.name, agent.config.to_dict())
    task = get_task(agent.spec.task)
    rtg = _split(targets, float)
    eval_seed = agent.seed if seed is None else seed
    results = evaluate(agent, task, episodes, seed=eval_seed, rtg_targets=rtg)
    if as_json:
        _print_json(
            {
                "checkpoint": str(checkpoint),
                "agent": agent.name,
                "variant": variant,
                "task": task.name,
                "seed": eval_seed,
                "episodes": episodes,
                "results": [r.to_dict() for r in results],
            }
        )
        return
    table = Table(title=f"{variant} on {task.name}, evaluation seed {eval_seed}")
    for col in ("rtg target", "normalized score", "return", "episodes"):
        table.add_column(col, justify="right")
    import numpy as np

    for r in results:
        table.add_row(
            "-" if r.target is None else f"{r.target:g}",
            f"{r.mean_score:.1f} ± {float(np.std(r.scores)):.1f}",
            f"{r.mean_return:.1f}",
            str(len(r.returns)),
        )
    console.print(table)
    console.print(f"checkpoint: {checkpoint}")


def _split(values: list[str] | None, cast: Any = str) -> list[Any] | None:
    """Options given as repeated flags and/or comma lists: --seeds 0,1 --seeds 2."""
    if not values:
        return None
    out = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if part:
                try:
                    out.append(cast(part))
                except ValueError:
                    kind = {"int": "an integer", "float": "a number"}.get(cast.__name__, cast.__name__)
                    raise BenchError(f"{part!r} is not accepted; expected {kind} (or a comma list of them)") from None
    return out


def _print_dry_run(run_name: str, s: Suite, p: Profile, plan: GridPlan, as_json: bool) -> None:
    """`bench run --dry-run`: the grid with its estimated cost (and, as JSON, each trial's settings and
    deviations); nothing runs."""
    from bench.orchestrator import estimate_seconds, trial_deviations_of, trial_summary

    est = sum(estimate_seconds(t) for t in plan.trials)
    deviations = trial_deviations_of(plan.trials) if as_json else {}
    grid = []
    for t in plan.trials:
        row: dict[str, Any] = {
            "trial_id": t.trial_id,
            "agent": t.agent,
            "task": t.task,
            "ratio": t.ratio,
            "seed": t.seed,
            "steps": t.steps,
            "estimated_s": round(estimate_seconds(t), 1),
        }
        if as_json:  # building every config imports the agents (torch, d3rlpy): only when asked for
            row.update(trial_summary(t), overrides=t.overrides, deviations=deviations[t.trial_id])
        grid.append(row)
    doc = {
        "run": run_name,
        "suite": s.name,
        "profile": p.name,
        "trials": len(plan.trials),
        "estimated_cpu_core_hours": est / 3600,
        "skipped_tasks": plan.skipped,
        "deviations_from_paper": p.deviations(),
        "grid": grid,
    }
    if as_json:
        _print_json(doc)
        return
    table = Table(
        title=f"{run_name}: {len(plan.trials)} trials, about {est / 3600:.2f} CPU-core hours (rough estimate)"
    )
    for col in ("agent", "task", "ratio", "seed", "steps", "est. s"):
        table.add_column(col)
    for t in plan.trials:
        table.add_row(t.agent, t.task, f"{t.ratio:g}", str(t.seed), str(t.steps), f"{estimate_seconds(t):.0f}")
    console.print(table)
    for task, why in plan.skipped.items():
        console.print(f"[yellow]skipped {task}[/yellow]: {why}")


@app.command("run")
def run_cmd(
    suite: Annotated[
        str,
        typer.Option(
            help="Suite name (smoke, sparse, dense, dense-mujoco, mujoco, kitchen, atari, ablations, all) or a path to "
            "your own TOML."
        ),
    ] = "smoke",
    profile: Annotated[
        str | None, typer.Option(help="Budget profile: paper, quick, smoke (default: the suite's).")
    ] = None,
    agents: Annotated[list[str] | None, typer.Option(help="Only these agents (comma list).")] = None,
    tasks: Annotated[list[str] | None, typer.Option(help="Only these tasks (comma list).")] = None,
    ratios: Annotated[list[str] | None, typer.Option(help="Only these sample ratios (comma list).")] = None,
    seeds: Annotated[list[str] | None, typer.Option(help="Only these seeds (comma list).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name: results go to results/<name>/.")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Finish a stopped run: run the missing trials and retry failed ones; "
            "refused if the profile, budget or data differ."
        ),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option(help="With --resume, run failed trials again (--no-retry-failed keeps their failed rows).")
    ] = True,
    max_concurrent: Annotated[int | None, typer.Option(help="At most this many trials at once.")] = None,
    address: Annotated[
        str | None, typer.Option(help="Address of an existing Ray cluster (default: local Ray).")
    ] = None,
    device: Annotated[str, typer.Option(help="torch device for trials when no GPU is scheduled.")] = "cpu",
    dry_run: Annotated[bool, typer.Option(help="Print the grid and its estimated cost; run nothing.")] = False,
    build_missing: Annotated[
        bool,
        typer.Option(
            help="First build (`bench data build`) the datasets of the "
            "suite's tasks that are missing and can be generated here."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a suite's grid of (agent, task, ratio, seed) trials with Ray Tune into results/<run>/."""
    from bench.orchestrator import build_grid, build_missing_datasets, execute_run
    from bench.results import RunStore, check_run_name, run_dir
    from bench.suites import get_profile, load_suite

    if name is not None:
        check_run_name(name)
    _check_seeds("--seeds", _split(seeds, int))
    if max_concurrent is not None and max_concurrent < 1:
        raise BenchError(
            f"--max-concurrent {max_concurrent} is not accepted; use 1 or more, or leave it out "
            f"for no limit (Ray runs as many trials as there are free CPUs)"
        )
    s = load_suite(suite)
    p = get_profile(profile or s.default_profile)
    if build_missing and not dry_run:
        for line in build_missing_datasets(_split(tasks) or list(s.tasks)):
            console.print(line)
    plan = build_grid(
        s,
        p,
        agents=_split(agents),
        tasks=_split(tasks),
        ratios=_split(ratios, float),
        seeds=_split(seeds, int),
        device=device,
    )
    run_name = name or f"{s.name}-{p.name}"
    if dry_run:
        _print_dry_run(run_name, s, p, plan, as_json)
        return
    if not plan.trials:
        raise BenchError(f"suite {s.name} has no runnable trials (skipped: {', '.join(plan.skipped) or 'none'})")
    store = RunStore(run_dir(run_name))
    for task, why in plan.skipped.items():
        console.print(f"skipped {task}: {why}", style="yellow")
    start = time.perf_counter()
    counts = execute_run(
        store,
        s,
        p,
        plan,
        max_concurrent,
        address,
        resume,
        retry_failed=retry_failed,
        progress=not as_json,
        notify=lambda line: print(line, file=sys.stderr),
    )
    counts_doc = {
        "run": run_name,
        "results": str(store.root),
        "wall_time_s": round(time.perf_counter() - start, 1),
        **counts,
    }
    if as_json:
        _print_json(counts_doc)
    else:
        console.print(counts_doc)
    if counts.get("missing"):
        raise BenchError(f"{counts['missing']} trials of {run_name} have no result; run again with --resume")
    if counts.get("failed"):
        print(
            f"error: {counts['failed']} of {len(plan.trials)} trials of {run_name} failed (see the error column "
            f"of {store.root / 'final.parquet'}); retry them with --resume",
            file=sys.stderr,
        )
        sys.exit(1)


@app.command("report")
def report_cmd(
    runs: Annotated[list[Path] | None, typer.Argument(help="Run folders (results/<run>); default: every run.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: reports/<first run name>).")] = None,
    reps: Annotated[int, typer.Option(help="Bootstrap resamples for rliable's confidence intervals.")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Paper-style tables, sparse-vs-dense figures and rliable statistics from one or more runs."""
    for run in runs or []:
        if not run.is_dir():
            what = "is a file, not a folder" if run.exists() else "does not exist"
            raise BenchError(
                f"run folder {run} {what}; expected a run folder such as results/<run> (one holding final.parquet)"
            )
    from bench.paths import reports_root, results_root
    from bench.report import build_report

    if not runs:
        root = results_root()
        runs = sorted(p for p in root.iterdir() if (p / "final.parquet").is_file()) if root.is_dir() else []
        if not runs:
            raise BenchError(f"no runs with a final.parquet under {root}; run `bench run` first or name run folders")
    target = out or reports_root() / runs[0].name
    summary = build_report(list(runs), target, reps=reps)
    if as_json:
        _print_json(summary)
        return
    console.print(f"report for {', '.join(str(r) for r in runs)}: {summary['index']}")
    for profile, part in summary["profiles"].items():
        console.print(
            f"  profile {profile}: {part['trials']} trials ({part['failed']} failed), "
            f"{len(part['tables'])} tables, {len(part['figures'])} figures"
        )
        for note in part.get("notes", []):
            console.print(f"    note: {note}")


@app.command("perf")
def perf_cmd(
    name: Annotated[str, typer.Option(help="Writes results/perf/<name>.json.")] = "latest",
    quick: Annotated[bool, typer.Option(help="Smaller measurements (CI); skips the full-size LM backbone.")] = False,
    agents: Annotated[list[str] | None, typer.Option(help="Only these agents' training speed (comma list).")] = None,
    compare: Annotated[
        Path | None, typer.Option(help="A previous perf JSON: print changes, exit 1 on a regression.")
    ] = None,
    threshold: Annotated[float, typer.Option(help="Largest accepted drop, as a fraction (0.3 = 30%).")] = 0.3,
    as_json: JsonFlag = False,
) -> None:
    """Measure training, evaluation, sampler and collector speed; optionally compare with a baseline."""
    from bench.atomic import atomic_write_json
    from bench.paths import results_root
    from bench.perf import check_threshold, load_perf, run_perf
    from bench.perf import compare as compare_docs

    check_threshold(threshold)
    old = load_perf(compare) if compare is not None else None
    doc = run_perf(quick=quick, agents=_split(agents))
    out = results_root() / "perf" / f"{name}.json"
    atomic_write_json(out, doc)
    rows, regressed = compare_docs(doc, old, threshold) if old is not None else ([], False)
    if as_json:
        _print_json({"perf": doc, "compare": rows, "regressed": regressed, "path": str(out)})
    else:
        table = Table(title=f"bench perf on {doc['device']}")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, r in doc["train"].items():
            value = r.get("error") or (
                f"{r['steps_per_s']:.2f} steps/s, peak {r['peak_rss_mib']:.0f} MiB, "
                f"{r['params_trainable']:,}/{r['params_total']:,} params"
            )
            table.add_row(f"train {label}", value)
        s = doc["sampler"]
        table.add_row("sampler windows/s", f"{s['vectorised_windows_per_s']:,.0f} ({s['ratio']:.1f}x reference loop)")
        e = doc["eval"]
        for mode in ("sequential_window", "batched_window", "batched_cached"):
            table.add_row(
                f"eval {mode}",
                f"{e[mode]['episodes_per_s']:.2f} episodes/s, {e[mode]['env_steps_per_s']:,.0f} env steps/s",
            )
        table.add_row(
            "eval speedup (window / cached)",
            f"{e['ratio_batched_window']:.1f}x / {e['ratio_batched_cached']:.1f}x vs one at a time",
        )
        c = doc["collector"]
        table.add_row("collector env steps/s", c.get("error") or f"{c['env_steps_per_s']:,.0f}")
        console.print(table)
        for row in rows:
            flag = "REGRESSION" if row["regression"] else ""
            console.print(f"{row['figure']}: {row['old']:.3g} -> {row['new']:.3g} ({row['change']:+.0%}) {flag}")
        console.print(f"written: {out}")
    if regressed:
        sys.exit(1)


lm_app = typer.Typer(no_args_is_help=False, help="Language-model backbones: pre-train the project's tiny-lm.")
app.add_typer(lm_app, name="lm")


@lm_app.command("pretrain")
def lm_pretrain_cmd(
    out: Annotated[Path, typer.Option(help="Checkpoint folder to write (replaced when it exists).")] = Path(
        "agents/lm/tiny_lm"
    ),
    steps: Annotated[int, typer.Option(help="Gradient steps of 32 x 256 tokens.")] = 250,
    seed: Annotated[int, typer.Option(help="Seed: weight init and batch order.")] = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads (the shipped checkpoint used 1).")] = 1,
) -> None:
    """Pre-train tiny-lm (DT-sized GPT-2, 8k byte-level BPE) on the python-docs corpus; see agents/lm/tiny.py."""
    import torch

    from agents.lm.tiny import PretrainConfig, pretrain

    torch.set_num_threads(threads)
    command = f"bench lm pretrain --out {out} --steps {steps} --seed {seed} --threads {threads}"
    pretrain(out, PretrainConfig(steps=steps, seed=seed), command=command, log=lambda m: print(m, flush=True))


def _usage_error_line(e: Exception) -> str:
    """One line for a command-line parsing error, with the command's usage and where to find help.

    Typer 0.29 bundles its own copy of click (`typer._click`), whose exceptions derive from
    `typer.exceptions.TyperException`, not from the installed `click`; both families are handled so the CLI
    keeps working whichever typer the environment has.
    """
    ctx = getattr(e, "ctx", None)
    message = e.format_message() if hasattr(e, "format_message") else str(e)
    commands = getattr(getattr(ctx, "command", None), "commands", None) or {}
    if commands and (message.startswith("Missing command") or type(e).__name__ == "NoArgsIsHelpError"):
        # `bench` or `bench data` alone: name the commands instead of printing the whole help text.
        message = f"missing command; accepted: {', '.join(sorted(commands))}"
    message = " ".join(message.split())  # one line even when click wraps it
    if ctx is None:
        return f"error: {message}"
    usage = " ".join(ctx.get_usage().split())
    return f"error: {message} ({usage}; try '{ctx.command_path} --help')"


def _usage_error_types() -> tuple[type[BaseException], ...]:
    import click

    found: list[type[BaseException]] = [click.exceptions.ClickException]
    try:
        from typer.exceptions import TyperException  # typer >= 0.29: the bundled click's base exception
    except ImportError:
        pass
    else:
        found.append(TyperException)
    return tuple(found)


def _exit_types() -> tuple[type[BaseException], ...]:
    import click

    return (click.exceptions.Exit, typer.Exit)


def main() -> None:
    """Console entry point: user errors (parsing or `BenchError`) become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False, prog_name="bench")
    except BenchError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as e:
        # By now the trials are stopped, Ray is shut down, the tables merged and the run's lock released. Exit
        # at once: a Ray core-worker thread that outlives ray.shutdown() after a stop can otherwise hold the
        # interpreter's exit for a minute looking for the stopped GCS and then exit with its own code 1.
        print(f"interrupted: {e.message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + e.signum)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        if isinstance(e, _exit_types()):
            sys.exit(getattr(e, "exit_code", 0))
        if isinstance(e, _usage_error_types()):
            print(_usage_error_line(e), file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
