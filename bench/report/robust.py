"""Robust aggregate metrics with rliable: IQM, median, mean, optimality gap, performance profiles and the
probability that LaMo beats each other method, with stratified-bootstrap 95% confidence intervals.

Score matrices follow rliable's layout: one per method, runs (seeds) × tasks, where a "task" is one
task × sample-ratio cell, on the normalized scale divided by 100. What is done to make them rectangular:
- methods and cells are chosen to keep the most scores (|methods| × |shared cells|, LaMo always in):
  a method scored on only a few cells (an ablation run on two tasks, or a method that failed everywhere
  in one cell) is left out rather than shrinking everyone's cells;
- per method, every cell keeps its lowest-numbered `n` scored seeds, `n` being the smallest count over
  its cells (rliable needs a rectangle; different methods may have different `n`);
- failed trials have no score and are never in a matrix.
All of it is recorded in `notes`. With one run per method there is nothing to resample: point estimates
are reported and the intervals left empty (NaN). Outputs are rescaled to the 0-100 table scale, except
probabilities.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from bench.report.stats import scored_mask
from bench.report.style import method_order, reward_order

METRICS: tuple[str, ...] = ("IQM", "Median", "Mean", "Optimality gap")
SCALE = 100.0
CONFIDENCE = 0.95
N_TAUS = 81


def _rliable() -> tuple[ModuleType, ModuleType]:
    """rliable's modules, imported on first use (they pull in scipy and arch). pandas is pinned below 3 in
    pyproject.toml because arch 7.x, which rliable's bootstrap needs, does not import under pandas 3."""
    from rliable import library, metrics

    return library, metrics


@dataclass
class RobustResult:
    """Everything rliable says about one profile and reward type."""

    profile: str
    reward_type: str
    methods: list[str]
    cells: list[str]
    runs: dict[str, int]
    aggregates: pd.DataFrame  # method, metric, estimate, ci_low, ci_high
    improvement: pd.DataFrame  # method, baseline, probability, ci_low, ci_high
    taus: np.ndarray  # thresholds on the 0-100 scale
    profiles: dict[str, np.ndarray]
    profile_cis: dict[str, np.ndarray]  # 2 × len(taus); NaN when not bootstrapped
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "reward_type": self.reward_type,
            "methods": self.methods,
            "cells": self.cells,
            "runs_per_method": self.runs,
            "confidence": CONFIDENCE,
            "scale": "normalized score, 0-100",
            "aggregates": self.aggregates.to_dict(orient="records"),
            "probability_of_improvement": self.improvement.to_dict(orient="records"),
            "notes": self.notes,
        }


