"""`bench run`: the grid of (agent, task, ratio, seed) trials, run as Ray Tune trials, into a results store.

Each trial is a plain Ray Tune function trainable around `bench.trial.run_trial_safely`: it loads and
subsamples the dataset, fits the agent, `tune.report`s loss and normalized score at every evaluation, and
writes its rows and checkpoint to `results/<run>/trials/<trial_id>/`. The driver then merges the per-trial
files into the run tables.

The run store's rules (`execute_run`): one command at a time holds a run folder (`RunLock`); every check
(data content against its card, finite values, stored trials against the planned ones) passes before
anything is written; a trial's definition (profile, budget, report window, overrides, dataset hash, source)
is stored with it and a resumed run reuses only trials whose definition equals the planned one; `--resume`
runs the missing trials and retries failed ones (unless `--no-retry-failed`), so a killed run finishes
without duplicating or losing rows; SIGTERM and SIGINT stop the trials, merge the tables and say how to
resume. On a multi-node Ray cluster (`--address`), the results
folder must be on a filesystem every node can write (trials write their own files).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from bench.atomic import atomic_write_json
from bench.errors import BenchError, RunInterrupted
from bench.paths import REPO_ROOT
from bench.results import RunLock, RunStore, definition_difference, normalized_definition
from bench.suites import Profile, Suite
from bench.tasks import get_task
from bench.trial import TrialSpec

#: Rough single-CPU-core training speed (steps/s) at the quick profile's batch sizes, used only for
#: `--dry-run`'s cost estimate. Fitted to the trial wall times of `make run` on a 2-core CPU (quick profile,
#: 180 trials, two at a time; reports/quick-sparse); order-of-magnitude figures.
ROUGH_STEPS_PER_SEC = {"dt": 6.0, "lamo": 2.5, "cql": 14.0, "bc": 300.0, "iql": 60.0, "td3+bc": 80.0}
#: Evaluation env steps/s with the policy in the loop; Kitchen's simulator is about ten times slower.
ROUGH_ENV_STEPS_PER_SEC = 2000.0
ROUGH_ENV_STEPS_PER_SEC_BY_DOMAIN = {"kitchen": 200.0}


#: Environment that keeps a single-machine Ray on loopback. Ray 2.60 binds its gRPC servers (GCS, raylet,
#: object manager, core workers) to the node's IP address, and takes that address from
#: `ray._private.services.get_node_ip_address`, which returns 127.0.0.1 only when
#: `ray._private.ray_constants.ENABLE_RAY_CLUSTER` is off, i.e. with this variable at "0". Otherwise
#: `resolve_ip_for_localhost` swaps even an explicit `--node-ip-address=127.0.0.1` for the machine's external
#: address ("Local node IP: <external>") and the GCS listens on every interface (`*:PORT`). The variable is read
#: when Ray is imported, so it must be in the environment of `ray start` and of the driver before `import ray`.
#: (`ray start` then refuses to let another machine join, which is what a loopback cluster wants.)
LOOPBACK_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def is_loopback_address(address: str | None) -> bool:
    """No address (Ray started here) or a Ray address on this machine's loopback interface."""
    if not address:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def use_loopback_ray() -> None:
    """Make this process's Ray (and every Ray process it starts) use 127.0.0.1 only; see LOOPBACK_RAY_ENV."""
    os.environ.update(LOOPBACK_RAY_ENV)
    from ray._private import ray_constants

    # When something imported Ray before the variable was set, the flag was already read: set it too.
    ray_constants.ENABLE_RAY_CLUSTER = False


@dataclass(frozen=True)
class GridPlan:
    trials: list[TrialSpec]
    skipped: dict[str, str]  # task -> why it is not run (no dataset, with how to get it)


