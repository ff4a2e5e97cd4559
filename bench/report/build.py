"""`build_report`: read runs, and write every table, figure, aggregate and the index page.

Layout of a report folder (one sub-folder per profile, so numbers from different profiles never share a
file):

    <out>/index.html                 every table and figure, readable offline
    <out>/summary.json               what was written, per profile, with notes
    <out>/<profile>/tables/          scores, paper_comparison, failed_trials, robust_* (.md .csv .tex)
    <out>/<profile>/figures/         score_vs_ratio, learning_curves, sparse_vs_dense, robust_* (.png .pdf)
                                     and sparse_vs_dense.csv, the numbers of that figure's panels
    <out>/manifests/<run>.json       each input run's manifest (suite, profile, deviations, data hashes), as is
    <out>/<profile>/robust/          rliable numbers (.csv, robust.json)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.atomic import atomic_write_bytes, atomic_write_json
from bench.errors import BenchError
from bench.report import figures, tables
from bench.report.html import FigureEntry, Section, TableEntry, render_index
from bench.report.load import Results, load_runs, split_by_profile, train_metrics
from bench.report.render import Table, to_latex, to_markdown
from bench.report.robust import METRICS, RobustResult, cell_intervals, profiles_frame, robust_results
from bench.report.stats import cell_stats, curve_change, learning_curves, scored_mask, select_cell_targets
from bench.report.style import method_colors

TITLE = "lamo-bench report: LaMo vs Decision Transformer and offline RL baselines"


class _Writer:
    """Writes files atomically under the report folder and remembers their paths relative to it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []

    def text(self, rel: str, content: str) -> str:
        path = self.out / rel
        atomic_write_bytes(path, content.encode("utf-8"))
        self.written.append(path)
        return rel

    def csv(self, rel: str, frame: pd.DataFrame) -> str:
        return self.text(rel, frame.to_csv(index=False))

    def json(self, rel: str, doc: Any) -> str:
        path = self.out / rel
        atomic_write_json(path, doc)
        self.written.append(path)
        return rel

    def table(self, rel_base: str, table: Table, frame: pd.DataFrame | None) -> dict[str, str]:
        links = {"Markdown": self.text(rel_base + ".md", to_markdown(table))}
        if frame is not None:
            links["CSV"] = self.csv(rel_base + ".csv", frame)
        links["LaTeX"] = self.text(rel_base + ".tex", to_latex(table))
        return links

    def figure(self, rel_base: str, fig: Any) -> tuple[str, str]:
        paths = figures.save_figure(fig, self.out / rel_base)
        self.written.extend(paths)
        return rel_base + ".png", rel_base + ".pdf"


def _robust(part: Results, profile: str, reps: int, notes: list[str]) -> list[RobustResult]:
    try:
        results, skipped = robust_results(part.final, profile, reps)
    except (ImportError, TypeError) as exc:  # a broken rliable/arch install must not cost the tables
        notes.append(f"rliable aggregates skipped: rliable could not be imported ({exc.__class__.__name__}: {exc})")
        return []
    notes.extend(skipped)
    return results


def _add_robust_figures(
    robust: list[RobustResult], colors: dict[str, str], add_figure: Callable[[str, Any, str, str], None]
) -> None:
    """The rliable figures (intervals, performance profiles, probability of improvement), when any aggregate
    was computed."""
    if not robust:
        return
    add_figure(
        "robust_intervals",
        figures.robust_intervals(robust, colors),
        "Robust aggregates (rliable)",
        "IQM, median, mean and optimality gap per reward type with 95% stratified-bootstrap CIs.",
    )
    add_figure(
        "performance_profiles",
        figures.performance_profiles(robust, colors),
        "Performance profiles",
        "Fraction of runs whose score exceeds each threshold, per reward type, with 95% CIs.",
    )
    poi = figures.improvement_probabilities(robust, colors)
    if poi is not None:
        add_figure(
            "probability_of_improvement",
            poi,
            "Probability of improvement",
            "P(LaMo > X) for each other method, per reward type; dashed line: 0.5 (no difference).",
        )


