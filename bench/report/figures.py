"""Draw the report's figures (PNG for the web page, PDF for papers).

Figures are built on bare `matplotlib.figure.Figure` objects, never pyplot, so no GUI backend or global
figure state is involved and a report can be built on a headless machine. Every figure takes the same
method -> colour map so a method looks the same everywhere, and every title names the profile.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.atomic import atomic_write_bytes
from bench.report.robust import METRICS, RobustResult
from bench.report.stats import task_rank
from bench.report.style import FONT_SIZES, display_name, format_ratio, method_order, reward_order

PNG_DPI = 200
SCORE_LABEL = "Normalized score (0-100)"


@contextmanager
def figure_style() -> Iterator[None]:
    """Readable fonts and light grids for figures built inside the block (and saved inside it)."""
    with mpl.rc_context(
        {
            "font.size": FONT_SIZES["label"],
            "axes.titlesize": FONT_SIZES["title"],
            "axes.labelsize": FONT_SIZES["label"],
            "xtick.labelsize": FONT_SIZES["tick"],
            "ytick.labelsize": FONT_SIZES["tick"],
            "legend.fontsize": FONT_SIZES["legend"],
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "pdf.fonttype": 42,
            "svg.fonttype": "none",
        }
    ):
        yield


def save_figure(fig: Figure, base: Path) -> list[Path]:
    """Write `base`.png and `base`.pdf atomically; returns both paths."""
    paths = []
    for fmt in ("png", "pdf"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI if fmt == "png" else None, bbox_inches="tight")
        path = base.with_suffix(f".{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths


def _grid(n: int, max_cols: int = 3, panel: tuple[float, float] = (4.4, 3.3)) -> tuple[Figure, list[Axes]]:
    cols = min(max_cols, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


#: Per-method line style and marker, so methods stay apart where colours cannot (grey-scale print, colour
#: blindness) and curves that coincide exactly remain visible (see `line_style`).
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
LINE_WIDTHS = (3.0, 1.2)  # first and last method of the order
MARKER_SIZES = (7.5, 3.5)


def line_style(method: str, colors: dict[str, str]) -> dict[str, Any]:
    """Matplotlib keywords giving `method` its own line style, marker, width and drawing order.

    The method's place in the paper's column order among all the report's methods (the keys of `colors`)
    picks them, so a method looks the same in every figure and LaMo gets the solid line. Methods earlier in
    the order are drawn thicker, with bigger markers and underneath: when two
    methods' curves are identical (e.g. both stuck at 0), the later, thinner dashed line runs inside the
    earlier one and both stay visible instead of one hiding the other.
    """
    order = method_order(colors)
    i = order.index(method) if method in order else len(order)
    frac = i / max(len(order) - 1, 1)
    width = LINE_WIDTHS[0] + (LINE_WIDTHS[1] - LINE_WIDTHS[0]) * min(frac, 1.0)
    size = MARKER_SIZES[0] + (MARKER_SIZES[1] - MARKER_SIZES[0]) * min(frac, 1.0)
    return {
        "color": colors[method],
        "ls": LINESTYLES[i % len(LINESTYLES)],
        "marker": MARKERS[i % len(MARKERS)],
        "lw": round(width, 2),
        "ms": round(size, 2),
        "zorder": 2 + i,
    }


def _legend(fig: Figure, methods: list[str], colors: dict[str, str], failed_marker: bool = False) -> None:
    handles = [Line2D([], [], label=display_name(m), **line_style(m, colors)) for m in methods]
    if failed_marker:
        handles.append(Line2D([], [], color="black", lw=0, marker="x", ms=8, mew=2, label="all seeds failed"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)


def _band(ax: Axes, x: np.ndarray, mean: np.ndarray, std: np.ndarray, method: str, colors: dict[str, str]) -> None:
    style = line_style(method, colors)
    ax.plot(x, mean, label=display_name(method), **style)
    ax.fill_between(x, mean - std, mean + std, color=colors[method], alpha=0.18, lw=0)


def _pad_xlim(ax: Axes, values: np.ndarray) -> None:
    """Keep points that sit on the data range's edge (zero-width intervals) inside the axes."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    pad = max(0.06 * (hi - lo), 1.0)
    ax.set_xlim(lo - pad, hi + pad)


