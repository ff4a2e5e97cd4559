"""Per-cell statistics over seeds: the numbers every table and figure is drawn from.

A "cell" is one (reward type, task, sample ratio, method). Failed trials are counted, never scored: a
crash is not a zero, so they are left out of the mean and reported beside it. The standard deviation
over seeds uses ddof=0 (numpy's default, which RL code bases including the LaMo reference code use when
they print "mean ± std"), so a cell with a single seed shows std 0.0 rather than a blank.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STD_DDOF = 0
CELL_COLUMNS = ["profile", "reward_type", "task", "ratio", "variant"]


def scored_mask(final: pd.DataFrame) -> pd.Series:
    """Trials that produced a final score; everything else counts as failed."""
    return (final["status"] == "ok") & final["final_score"].notna()


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
        rows.append({
            **dict(zip(CELL_COLUMNS, key, strict=True)),
            "agent": str(group["agent"].iloc[0]),
            "domain": str(group["domain"].iloc[0]),
            "n_ok": len(scores),
            "n_failed": int((~group["_scored"]).sum()),
            "mean": float(np.mean(scores)) if len(scores) else float("nan"),
            "std": float(np.std(scores, ddof=STD_DDOF)) if len(scores) else float("nan"),
            "seeds": [int(s) for s in ok["seed"]],
        })
    cells = pd.DataFrame(rows)
    if cells.empty:
        return cells
    cells["_rank"] = cells["task"].map(task_rank)
    return cells.sort_values(["_rank", "ratio", "variant"], ascending=[True, False, True]).drop(
        columns="_rank").reset_index(drop=True)


def chosen_target_evals(evals: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Each scored trial's evaluation rows at the return-to-go target its final score was taken from.

    Agents without targets have NaN in both tables. When a trial's final row names no target but its
    evaluations have several, the best target per step is kept (the paper's rule, applied per step).
    """
    scored = final.loc[scored_mask(final), ["run", "trial_id", "rtg_target"]].rename(
        columns={"rtg_target": "_chosen"})
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
        mean="mean", std=lambda s: float(np.std(s.to_numpy(float), ddof=STD_DDOF)), n="count")
    return curves.sort_values([*CELL_COLUMNS, "step"]).reset_index(drop=True)