def _profile_section(
    part: Results, profile: str, w: _Writer, colors: dict[str, str], reps: int
) -> tuple[Section, dict[str, Any]]:
    p = profile
    notes = list(part.notes)
    # One return-to-go target per cell for all seeds; every table, curve and aggregate below uses it.
    final, target_means, target_notes = select_cell_targets(part.final)
    notes.extend(target_notes)
    part = Results(final=final, evals=part.evals, runs=part.runs, notes=part.notes, run_notes=part.run_notes)
    cells = cell_intervals(cell_stats(final), reps)  # each cell's 95% interval: the tables rank by it
    if profile != "paper":
        notes.append(
            f"profile {profile!r} is not the paper's training protocol; compare with published numbers with care"
        )
    n_failed = int((~scored_mask(final)).sum())
    if n_failed:
        notes.append(
            f"{n_failed} trial(s) failed; they appear as 'failed' in the tables and are excluded from "
            "every mean, curve and aggregate (never counted as 0)"
        )
    section = Section(
        profile=profile, runs=sorted(set(final["run"])), n_trials=len(final), n_failed=n_failed, notes=notes
    )
    info: dict[str, Any] = {
        "runs": [str(r) for r in part.runs],
        "trials": len(final),
        "failed": n_failed,
        "tables": {},
        "figures": {},
        "robust": {},
        "notes": notes,
    }

    def add_table(name: str, table: Table, frame: pd.DataFrame | None) -> None:
        links = w.table(f"{p}/tables/{name}", table, frame)
        section.tables.append(TableEntry(table, links))
        info["tables"][name] = links

    def add_figure(name: str, fig: Any, title: str, caption: str) -> None:
        if fig is None:
            notes.append(f"figure {name} skipped: no data")
            return
        png, pdf = w.figure(f"{p}/figures/{name}", fig)
        section.figures.append(FigureEntry(title, png, pdf, caption))
        info["figures"][name] = [png, pdf]

    scores = tables.score_table(cells, profile, reps)
    add_table("scores", scores.table, scores.frame)
    comparison = tables.paper_comparison(cells, profile, reps)
    if comparison is None:
        notes.append("no task × ratio of these runs appears in the paper's tables: no paper comparison")
    else:
        add_table("paper_comparison", comparison.table, comparison.frame)
    failed = tables.trials_table(final, profile)
    if failed is not None:
        add_table("failed_trials", failed.table, failed.frame)
    change = tables.curve_change_table(curve_change(part.evals, final), profile, reps)
    if change is None:
        notes.append("no trial was evaluated twice in its last two score windows: no curve-change table")
    else:
        add_table("curve_change", change.table, change.frame)
    trial_cols = [
        c
        for c in (
            "run",
            "trial_id",
            "agent",
            "variant",
            "task",
            "reward_type",
            "ratio",
            "seed",
            "profile",
            "status",
            "error",
            "rtg_target",
            "final_score",
            "target_choice",
            "seed_best_target",
            "seed_best_score",
            "steps",
            "wall_time_s",
        )
        if c in final.columns
    ]
    section.files.append(("All trials (CSV)", w.csv(f"{p}/tables/trials.csv", final[trial_cols])))
    if not target_means.empty:
        section.files.append(
            (
                "Mean final score of every return-to-go target per cell (CSV)",
                w.csv(f"{p}/tables/targets.csv", target_means),
            )
        )

    robust = _robust(part, profile, reps, notes)
    for r in robust:
        notes.extend(r.notes)
    if robust:
        aggregates = pd.concat([r.aggregates for r in robust], ignore_index=True)
        improvement = pd.concat([r.improvement for r in robust], ignore_index=True)
        add_table("robust_aggregates", tables.aggregates_table(aggregates, profile, METRICS, reps), aggregates)
        info["robust"]["aggregates"] = w.csv(f"{p}/robust/aggregates.csv", aggregates)
        info["robust"]["performance_profiles"] = w.csv(f"{p}/robust/performance_profiles.csv", profiles_frame(robust))
        if not improvement.empty:
            add_table("robust_improvement", tables.improvement_table(improvement, profile, reps), improvement)
            info["robust"]["probability_of_improvement"] = w.csv(
                f"{p}/robust/probability_of_improvement.csv", improvement
            )
        info["robust"]["json"] = w.json(
            f"{p}/robust/robust.json", {"reps": reps, "results": [r.to_json() for r in robust]}
        )
        section.files += [(f"rliable {k.replace('_', ' ')}", v) for k, v in info["robust"].items()]

    with figures.figure_style():
        if not (cells["n_ok"] > 0).any():
            notes.append("no trial produced a score: no score figures")
        else:
            add_figure(
                "score_vs_ratio",
                figures.score_vs_ratio(cells, profile, colors),
                "Final score vs sample ratio",
                "Per task, the normalized final score at each sample ratio (log axis); line: mean over "
                "seeds, band: ± std. As the paper's Figure 3.",
            )
            panels = figures.sparse_vs_dense_data(scores.frame, cells, scores.methods)
            info["figure_data"] = {"sparse_vs_dense": w.csv(f"{p}/figures/sparse_vs_dense.csv", panels)}
            section.files.append(("Sparse vs dense figure numbers (CSV)", info["figure_data"]["sparse_vs_dense"]))
            add_figure(
                "sparse_vs_dense",
                figures.sparse_vs_dense(panels, profile, colors, scores.methods),
                "Sparse vs dense reward",
                "Each method's average final score over the task × ratio cells of each reward type (the "
                "tables' Average rows); whiskers: mean per-cell std over seeds; hatched: fewer cells.",
            )
        curves = learning_curves(part.evals, final)
        agents = dict(zip(cells["variant"], cells["agent"], strict=True))
        add_figure(
            "learning_curves",
            figures.learning_curves(curves, profile, colors, agents),
            "Learning curves",
            "Normalized evaluation score during training; for return-conditioned agents, each trial at "
            "the return-to-go target its final score uses. Band: ± std over seeds.",
        )
        train = train_metrics(part.runs, final)
        if not train.empty:
            add_figure(
                "training_metrics",
                figures.training_metrics(train, profile, colors, agents),
                "Training metrics",
                "Every logged training loss over training (LaMo's language loss lm_loss, its decision loss, "
                "CQL's critic/actor/temperature losses), mean ± std over each method's trials: the paper's "
                "language-retention claim can be read here.",
            )
        _add_robust_figures(robust, colors, add_figure)
    return section, info


