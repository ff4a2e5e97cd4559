"""The paper-style score tables (LaMo paper Tables 1-3) and the side-by-side comparison with the paper.

Each builder returns both a numeric frame (written as CSV, one column per number) and a `Table` of
formatted cells (written as Markdown, LaTeX and HTML), so the text formats and the CSV never disagree.

Conventions, all written into the captions too:
- cells are mean ± std of the normalized final score over scored seeds (std ddof=0, see `stats`);
- per row the best mean is bold and the second best underlined, compared at the one decimal shown
  (ties share the mark);
- "LaMo vs DT" is the paper's relative improvement (LaMo - DT) / |DT| × 100, from unrounded means,
  blank when DT is 0 or either is missing;
- an Average row per reward type averages each method's row means; a method missing rows gets
  "(k/n rows)" and is left out of that row's ranking and improvement;
- "RTG target" names the return-to-go target each return-conditioned method's cell is scored at: one per
  task × ratio cell for all seeds (`stats.select_cell_targets`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.report import paper
from bench.report.render import Cell, Table
from bench.report.stats import STD_DDOF
from bench.report.style import display_name, format_ratio, method_order, reward_order

DECIMALS = 1


@dataclass
class ScoreTable:
    profile: str
    methods: list[str]
    frame: pd.DataFrame
    table: Table


def rank_marks(means: dict[str, float], decimals: int = DECIMALS) -> tuple[list[str], list[str]]:
    """Methods holding the best and the second-best value, compared at the precision shown."""
    shown = {m: round(v, decimals) for m, v in means.items() if not math.isnan(v)}
    if len(shown) < 2:
        return [], []
    levels = sorted(set(shown.values()), reverse=True)
    best = [m for m, v in shown.items() if v == levels[0]]
    second = [m for m, v in shown.items() if len(levels) > 1 and v == levels[1]]
    return best, second


def improvement_pct(lamo: float, dt: float) -> float:
    """The paper's LaMo-over-DT improvement in percent; NaN where it is undefined."""
    if math.isnan(lamo) or math.isnan(dt) or dt == 0:
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


def format_pct(pct: float) -> str:
    return "-" if math.isnan(pct) else f"{pct:+.1f}%"


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


