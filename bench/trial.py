"""One trial: dataset -> subsample -> agent.fit -> periodic evaluation -> result rows (+ checkpoint).

This is the whole data flow of the harness for one (agent, task, ratio, seed) cell. `bench train` calls it
directly; the Ray Tune trainable of `bench run` calls it inside a trial. Everything it needs comes from the
task registry and the agent registry.

A paper-profile trial trains for hours, so it checkpoints at every evaluation (weights, optimiser, scheduler,
every random state, the step and the rows so far) into `<trial>/checkpoints/step-N/`, keeping only the newest;
`resume=True` continues from there with the same result as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.atomic import atomic_write_json, atomic_write_parquet
from bench.errors import BenchError
from bench.results import TRAIN_METRICS_FILE, EvalRow, FinalRow, RunStore
from bench.tasks import get_task

#: Called after each evaluation with (step, {"loss": .., "score": best mean normalized score over targets}).
if TYPE_CHECKING:
    from agents.base import Agent
    from bench.data.trajectories import TrajectoryDataset
    from bench.evaluate import EvalResult

ReportCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrialSpec:
    """Everything that defines one trial; its `trial_id` names its folder and its rows."""

    agent: str
    task: str
    ratio: float
    seed: int
    steps: int
    eval_every: int
    eval_episodes: int
    profile: str = "custom"
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    device: str = "cpu"
    #: Steps of the final-score window; None scales the paper's window (its share of the paper's steps).
    report_window: int | None = None
    #: Content hash of the full dataset that `bench run` pinned for this trial; the trial refuses other data.
    dataset_hash: str | None = None

    @property
    def trial_id(self) -> str:
        return f"{self.agent}__{self.task}__r{self.ratio:g}__s{self.seed}"

    def definition(self) -> dict[str, Any]:
        """What defines this trial's result beyond its id: a resumed run may only reuse a stored trial whose
        definition equals the planned one (otherwise e.g. 40-step and 200-step trials would share a table)."""
        return {
            "profile": self.profile,
            "steps": self.steps,
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
            "report_window": self.window(),
            "overrides": self.overrides,
            "dataset_hash": self.dataset_hash,
            "source": self.source,
        }

    def window(self) -> int:
        if self.report_window is not None:
            return self.report_window
        paper = get_task(self.task).paper
        return max(1, round(self.steps * paper.report_window / paper.train_steps))


@dataclass
class TrialResult:
    evals: list[EvalRow]
    final: FinalRow


def _base_fields(spec: TrialSpec, run: str) -> dict[str, Any]:
    from agents.registry import get_entry

    task = get_task(spec.task)
    entry = get_entry(spec.agent)
    return {
        "run": run,
        "trial_id": spec.trial_id,
        "agent": entry.family,
        "variant": entry.name,
        "task": task.name,
        "domain": task.domain,
        "reward_type": task.reward_type,
        "ratio": float(spec.ratio),
        "seed": int(spec.seed),
        "profile": spec.profile,
    }


#: Mid-trial checkpoints, one folder per evaluation step, inside the trial folder.
CHECKPOINTS_DIR = "checkpoints"
#: The trial's bookkeeping inside each mid-trial checkpoint (written last: its presence marks a whole one).
TRIAL_STATE_FILE = "trial_state.json"
TRIAL_STATE_FORMAT = 1


def _spec_doc(spec: TrialSpec) -> dict[str, Any]:
    """The spec as JSON would give it back, so a saved and a live spec compare equal."""
    out: dict[str, Any] = json.loads(json.dumps(asdict(spec), default=str))
    return out


def _step_dir(folder: Path, step: int) -> Path:
    return folder / f"step-{step:09d}"


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete mid-trial checkpoint in `folder` (a trial's `checkpoints/`), or None."""
    if not folder.is_dir():
        return None
    done = [d for d in folder.glob("step-*") if d.is_dir() and (d / TRIAL_STATE_FILE).is_file()]
    return max(done, key=lambda d: d.name) if done else None


