"""Per-cell statistics over seeds: the numbers every table and figure is drawn from.

A "cell" is one (reward type, task, sample ratio, method). Failed trials are counted, never scored: a
crash is not a zero, so they are left out of the mean and reported beside it. The standard deviation
over seeds uses ddof=0 (numpy's default, which RL code bases including the LaMo reference code use when
they print "mean ± std"), so a cell with a single seed shows std 0.0 rather than a blank.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

STD_DDOF = 0
CELL_COLUMNS = ["profile", "reward_type", "task", "ratio", "variant"]


def scored_mask(final: pd.DataFrame) -> pd.Series:
    """Trials that produced a final score; everything else counts as failed."""
    return (final["status"] == "ok") & final["final_score"].notna()


#: How a cell's return-to-go target was chosen (final rows' `target_choice`).
CHOICE_CELL = "cell"  # one target for all seeds: the highest mean final score over seeds (the authors' rule)
CHOICE_SEED = "seed-best"  # each seed's own best target: results without per-target scores (optimistic)
CHOICE_NONE = "none"  # the agent takes no target


def _target_entries(raw: Any) -> list[dict[str, Any]] | None:
    """A final row's `target_scores` (JSON text in final.parquet); None when absent or unreadable."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    try:
        entries = json.loads(raw) if isinstance(raw, str) else list(raw)
    except (TypeError, ValueError):
        return None
    return [e for e in entries if isinstance(e, dict)] or None