def build_report(runs: list[Path], out: Path, reps: int = 2000) -> dict[str, Any]:
    """Build the report for `runs` (results/<run> folders) into `out`; returns what was written.

    Each profile found in the runs gets its own section and folder; numbers are never pooled across
    profiles. `reps` is the number of bootstrap resamples for rliable's confidence intervals.
    """
    if reps < 1:
        raise BenchError(f"bootstrap reps {reps} is not usable; expected a positive integer such as 2000")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"report output {out} is a file; expected a folder path such as reports/NAME")
    results = load_runs([Path(r) for r in runs])
    colors = method_colors(results.final["variant"])
    w = _Writer(out)
    sections: list[Section] = []
    profiles: dict[str, Any] = {}
    for profile, part in split_by_profile(results).items():
        section, info = _profile_section(part, profile, w, colors, reps)
        sections.append(section)
        profiles[profile] = info
    # A report over several runs (make run: one per suite) keeps every run's manifest, so the committed report
    # says what was run, with which deviations and data, without the results folders.
    manifests: dict[str, str] = {}
    for run in results.runs:
        manifest = run / "manifest.json"
        if manifest.is_file():
            manifests[run.name] = w.text(f"manifests/{run.name}.json", manifest.read_text(encoding="utf-8"))
    for section in sections:
        section.files += [
            (f"Manifest of run {name} (JSON)", manifests[name]) for name in section.runs if name in manifests
        ]
    index = w.text("index.html", render_index(TITLE, sections))
    summary: dict[str, Any] = {
        "out": str(out),
        "index": str(out / index),
        "runs": [str(r) for r in results.runs],
        "reps": reps,
        "manifests": manifests,
        "profiles": profiles,
    }
    summary["files"] = [str(p) for p in w.written] + [str(out / "summary.json")]
    atomic_write_json(out / "summary.json", summary)
    return summary