def score_vs_ratio(cells: pd.DataFrame, profile: str, colors: dict[str, str]) -> Figure:
    """The paper's Figure 3: final score against the sample ratio, one panel per task, ± std band."""
    scored = cells[cells["n_ok"] > 0]
    tasks = list(dict.fromkeys(cells["task"]))
    methods = method_order(cells["variant"], dict(zip(cells["variant"], cells["agent"], strict=True)))
    fig, axes = _grid(len(tasks))
    any_failed = False
    for ax, task in zip(axes, tasks, strict=True):
        sub = scored[scored["task"] == task]
        for m in methods:
            g = sub[sub["variant"] == m].sort_values("ratio")
            if not g.empty:
                _band(ax, g["ratio"].to_numpy(float), g["mean"].to_numpy(float), g["std"].to_numpy(float), m, colors)
        # Cells where every seed failed: an x on the axis floor, so a crash never looks like a score.
        failed = cells[(cells["task"] == task) & (cells["n_ok"] == 0)]
        for _, row in failed.iterrows():
            any_failed = True
            ax.plot(
                [row["ratio"]],
                [0.02],
                marker="x",
                ms=9,
                mew=2.2,
                color=colors[str(row["variant"])],
                transform=ax.get_xaxis_transform(),
                clip_on=False,
            )
        ratios = sorted(cells.loc[cells["task"] == task, "ratio"].unique())
        ax.set_xscale("log")
        ax.set_xticks(ratios, [format_ratio(r) for r in ratios])
        ax.minorticks_off()
        if len(ratios) == 1:
            ax.set_xlim(ratios[0] / 2, ratios[0] * 2)
        reward = cells.loc[cells["task"] == task, "reward_type"].iloc[0]
        ax.set_title(f"{task} ({reward} reward)")
        ax.set_xlabel("Sample ratio (fraction of dataset, log scale)")
        ax.set_ylabel(SCORE_LABEL)
    _legend(fig, methods, colors, failed_marker=any_failed)
    fig.suptitle(f"Final score vs sample ratio (profile: {profile}); line: mean over seeds, band: ± std")
    return fig


def learning_curves(
    curves: pd.DataFrame, profile: str, colors: dict[str, str], agents: dict[str, str]
) -> Figure | None:
    """Normalized score over training, one panel per task and ratio, mean ± std over seeds."""
    if curves.empty:
        return None
    panels = sorted(
        dict.fromkeys(zip(curves["reward_type"], curves["task"], curves["ratio"], strict=True)),
        key=lambda k: (reward_order(curves["reward_type"]).index(k[0]), task_rank(k[1]), -k[2]),
    )
    methods = method_order(curves["variant"], agents)
    fig, axes = _grid(len(panels), max_cols=4, panel=(4.0, 3.0))
    for ax, (_, task, ratio) in zip(axes, panels, strict=True):
        sub = curves[(curves["task"] == task) & (curves["ratio"] == ratio)]
        for m in methods:
            g = sub[sub["variant"] == m].sort_values("step")
            if not g.empty:
                _band(ax, g["step"].to_numpy(float), g["mean"].to_numpy(float), g["std"].to_numpy(float), m, colors)
        ax.set_title(f"{task}, ratio {format_ratio(float(ratio))}")
        ax.set_xlabel("Training step (gradient updates)")
        ax.set_ylabel(SCORE_LABEL)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    _legend(fig, methods, colors)
    fig.suptitle(
        f"Learning curves (profile: {profile}); per trial at the return-to-go target of its final "
        "score; band: ± std over seeds"
    )
    return fig


#: Training metrics worth a panel, in this order (LaMo's language loss first: the paper's retention claim).
TRAIN_METRIC_PANELS = ("lm_loss", "decision_loss", "loss", "critic_loss", "actor_loss", "temp_loss")


def training_metrics(
    metrics: pd.DataFrame, profile: str, colors: dict[str, str], agents: dict[str, str]
) -> Figure | None:
    """Logged training metrics over training, one panel per metric, one line per method (mean ± std over its
    trials of every task and ratio); a method that does not log a metric has no line in its panel."""
    present = [m for m in TRAIN_METRIC_PANELS if m in metrics.columns and metrics[m].notna().any()]
    if metrics.empty or not present:
        return None
    methods = method_order(metrics["variant"], agents)
    fig, axes = _grid(len(present), max_cols=3, panel=(4.0, 3.0))
    for ax, name in zip(axes, present, strict=True):
        for m in methods:
            g = metrics[(metrics["variant"] == m) & metrics[name].notna()].groupby("step")[name]
            if len(g):
                stats = g.agg(["mean", "std"]).fillna(0.0)
                _band(
                    ax,
                    stats.index.to_numpy(float),
                    stats["mean"].to_numpy(float),
                    stats["std"].to_numpy(float),
                    m,
                    colors,
                )
        ax.set_title(name)
        ax.set_xlabel("Training step (gradient updates)")
    _legend(fig, methods, colors)
    fig.suptitle(f"Training metrics (profile: {profile}); mean ± std over each method's trials")
    return fig