def select_cell_targets(final: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Score every cell at one return-to-go target for all its seeds, as the authors report (LaMo-2023 issue #1).

    Per cell (profile, reward type, task, ratio, method) the target with the highest mean final score over the
    scored seeds is chosen (ties: the task's first target) and each scored trial's final, last and best scores
    are replaced by that target's; the trial's own best target and score stay in `seed_best_target` and
    `seed_best_score`. Choosing per seed instead would average each seed's luckiest target, biasing every
    return-conditioned method upwards against the agents that take no target.

    Returns (rescored final rows with a `target_choice` column, one row per (cell, target) with its mean final
    score and whether it was chosen, notes). A cell whose trials lack per-target scores (results written before
    they were stored) keeps each seed's best and is flagged, never passed off as the cell rule.
    """
    frame = final.copy()
    frame["seed_best_target"] = frame["rtg_target"]
    frame["seed_best_score"] = frame["final_score"]
    frame["target_choice"] = CHOICE_NONE
    scored = scored_mask(frame)
    raw = frame["target_scores"] if "target_scores" in frame.columns else pd.Series(None, index=frame.index)
    records: list[dict[str, Any]] = []
    fallback: list[str] = []
    for key, group in frame.loc[scored].groupby(CELL_COLUMNS, sort=False):
        cell = dict(zip(CELL_COLUMNS, key, strict=True))
        entries = {i: _target_entries(raw.at[i]) for i in group.index}
        conditioned = group["rtg_target"].notna().any() or any(
            e is not None and any(x.get("target") is not None for x in e) for e in entries.values()
        )
        if not conditioned:
            continue
        per_trial: dict[Any, dict[float, dict[str, Any]]] = {}
        for i, e in entries.items():
            if e is not None:
                per_trial[i] = {
                    float(x["target"]): x
                    for x in e
                    if x.get("target") is not None and x.get("final") is not None and math.isfinite(float(x["final"]))
                }
        common = [
            t
            for t in per_trial.get(group.index[0], {})
            if all(i in per_trial and t in per_trial[i] for i in group.index)
        ]
        label = f"{cell['variant']} on {cell['task']} at ratio {cell['ratio']:g}"
        if not common:
            frame.loc[group.index, "target_choice"] = CHOICE_SEED
            fallback.append(label)
            continue
        means = {t: float(np.mean([per_trial[i][t]["final"] for i in group.index])) for t in common}
        chosen = max(common, key=lambda t: means[t])  # max keeps the first of equal means
        for i in group.index:
            entry = per_trial[i][chosen]
            frame.loc[i, "rtg_target"] = chosen
            for col, field in (("final_score", "final"), ("last_score", "last"), ("best_score", "best")):
                if col in frame.columns and entry.get(field) is not None:
                    frame.loc[i, col] = float(entry[field])
        frame.loc[group.index, "target_choice"] = CHOICE_CELL
        for t in common:
            records.append(
                {
                    **cell,
                    "agent": str(group["agent"].iloc[0]),
                    "rtg_target": t,
                    "mean_final": means[t],
                    "n_seeds": len(group),
                    "chosen": t == chosen,
                }
            )
    notes = []
    if fallback:
        notes.append(
            f"{len(fallback)} cell(s) have no per-target final scores (results written before they were "
            f"stored), so each seed is scored at its own best return-to-go target, which is optimistic: "
            f"{', '.join(fallback)}"
        )
    columns = [*CELL_COLUMNS, "agent", "rtg_target", "mean_final", "n_seeds", "chosen"]
    return frame, pd.DataFrame(records, columns=columns), notes


def task_rank(task: str) -> tuple[int, str]:
    """Registry order (the paper's order), unknown tasks after it alphabetically."""
    from bench.tasks import TASKS

    names = list(TASKS)
    return (names.index(task), task) if task in names else (len(names), task)


def cell_stats(final: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: n_ok, n_failed, mean and std of final_score over the scored seeds."""
    frame = final.assign(_scored=scored_mask(final))
    rows = []
    for key, group in frame.groupby(CELL_COLUMNS, sort=False):
        ok = group.loc[group["_scored"]].sort_values("seed")
        scores = ok["final_score"].to_numpy(dtype=float)
        rows.append(
            {
                **dict(zip(CELL_COLUMNS, key, strict=True)),
                "agent": str(group["agent"].iloc[0]),
                "domain": str(group["domain"].iloc[0]),
                "n_ok": len(scores),
                "n_failed": int((~group["_scored"]).sum()),
                "mean": float(np.mean(scores)) if len(scores) else float("nan"),
                "std": float(np.std(scores, ddof=STD_DDOF)) if len(scores) else float("nan"),
                "seeds": [int(s) for s in ok["seed"]],
                "scores": [float(v) for v in scores],  # per seed, in `seeds` order: the tables' intervals need them
                "rtg_target": _cell_target(ok),
            }
        )
    cells = pd.DataFrame(rows)
    if cells.empty:
        return cells
    cells["_rank"] = cells["task"].map(task_rank)
    return (
        cells.sort_values(["_rank", "ratio", "variant"], ascending=[True, False, True])
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _cell_target(ok: pd.DataFrame) -> str:
    """The target a cell's scored trials used: one number, "" without targets, "seed-best" when chosen per seed."""
    if ok.empty or ok["rtg_target"].isna().all():
        return ""
    if "target_choice" in ok.columns and (ok["target_choice"] == CHOICE_SEED).any():
        return CHOICE_SEED
    targets = sorted({float(t) for t in ok["rtg_target"].dropna()})
    return "/".join(f"{t:g}" for t in targets)


def chosen_target_evals(evals: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Each scored trial's evaluation rows at the return-to-go target its final score was taken from.

    Agents without targets have NaN in both tables. When a trial's final row names no target but its
    evaluations have several, the best target per step is kept (the paper's rule, applied per step).
    """
    scored = final.loc[scored_mask(final), ["run", "trial_id", "rtg_target"]].rename(columns={"rtg_target": "_chosen"})
    ev = evals.merge(scored, on=["run", "trial_id"], how="inner")
    if ev.empty:
        return ev.drop(columns="_chosen")
    both_nan = ev["rtg_target"].isna() & ev["_chosen"].isna()
    match = np.isclose(ev["rtg_target"].to_numpy(float), ev["_chosen"].to_numpy(float))
    picked = ev.loc[both_nan | match]
    no_choice = ev.loc[ev["_chosen"].isna() & ev["rtg_target"].notna()]
    if not no_choice.empty:
        best = no_choice.sort_values("score_mean").groupby(["run", "trial_id", "step"]).tail(1)
        picked = pd.concat([picked, best], ignore_index=True)
    return picked.drop(columns="_chosen").reset_index(drop=True)


def learning_curves(evals: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the normalized score at each training step, per cell."""
    picked = chosen_target_evals(evals, final)
    if picked.empty:
        return pd.DataFrame(columns=[*CELL_COLUMNS, "step", "mean", "std", "n"])
    per_trial = picked.groupby([*CELL_COLUMNS, "run", "trial_id", "step"], as_index=False)["score_mean"].mean()
    curves = per_trial.groupby([*CELL_COLUMNS, "step"], as_index=False)["score_mean"].agg(
        mean="mean", std=lambda s: float(np.std(s.to_numpy(float), ddof=STD_DDOF)), n="count"
    )
    return curves.sort_values([*CELL_COLUMNS, "step"]).reset_index(drop=True)


def _report_window(extra: Any) -> int | None:
    """A final row's `report_window` (stored in its `extra` JSON); None when absent or unreadable."""
    try:
        value = (json.loads(extra) if isinstance(extra, str) else dict(extra or {})).get("report_window")
    except (TypeError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int | float) and value > 0 else None


def curve_change(evals: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Per scored trial: how much its score still moved at the end of training (has the curve flattened?).

    The final score is the mean of the evaluations in the last window W of training (the paper's last 20K of
    100K steps, scaled with the profile). The same mean over the window just before it, (last - 2W, last - W],
    says whether training was still improving when it stopped: `change` = final-window mean - previous-window
    mean, at the return-to-go target the cell is scored at. W is at least one evaluation interval, so a short
    run compares its last evaluation with the one before. NaN change when no evaluation falls in the previous
    window. One row per trial: the table resamples seeds to give each cell's change an interval.
    """
    from bench.evaluate import final_score

    picked = chosen_target_evals(evals, final)
    columns = [*CELL_COLUMNS, "agent", "seed", "window", "previous", "last", "change"]
    if picked.empty:
        return pd.DataFrame(columns=columns)
    per_step = picked.groupby(["run", "trial_id", "step"], as_index=False)["score_mean"].mean()
    curves = {key: group for key, group in per_step.groupby(["run", "trial_id"])}
    rows = []
    for _, trial in final.loc[scored_mask(final)].iterrows():
        curve = curves.get((trial["run"], trial["trial_id"]))
        if curve is None:
            continue
        s = curve["step"].to_numpy(dtype=int)
        v = curve["score_mean"].to_numpy(dtype=float)
        gap = int(np.min(np.diff(np.sort(s)))) if len(s) > 1 else int(s[0])
        window = max(_report_window(trial.get("extra")) or gap, gap)
        last = final_score(list(zip(s, v, strict=True)), window)  # the same window the trial's final score used
        before = int(s.max()) - window
        previous = v[(s > before - window) & (s <= before)]
        rows.append(
            {
                **{c: trial[c] for c in CELL_COLUMNS},
                "agent": str(trial["agent"]),
                "seed": int(trial["seed"]),
                "window": window,
                "previous": float(np.mean(previous)) if len(previous) else float("nan"),
                "last": last,
                "change": last - float(np.mean(previous)) if len(previous) else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=columns)