def build_grid(
    suite: Suite,
    profile: Profile,
    agents: list[str] | None = None,
    tasks: list[str] | None = None,
    ratios: list[float] | None = None,
    seeds: list[int] | None = None,
    device: str = "cpu",
    skip_missing_data: bool = True,
) -> GridPlan:
    """Every (agent, task, ratio, seed) cell of the suite, after the command-line filters."""
    from agents.registry import get_entry
    from bench.data.loaders import resolve_source
    from bench.data.subsample import check_ratio

    chosen_agents = agents or list(suite.agents)
    chosen_tasks = tasks or list(suite.tasks)
    for a in chosen_agents:
        get_entry(a)
    for t in chosen_tasks:
        get_task(t)
    for r in ratios or []:
        check_ratio(r)
    skipped: dict[str, str] = {}
    trials = []
    for task in chosen_tasks:
        try:
            resolve_source(get_task(task))
        except BenchError as e:
            if not skip_missing_data:
                raise
            skipped[task] = str(e)
            continue
        # The profile thins the suite's grid (quick: fewer ratios and seeds); command-line lists are taken as given.
        for ratio in ratios or profile.pick_ratios(suite.ratios.get(task, get_task(task).sample_ratios)):
            for seed in seeds or profile.pick_seeds(suite.seeds):
                for agent in chosen_agents:
                    entry = get_entry(agent)
                    trials.append(
                        TrialSpec(
                            agent=agent,
                            task=task,
                            ratio=float(ratio),
                            seed=int(seed),
                            steps=profile.steps_for(task),
                            eval_every=profile.eval_every,
                            eval_episodes=profile.eval_episodes,
                            profile=profile.name,
                            overrides=_overrides(suite, profile, agent, entry.family, task, float(ratio)),
                            device=device,
                        )
                    )
    return GridPlan(trials, skipped)


def _overrides(suite: Suite, profile: Profile, agent: str, base: str, task: str, ratio: float) -> dict[str, Any]:
    """The profile's agent and cell overrides, then the suite's cell overrides (bench/suites explains the order)."""
    from bench.suites import cell_overrides_for

    return {
        **profile.overrides_for(agent, base, task, ratio),
        **cell_overrides_for(suite.cell_overrides, agent, base, task, ratio),
    }


def _build_one(task_name: str) -> str:
    """Build one task's generated dataset in a worker process; returns a one-line report."""
    import time

    from bench.data.build import build_dataset

    start = time.perf_counter()
    try:
        path = build_dataset(get_task(task_name), progress=False)
    except BenchError as e:
        return f"{task_name}: not built: {e}"
    return f"{task_name}: built {path} in {time.perf_counter() - start:.0f}s"


def build_missing_datasets(task_names: list[str], workers: int = 2) -> list[str]:
    """Build, `workers` at a time, the generated datasets of the tasks that have no data yet.

    Tasks with some dataset present, or no generated recipe, are left alone; one line per task says what
    happened. Each build is single-threaded, so two of them fill a 2-core machine.
    """
    from concurrent.futures import ProcessPoolExecutor

    from bench.data.loaders import resolve_source

    todo = []
    for name in task_names:
        task = get_task(name)
        try:
            resolve_source(task)
        except BenchError:
            if any(s.kind == "generated" for s in task.sources):
                todo.append(name)
    if not todo:
        return []
    import multiprocessing

    # Fresh interpreters: the parent may hold torch/OpenMP threads that a fork would copy half-initialised.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=context) as pool:
        return list(pool.map(_build_one, todo))


