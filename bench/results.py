"""The result rows every run produces and the on-disk store they live in.

One row per (trial, evaluation, return-to-go target) in `evals.parquet`, one row per trial in `final.parquet`,
plus `manifest.json`. Every field a report needs is on the row itself (agent, variant, task, reward type,
ratio, seed, step, scores, profile), so reports never have to join against configs.

Each trial writes its own files under `trials/<trial_id>/` (atomically); the run-level tables are rebuilt
from those, so a resumed run can neither lose nor duplicate a trial's rows. Each final row carries its trial's
definition (`extra["definition"]`: profile, budget, report window, overrides, dataset hash and source), so a
resumed run can refuse to mix trials defined differently; `RunLock` keeps one command per run folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from bench.atomic import FILE_MODE, atomic_write_json, atomic_write_parquet
from bench.errors import BenchError

#: Every metric an agent logged at every logging step (LaMo's decision and language losses, CQL's critic,
#: actor and temperature losses, the learning rate), one file per trial and one merged per run.
TRAIN_METRICS_FILE = "train_metrics.parquet"


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


def eval_frame(rows: list[EvalRow]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(EvalRow)])
    return frame.astype({"rtg_target": "float64", "loss": "float64"})


def final_frame(rows: list[FinalRow]) -> pd.DataFrame:
    records = []
    for r in rows:
        d = asdict(r)
        d["extra"] = json.dumps(d["extra"], default=str)
        d["target_scores"] = json.dumps(d["target_scores"])
        records.append(d)
    frame = pd.DataFrame(records, columns=[f.name for f in fields(FinalRow)])
    return frame.astype(
        {"rtg_target": "float64", "final_score": "float64", "last_score": "float64", "best_score": "float64"}
    )


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
        """Rebuild `evals.parquet` and `final.parquet` from the finished trials (one final row per trial), and
        `train_metrics.parquet` from their logged training metrics (every metric, every logging step)."""
        finals = self.finished_trials()
        eval_parts, metric_parts = [], []
        for trial_id in finals:
            p = self.trial_dir(trial_id) / "evals.parquet"
            if p.is_file():
                eval_parts.append(pd.read_parquet(p))
            m = self.trial_dir(trial_id) / TRAIN_METRICS_FILE
            if m.is_file():
                metric_parts.append(pd.read_parquet(m).assign(trial_id=trial_id))
        if metric_parts:
            atomic_write_parquet(self.root / TRAIN_METRICS_FILE, pd.concat(metric_parts, ignore_index=True))
        evals = pd.concat(eval_parts, ignore_index=True) if eval_parts else eval_frame([])
        rows = [FinalRow(**{k: v for k, v in f.items() if k in FinalRow.__dataclass_fields__}) for f in finals.values()]
        final = final_frame(rows)
        atomic_write_parquet(self.root / "evals.parquet", evals)
        atomic_write_parquet(self.root / "final.parquet", final)
        return evals, final


#: A run name is one plain folder name under the results root: no separators, no `..`, no hidden folders.
RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_run_name(name: str) -> str:
    """Refuse names that would leave the results folder (`../x`, `/abs`) or hide it (`.x`)."""
    if not RUN_NAME.fullmatch(name):
        raise BenchError(
            f"run name {name!r} is not accepted; accepted: letters, digits, '.', '_', '-', "
            f"not starting with '.' (e.g. sparse-quick)"
        )
    return name


def run_dir(name: str) -> Path:
    from bench.paths import results_root

    return results_root() / check_run_name(name)


LOCK_FILE = "run.lock"


class RunLock:
    """Exclusive hold on a run folder for one `bench run`, so two commands never run the same grid.

    The lock is an `fcntl.flock` on `<run>/run.lock`: the kernel drops it when the holder dies, however it
    dies, so a lock left by a killed run is never mistaken for a live one. The file's content (pid, host,
    start time) only serves the messages: who holds it, or whose stale lock was taken over. On a cluster
    filesystem without working flock the lock is only as good as that filesystem's locking.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / LOCK_FILE
        self.note = ""  # set when a stale lock (from a dead holder) was taken over
        self._fd: int | None = None
        self._created_root = False

    def acquire(self) -> RunLock:
        self._created_root = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if not isinstance(e, BlockingIOError):  # ENOLCK and the like: no locking on this filesystem
                    os.close(fd)
                    self._remove_root_if_empty()
                    raise BenchError(
                        f"cannot lock run folder {self.root}: {e.strerror}; accepted: a results folder "
                        f"on a filesystem with file locking (set LAMO_BENCH_RESULTS)"
                    ) from None
                holder = _read_holder(fd)
                os.close(fd)
                self._remove_root_if_empty()
                raise BenchError(
                    f"run {self.root.name!r} is in use by pid {holder.get('pid', '?')} on host "
                    f"{holder.get('host', '?')} (started {holder.get('started', '?')}); accepted: wait for it "
                    f"to finish, or another --name"
                ) from None
            # The previous holder may have removed the file between our open and our lock: lock the live file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read_holder(fd)
        if stale:
            self.note = (
                f"took over the lock of run {self.root.name!r} left by pid {stale.get('pid', '?')} on host "
                f"{stale.get('host', '?')} (started {stale.get('started', '?')}), which is no longer running"
            )
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self, remove_empty_root: bool = False) -> None:
        """Drop the lock; with `remove_empty_root`, also the run folder if this command created it and left
        it empty (a refused run leaves no trace)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None
        if remove_empty_root:
            self._remove_root_if_empty()

    def _remove_root_if_empty(self) -> None:
        if self._created_root:
            with contextlib.suppress(OSError):
                self.root.rmdir()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release(remove_empty_root=True)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        doc = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        return {"pid": "?", "host": "?", "started": "unreadable lock file"}
    return doc if isinstance(doc, dict) else {}


def normalized_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition as it reads back from JSON (tuples become lists), so stored and planned ones compare."""
    out: dict[str, Any] = json.loads(json.dumps(definition, default=str))
    return out


def definition_difference(trial_id: str, stored: dict[str, Any] | None, planned: dict[str, Any]) -> str | None:
    """One line naming the first field where a stored trial's definition differs from the planned one."""
    if stored is None:
        return (
            f"trial {trial_id} has no recorded definition (written by an older lamo-bench), so it cannot be "
            f"checked against this run"
        )
    stored, planned = normalized_definition(stored), normalized_definition(planned)
    for key in _keys_in_order(planned, stored):
        if stored.get(key) != planned.get(key):
            return (
                f"trial {trial_id} was run with {key}={_show(stored.get(key))}, this run asks "
                f"{key}={_show(planned.get(key))}"
            )
    return None


def _keys_in_order(planned: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """The planned definition's own field order (most telling first: profile, steps, ...), then extra keys."""
    return [*planned, *(k for k in stored if k not in planned)]


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
