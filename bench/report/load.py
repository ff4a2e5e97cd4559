"""Read run folders into one pair of tables, and split them by profile.

A report may combine several runs (say one per agent). Rows from runs trained under different profiles
(paper, quick, smoke, custom) must never be averaged together, so everything downstream works on one
profile at a time; `split_by_profile` is the only way the rest of the package sees the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import BenchError

FINAL_REQUIRED = (
    "run",
    "trial_id",
    "agent",
    "variant",
    "task",
    "domain",
    "reward_type",
    "ratio",
    "seed",
    "profile",
    "status",
    "rtg_target",
    "final_score",
)
EVAL_REQUIRED = (
    "run",
    "trial_id",
    "variant",
    "task",
    "reward_type",
    "ratio",
    "seed",
    "profile",
    "step",
    "rtg_target",
    "score_mean",
)
# A profile becomes a folder name in the report.
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The same experiment cell run twice (e.g. a re-run in a second run folder): the later run on the command
# line wins, so that no seed is counted twice.
CELL_KEY = ["profile", "variant", "task", "ratio", "seed"]


@dataclass
class Results:
    """Trial rows (`final`), evaluation rows (`evals`) and what was done to them while loading."""

    final: pd.DataFrame
    evals: pd.DataFrame
    runs: list[Path]
    notes: list[str] = field(default_factory=list)
    # Notes about one run, keyed by the run names in its final.parquet, so each profile gets only its own.
    run_notes: dict[str, list[str]] = field(default_factory=dict)


def _read_table(path: Path, required: tuple[str, ...], empty_ok: bool = False) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise BenchError(
            f"cannot read {path}: {exc.__class__.__name__}; expected a parquet file written by `bench run`"
        ) from None
    if empty_ok and frame.empty:
        return pd.DataFrame(columns=list(required))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BenchError(f"{path} lacks columns {', '.join(missing)}; expected a results table written by `bench run`")
    return frame


def _read_run(run: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    if not run.is_dir():
        raise BenchError(f"run folder {run} does not exist; expected results/<run>/ containing final.parquet")
    final_path = run / "final.parquet"
    if not final_path.is_file():
        raise BenchError(f"{run} has no final.parquet; expected a finished run folder (results/<run>/)")
    final = _read_table(final_path, FINAL_REQUIRED)
    if final.empty:
        raise BenchError(f"{final_path} holds no trials; expected at least one trial row")
    notes: list[str] = []
    evals_path = run / "evals.parquet"
    if evals_path.is_file():
        evals = _read_table(evals_path, EVAL_REQUIRED, empty_ok=True)
    else:
        evals = pd.DataFrame(columns=list(EVAL_REQUIRED))
        notes.append(f"{run} has no evals.parquet: no learning curves for its trials")
    return final, evals, notes


def _normalise_types(final: pd.DataFrame, evals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    final = final.copy()
    evals = evals.copy()
    for frame in (final, evals):
        for col in ("run", "trial_id", "variant", "task", "reward_type", "profile"):
            frame[col] = frame[col].astype(str)
        frame["ratio"] = frame["ratio"].astype("float64")
        frame["seed"] = frame["seed"].astype("int64")
        frame["rtg_target"] = pd.to_numeric(frame["rtg_target"], errors="coerce").astype("float64")
    for col in ("agent", "domain", "status"):
        final[col] = final[col].astype(str)
    final["final_score"] = pd.to_numeric(final["final_score"], errors="coerce").astype("float64")
    evals["step"] = evals["step"].astype("int64")
    evals["score_mean"] = pd.to_numeric(evals["score_mean"], errors="coerce").astype("float64")
    return final, evals


def load_runs(runs: list[Path]) -> Results:
    """Read and concatenate run folders; a later run replaces an earlier one's trial for the same cell+seed."""
    if not runs:
        raise BenchError("no runs given; expected one or more run folders such as results/<run>")
    unique: list[Path] = []
    for run in runs:
        if run.resolve() not in [u.resolve() for u in unique]:
            unique.append(run)
    finals, evals, notes = [], [], []
    run_notes: dict[str, list[str]] = {}
    for order, run in enumerate(unique):
        final, ev, these_notes = _read_run(run)
        final = final.assign(_order=order)
        finals.append(final)
        evals.append(ev)
        for name in set(final["run"].astype(str)):
            run_notes.setdefault(name, []).extend(these_notes)
    final_all = pd.concat(finals, ignore_index=True)
    evals_all = (
        pd.concat([e for e in evals if not e.empty], ignore_index=True)
        if any(not e.empty for e in evals)
        else pd.DataFrame(columns=list(EVAL_REQUIRED))
    )
    final_all, evals_all = _normalise_types(final_all, evals_all)

    dup = final_all.duplicated(CELL_KEY, keep="last")
    if dup.any():
        dropped = final_all.loc[dup]
        notes.append(
            f"{int(dup.sum())} trial(s) repeat a (profile, variant, task, ratio, seed) of a later run and "
            f"were replaced by it: {', '.join(sorted(set(dropped['trial_id'])))}"
        )
        keep = final_all.loc[~dup, ["run", "trial_id"]]
        final_all = final_all.loc[~dup]
        evals_all = evals_all.merge(keep, on=["run", "trial_id"], how="inner")
    final_all = final_all.drop(columns="_order").reset_index(drop=True)
    return Results(
        final=final_all, evals=evals_all.reset_index(drop=True), runs=unique, notes=notes, run_notes=run_notes
    )


def split_by_profile(results: Results) -> dict[str, Results]:
    """One `Results` per profile, so no table, figure or aggregate ever mixes profiles."""
    out: dict[str, Results] = {}
    profiles = sorted(results.final["profile"].unique())
    for profile in profiles:
        if not _PROFILE_NAME.match(profile):
            raise BenchError(
                f"profile {profile!r} in the results is not a usable name; expected letters, digits, "
                "'_', '.', '-' (paper, quick, smoke, custom)"
            )
        final = results.final[results.final["profile"] == profile].reset_index(drop=True)
        evals = results.evals[results.evals["profile"] == profile].reset_index(drop=True)
        names = sorted(set(final["run"]))
        runs = [r for r in results.runs if r.name in names]
        notes = list(results.notes) + [n for name in names for n in results.run_notes.get(name, [])]
        if len(profiles) > 1:
            others = ", ".join(p for p in profiles if p != profile)
            notes.append(
                f"the input runs hold several profiles; this section shows profile {profile!r} only "
                f"(others: {others}), never mixed"
            )
        out[profile] = Results(
            final=final,
            evals=evals,
            runs=runs or list(results.runs),
            notes=notes,
            run_notes={n: results.run_notes.get(n, []) for n in names},
        )
    return out


def train_metrics(runs: list[Path], final: pd.DataFrame) -> pd.DataFrame:
    """The logged training metrics (`train_metrics.parquet` of each run) of the trials in `final`, with their
    variant; empty when no run has them (runs written before metrics were kept)."""
    from bench.results import TRAIN_METRICS_FILE

    parts = [pd.read_parquet(r / TRAIN_METRICS_FILE) for r in runs if (r / TRAIN_METRICS_FILE).is_file()]
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    return frame.merge(final[["trial_id", "variant", "agent"]].drop_duplicates("trial_id"), on="trial_id")
