"""The paper-style score tables (LaMo paper Tables 1-3) and the side-by-side comparison with the paper.

Each builder returns both a numeric frame (written as CSV, one column per number) and a `Table` of
formatted cells (written as Markdown, LaTeX and HTML), so the text formats and the CSV never disagree.

Conventions, all written into the captions too (a table must never claim a difference its seeds do not
support):
- cells are mean ± std of the normalized final score over scored seeds (std ddof=0, see `stats`);
- every mean has a 95% rliable stratified-bootstrap interval (seeds resampled within each task × ratio cell,
  `robust.mean_interval`); with fewer than 2 seeds it has none;
- bold: the row's best mean, only when its interval lies entirely above every other method's interval;
  otherwise nobody is bold and the best and every method it cannot be told apart from (overlapping or
  missing interval, or equal at the decimal shown) are underlined as tied (`rank_marks`);
- "LaMo - DT" is the absolute difference of means with its 95% interval (LaMo and DT seeds resampled
  independently); "LaMo vs DT" is the paper's relative improvement (LaMo - DT) / |DT| × 100, shown only
  when |DT| >= `PCT_MIN_BASE` points (a ratio over a near-zero base explodes: +1397.6% over DT's -0.7 in an
  early quick report) and "n/a" otherwise;
- an Average row per reward type averages each method's row means; a method missing rows gets
  "(k/n rows)" and is left out of that row's ranking and comparison; its interval resamples seeds within
  every row (rows with unequal seed counts give no interval);
- "RTG target" names the return-to-go target each return-conditioned method's cell is scored at: one per
  task × ratio cell for all seeds (`stats.select_cell_targets`);
- the paper comparison marks "(in CI)" where the paper's mean lies inside our interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.report import paper
from bench.report.render import Cell, Table
from bench.report.robust import bootstrap_available, cell_intervals, difference_interval, mean_interval
from bench.report.stats import STD_DDOF, task_rank
from bench.report.style import display_name, format_ratio, method_order, reward_order

DECIMALS = 1
#: Bootstrap resamples for the tables' intervals when the caller gives none (rliable's own examples use
#: 2000 for interval plots; `bench report --reps` overrides it through `build_report`).
DEFAULT_REPS = 2000
#: Smallest |DT mean| (normalized points, 0-100 scale) a percentage improvement is computed over. Below it
#: the ratio is dominated by seed noise around zero (DT's pointmaze-medium 0.1 cell in reports/quick-sparse:
#: -0.7 ± 5.0, giving +1397.6%); the absolute difference beside it stays meaningful.
PCT_MIN_BASE = 5.0
CI_NOTE = "95% stratified-bootstrap interval of the mean (rliable; seeds resampled within each task × ratio cell)"

Interval = tuple[float, float]
NO_INTERVAL: Interval = (float("nan"), float("nan"))


@dataclass
class ScoreTable:
    profile: str
    methods: list[str]
    frame: pd.DataFrame
    table: Table


def rank_marks(
    means: dict[str, float], intervals: dict[str, Interval] | None = None, decimals: int = DECIMALS
) -> tuple[list[str], list[str]]:
    """(bold, underlined) methods of one row: the clear best, or the methods tied with the best.

    A method is bold only when it alone leads at the precision shown and its interval's lower bound is above
    every other method's upper bound. Otherwise nobody is bold, and the leaders plus every method whose
    interval reaches the leaders' lower bound, or that has no interval (fewer than 2 seeds: it cannot be
    separated), are underlined. Methods without a mean are not ranked; fewer than two ranked: no marks.
    """
    shown = {m: round(v, decimals) for m, v in means.items() if not math.isnan(v)}
    if len(shown) < 2:
        return [], []
    bounds = intervals or {}
    top = max(shown.values())
    leaders = [m for m, v in shown.items() if v == top]
    others = [m for m in shown if m not in leaders]
    lows = [bounds.get(m, NO_INTERVAL)[0] for m in leaders]
    floor = float("nan") if any(math.isnan(v) for v in lows) else min(lows)

    def separated(m: str) -> bool:
        # Touching intervals count as overlapping; the tolerance keeps float noise in the bootstrap means
        # (8.333333333333334 vs 8.333333333333332) from deciding that.
        high = bounds.get(m, NO_INTERVAL)[1]
        return not math.isnan(floor) and not math.isnan(high) and high < floor - 1e-9 * max(1.0, abs(floor))

    if len(leaders) == 1 and all(separated(m) for m in others):
        return leaders, []
    return [], [m for m in shown if m in leaders or not separated(m)]


def improvement_pct(lamo: float, dt: float, min_base: float = PCT_MIN_BASE) -> float:
    """The paper's LaMo-over-DT improvement in percent; NaN when undefined or |DT| < `min_base`."""
    if math.isnan(lamo) or math.isnan(dt) or dt == 0 or abs(dt) < min_base:
        return float("nan")
    return (lamo - dt) / abs(dt) * 100.0