def score_matrices(final: pd.DataFrame, reward_type: str) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Per method a (runs × cells) matrix of final_score / 100, with the cell labels and what was trimmed."""
    scored = final.loc[scored_mask(final) & (final["reward_type"] == reward_type)]
    notes: list[str] = []
    if scored.empty:
        return {}, [], [f"{reward_type}: no scored trials, so no rliable aggregates"]
    scored = scored.assign(_cell=[f"{t}@{r:g}" for t, r in zip(scored["task"], scored["ratio"], strict=True)])
    agents = dict(zip(scored["variant"], scored["agent"], strict=True))
    coverage = {m: set(g["_cell"]) for m, g in scored.groupby("variant")}
    chosen, common = choose_methods_and_cells(coverage, method_order(coverage, agents))
    left_out = [m for m in method_order(coverage, agents) if m not in chosen]
    if left_out:
        notes.append(
            f"{reward_type}: {', '.join(left_out)} left out of the aggregates (not scored on every cell "
            "the other methods share)"
        )
    all_cells = set(scored["_cell"])
    if common != all_cells:
        notes.append(
            f"{reward_type}: cells not scored for every included method left out: "
            f"{', '.join(sorted(all_cells - common))}"
        )
    cell_order = sorted(common)
    matrices: dict[str, np.ndarray] = {}
    for m in method_order(chosen, agents):
        g = scored[scored["variant"] == m]
        per_cell = [g[g["_cell"] == c].sort_values("seed")["final_score"].to_numpy(float) for c in cell_order]
        n = min(len(s) for s in per_cell)
        if any(len(s) != n for s in per_cell):
            notes.append(
                f"{reward_type}: {m} uses its {n} lowest seeds in every cell (minimum common count; "
                f"cells have {min(len(s) for s in per_cell)}-{max(len(s) for s in per_cell)})"
            )
        matrices[m] = np.stack([s[:n] for s in per_cell], axis=1) / SCALE
    return matrices, cell_order, notes


def choose_methods_and_cells(coverage: dict[str, set[str]], order: list[str]) -> tuple[list[str], set[str]]:
    """The methods and shared cells that keep the most scores: maximise |methods| × |common cells|.

    LaMo is always kept when present (it is what the benchmark is about). Ties prefer more methods, then
    the paper's column order. With more than 12 methods, methods are added greedily by coverage instead.
    """
    must = [m for m in order if m == "lamo"]
    optional = [m for m in order if m != "lamo"]

    def common_of(methods: list[str]) -> set[str]:
        return set.intersection(*(coverage[m] for m in methods)) if methods else set()

    best: tuple[int, int, list[int]] = (0, 0, [])
    best_set: list[str] = []
    if len(optional) <= 12:
        for mask in range(1 << len(optional)):
            methods = must + [m for i, m in enumerate(optional) if mask >> i & 1]
            if not methods:
                continue
            cells = len(common_of(methods))
            score = (len(methods) * cells, len(methods), [-order.index(m) for m in methods])
            if cells and score > best:
                best, best_set = score, methods
    else:
        best_set = list(must) or [max(optional, key=lambda m: len(coverage[m]))]
        for m in sorted(optional, key=lambda m: -len(coverage[m])):
            if m not in best_set and common_of([*best_set, m]):
                best_set.append(m)
    return [m for m in order if m in best_set], common_of(best_set)


def _aggregate_func(metrics: ModuleType) -> Callable[[np.ndarray], np.ndarray]:
    def aggregate(scores: np.ndarray) -> np.ndarray:
        return np.array(
            [
                metrics.aggregate_iqm(scores),
                metrics.aggregate_median(scores),
                metrics.aggregate_mean(scores),
                metrics.aggregate_optimality_gap(scores),
            ]
        )

    return aggregate


def robust_results(final: pd.DataFrame, profile: str, reps: int, seed: int = 0) -> tuple[list[RobustResult], list[str]]:
    """One result per reward type of `final` (one profile's trials) that has scores, and notes on the rest."""
    rly, metrics = _rliable()
    out: list[RobustResult] = []
    skipped: list[str] = []
    for reward in reward_order(final["reward_type"]):
        matrices, cells, notes = score_matrices(final, reward)
        if not matrices:
            skipped += notes
            continue
        out.append(_one_reward_type(rly, metrics, matrices, cells, notes, profile, reward, reps, seed))
    return out, skipped


def _intervals(
    rly: ModuleType, data: dict[str, Any], func: Callable[..., Any], reps: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """rliable's interval estimates, reproducible whatever else has drawn random numbers before.

    Parts of rliable/arch draw from numpy's global generator rather than the RandomState they are given (its
    independent bootstrap always; and a test report's intervals changed with test order), so the global state
    is seeded for the call and restored afterwards: the same results give the same intervals, and nothing
    else's randomness is disturbed.
    """
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch's notice about RandomState
            out: tuple[dict[str, Any], dict[str, Any]] = rly.get_interval_estimates(
                data, func, reps=reps, confidence_interval_size=CONFIDENCE, random_state=np.random.RandomState(seed)
            )
        return out
    finally:
        np.random.set_state(state)


def _one_reward_type(
    rly: ModuleType,
    metrics: ModuleType,
    matrices: dict[str, np.ndarray],
    cells: list[str],
    notes: list[str],
    profile: str,
    reward: str,
    reps: int,
    seed: int,
) -> RobustResult:
    aggregate = _aggregate_func(metrics)
    runs = {m: int(x.shape[0]) for m, x in matrices.items()}
    single = [m for m, n in runs.items() if n < 2]
    if single:
        notes.append(
            f"{reward}: one run per cell for {', '.join(single)}: point estimates only, no confidence interval"
        )
    agg_rows: list[dict[str, Any]] = []
    for m, x in matrices.items():
        if runs[m] >= 2:
            points, cis = _intervals(rly, {m: x}, aggregate, reps, seed)
            point, lo, hi = points[m], cis[m][0], cis[m][1]
        else:
            point = aggregate(x)
            lo = hi = np.full_like(point, np.nan)
        for i, name in enumerate(METRICS):
            agg_rows.append(
                {
                    "profile": profile,
                    "reward_type": reward,
                    "method": m,
                    "metric": name,
                    "estimate": float(point[i]) * SCALE,
                    "ci_low": float(lo[i]) * SCALE,
                    "ci_high": float(hi[i]) * SCALE,
                    "runs": runs[m],
                    "cells": len(cells),
                }
            )

    # Performance profiles: fraction of runs scoring above tau.
    all_scores = np.concatenate([x.ravel() for x in matrices.values()])
    taus = np.linspace(min(0.0, float(all_scores.min())), max(1.0, float(all_scores.max())), N_TAUS)

    def distribution(x: np.ndarray) -> np.ndarray:
        return np.asarray(rly.score_distributions(x, taus), dtype=float)

    profiles: dict[str, np.ndarray] = {}
    profile_cis: dict[str, np.ndarray] = {}
    for m, x in matrices.items():
        if runs[m] >= 2:
            points, cis = _intervals(rly, {m: x}, distribution, reps, seed)
            profiles[m], profile_cis[m] = np.asarray(points[m]), np.asarray(cis[m])
        else:
            profiles[m], profile_cis[m] = distribution(x), np.full((2, len(taus)), np.nan)

    improvement_rows: list[dict[str, Any]] = []
    if "lamo" in matrices:
        for other, y in matrices.items():
            if other == "lamo":
                continue
            x = matrices["lamo"]
            if runs["lamo"] >= 2 and runs[other] >= 2:
                points, cis = _intervals(rly, {other: (x, y)}, metrics.probability_of_improvement, reps, seed)
                p, lo_p, hi_p = float(points[other]), float(np.ravel(cis[other])[0]), float(np.ravel(cis[other])[1])
            else:
                p, lo_p, hi_p = float(metrics.probability_of_improvement(x, y)), float("nan"), float("nan")
            improvement_rows.append(
                {
                    "profile": profile,
                    "reward_type": reward,
                    "method": "lamo",
                    "baseline": other,
                    "probability": p,
                    "ci_low": lo_p,
                    "ci_high": hi_p,
                    "cells": len(cells),
                }
            )
        if not improvement_rows:
            notes.append(f"{reward}: no other method scored on the same cells, so no P(LaMo > X)")
    else:
        notes.append(f"{reward}: no 'lamo' runs, so no P(LaMo > X)")
    return RobustResult(
        profile=profile,
        reward_type=reward,
        methods=list(matrices),
        cells=cells,
        runs=runs,
        aggregates=pd.DataFrame(agg_rows),
        improvement=pd.DataFrame(
            improvement_rows,
            columns=["profile", "reward_type", "method", "baseline", "probability", "ci_low", "ci_high", "cells"],
        ),
        taus=taus * SCALE,
        profiles=profiles,
        profile_cis=profile_cis,
        notes=notes,
    )


def profiles_frame(results: list[RobustResult]) -> pd.DataFrame:
    """Performance profiles in long form (one row per method and threshold) for the CSV."""
    rows: list[dict[str, Any]] = []
    for r in results:
        for m, prof in r.profiles.items():
            lo, hi = r.profile_cis[m]
            rows.extend(
                {
                    "profile": r.profile,
                    "reward_type": r.reward_type,
                    "method": m,
                    "tau": float(t),
                    "fraction_above": float(v),
                    "ci_low": float(a),
                    "ci_high": float(b),
                }
                for t, v, a, b in zip(r.taus, prof, lo, hi, strict=True)
            )
    return pd.DataFrame(rows)


# --- Per-cell intervals for the score tables -------------------------------------------------------------------
# The tables mark a row's best method only when its interval of the mean clears the others' (see
# `tables.rank_marks`); these helpers give those intervals with the same rliable stratified bootstrap as the
# aggregates above (runs resampled within each task × ratio cell, percentile 95% interval).


def bootstrap_available() -> bool:
    """Whether rliable (and arch under it) imports; without it the tables show no intervals and bold nothing."""
    try:
        _rliable()
    except (ImportError, TypeError):
        return False
    return True


def _mean_of_cells(scores: np.ndarray) -> np.ndarray:
    return np.array([float(np.mean(np.mean(scores, axis=0)))])


def _difference_of_means(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.array([float(np.mean(np.mean(x, axis=0)) - np.mean(np.mean(y, axis=0)))])


def mean_interval(scores: np.ndarray, reps: int, seed: int = 0) -> tuple[float, float]:
    """95% stratified-bootstrap interval of the mean over cells of the mean over runs, on the scores' own scale.

    `scores` is runs × cells (one column for a single table cell). NaN, NaN when there are fewer than 2 runs
    (nothing to resample) or rliable is unavailable: callers must then treat the method as not separable.
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1 or not np.isfinite(x).all() or not bootstrap_available():
        return float("nan"), float("nan")
    rly, _ = _rliable()
    _, cis = _intervals(rly, {"m": x}, _mean_of_cells, reps, seed)
    lo, hi = np.ravel(cis["m"])
    return float(lo), float(hi)


def difference_interval(x: np.ndarray, y: np.ndarray, reps: int, seed: int = 0) -> tuple[float, float]:
    """95% interval of mean(x) - mean(y), runs of x and y resampled independently within each cell.

    x and y are runs × cells over the same cells (their run counts may differ). Reproducible: see `_intervals`.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if (
        a.ndim != 2
        or b.ndim != 2
        or a.shape[1] != b.shape[1]
        or min(a.shape[0], b.shape[0]) < 2
        or not (np.isfinite(a).all() and np.isfinite(b).all())
        or not bootstrap_available()
    ):
        return float("nan"), float("nan")
    rly, _ = _rliable()
    _, cis = _intervals(rly, {"d": (a, b)}, _difference_of_means, reps, seed)
    lo, hi = np.ravel(cis["d"])
    return float(lo), float(hi)


def cell_intervals(cells: pd.DataFrame, reps: int, seed: int = 0) -> pd.DataFrame:
    """`cells` (from `stats.cell_stats`, with its per-seed `scores`) plus ci_low / ci_high of each cell's mean."""
    scores = cells["scores"] if "scores" in cells.columns else pd.Series([[]] * len(cells), index=cells.index)
    bounds = [mean_interval(np.asarray(s, dtype=float).reshape(-1, 1), reps, seed) for s in scores]
    return cells.assign(ci_low=[lo for lo, _ in bounds], ci_high=[hi for _, hi in bounds])
