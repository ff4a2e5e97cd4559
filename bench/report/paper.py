"""The LaMo paper's published scores, and how our task and method names map onto them.

`paper_scores.csv` (shipped with the package) holds every normalized score of the ICLR 2024 camera-ready's
Tables 1-3 and 8-11 as mean and std over seeds 0-2. The paper names tasks by environment and dataset
("hopper", "med-replay") and LaMo itself "Ours" in the appendix tables, so lookups translate our registry
names first.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

# Our dataset names -> the paper's spelling in its appendix tables.
DATASET_SPELLING: dict[str, str] = {"medium-replay": "med-replay", "medium-expert": "med-expert"}
# Our base variants -> the method names the paper uses (LaMo is "Ours" in Tables 8-11).
METHOD_NAMES: dict[str, tuple[str, ...]] = {
    "lamo": ("LaMo", "Ours"),
    "dt": ("DT",),
    "cql": ("CQL",),
    "bc": ("BC",),
    "iql": ("IQL",),
    "td3+bc": ("TD3+BC",),
}


@dataclass(frozen=True)
class PaperScore:
    table: int
    method: str
    mean: float
    std: float | None  # the paper gives no std for some baselines (Table 9)

    @property
    def source(self) -> str:
        return f"paper Table {self.table}"

    def text(self) -> str:
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f} ± {self.std:.1f}"


@lru_cache(maxsize=1)
def paper_scores() -> pd.DataFrame:
    """The packaged CSV (users have no copy of the project's reference folder)."""
    text = resources.files("bench.report").joinpath("paper_scores.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text))
    return frame.astype(
        {"table": int, "task": str, "dataset": str, "ratio": float, "method": str, "mean": float, "std": float}
    )


def paper_task(task: str, domain: str) -> tuple[str, str]:
    """(environment, dataset) as the paper spells them, e.g. hopper-medium-replay -> (hopper, med-replay)."""
    dataset = task[len(domain) + 1 :] if task.startswith(domain + "-") else task
    return domain, DATASET_SPELLING.get(dataset, dataset)


def lookup(task: str, domain: str, ratio: float, variant: str) -> PaperScore | None:
    """The paper's number for this cell and method, or None when the paper did not report it."""
    names = METHOD_NAMES.get(variant)
    if names is None:
        return None
    env, dataset = paper_task(task, domain)
    scores = paper_scores()
    hit = scores[
        (scores["task"] == env)
        & (scores["dataset"] == dataset)
        & scores["method"].isin(names)
        & scores["ratio"].map(lambda r: math.isclose(r, ratio, rel_tol=1e-9, abs_tol=1e-12))
    ]
    if hit.empty:
        return None
    row = hit.sort_values("table").iloc[0]
    std = None if pd.isna(row["std"]) else float(row["std"])
    return PaperScore(table=int(row["table"]), method=str(row["method"]), mean=float(row["mean"]), std=std)


def has_cell(task: str, domain: str, ratio: float) -> bool:
    """Whether the paper reports any method on this task and sample ratio."""
    env, dataset = paper_task(task, domain)
    scores = paper_scores()
    return bool(
        (
            (scores["task"] == env)
            & (scores["dataset"] == dataset)
            & scores["ratio"].map(lambda r: math.isclose(r, ratio, rel_tol=1e-9, abs_tol=1e-12))
        ).any()
    )