def format_score(mean: float, std: float, n_ok: int, n_failed: int) -> str:
    if n_ok == 0 and n_failed == 0:
        return "-"
    if n_ok == 0:
        return f"failed ({n_failed}/{n_failed})"
    text = f"{mean:.{DECIMALS}f} ± {std:.{DECIMALS}f}"
    if n_failed:
        text += f" ({n_failed}/{n_ok + n_failed} failed)"
    return text


def format_pct(pct: float, lamo: float = 0.0, dt: float = 0.0) -> str:
    """The percentage, or why there is none: "n/a (|DT| < 5)" for a base too small to divide by."""
    if math.isnan(pct):
        if not (math.isnan(lamo) or math.isnan(dt)) and abs(dt) < PCT_MIN_BASE:
            return f"n/a (|DT| < {PCT_MIN_BASE:g})"
        return "-"
    return f"{pct:+.1f}%"


def format_difference(diff: float, interval: Interval) -> str:
    if math.isnan(diff):
        return "-"
    lo, hi = interval
    if math.isnan(lo):
        return f"{diff:+.{DECIMALS}f} (no CI)"
    return f"{diff:+.{DECIMALS}f} [{lo:+.{DECIMALS}f}, {hi:+.{DECIMALS}f}]"


def _seed_matrix(columns: list[list[float]]) -> np.ndarray | None:
    """Runs × cells from per-cell seed scores; None when the counts differ (no rectangle to resample)."""
    if not columns or any(len(c) != len(columns[0]) for c in columns) or not columns[0]:
        return None
    return np.array(columns, dtype=float).T


def _seed_note(cells: pd.DataFrame) -> str:
    counts = sorted({int(a + b) for a, b in zip(cells["n_ok"], cells["n_failed"], strict=True)})
    if len(counts) == 1:
        return f"{counts[0]} seed(s) per cell"
    return f"seeds per cell vary ({counts[0]}-{counts[-1]}; exact counts in the CSV)"


def _target_text(targets: dict[str, str]) -> str:
    """The RTG-target cell: one value when every return-conditioned method used it, else one per method."""
    shown = {m: ("best per seed" if t == "seed-best" else t) for m, t in targets.items() if t}
    if not shown:
        return "-"
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{display_name(m)} {t}" for m, t in shown.items())


def _with_intervals(cells: pd.DataFrame, reps: int) -> pd.DataFrame:
    return cells if "ci_low" in cells.columns else cell_intervals(cells, reps)


def _interval_of(sub: pd.DataFrame, m: str) -> Interval:
    if m not in sub.index:
        return NO_INTERVAL
    return float(sub.at[m, "ci_low"]), float(sub.at[m, "ci_high"])


def _scores_of(sub: pd.DataFrame, m: str) -> list[float]:
    return [float(v) for v in sub.at[m, "scores"]] if m in sub.index and "scores" in sub.columns else []


def ranking_caption() -> str:
    """The emphasis rule, said the same way in every table that uses `rank_marks`."""
    text = (
        f"Bold: best mean in the row whose {CI_NOTE} lies above every other method's interval; when the "
        "intervals overlap (or a method has fewer than 2 seeds, so no interval) nobody is bold and the methods "
        "that cannot be told apart from the best are underlined as tied."
    )
    if not bootstrap_available():
        text += " rliable could not be imported, so there are no intervals and no method is bold."
    return text