def _clear_checkpoints(folder: Path, keep: Path | None = None) -> None:
    """Remove every mid-trial checkpoint (and leftover temporary folder) but `keep`: only the last is kept."""
    if not folder.is_dir():
        return
    for d in folder.iterdir():
        if d.is_dir() and d != keep and (d.name.startswith("step-") or d.name.startswith(".step-")):
            shutil.rmtree(d, ignore_errors=True)


@dataclass
class _Progress:
    """What a trial has gathered so far; saved in every mid-trial checkpoint, restored on resume."""

    rows: list[EvalRow] = field(default_factory=list)
    losses: dict[int, float] = field(default_factory=dict)
    metrics: list[dict[str, float]] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_doc(self, spec: TrialSpec, step: int) -> dict[str, Any]:
        return {
            "format": TRIAL_STATE_FORMAT,
            "spec": _spec_doc(spec),
            "step": step,
            "rows": [asdict(r) for r in self.rows],
            "losses": [[k, v] for k, v in self.losses.items()],
            "metrics": self.metrics,
            "elapsed_s": self.elapsed_s,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> _Progress:
        return cls(
            rows=[EvalRow(**r) for r in doc["rows"]],
            losses={int(k): float(v) for k, v in doc["losses"]},
            metrics=list(doc["metrics"]),
            elapsed_s=float(doc["elapsed_s"]),
        )


def read_trial_state(checkpoint: Path, spec: TrialSpec) -> tuple[int, _Progress]:
    """The step and progress saved in a mid-trial checkpoint, refused in one line if it is unreadable or
    belongs to a trial defined differently (another agent, task, ratio, seed, steps, overrides ...)."""
    file = checkpoint / TRIAL_STATE_FILE
    if not file.is_file():
        raise BenchError(
            f"no trial checkpoint at {checkpoint} (no {TRIAL_STATE_FILE}); accepted: a folder "
            f"{CHECKPOINTS_DIR}/step-N written by a trial"
        )
    try:
        doc = json.loads(file.read_text())
        if doc.get("format") != TRIAL_STATE_FORMAT:
            raise BenchError(
                f"trial checkpoint {file} has format {doc.get('format')!r}; this version reads "
                f"format {TRIAL_STATE_FORMAT}"
            )
        saved = doc["spec"]
        mine = _spec_doc(spec)
        differ = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        if differ:
            pairs = ", ".join(f"{k} {saved.get(k)!r} vs {mine.get(k)!r}" for k in differ)
            raise BenchError(
                f"checkpoint {checkpoint} belongs to a different trial ({pairs}); resume it with "
                "the same definition or start the trial afresh"
            )
        return int(doc["step"]), _Progress.from_doc(doc)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise BenchError(f"cannot read trial checkpoint {file}: {type(e).__name__} {e}") from None


def _resume_point(resume: bool | Path, states: Path | None) -> Path | None:
    """The mid-trial checkpoint to continue from: the one named, the newest in `states`, or None (afresh)."""
    if isinstance(resume, Path):
        return resume
    if not resume:
        return None
    if states is None:
        raise BenchError("resuming a trial needs its trial folder; none was given")
    return latest_checkpoint(states)


def _check_pinned_hash(spec: TrialSpec, full: TrajectoryDataset, task_name: str) -> None:
    """A run pins each dataset's content hash when it starts; a trial refuses data that changed since."""
    if spec.dataset_hash is not None and (loaded_hash := full.content_hash()) != spec.dataset_hash:
        raise BenchError(
            f"dataset {full.metadata.get('source', task_name)} changed since the run started: content "
            f"hash {loaded_hash}, the run pinned {spec.dataset_hash}; accepted: the pinned data"
        )


def _write_checkpoint(
    states: Path, step: int, agent: Agent, progress: _Progress, spec: TrialSpec, start: float
) -> None:
    """A whole folder or none: written under a temporary name, renamed, then older ones pruned. The saved
    elapsed time counts from `start` (perf_counter) up to this save, the agent's state included."""
    final_dir = _step_dir(states, step)
    tmp = states / f".{final_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        agent.save_training_state(tmp)
        progress.elapsed_s = time.perf_counter() - start
        atomic_write_json(tmp / TRIAL_STATE_FILE, progress.to_doc(spec, step))
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(tmp, final_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _clear_checkpoints(states, keep=final_dir)


def _eval_index(spec: TrialSpec, step: int) -> int:
    """Evaluation k (0-based, by its place in the schedule, so a resumed trial keeps the numbering) gets fresh
    start states that depend only on (seed, k, episode): the same for every agent and target. An evaluation off
    the schedule would reuse another's start states, so it is refused."""
    from agents.base import eval_steps

    schedule = eval_steps(spec.steps, spec.eval_every)
    if step not in schedule:
        raise BenchError(
            f"{spec.agent} evaluated at step {step}, which is not in its evaluation schedule "
            f"(every {spec.eval_every} of {spec.steps} steps); expected one of {schedule[:5]}..."
        )
    return schedule.index(step)


def _eval_rows(
    base: dict[str, Any], step: int, results: list[EvalResult], loss: float | None, start: float
) -> list[EvalRow]:
    """One result row per return-to-go target of an evaluation; wall time counts from `start` (perf_counter)."""
    return [
        EvalRow(
            **base,
            step=step,
            rtg_target=res.target,
            score_mean=res.mean_score,
            score_std=float(np.std(res.scores)),
            return_mean=res.mean_return,
            return_std=float(np.std(res.returns)),
            episodes=len(res.returns),
            loss=loss,
            wall_time_s=time.perf_counter() - start,
        )
        for res in results
    ]


def run_trial(
    spec: TrialSpec,
    run: str = "train",
    checkpoint_dir: Path | None = None,
    on_report: ReportCallback | None = None,
    *,
    trial_dir: Path | None = None,
    resume: bool | Path = False,
) -> TrialResult:
    """Train and evaluate one trial. User errors propagate as BenchError; see `run_trial_safely`.

    With `trial_dir`, the trial checkpoints at every evaluation into `trial_dir/checkpoints/step-N/` (only
    the newest is kept), writes its final weights to `trial_dir/checkpoint/` (unless `checkpoint_dir` says
    elsewhere) and every logged training metric to `trial_dir/train_metrics.parquet`. `resume=True` continues
    from the newest checkpoint there (starting afresh when there is none); a path resumes that checkpoint.
    Without resuming, old mid-trial checkpoints are removed first. A resumed trial gives the same rows and
    weights as an uninterrupted one (wall times aside).
    """
    import pandas as pd
    import torch

    from agents.base import TaskSpec
    from agents.registry import make_agent
    from bench.data.loaders import load_task_dataset
    from bench.data.subsample import subsample
    from bench.evaluate import evaluate, select_target, target_summaries

    if spec.steps < 1 or spec.eval_episodes < 1:
        raise BenchError(f"steps ({spec.steps}) and eval episodes ({spec.eval_episodes}) must be at least 1")
    if checkpoint_dir is None and trial_dir is not None:
        checkpoint_dir = trial_dir / "checkpoint"
    states = trial_dir / CHECKPOINTS_DIR if trial_dir is not None else None
    resume_from = _resume_point(resume, states)
    progress = _Progress()
    start_step = 0
    if resume_from is not None:
        start_step, progress = read_trial_state(resume_from, spec)
    elif states is not None:
        _clear_checkpoints(states)
    start = time.perf_counter() - progress.elapsed_s
    task = get_task(spec.task)
    full = load_task_dataset(task, spec.source)
    _check_pinned_hash(spec, full, task.name)
    data = subsample(full, spec.ratio, spec.seed)
    torch.manual_seed(spec.seed)
    agent = make_agent(
        spec.agent, task, TaskSpec.from_task(task, full), spec.overrides, device=spec.device, seed=spec.seed
    )
    if resume_from is not None:
        loaded = agent.load_training_state(resume_from)
        if loaded != start_step:
            raise BenchError(f"checkpoint {resume_from}: agent state is at step {loaded}, trial state at {start_step}")
    base = _base_fields(spec, run)
    rows, losses = progress.rows, progress.losses
    per_target: dict[float | None, list[tuple[int, float]]] = {}
    for row in rows:
        per_target.setdefault(row.rtg_target, []).append((row.step, row.score_mean))

    def on_log(step: int, metrics: dict[str, float]) -> None:
        losses[step] = float(metrics.get("loss", float("nan")))
        progress.metrics.append({"step": step, **metrics})

    def on_eval(step: int, _agent: Any) -> None:
        results = evaluate(agent, task, spec.eval_episodes, seed=spec.seed, eval_index=_eval_index(spec, step))
        added = _eval_rows(base, step, results, losses.get(step), start)
        rows.extend(added)
        for row in added:
            per_target.setdefault(row.rtg_target, []).append((step, row.score_mean))
        if on_report is not None:
            on_report(step, {"loss": losses.get(step, float("nan")), "score": max(r.mean_score for r in results)})

    def on_checkpoint(step: int, _agent: Any) -> None:
        assert states is not None
        _write_checkpoint(states, step, agent, progress, spec, start)

    agent.fit(
        data,
        spec.steps,
        eval_every=spec.eval_every,
        on_eval=on_eval,
        on_log=on_log,
        on_checkpoint=on_checkpoint if states is not None else None,
    )
    if checkpoint_dir is not None:
        agent.save(checkpoint_dir)
    if trial_dir is not None and progress.metrics:
        atomic_write_parquet(trial_dir / TRAIN_METRICS_FILE, pd.DataFrame(progress.metrics))
    summary = select_target(per_target, spec.window())
    every_target = [
        {"target": t.target, "final": t.final, "last": t.last, "best": t.best}
        for t in target_summaries(per_target, spec.window())
    ]
    total, trainable = agent.num_params()
    final = FinalRow(
        **base,
        status="ok",
        rtg_target=summary.target,
        final_score=summary.final,
        last_score=summary.last,
        best_score=summary.best,
        target_scores=every_target,
        steps=spec.steps,
        evaluations=len(per_target[summary.target]),
        wall_time_s=time.perf_counter() - start,
        params_total=total,
        params_trainable=trainable,
        dataset_hash=data.content_hash(),
        dataset_source=str(full.metadata.get("source", "")),
        extra={
            "report_window": spec.window(),
            "definition": spec.definition(),
            "config": agent.config.to_dict(),
            "episodes_kept": data.num_episodes,
            "transitions_kept": data.num_transitions,
            "resumed_from_step": start_step or None,
        },
    )
    return TrialResult(rows, final)


def run_trial_safely(
    spec: TrialSpec, store: RunStore, run: str, on_report: ReportCallback | None = None, resume: bool = False
) -> FinalRow:
    """Run a trial and record it in the store; a failure is recorded as a failed row with its error.
    `resume` continues an interrupted trial from its last mid-trial checkpoint (see `run_trial`)."""
    start = time.perf_counter()
    try:
        result = run_trial(spec, run, on_report=on_report, trial_dir=store.trial_dir(spec.trial_id), resume=resume)
    except Exception as e:
        message = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
        final = FinalRow(
            **_base_fields(spec, run),
            status="failed",
            error=message.splitlines()[0][:500],
            steps=spec.steps,
            wall_time_s=time.perf_counter() - start,
            extra={"traceback": traceback.format_exc()[-4000:], "definition": spec.definition()},
        )
        store.write_trial(spec.trial_id, [], final)
        return final
    store.write_trial(spec.trial_id, result.evals, result.final)
    return result.final
