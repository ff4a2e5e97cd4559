"""The result rows every run produces and the on-disk store they live in.

One row per (trial, evaluation, return-to-go target) in `evals.parquet`, one row per trial in `final.parquet`,
plus `manifest.json`. Every field a report needs is on the row itself (agent, variant, task, reward type,
ratio, seed, step, scores, profile), so reports never have to join against configs.

Each trial writes its own files under `trials/<trial_id>/` (atomically); the run-level tables are rebuilt
from those, so a resumed run can neither lose nor duplicate a trial's rows.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

EVAL_COLUMNS = [
    "run", "trial_id", "agent", "variant", "task", "domain", "reward_type", "ratio", "seed", "profile", "step",
    "rtg_target", "score_mean", "score_std", "return_mean", "return_std", "episodes", "loss", "wall_time_s",
]
FINAL_COLUMNS = [
    "run", "trial_id", "agent", "variant", "task", "domain", "reward_type", "ratio", "seed", "profile", "status",
    "error", "rtg_target", "final_score", "last_score", "best_score", "target_scores", "steps", "evaluations",
    "wall_time_s", "params_total", "params_trainable", "dataset_hash", "dataset_source",
]


@dataclass
class TrialKey:
    """The fields that identify a trial's cell; every row starts with them, so reports never join."""

    run: str
    trial_id: str
    agent: str
    variant: str
    task: str
    domain: str
    reward_type: str
    ratio: float
    seed: int
    profile: str


@dataclass
class EvalRow(TrialKey):
    step: int
    rtg_target: float | None
    score_mean: float
    score_std: float
    return_mean: float
    return_std: float
    episodes: int
    loss: float | None
    wall_time_s: float


@dataclass
class FinalRow(TrialKey):
    status: str  # "ok" or "failed"
    error: str = ""
    # This trial's best return-to-go target and its scores. Final score = mean over the last report window.
    # The best target of one seed is an optimistic pick; reports score a cell at one target for all its seeds
    # (bench.report.stats.select_cell_targets) from `target_scores`.
    rtg_target: float | None = None
    final_score: float | None = None
    last_score: float | None = None
    best_score: float | None = None
    #: Every target's scores, in the task's target order: [{"target", "final", "last", "best"}, ...]
    #: (one entry with target None for agents without targets). Stored as JSON text in final.parquet.
    target_scores: list[dict[str, float | None]] = field(default_factory=list)
    steps: int = 0
    evaluations: int = 0
    wall_time_s: float = 0.0
    params_total: int = 0
    params_trainable: int = 0
    dataset_hash: str = ""
    dataset_source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, doc: Any) -> None:
    atomic_write_bytes(path, (json.dumps(doc, indent=2, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def eval_frame(rows: list[EvalRow]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=EVAL_COLUMNS)
    return frame.astype({"rtg_target": "float64", "loss": "float64"})


def final_frame(rows: list[FinalRow]) -> pd.DataFrame:
    records = []
    for r in rows:
        d = asdict(r)
        d["extra"] = json.dumps(d["extra"], default=str)
        d["target_scores"] = json.dumps(d["target_scores"])
        records.append(d)
    frame = pd.DataFrame(records, columns=[*FINAL_COLUMNS, "extra"])
    return frame.astype({"rtg_target": "float64", "final_score": "float64", "last_score": "float64",
                         "best_score": "float64"})


class RunStore:
    """`results/<run>/`: per-trial files plus the merged run tables."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def trial_dir(self, trial_id: str) -> Path:
        return self.root / "trials" / trial_id

    def write_trial(self, trial_id: str, evals: list[EvalRow], final: FinalRow) -> None:
        """Evaluations first, then the final row: a trial counts as done only once `final.json` exists."""
        d = self.trial_dir(trial_id)
        atomic_write_parquet(d / "evals.parquet", eval_frame(evals))
        atomic_write_json(d / "final.json", asdict(final))

    def finished_trials(self) -> dict[str, dict[str, Any]]:
        """trial_id -> final row, for every trial that wrote its final row."""
        out: dict[str, dict[str, Any]] = {}
        trials = self.root / "trials"
        if not trials.is_dir():
            return out
        for d in sorted(trials.iterdir()):
            f = d / "final.json"
            if f.is_file():
                out[d.name] = json.loads(f.read_text())
        return out

    def merge(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rebuild `evals.parquet` and `final.parquet` from the finished trials (one final row per trial)."""
        finals = self.finished_trials()
        eval_parts = []
        for trial_id in finals:
            p = self.trial_dir(trial_id) / "evals.parquet"
            if p.is_file():
                eval_parts.append(pd.read_parquet(p))
        evals = pd.concat(eval_parts, ignore_index=True) if eval_parts else eval_frame([])
        rows = [FinalRow(**{k: v for k, v in f.items() if k in FinalRow.__dataclass_fields__}) for f in finals.values()]
        final = final_frame(rows)
        atomic_write_parquet(self.root / "evals.parquet", evals)
        atomic_write_parquet(self.root / "final.parquet", final)
        return evals, final