def score_table(cells: pd.DataFrame, profile: str, reps: int = DEFAULT_REPS) -> ScoreTable:
    """Rows task × ratio grouped by reward type, each group closed by its Average row; methods as columns."""
    cells = _with_intervals(cells, reps)
    agents = dict(zip(cells["variant"], cells["agent"], strict=True))
    methods = method_order(cells["variant"], agents)
    with_improvement = "lamo" in methods and "dt" in methods
    records: list[dict[str, Any]] = []
    rows: list[list[Cell]] = []
    rules: set[int] = set()

    def comparison(
        record: dict[str, Any], lamo: float, dt: float, x: np.ndarray | None, y: np.ndarray | None
    ) -> list[Cell]:
        """LaMo - DT with its interval, and the percentage only over a base large enough to divide by."""
        diff = lamo - dt
        interval = difference_interval(x, y, reps) if x is not None and y is not None else NO_INTERVAL
        pct = improvement_pct(lamo, dt)
        record.update(
            {
                "lamo_minus_dt": diff,
                "lamo_minus_dt_ci_low": interval[0],
                "lamo_minus_dt_ci_high": interval[1],
                "lamo_vs_dt_pct": pct,
            }
        )
        return [Cell(format_difference(diff, interval)), Cell(format_pct(pct, lamo, dt))]

    for reward in reward_order(cells["reward_type"]):
        group = cells[cells["reward_type"] == reward]
        keys = list(dict.fromkeys(zip(group["task"], group["ratio"], strict=True)))
        row_means: list[dict[str, float]] = []
        row_scores: list[dict[str, list[float]]] = []
        for task, ratio in keys:
            sub = group[(group["task"] == task) & (group["ratio"] == ratio)].set_index("variant")
            means = {m: float(sub.at[m, "mean"]) if m in sub.index else float("nan") for m in methods}
            intervals = {m: _interval_of(sub, m) for m in methods}
            scores = {m: _scores_of(sub, m) for m in methods}
            row_means.append(means)
            row_scores.append(scores)
            best, tied = rank_marks(means, intervals)
            record: dict[str, Any] = {
                "profile": profile,
                "reward_type": reward,
                "row_kind": "cell",
                "task": task,
                "ratio": ratio,
            }
            cells_out = [Cell(reward), Cell(task), Cell(format_ratio(ratio))]
            for m in methods:
                present = m in sub.index
                n_ok = int(sub.at[m, "n_ok"]) if present else 0
                n_failed = int(sub.at[m, "n_failed"]) if present else 0
                std = float(sub.at[m, "std"]) if present else float("nan")
                record.update(
                    {
                        f"{m}_mean": means[m],
                        f"{m}_std": std,
                        f"{m}_ci_low": intervals[m][0],
                        f"{m}_ci_high": intervals[m][1],
                        f"{m}_n": n_ok,
                        f"{m}_failed": n_failed,
                    }
                )
                cells_out.append(Cell(format_score(means[m], std, n_ok, n_failed), m in best, m in tied))
            record.update({"best": ";".join(best), "tied": ";".join(tied)})
            if with_improvement:
                cells_out += comparison(
                    record, means["lamo"], means["dt"], _seed_matrix([scores["lamo"]]), _seed_matrix([scores["dt"]])
                )
            targets = {
                m: str(sub.at[m, "rtg_target"]) if m in sub.index and "rtg_target" in sub.columns else ""
                for m in methods
            }
            record.update({f"{m}_rtg_target": t for m, t in targets.items()})
            record["rtg_target"] = _target_text(targets)
            cells_out.append(Cell(record["rtg_target"]))
            records.append(record)
            rows.append(cells_out)

        # Average row for this reward type.
        n_rows = len(row_means)
        averages: dict[str, float] = {}
        counts: dict[str, int] = {}
        matrices: dict[str, np.ndarray | None] = {}
        for m in methods:
            values = [r[m] for r in row_means if not math.isnan(r[m])]
            counts[m] = len(values)
            averages[m] = sum(values) / len(values) if values else float("nan")
            matrices[m] = _seed_matrix([s[m] for s in row_scores]) if counts[m] == n_rows else None
        complete = {m: averages[m] for m in methods if counts[m] == n_rows}
        avg_intervals = {m: mean_interval(x, reps) if x is not None else NO_INTERVAL for m, x in matrices.items()}
        best, tied = rank_marks(complete, avg_intervals)
        record = {
            "profile": profile,
            "reward_type": reward,
            "row_kind": "average",
            "task": f"Average ({reward})",
            "ratio": float("nan"),
        }
        avg_cells = [Cell(reward, bold=True), Cell(f"Average ({reward})", bold=True), Cell("")]
        for m in methods:
            record.update(
                {
                    f"{m}_mean": averages[m],
                    f"{m}_std": float("nan"),
                    f"{m}_ci_low": avg_intervals[m][0],
                    f"{m}_ci_high": avg_intervals[m][1],
                    f"{m}_n": counts[m],
                    f"{m}_failed": int(group.loc[group["variant"] == m, "n_failed"].sum()),
                }
            )
            text = "-" if math.isnan(averages[m]) else f"{averages[m]:.{DECIMALS}f}"
            if counts[m] and counts[m] < n_rows:
                text += f" ({counts[m]}/{n_rows} rows)"
            avg_cells.append(Cell(text, m in best, m in tied))
        record.update({"best": ";".join(best), "tied": ";".join(tied)})
        if with_improvement:
            avg_cells += comparison(
                record,
                complete.get("lamo", float("nan")),
                complete.get("dt", float("nan")),
                matrices["lamo"],
                matrices["dt"],
            )
        avg_cells.append(Cell(""))
        records.append(record)
        rows.append(avg_cells)
        rules.add(len(rows) - 1)

    header = ["Reward", "Task", "Ratio", *[display_name(m) for m in methods]]
    if with_improvement:
        header += ["LaMo - DT [95% CI]", "LaMo vs DT"]
    header.append("RTG target")
    caption = (
        f"Profile '{profile}'. Normalized final score (0-100), mean ± std over seeds (std with ddof={STD_DDOF}); "
        f"{_seed_note(cells)}. {ranking_caption()} Failed trials are left out of the mean and counted as "
        "'(k/n failed)'; 'failed' means no seed finished; '-' means not run. "
        "LaMo - DT: difference of means with its 95% stratified-bootstrap interval (LaMo and DT seeds resampled "
        f"independently). LaMo vs DT = (LaMo - DT) / |DT| × 100, given only when |DT| is at least "
        f"{PCT_MIN_BASE:g} points ('n/a' below: a percentage over a near-zero base says nothing). "
        "Average rows average the row means per reward type (interval: seeds resampled within every row; none "
        "when rows have different seed counts); '(k/n rows)' marks a method missing rows (left out of that "
        "row's ranking). "
        "RTG target: the return-to-go target each return-conditioned method is scored at in that row, one per "
        "task × ratio cell for all seeds, the one with the highest mean final score over seeds (the authors' "
        "protocol, LaMo-2023 issue #1); every target's mean is in targets.csv. Intervals are in the CSV."
    )
    if (cells.get("rtg_target", pd.Series(dtype=str)) == "seed-best").any():
        caption += (
            " 'best per seed': results without per-target scores, so each seed is scored at its own best "
            "target (optimistic)."
        )
    if not with_improvement:
        caption += " No LaMo-vs-DT columns: the runs lack 'lamo' or 'dt'."
    table = Table(
        title=f"Normalized scores by task and sample ratio (profile: {profile})",
        caption=caption,
        header=header,
        rows=rows,
        rules_after=rules,
        label=f"tab:scores-{profile}",
    )
    return ScoreTable(profile=profile, methods=methods, frame=pd.DataFrame(records), table=table)


