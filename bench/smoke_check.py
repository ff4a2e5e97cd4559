"""The CI smoke benchmark's acceptance check: a complete, finite, plausible results store and its report.

Usage: python -m bench.smoke_check RUN_DIR REPORT_DIR [--suite smoke]
Checks that every (agent, task, ratio, seed) cell of the suite's runnable grid has exactly one final row with
status ok, that every score is finite and inside the task's plausible range, and that the report's index,
tables and figures exist. Exits 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from bench.suites import get_profile, load_suite
from bench.tasks import get_task


def plausible_range(task_name: str) -> tuple[float, float]:
    """Normalized scores a real policy can reach: sparse tasks are bounded by their reward; dense ones are not,
    but a return far outside [random - 1x span, expert + 1x span] means a normalization or logging bug."""
    task = get_task(task_name)
    if task.reward_type == "sparse" and task.domain in ("reacher2d", "kitchen"):
        return 0.0, 100.0 * (1.25 if task.domain == "kitchen" else 1.0)
    return -100.0, 200.0


def check(run_dir: Path, report_dir: Path, suite_name: str) -> list[str]:
    from bench.orchestrator import build_grid

    problems: list[str] = []
    suite = load_suite(suite_name)
    plan = build_grid(suite, get_profile(suite.default_profile))
    if plan.skipped:
        problems += [f"task {t} was skipped: {why}" for t, why in plan.skipped.items()]
    final = pd.read_parquet(run_dir / "final.parquet")
    evals = pd.read_parquet(run_dir / "evals.parquet")
    for spec in plan.trials:
        rows = final[final["trial_id"] == spec.trial_id]
        if len(rows) != 1:
            problems.append(f"{spec.trial_id}: {len(rows)} final rows, expected 1")
            continue
        row = rows.iloc[0]
        if row["status"] != "ok":
            problems.append(f"{spec.trial_id}: status {row['status']}: {row['error']}")
            continue
        lo, hi = plausible_range(spec.task)
        for col in ("final_score", "last_score", "best_score"):
            v = float(row[col])
            if not math.isfinite(v) or not lo <= v <= hi:
                problems.append(f"{spec.trial_id}: {col} {v} outside [{lo}, {hi}]")
        trial_evals = evals[evals["trial_id"] == spec.trial_id]
        if trial_evals.empty or not trial_evals["score_mean"].map(math.isfinite).all():
            problems.append(f"{spec.trial_id}: missing or non-finite evaluation rows")
    index = report_dir / "index.html"
    if not index.is_file():
        problems.append(f"report index {index} missing")
    summary_path = report_dir / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        for f in summary.get("files", []):
            if not Path(f).is_file() or Path(f).stat().st_size == 0:
                problems.append(f"report file {f} missing or empty")
    else:
        problems.append(f"report summary {summary_path} missing")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("report_dir", type=Path)
    parser.add_argument("--suite", default="smoke")
    args = parser.parse_args()
    problems = check(args.run_dir, args.report_dir, args.suite)
    for p in problems:
        print(f"smoke check: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"smoke check: every cell of suite {args.suite} present, finite and plausible; report complete")


if __name__ == "__main__":
    main()