def score_table(cells: pd.DataFrame, profile: str) -> ScoreTable:
    """Rows task × ratio grouped by reward type, each group closed by its Average row; methods as columns."""
    agents = dict(zip(cells["variant"], cells["agent"], strict=True))
    methods = method_order(cells["variant"], agents)
    with_improvement = "lamo" in methods and "dt" in methods
    records: list[dict[str, Any]] = []
    rows: list[list[Cell]] = []
    rules: set[int] = set()

    for reward in reward_order(cells["reward_type"]):
        group = cells[cells["reward_type"] == reward]
        keys = list(dict.fromkeys(zip(group["task"], group["ratio"], strict=True)))
        row_means: list[dict[str, float]] = []
        for task, ratio in keys:
            sub = group[(group["task"] == task) & (group["ratio"] == ratio)].set_index("variant")
            means = {m: float(sub.at[m, "mean"]) if m in sub.index else float("nan") for m in methods}
            row_means.append(means)
            best, second = rank_marks(means)
            record: dict[str, Any] = {"profile": profile, "reward_type": reward, "row_kind": "cell", "task": task,
                                      "ratio": ratio}
            cells_out = [Cell(reward), Cell(task), Cell(format_ratio(ratio))]
            for m in methods:
                present = m in sub.index
                n_ok = int(sub.at[m, "n_ok"]) if present else 0
                n_failed = int(sub.at[m, "n_failed"]) if present else 0
                std = float(sub.at[m, "std"]) if present else float("nan")
                record.update({f"{m}_mean": means[m], f"{m}_std": std, f"{m}_n": n_ok, f"{m}_failed": n_failed})
                cells_out.append(Cell(format_score(means[m], std, n_ok, n_failed), m in best, m in second))
            record.update({"best": ";".join(best), "second": ";".join(second)})
            if with_improvement:
                pct = improvement_pct(means["lamo"], means["dt"])
                record["lamo_vs_dt_pct"] = pct
                cells_out.append(Cell(format_pct(pct)))
            targets = {m: str(sub.at[m, "rtg_target"]) if m in sub.index and "rtg_target" in sub.columns else ""
                       for m in methods}
            record.update({f"{m}_rtg_target": t for m, t in targets.items()})
            record["rtg_target"] = _target_text(targets)
            cells_out.append(Cell(record["rtg_target"]))
            records.append(record)
            rows.append(cells_out)

        # Average row for this reward type.
        n_rows = len(row_means)
        averages: dict[str, float] = {}
        counts: dict[str, int] = {}
        for m in methods:
            values = [r[m] for r in row_means if not math.isnan(r[m])]
            counts[m] = len(values)
            averages[m] = sum(values) / len(values) if values else float("nan")
        complete = {m: averages[m] for m in methods if counts[m] == n_rows}
        best, second = rank_marks(complete)
        record = {"profile": profile, "reward_type": reward, "row_kind": "average", "task": f"Average ({reward})",
                  "ratio": float("nan")}
        avg_cells = [Cell(reward, bold=True), Cell(f"Average ({reward})", bold=True), Cell("")]
        for m in methods:
            record.update({f"{m}_mean": averages[m], f"{m}_std": float("nan"), f"{m}_n": counts[m],
                           f"{m}_failed": int(group.loc[group["variant"] == m, "n_failed"].sum())})
            text = "-" if math.isnan(averages[m]) else f"{averages[m]:.{DECIMALS}f}"
            if counts[m] and counts[m] < n_rows:
                text += f" ({counts[m]}/{n_rows} rows)"
            avg_cells.append(Cell(text, m in best, m in second))
        record.update({"best": ";".join(best), "second": ";".join(second)})
        if with_improvement:
            pct = improvement_pct(complete.get("lamo", float("nan")), complete.get("dt", float("nan")))
            record["lamo_vs_dt_pct"] = pct
            avg_cells.append(Cell(format_pct(pct), bold=True))
        avg_cells.append(Cell(""))
        records.append(record)
        rows.append(avg_cells)
        rules.add(len(rows) - 1)

    header = ["Reward", "Task", "Ratio", *[display_name(m) for m in methods]]
    if with_improvement:
        header.append("LaMo vs DT")
    header.append("RTG target")
    caption = (
        f"Profile '{profile}'. Normalized final score (0-100), mean ± std over seeds (std with ddof={STD_DDOF}); "
        f"{_seed_note(cells)}. Bold: best in the row; underlined: second best. Failed trials are left out of "
        "the mean and counted as '(k/n failed)'; 'failed' means no seed finished; '-' means not run. "
        "LaMo vs DT = (LaMo - DT) / |DT| × 100. Average rows average the row means per reward type; "
        "'(k/n rows)' marks a method missing rows (left out of that row's ranking). "
        "RTG target: the return-to-go target each return-conditioned method is scored at in that row, one per "
        "task × ratio cell for all seeds, the one with the highest mean final score over seeds (the authors' "
        "protocol, LaMo-2023 issue #1); every target's mean is in targets.csv."
    )
    if (cells.get("rtg_target", pd.Series(dtype=str)) == "seed-best").any():
        caption += (" 'best per seed': results without per-target scores, so each seed is scored at its own best "
                    "target (optimistic).")
    if not with_improvement:
        caption += " No LaMo-vs-DT column: the runs lack 'lamo' or 'dt'."
    table = Table(title=f"Normalized scores by task and sample ratio (profile: {profile})", caption=caption,
                  header=header, rows=rows, rules_after=rules, label=f"tab:scores-{profile}")
    return ScoreTable(profile=profile, methods=methods, frame=pd.DataFrame(records), table=table)