def _inside(value: float, interval: Interval) -> bool | None:
    """Whether `value` lies in the closed interval; None when either is missing (nothing to say)."""
    lo, hi = interval
    if math.isnan(value) or math.isnan(lo) or math.isnan(hi):
        return None
    return lo <= value <= hi


def paper_comparison(cells: pd.DataFrame, profile: str, reps: int = DEFAULT_REPS) -> ScoreTable | None:
    """Our cells next to the paper's published numbers, for every task and ratio the paper reports.

    Our cell shows its interval, and a paper number inside it is marked "(in CI)": our seeds cannot tell
    the two apart. A paper number outside is a difference worth a look, inside is agreement at our seed count.
    """
    cells = _with_intervals(cells, reps)
    agents = dict(zip(cells["variant"], cells["agent"], strict=True))
    methods = [m for m in method_order(cells["variant"], agents) if m in paper.METHOD_NAMES]
    if not methods:
        return None
    records: list[dict[str, Any]] = []
    rows: list[list[Cell]] = []
    keys = list(dict.fromkeys(zip(cells["reward_type"], cells["task"], cells["domain"], cells["ratio"], strict=True)))
    keys.sort(key=lambda k: reward_order(cells["reward_type"]).index(k[0]))
    for reward, task, domain, ratio in keys:
        if not paper.has_cell(task, domain, ratio):
            continue
        sub = cells[(cells["task"] == task) & (cells["ratio"] == ratio)].set_index("variant")
        published = {m: paper.lookup(task, domain, ratio, m) for m in methods}
        sources = sorted({p.table for p in published.values() if p is not None})
        source = "paper Table " + ", ".join(str(t) for t in sources)
        record: dict[str, Any] = {
            "profile": profile,
            "reward_type": reward,
            "task": task,
            "ratio": ratio,
            "source": source,
        }
        out = [Cell(task), Cell(format_ratio(ratio)), Cell(source)]
        for m in methods:
            present = m in sub.index
            mean = float(sub.at[m, "mean"]) if present else float("nan")
            std = float(sub.at[m, "std"]) if present else float("nan")
            n_ok = int(sub.at[m, "n_ok"]) if present else 0
            n_failed = int(sub.at[m, "n_failed"]) if present else 0
            interval = _interval_of(sub, m)
            pub = published[m]
            inside = _inside(pub.mean, interval) if pub else None
            record.update(
                {
                    f"{m}_ours_mean": mean,
                    f"{m}_ours_std": std,
                    f"{m}_ours_ci_low": interval[0],
                    f"{m}_ours_ci_high": interval[1],
                    f"{m}_ours_n": n_ok,
                    f"{m}_paper_mean": pub.mean if pub else float("nan"),
                    f"{m}_paper_std": pub.std if pub and pub.std is not None else float("nan"),
                    f"{m}_paper_in_ci": inside,
                }
            )
            ours = format_score(mean, std, n_ok, n_failed)
            if n_ok and not math.isnan(interval[0]):
                ours += f" [{interval[0]:.{DECIMALS}f}, {interval[1]:.{DECIMALS}f}]"
            theirs = pub.text() if pub else "-"
            if inside:
                theirs += " (in CI)"
            out += [Cell(ours), Cell(theirs)]
        records.append(record)
        rows.append(out)
    if not rows:
        return None
    header = ["Task", "Ratio", "Source"]
    for m in methods:
        header += [f"{display_name(m)} (ours)", f"{display_name(m)} (paper)"]
    caption = (
        f"Ours: profile '{profile}', mean ± std over our seeds (ddof={STD_DDOF}) and in brackets the {CI_NOTE}, "
        "none with fewer than 2 seeds. Paper: LaMo (Shi et al., ICLR 2024) camera-ready, mean ± std over seeds "
        "0-2; Tables 8-11 call LaMo 'Ours', Table 9 gives no std for baselines. '(in CI)': the paper's mean lies "
        "inside our interval, so our seeds cannot tell it from ours; no mark: outside, or we have no interval. "
        "'-': not reported / not run."
    )
    if profile != "paper":
        caption += f" Profile '{profile}' does not follow the paper's training protocol; expect differences."
    table = Table(
        title=f"Our scores beside the published ones (profile: {profile})",
        caption=caption,
        header=header,
        rows=rows,
        label=f"tab:paper-{profile}",
    )
    return ScoreTable(profile=profile, methods=methods, frame=pd.DataFrame(records), table=table)