def estimate_seconds(spec: TrialSpec) -> float:
    """Order-of-magnitude wall time of one trial on one CPU core (training + evaluation)."""
    from agents.registry import get_entry

    entry = get_entry(spec.agent)
    rate = ROUGH_STEPS_PER_SEC.get(entry.family, 10.0)
    task = get_task(spec.task)
    if entry.return_conditioned:
        # The rates are for K=20; shorter windows are cheaper, though LaMo's language pass is not (fitted).
        rate *= (20 / max(1, task.context_length)) ** 0.5
    n_evals = len(range(spec.eval_every, spec.steps + 1, spec.eval_every)) or 1
    targets = len(task.rtg_targets) if entry.return_conditioned else 1
    eval_env_steps = n_evals * targets * spec.eval_episodes * task.max_episode_steps
    env_rate = ROUGH_ENV_STEPS_PER_SEC_BY_DOMAIN.get(task.domain, ROUGH_ENV_STEPS_PER_SEC)
    return spec.steps / rate + eval_env_steps / env_rate


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "lamo-bench",
        "torch",
        "transformers",
        "peft",
        "d3rlpy",
        "gymnasium",
        "gymnasium-robotics",
        "mujoco",
        "minari",
        "ray",
        "numpy",
        "pandas",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def trial_deviations_of(trials: list[TrialSpec]) -> dict[str, list[str]]:
    """trial_id -> its deviations from the paper (bench.deviations), computed once per distinct setting."""
    from bench.deviations import trial_deviations

    cache: dict[str, list[str]] = {}
    out = {}
    for t in trials:
        key = repr(
            (
                t.agent,
                t.task,
                t.ratio,
                t.steps,
                t.eval_every,
                t.eval_episodes,
                t.report_window,
                t.source,
                sorted(t.overrides.items()),
            )
        )
        if key not in cache:
            cache[key] = trial_deviations(t)
        out[t.trial_id] = cache[key]
    return out


def trial_summary(spec: TrialSpec) -> dict[str, str]:
    """What `--dry-run` shows about a trial's model: its LM backbone ("-" for none) and inference mode."""
    from agents.registry import make_config

    config = make_config(spec.agent, get_task(spec.task), spec.overrides)
    return {"backbone": str(getattr(config, "lm_source", "-")), "eval_mode": str(getattr(config, "eval_mode", "-"))}


def pin_datasets(plan: GridPlan) -> tuple[GridPlan, dict[str, Any]]:
    """Load each task's dataset once (refusing data that fails its card or holds NaN/inf) and pin its source
    and content hash into every trial, so trials check they train on exactly the data the run checked."""
    from bench.data.loaders import load_task_dataset

    datasets: dict[str, Any] = {}
    trials = []
    for spec in plan.trials:
        if spec.task not in datasets:
            ds = load_task_dataset(get_task(spec.task), spec.source)
            datasets[spec.task] = {
                "source": str(ds.metadata.get("source")),
                "content_hash": ds.content_hash(),
                "episodes": ds.num_episodes,
                "transitions": ds.num_transitions,
            }
            del ds
        pinned = datasets[spec.task]
        trials.append(replace(spec, source=pinned["source"], dataset_hash=pinned["content_hash"]))
    return GridPlan(trials, plan.skipped), datasets


def check_store(
    store: RunStore, profile: Profile, plan: GridPlan, resume: bool, retry_failed: bool = True
) -> list[TrialSpec]:
    """Every check against what the run folder already holds; returns the trials to run. Writes nothing.

    Without `--resume` a folder with finished trials is refused. With it, the run's profile and every kept
    trial's definition must equal the planned ones, or stored and new results would describe different
    experiments; failed trials are run again unless `retry_failed` is off (their old row is then kept).
    """
    finished = store.finished_trials()
    run = store.root.name
    if finished and not resume:
        raise BenchError(
            f"run {run!r} already has {len(finished)} finished trials in {store.root}; "
            f"accepted: --resume to finish it, or another --name"
        )
    manifest = store.root / "manifest.json"
    if resume and manifest.is_file():
        try:
            old_profile = json.loads(manifest.read_text()).get("profile")
        except (OSError, ValueError) as e:
            raise BenchError(
                f"corrupt manifest {manifest}: {e}; accepted: a manifest written by bench run, or another --name"
            ) from None
        if isinstance(old_profile, dict):
            before, now = normalized_definition(old_profile), normalized_definition(asdict(profile))
            for key in ("steps", "eval_every", "eval_episodes", "agent_overrides", *sorted(set(before) | set(now))):
                if before.get(key) != now.get(key):
                    raise BenchError(
                        f"run {run!r} was run with profile {before.get('name')} ({key}="
                        f"{json.dumps(before.get(key))}), this run asks profile {now.get('name')} "
                        f"({key}={json.dumps(now.get(key))}); accepted: the same --profile with "
                        f"--resume, or another --name"
                    )
    todo = []
    for spec in plan.trials:
        row = finished.get(spec.trial_id)
        if row is None or (row.get("status") != "ok" and retry_failed):
            todo.append(spec)
            continue
        extra = row.get("extra")
        stored = extra.get("definition") if isinstance(extra, dict) else None
        diff = definition_difference(spec.trial_id, stored, spec.definition())
        if diff is not None:
            raise BenchError(f"{diff}; accepted: the same settings and data with --resume, or another --name")
    return todo


