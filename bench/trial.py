"""One trial: dataset -> subsample -> agent.fit -> periodic evaluation -> result rows (+ checkpoint).

This is the whole data flow of the harness for one (agent, task, ratio, seed) cell. `bench train` calls it
directly; the Ray Tune trainable of `bench run` calls it inside a trial. Everything it needs comes from the
task registry and the agent registry.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError
from bench.results import EvalRow, FinalRow, RunStore
from bench.tasks import get_task

#: Called after each evaluation with (step, {"loss": .., "score": best mean normalized score over targets}).
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

    @property
    def trial_id(self) -> str:
        return f"{self.agent}__{self.task}__r{self.ratio:g}__s{self.seed}"

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
        "run": run, "trial_id": spec.trial_id, "agent": entry.base or entry.name, "variant": entry.name,
        "task": task.name, "domain": task.domain, "reward_type": task.reward_type, "ratio": float(spec.ratio),
        "seed": int(spec.seed), "profile": spec.profile,
    }


def run_trial(spec: TrialSpec, run: str = "train", checkpoint_dir: Path | None = None,
              on_report: ReportCallback | None = None) -> TrialResult:
    """Train and evaluate one trial. User errors propagate as BenchError; see `run_trial_safely`."""
    import torch

    from agents.base import TaskSpec, eval_steps
    from agents.registry import make_agent
    from bench.data.loaders import load_task_dataset
    from bench.data.subsample import subsample
    from bench.evaluate import evaluate, select_target, target_summaries

    if spec.steps < 1 or spec.eval_episodes < 1:
        raise BenchError(f"steps ({spec.steps}) and eval episodes ({spec.eval_episodes}) must be at least 1")
    start = time.perf_counter()
    task = get_task(spec.task)
    full = load_task_dataset(task, spec.source)
    data = subsample(full, spec.ratio, spec.seed)
    torch.manual_seed(spec.seed)
    agent = make_agent(spec.agent, task, TaskSpec.from_task(task, full), spec.overrides, device=spec.device,
                       seed=spec.seed)
    base = _base_fields(spec, run)
    losses: dict[int, float] = {}
    rows: list[EvalRow] = []
    per_target: dict[float | None, list[tuple[int, float]]] = {}

    def on_log(step: int, metrics: dict[str, float]) -> None:
        losses[step] = float(metrics.get("loss", float("nan")))

    # Evaluation k (0-based, by its place in the schedule, so a resumed trial keeps the numbering) gets fresh
    # start states that depend only on (seed, k, episode): the same for every agent and target.
    schedule = eval_steps(spec.steps, spec.eval_every)

    def on_eval(step: int, _agent: Any) -> None:
        if step not in schedule:
            raise BenchError(f"{spec.agent} evaluated at step {step}, which is not in its evaluation schedule "
                             f"(every {spec.eval_every} of {spec.steps} steps); expected one of {schedule[:5]}...")
        results = evaluate(agent, task, spec.eval_episodes, seed=spec.seed, eval_index=schedule.index(step))
        for res in results:
            rows.append(EvalRow(
                **base, step=step, rtg_target=res.target, score_mean=res.mean_score,
                score_std=float(np.std(res.scores)), return_mean=res.mean_return,
                return_std=float(np.std(res.returns)), episodes=len(res.returns), loss=losses.get(step),
                wall_time_s=time.perf_counter() - start,
            ))
            per_target.setdefault(res.target, []).append((step, res.mean_score))
        if on_report is not None:
            on_report(step, {"loss": losses.get(step, float("nan")),
                             "score": max(r.mean_score for r in results)})

    agent.fit(data, spec.steps, eval_every=spec.eval_every, on_eval=on_eval, on_log=on_log)
    if checkpoint_dir is not None:
        agent.save(checkpoint_dir)
    summary = select_target(per_target, spec.window())
    every_target = [{"target": t.target, "final": t.final, "last": t.last, "best": t.best}
                    for t in target_summaries(per_target, spec.window())]
    total, trainable = agent.num_params()
    final = FinalRow(
        **base, status="ok", rtg_target=summary.target, final_score=summary.final, last_score=summary.last,
        best_score=summary.best, target_scores=every_target, steps=spec.steps,
        evaluations=len(per_target[summary.target]),
        wall_time_s=time.perf_counter() - start, params_total=total, params_trainable=trainable,
        dataset_hash=data.content_hash(), dataset_source=str(full.metadata.get("source", "")),
        extra={"report_window": spec.window(), "config": agent.config.to_dict(),
               "episodes_kept": data.num_episodes, "transitions_kept": data.num_transitions},
    )
    return TrialResult(rows, final)


def run_trial_safely(spec: TrialSpec, store: RunStore, run: str,
                     on_report: ReportCallback | None = None) -> FinalRow:
    """Run a trial and record it in the store; a failure is recorded as a failed row with its error."""
    start = time.perf_counter()
    try:
        result = run_trial(spec, run, checkpoint_dir=store.trial_dir(spec.trial_id) / "checkpoint",
                           on_report=on_report)
    except Exception as e:
        message = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
        final = FinalRow(**_base_fields(spec, run), status="failed", error=message.splitlines()[0][:500],
                         steps=spec.steps, wall_time_s=time.perf_counter() - start,
                         extra={"traceback": traceback.format_exc()[-4000:]})
        store.write_trial(spec.trial_id, [], final)
        return final
    store.write_trial(spec.trial_id, result.evals, result.final)
    return result.final