def trials_table(final: pd.DataFrame, profile: str) -> ScoreTable | None:
    """Every trial that did not produce a score, with its error, so failures are visible, not averaged."""
    from bench.report.stats import scored_mask

    failed = final.loc[~scored_mask(final)].sort_values(["variant", "task", "ratio", "seed"])
    if failed.empty:
        return None
    rows = []
    for _, r in failed.iterrows():
        error = str(r.get("error", "") or "")
        error = error.splitlines()[0][:160] if error else "(no score recorded)"
        rows.append(
            [
                Cell(str(r["run"])),
                Cell(str(r["variant"])),
                Cell(str(r["task"])),
                Cell(format_ratio(float(r["ratio"]))),
                Cell(str(int(r["seed"]))),
                Cell(str(r["status"])),
                Cell(error),
            ]
        )
    frame = failed[
        [c for c in ("run", "trial_id", "variant", "task", "ratio", "seed", "status", "error") if c in failed.columns]
    ].assign(profile=profile)
    table = Table(
        title=f"Failed trials (profile: {profile})",
        caption="Trials without a final score; they are excluded from every mean and aggregate.",
        header=["Run", "Method", "Task", "Ratio", "Seed", "Status", "Error"],
        rows=rows,
        label=f"tab:failed-{profile}",
    )
    return ScoreTable(profile=profile, methods=sorted(set(failed["variant"])), frame=frame, table=table)