def paper_comparison(cells: pd.DataFrame, profile: str) -> ScoreTable | None:
    """Our cells next to the paper's published numbers, for every task and ratio the paper reports."""
    agents = dict(zip(cells["variant"], cells["agent"], strict=True))
    methods = [m for m in method_order(cells["variant"], agents) if m in paper.METHOD_NAMES]
    if not methods:
        return None
    records: list[dict[str, Any]] = []
    rows: list[list[Cell]] = []
    keys = list(dict.fromkeys(zip(cells["reward_type"], cells["task"], cells["domain"], cells["ratio"],
                                  strict=True)))
    keys.sort(key=lambda k: reward_order(cells["reward_type"]).index(k[0]))
    for reward, task, domain, ratio in keys:
        if not paper.has_cell(task, domain, ratio):
            continue
        sub = cells[(cells["task"] == task) & (cells["ratio"] == ratio)].set_index("variant")
        published = {m: paper.lookup(task, domain, ratio, m) for m in methods}
        sources = sorted({p.table for p in published.values() if p is not None})
        source = "paper Table " + ", ".join(str(t) for t in sources)
        record: dict[str, Any] = {"profile": profile, "reward_type": reward, "task": task, "ratio": ratio,
                                  "source": source}
        out = [Cell(task), Cell(format_ratio(ratio)), Cell(source)]
        for m in methods:
            present = m in sub.index
            mean = float(sub.at[m, "mean"]) if present else float("nan")
            std = float(sub.at[m, "std"]) if present else float("nan")
            n_ok = int(sub.at[m, "n_ok"]) if present else 0
            n_failed = int(sub.at[m, "n_failed"]) if present else 0
            pub = published[m]
            record.update({
                f"{m}_ours_mean": mean, f"{m}_ours_std": std, f"{m}_ours_n": n_ok,
                f"{m}_paper_mean": pub.mean if pub else float("nan"),
                f"{m}_paper_std": pub.std if pub and pub.std is not None else float("nan"),
            })
            out += [Cell(format_score(mean, std, n_ok, n_failed)), Cell(pub.text() if pub else "-")]
        records.append(record)
        rows.append(out)
    if not rows:
        return None
    header = ["Task", "Ratio", "Source"]
    for m in methods:
        header += [f"{display_name(m)} (ours)", f"{display_name(m)} (paper)"]
    caption = (
        f"Ours: profile '{profile}', mean ± std over our seeds (ddof={STD_DDOF}). Paper: LaMo (Shi et al., "
        "ICLR 2024) camera-ready, mean ± std over seeds 0-2; Tables 8-11 call LaMo 'Ours', Table 9 gives no "
        "std for baselines. '-': not reported / not run."
    )
    if profile != "paper":
        caption += f" Profile '{profile}' does not follow the paper's training protocol; expect differences."
    table = Table(title=f"Our scores beside the published ones (profile: {profile})", caption=caption,
                  header=header, rows=rows, label=f"tab:paper-{profile}")
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
        rows.append([Cell(str(r["run"])), Cell(str(r["variant"])), Cell(str(r["task"])),
                     Cell(format_ratio(float(r["ratio"]))), Cell(str(int(r["seed"]))), Cell(str(r["status"])),
                     Cell(error)])
    frame = failed[[c for c in ("run", "trial_id", "variant", "task", "ratio", "seed", "status", "error")
                    if c in failed.columns]].assign(profile=profile)
    table = Table(title=f"Failed trials (profile: {profile})",
                  caption="Trials without a final score; they are excluded from every mean and aggregate.",
                  header=["Run", "Method", "Task", "Ratio", "Seed", "Status", "Error"], rows=rows,
                  label=f"tab:failed-{profile}")
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
            row = [Cell(reward), Cell(display_name(m)), Cell(str(int(g["runs"].iloc[0]))),
                   Cell(str(int(g["cells"].iloc[0])))]
            row += [Cell(_interval(float(g.at[k, "estimate"]), float(g.at[k, "ci_low"]), float(g.at[k, "ci_high"]),
                                   DECIMALS)) for k in metrics]
            rows.append(row)
        rules.add(len(rows) - 1)
    caption = (f"Profile '{profile}'. rliable aggregates of the normalized final score (0-100 scale; computed on "
               f"score/100 and scaled back), point estimate [95% stratified-bootstrap CI, {reps} resamples]. "
               "Runs: seeds per cell used (minimum common count); cells: task × ratio cells every method ran. "
               "Optimality gap: lower is better.")
    return Table(title=f"Robust aggregates (profile: {profile})", caption=caption,
                 header=["Reward", "Method", "Runs", "Cells", *metrics], rows=rows, rules_after=rules,
                 label=f"tab:robust-{profile}")


def improvement_table(frame: pd.DataFrame, profile: str, reps: int) -> Table:
    """P(LaMo > X) per reward type and baseline."""
    rows = [[Cell(str(r["reward_type"])), Cell(f"LaMo > {display_name(str(r['baseline']))}"),
             Cell(_interval(float(r["probability"]), float(r["ci_low"]), float(r["ci_high"]), 2)),
             Cell(str(int(r["cells"])))] for _, r in frame.iterrows()]
    caption = (f"Profile '{profile}'. Probability that a LaMo run scores higher than a run of X on a random "
               f"task × ratio cell (rliable), with 95% stratified-bootstrap CI ({reps} resamples); 0.5 = no "
               "difference.")
    return Table(title=f"Probability of improvement (profile: {profile})", caption=caption,
                 header=["Reward", "Comparison", "P(improvement) [95% CI]", "Cells"], rows=rows,
                 label=f"tab:poi-{profile}")