def write_manifest(
    store: RunStore,
    suite: Suite,
    profile: Profile,
    plan: GridPlan,
    address: str | None,
    datasets: dict[str, Any] | None = None,
) -> None:
    """Everything needed to reproduce or audit the run: grid, hyperparameters, data hashes, versions, machine.

    Trials an earlier invocation of this run planned and this one does not (a narrower `--agents`, say) stay
    listed, so the manifest describes every trial in the folder.
    """
    from agents.registry import make_config

    if datasets is None:
        plan, datasets = pin_datasets(plan)
    configs: dict[str, Any] = {}
    deviations = trial_deviations_of(plan.trials)
    for spec in plan.trials:
        # Cell overrides make a config depend on the ratio too (gpt2-medium on two Kitchen cells).
        key = f"{spec.agent}@{spec.task}@r{spec.ratio:g}"
        if key not in configs:
            configs[key] = make_config(spec.agent, get_task(spec.task), spec.overrides).to_dict()
    trials = {
        t.trial_id: asdict(t) | {"trial_id": t.trial_id, "definition": normalized_definition(t.definition())}
        for t in plan.trials
    }
    old_doc: dict[str, Any] = {}
    if (store.root / "manifest.json").is_file():
        try:
            old_doc = json.loads((store.root / "manifest.json").read_text())
        except (OSError, ValueError):
            old_doc = {}
    earlier = [t for t in old_doc.get("trials", []) if isinstance(t, dict) and t.get("trial_id") not in trials]
    import torch

    manifest = {
        "run": store.root.name,
        "suite": asdict(suite),
        "profile": asdict(profile),
        "deviations_from_paper": profile.deviations(),
        "trial_deviations": {**old_doc.get("trial_deviations", {}), **deviations},
        "trials": [*earlier, *trials.values()],
        "skipped_tasks": plan.skipped,
        "agent_configs": {**old_doc.get("agent_configs", {}), **configs},
        "datasets": {**old_doc.get("datasets", {}), **datasets},
        "versions": package_versions(),
        "git_commit": _git_commit(),
        "machine": {
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "ray_address": address or "local",
        },
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(store.root / "manifest.json", manifest)


class StopRequest:
    """SIGTERM/SIGINT during a run. Inside Ray Tune's loop the first signal asks Tune to stop (through the
    SIGUSR1 handler Tune installs for exactly that) so the trials end and the tables are merged; outside it,
    or on a second signal, the run stops at once with `RunInterrupted`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_tune = False

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        tune_handler = signal.getsignal(signal.SIGUSR1)
        if first and self.in_tune and callable(tune_handler):
            tune_handler(signal.SIGUSR1, frame)
            return
        raise RunInterrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Route SIGTERM (what schedulers send) and SIGINT through one `StopRequest` for the run's duration."""
    request = StopRequest()
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    request.install()
    try:
        yield request
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class _TuneStopNoise(logging.Filter):
    """Tune's own stop messages point at `Tuner.restore`; a stopped `bench run` says `--resume` instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not text.startswith(
            ("Stop signal received", "Experiment has been interrupted", "Trials did not complete")
        )


def resume_command() -> str:
    """The command line that finishes this run: the same arguments plus --resume."""
    args = [a for a in sys.argv[1:]]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["bench", *args])


def execute_run(
    store: RunStore,
    suite: Suite,
    profile: Profile,
    plan: GridPlan,
    max_concurrent: int | None,
    address: str | None,
    resume: bool,
    retry_failed: bool = True,
    progress: bool = True,
    notify: Any = print,
) -> dict[str, int]:
    """Lock the run folder, check everything, write the manifest, run the trials, merge the tables.

    A refused run leaves the folder as it was (the lock file goes, and the folder too if this call made it).
    A signalled run merges what finished and raises `RunInterrupted` with the line to print.
    """
    with stop_on_signals() as stop:
        lock = RunLock(store.root).acquire()
        started = False
        try:
            if lock.note:
                notify(f"note: {lock.note}")
            pinned, datasets = pin_datasets(plan)
            todo = check_store(store, profile, pinned, resume, retry_failed)
            started = True
            write_manifest(store, suite, profile, pinned, address, datasets)
            try:
                return run_grid(
                    pinned, store, store.root.name, max_concurrent, address, resume, progress, todo=todo, stop=stop
                )
            except RunInterrupted as e:
                _, final = store.merge()
                planned = {t.trial_id for t in pinned.trials}
                final = final[final["trial_id"].isin(planned)]
                name = signal.Signals(e.signum).name
                raise RunInterrupted(
                    e.signum,
                    (
                        f"run {store.root.name!r} interrupted by {name}: {int((final['status'] == 'ok').sum())} of "
                        f"{len(planned)} trials done, {int((final['status'] != 'ok').sum())} failed, tables merged "
                        f"in {store.root}; resume with: {resume_command()}"
                    ),
                ) from None
        finally:
            lock.release(remove_empty_root=not started)


def _trainable(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable: one trial, reporting at every evaluation."""
    import torch
    from ray import tune

    from bench.trial import run_trial_safely

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    spec = TrialSpec(**config["spec"])
    store = RunStore(Path(config["store"]))

    def report(step: int, metrics: dict[str, float]) -> None:
        tune.report({"step": step, **metrics, "done": False})

    final = run_trial_safely(spec, store, config["run"], on_report=report, resume=bool(config.get("resume", False)))
    ckpt = store.trial_dir(spec.trial_id) / "checkpoint"
    metrics = {
        "step": final.steps,
        "final_score": final.final_score if final.final_score is not None else float("nan"),
        "status": final.status,
        "done": True,
    }
    if ckpt.is_dir():
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(ckpt)))
    else:
        tune.report(metrics)