def _interval(est: float, lo: float, hi: float, digits: int) -> str:
    if math.isnan(est):
        return "-"
    if math.isnan(lo):
        return f"{est:.{digits}f} (no CI)"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def aggregates_table(frame: pd.DataFrame, profile: str, metrics: tuple[str, ...], reps: int) -> Table:
    """rliable aggregates as one row per reward type and method, one column per metric."""
    rows: list[list[Cell]] = []
    rules: set[int] = set()
    for reward in reward_order(frame["reward_type"]):
        sub = frame[frame["reward_type"] == reward]
        for m in method_order(sub["method"]):
            g = sub[sub["method"] == m].set_index("metric")
            row = [
                Cell(reward),
                Cell(display_name(m)),
                Cell(str(int(g["runs"].iloc[0]))),
                Cell(str(int(g["cells"].iloc[0]))),
            ]
            row += [
                Cell(
                    _interval(float(g.at[k, "estimate"]), float(g.at[k, "ci_low"]), float(g.at[k, "ci_high"]), DECIMALS)
                )
                for k in metrics
            ]
            rows.append(row)
        rules.add(len(rows) - 1)
    caption = (
        f"Profile '{profile}'. rliable aggregates of the normalized final score (0-100 scale; computed on "
        f"score/100 and scaled back), point estimate [95% stratified-bootstrap CI, {reps} resamples]. "
        "Runs: seeds per cell used (minimum common count); cells: task × ratio cells every method ran. "
        "Optimality gap: lower is better."
    )
    return Table(
        title=f"Robust aggregates (profile: {profile})",
        caption=caption,
        header=["Reward", "Method", "Runs", "Cells", *metrics],
        rows=rows,
        rules_after=rules,
        label=f"tab:robust-{profile}",
    )


def improvement_table(frame: pd.DataFrame, profile: str, reps: int) -> Table:
    """P(LaMo > X) per reward type and baseline."""
    rows = [
        [
            Cell(str(r["reward_type"])),
            Cell(f"LaMo > {display_name(str(r['baseline']))}"),
            Cell(_interval(float(r["probability"]), float(r["ci_low"]), float(r["ci_high"]), 2)),
            Cell(str(int(r["cells"]))),
        ]
        for _, r in frame.iterrows()
    ]
    caption = (
        f"Profile '{profile}'. Probability that a LaMo run scores higher than a run of X on a random "
        f"task × ratio cell (rliable), with 95% stratified-bootstrap CI ({reps} resamples); 0.5 = no "
        "difference."
    )
    return Table(
        title=f"Probability of improvement (profile: {profile})",
        caption=caption,
        header=["Reward", "Comparison", "P(improvement) [95% CI]", "Cells"],
        rows=rows,
        label=f"tab:poi-{profile}",
    )


#: Verdicts of `curve_change_table`, keyed by where the change's interval lies.
RISING, FALLING, NO_CHANGE, NO_VERDICT = "still rising", "falling", "no detectable change", "-"