def sparse_vs_dense_data(frame: pd.DataFrame, cells: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """The numbers of the sparse-vs-dense figure, one row per (reward type, method): its average final score
    (the tables' Average row), the whisker (mean over cells of the per-cell std over seeds), how many cells
    that average covers (`cells`) out of the reward type's (`cells_total`). Written next to the figure as CSV,
    so a run's two panels can be checked without reading pixels."""
    rows = []
    for reward in reward_order(frame["reward_type"]):
        avg = frame[(frame["reward_type"] == reward) & (frame["row_kind"] == "average")].iloc[0]
        n_rows = int(((frame["reward_type"] == reward) & (frame["row_kind"] == "cell")).sum())
        sub = cells[(cells["reward_type"] == reward) & (cells["n_ok"] > 0)]
        for m in methods:
            value = float(avg[f"{m}_mean"])
            rows.append(
                {
                    "reward_type": reward,
                    "method": m,
                    "mean": value,
                    "spread": math.nan if math.isnan(value) else float(sub.loc[sub["variant"] == m, "std"].mean()),
                    "cells": 0 if math.isnan(value) else int(avg[f"{m}_n"]),
                    "cells_total": n_rows,
                }
            )
    return pd.DataFrame(rows, columns=["reward_type", "method", "mean", "spread", "cells", "cells_total"])


def sparse_vs_dense(data: pd.DataFrame, profile: str, colors: dict[str, str], methods: list[str]) -> Figure:
    """Per reward type, each method's average final score (the tables' Average rows) side by side, drawn from
    `sparse_vs_dense_data`.

    Whiskers are the mean over cells of the per-cell std over seeds (typical seed-to-seed spread). Hatched
    bars average fewer cells than the others (the method was not run everywhere).
    """
    rewards = list(dict.fromkeys(data["reward_type"]))
    fig = Figure(figsize=(max(5.0, 0.8 * len(methods) + 2.0) * len(rewards), 4.4), layout="constrained")
    axes = fig.subplots(1, len(rewards), squeeze=False, sharey=True).ravel()
    for ax, reward in zip(axes, rewards, strict=True):
        panel = data[data["reward_type"] == reward].set_index("method")
        n_rows = int(panel["cells_total"].iloc[0])
        x = np.arange(len(methods))
        for i, m in enumerate(methods):
            value = float(panel.at[m, "mean"])
            if math.isnan(value):
                ax.text(i, 0, "not run", ha="center", va="bottom", fontsize=FONT_SIZES["tick"], rotation=90)
                continue
            spread = float(panel.at[m, "spread"])
            n_cells = int(panel.at[m, "cells"])
            partial = n_cells < n_rows
            ax.bar(
                i,
                value,
                color=colors[m],
                yerr=spread,
                capsize=4,
                edgecolor="black",
                lw=0.6,
                hatch="//" if partial else None,
                error_kw={"lw": 1.2},
            )
            ax.text(i, value + spread, f"{value:.1f}", ha="center", va="bottom", fontsize=FONT_SIZES["tick"])
            if partial:
                ax.text(
                    i,
                    value / 2,
                    f"{n_cells}/{n_rows}\ncells",
                    ha="center",
                    va="center",
                    fontsize=FONT_SIZES["tick"],
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
                )
        ax.set_xticks(x, [display_name(m) for m in methods], rotation=30, ha="right")
        ax.set_title(f"{reward} reward ({n_rows} task×ratio cells)")
        ax.set_ylabel(f"Average {SCORE_LABEL.lower()}")
        ax.grid(axis="x", visible=False)
    fig.suptitle(f"Sparse vs dense reward (profile: {profile}); whiskers: mean per-cell std over seeds")
    return fig


def robust_intervals(results: list[RobustResult], colors: dict[str, str]) -> Figure:
    """rliable aggregates with 95% stratified-bootstrap intervals: rows reward types, columns metrics."""
    n_methods = max(len(r.methods) for r in results)
    fig = Figure(figsize=(3.3 * len(METRICS), (0.45 * n_methods + 1.3) * len(results)), layout="constrained")
    axes = fig.subplots(len(results), len(METRICS), squeeze=False)
    for row, r in enumerate(results):
        for col, metric in enumerate(METRICS):
            ax = axes[row][col]
            sub = r.aggregates[r.aggregates["metric"] == metric].set_index("method")
            for y, m in enumerate(r.methods):
                est, lo, hi = (float(sub.at[m, k]) for k in ("estimate", "ci_low", "ci_high"))
                if not math.isnan(lo):
                    ax.barh(y, hi - lo, left=lo, height=0.6, color=colors[m], alpha=0.75)
                ax.plot([est, est], [y - 0.3, y + 0.3], color="black", lw=1.8)
            _pad_xlim(ax, sub[["estimate", "ci_low", "ci_high"]].to_numpy(float))
            ax.set_yticks(range(len(r.methods)), [display_name(m) for m in r.methods] if col == 0 else [])
            ax.set_ylim(-0.6, len(r.methods) - 0.4)
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
            if row == 0:
                ax.set_title(metric + (" (lower is better)" if metric == "Optimality gap" else ""))
            if row == len(results) - 1:
                ax.set_xlabel(SCORE_LABEL)
            if col == 0:
                ax.set_ylabel(f"{r.reward_type} reward\n({len(r.cells)} cells)")
    fig.suptitle(
        f"Aggregate final score, 95% stratified-bootstrap CIs (profile: {results[0].profile}); "
        "black tick: point estimate"
    )
    return fig


def performance_profiles(results: list[RobustResult], colors: dict[str, str]) -> Figure:
    """Score distributions (fraction of runs above each threshold) per reward type, via rliable."""
    from rliable import plot_utils

    fig = Figure(figsize=(5.2 * len(results), 4.0), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False).ravel()
    for ax, r in zip(axes, results, strict=True):
        cis = {m: ci for m, ci in r.profile_cis.items() if not np.isnan(ci).all()}
        plot_utils.plot_performance_profiles(
            r.profiles,
            r.taus,
            performance_profile_cis=cis,
            ax=ax,
            colors=colors,
            xlabel=r"Normalized score threshold $\tau$ (0-100)",
            ylabel=r"Fraction of runs with score $> \tau$",
            labelsize=FONT_SIZES["label"],
            ticklabelsize=FONT_SIZES["tick"],
            wrect=4,
            hrect=4,
        )
        ax.set_title(f"{r.reward_type} reward ({len(r.cells)} cells)")
        ax.legend(
            handles=[Line2D([], [], color=colors[m], lw=2.5, label=display_name(m)) for m in r.methods], frameon=False
        )
    fig.suptitle(f"Performance profiles with 95% CIs (profile: {results[0].profile})")
    return fig


def improvement_probabilities(results: list[RobustResult], colors: dict[str, str]) -> Figure | None:
    """P(LaMo > X) for each other method X, with 95% CIs, per reward type."""
    usable = [r for r in results if not r.improvement.empty]
    if not usable:
        return None
    n = max(len(r.improvement) for r in usable)
    fig = Figure(figsize=(4.8 * len(usable), 0.5 * n + 1.8), layout="constrained")
    axes = fig.subplots(1, len(usable), squeeze=False).ravel()
    for ax, r in zip(axes, usable, strict=True):
        imp = r.improvement.reset_index(drop=True)
        for y, row in imp.iterrows():
            lo, hi, p = float(row["ci_low"]), float(row["ci_high"]), float(row["probability"])
            if not math.isnan(lo):
                ax.barh(y, hi - lo, left=lo, height=0.6, color=colors[str(row["baseline"])], alpha=0.75)
            ax.plot([p, p], [float(y) - 0.3, float(y) + 0.3], color="black", lw=1.8)
        ax.axvline(0.5, color="grey", ls="--", lw=1)
        ax.set_yticks(range(len(imp)), [f"LaMo > {display_name(str(b))}" for b in imp["baseline"]])
        ax.set_ylim(-0.6, len(imp) - 0.4)
        ax.invert_yaxis()
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("Probability of improvement")
        ax.set_title(f"{r.reward_type} reward ({len(r.cells)} cells)")
        ax.grid(axis="y", visible=False)
    fig.suptitle(f"P(LaMo > X), 95% CIs (profile: {usable[0].profile})")
    return fig