def start_ray(address: str | None, env_vars: dict[str, str]) -> None:
    """`ray.init` for `bench run`: a new local Ray on loopback only, or a connection to `address`.

    A local Ray or one at a loopback address is kept on 127.0.0.1 (LOOPBACK_RAY_ENV, set before Ray is
    imported); a remote cluster is left to advertise the address its nodes reach this driver at.
    """
    if is_loopback_address(address):
        use_loopback_ray()
        env_vars = {**env_vars, **LOOPBACK_RAY_ENV}
    import ray

    init_kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": env_vars},
        "logging_level": "ERROR",
    }
    if address:
        init_kwargs["address"] = address
        _use_cluster_token_if_any()
    else:
        # "local": always a fresh single-machine Ray of our own. Without it ray.init() joins whatever Ray
        # cluster already runs on the machine (another user's or test's), then refuses num_cpus.
        init_kwargs["address"] = "local"
        init_kwargs["num_cpus"] = os.cpu_count() or 1
    ray.init(**init_kwargs)


def run_grid(
    plan: GridPlan,
    store: RunStore,
    run: str,
    max_concurrent: int | None,
    address: str | None,
    resume: bool,
    progress: bool = True,
    todo: list[TrialSpec] | None = None,
    stop: StopRequest | None = None,
) -> dict[str, int]:
    """Run the grid's trials still to do with Ray Tune; returns counts of ok / failed / skipped trials.

    `todo` comes from `check_store` (missing and, by default, failed trials); without it only the missing
    trials run. With `stop`, a signal during the trials stops Tune, and `RunInterrupted` is raised after it.
    """
    import ray
    from ray import tune

    if todo is None:
        done = store.finished_trials()
        if done and not resume:
            raise BenchError(
                f"run {run!r} already has {len(done)} finished trials in {store.root}; "
                f"accepted: --resume to finish it, or another --name"
            )
        todo = [t for t in plan.trials if t.trial_id not in done]
    counts = {"already_done": len(plan.trials) - len(todo), "ok": 0, "failed": 0}
    if todo:
        env_vars = {k: v for k, v in os.environ.items() if k.startswith("LAMO_BENCH_") or k == "MUJOCO_GL"}
        env_vars.setdefault("LAMO_BENCH_DATA", str(_abs_data_root()))
        env_vars["PYTHONWARNINGS"] = "ignore"
        cuda = _cuda_available()
        start_ray(address, env_vars)
        if stop is not None:
            # ray.init installs a C++ failure handler for SIGTERM (a stack dump, then abort); take it back.
            stop.install()
        try:
            resources = {"cpu": 1, "gpu": 1.0 / max(1, len(todo)) if cuda else 0}
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus:
                resources["gpu"] = min(1.0, gpus / max(1, min(len(todo), max_concurrent or len(todo))))
            param_space = {
                "spec": tune.grid_search([asdict(t) | {"device": "cuda" if gpus else t.device} for t in todo]),
                "store": str(store.root.resolve()),
                "run": run,
                "threads": 1,
                "resume": resume,
            }
            from bench.progress import TrialProgress

            # Tune's default CSV/JSON/TensorBoard loggers duplicate what the RunStore keeps (result rows,
            # checkpoints) and make Tune print a "tensorboard --logdir" hint for logs nobody reads; Tune's own
            # experiment state stays in results/<run>/ray_tune/ (the path Tune prints).
            os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

            callback = TrialProgress(len(todo), enabled=progress)
            tuner = tune.Tuner(
                tune.with_resources(_trainable, resources),
                param_space=param_space,
                tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=False),
                run_config=tune.RunConfig(
                    name="ray",
                    storage_path=str((store.root / "ray_tune").resolve()),
                    verbose=0,
                    callbacks=[callback],
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
            # SIGINT goes through `stop` like SIGTERM; Tune's own SIGINT handler would stop just the same but
            # leave no trace of having done so.
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
            quiet = _TuneStopNoise()
            tune_logger = logging.getLogger("ray.tune.tune")  # where tune.run logs them
            tune_logger.addFilter(quiet)
            try:
                if stop is not None:
                    stop.in_tune = True
                # Tune prints its experiment banner with print(); stdout belongs to `--json`'s one document.
                with callback, redirect_stdout(sys.stderr):
                    tuner.fit()
            finally:
                if stop is not None:
                    stop.in_tune = False
                tune_logger.removeFilter(quiet)
        finally:
            ray.shutdown()
    if stop is not None and stop.signum is not None:
        raise RunInterrupted(stop.signum)
    _, final = store.merge()
    planned = {t.trial_id for t in plan.trials}
    final = final[final["trial_id"].isin(planned)]
    counts["ok"] = int((final["status"] == "ok").sum())
    counts["failed"] = int((final["status"] == "failed").sum())
    counts["missing"] = len(planned) - len(final)
    return counts


def _use_cluster_token_if_any() -> None:
    """`ray start` turns on token authentication when a token exists (~/.ray/auth_token), but a connecting
    `ray.init(address=...)` does not; do what `ray start` does so both sides agree."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # older Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _abs_data_root() -> Path:
    from bench.paths import data_root

    return data_root().resolve()


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())