def change_verdict(interval: Interval) -> str:
    """Rising or falling only when the whole 95% interval is on one side of 0; no interval, no verdict."""
    lo, hi = interval
    if math.isnan(lo) or math.isnan(hi):
        return NO_VERDICT
    if lo > 0:
        return RISING
    if hi < 0:
        return FALLING
    return NO_CHANGE


def curve_change_table(changes: pd.DataFrame, profile: str, reps: int = DEFAULT_REPS) -> ScoreTable | None:
    """Has each cell's learning curve flattened? Final-window mean against the window before, over seeds.

    `changes` is `stats.curve_change`'s per-trial frame. None when no trial has a previous window (a run with
    one evaluation cannot say).
    """
    ok = changes.dropna(subset=["change"])
    if ok.empty:
        return None
    agents = dict(zip(ok["variant"], ok["agent"], strict=True))
    records: list[dict[str, Any]] = []
    rows: list[list[Cell]] = []
    rules: set[int] = set()
    for reward in reward_order(ok["reward_type"]):
        sub = ok[ok["reward_type"] == reward]
        keys = sorted(
            {(str(t), float(r)) for t, r in zip(sub["task"], sub["ratio"], strict=True)},
            key=lambda k: (task_rank(k[0]), -k[1]),
        )
        for task, ratio in keys:
            cell = sub[(sub["task"] == task) & (sub["ratio"] == ratio)]
            for m in method_order(cell["variant"], agents):
                g = cell[cell["variant"] == m].sort_values("seed")
                d = g["change"].to_numpy(dtype=float)
                interval = mean_interval(d.reshape(-1, 1), reps) if len(d) > 1 else NO_INTERVAL
                window = int(g["window"].iloc[0])
                verdict = change_verdict(interval)
                records.append(
                    {
                        "profile": profile,
                        "reward_type": reward,
                        "task": task,
                        "ratio": ratio,
                        "variant": m,
                        "n_seeds": len(d),
                        "window": window,
                        "previous": float(g["previous"].mean()),
                        "last": float(g["last"].mean()),
                        "change": float(d.mean()),
                        "change_ci_low": interval[0],
                        "change_ci_high": interval[1],
                        "verdict": verdict,
                    }
                )
                rows.append(
                    [
                        Cell(reward),
                        Cell(task),
                        Cell(format_ratio(ratio)),
                        Cell(display_name(m)),
                        Cell(str(len(d))),
                        Cell(f"{window:g}"),
                        Cell(f"{g['previous'].mean():.{DECIMALS}f}"),
                        Cell(f"{g['last'].mean():.{DECIMALS}f}"),
                        Cell(format_difference(float(d.mean()), interval)),
                        Cell(verdict, bold=verdict == RISING),
                    ]
                )
            rules.add(len(rows) - 1)
    caption = (
        f"Profile '{profile}'. Has training converged? Final window: the mean normalized score over the "
        "evaluations the final score averages (the last W steps; W scales the paper's last 20K of 100K steps "
        "and is at least one evaluation interval); previous window: the same over the W steps before it; both "
        "at the return-to-go target the cell is scored at, averaged over seeds. Change: final - previous, with "
        f"its 95% bootstrap interval over seeds ({reps} resamples). 'still rising' (bold) when the interval lies "
        "above 0, 'falling' when below, otherwise 'no detectable change', which is not proof of a plateau when "
        "the interval is wide; '-': fewer than 2 seeds. A still-rising method was stopped before its curve "
        "flattened, so its final score understates what longer training gives."
    )
    table = Table(
        title=f"Did the learning curves flatten? (profile: {profile})",
        caption=caption,
        header=[
            "Reward",
            "Task",
            "Ratio",
            "Method",
            "Seeds",
            "W (steps)",
            "Previous window",
            "Final window",
            "Change [95% CI]",
            "Verdict",
        ],
        rows=rows,
        rules_after=rules,
        label=f"tab:curve-change-{profile}",
    )
    return ScoreTable(profile=profile, methods=sorted(set(ok["variant"])), frame=pd.DataFrame(records), table=table)
