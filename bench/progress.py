"""Live progress of a `bench run` in the terminal: trials done, running, failed, and the best score so far.

What is running comes from Ray Tune's own trial states (`Trial.status == "RUNNING"` in the `trials` list every
callback hook receives), not from start/complete events counted here: Tune can start a trial before this
callback sees its first result and restores trials without `on_trial_start`, so counting events showed
"1 running" while two trials ran. Each running trial shows the step and score of its last report.
"""

from __future__ import annotations

import math
import time
from types import TracebackType
from typing import Any

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.table import Table

RUNNING = "RUNNING"  # ray.tune.experiment.Trial.RUNNING


class TrialProgress(Callback):
    """A Ray Tune callback that keeps one rich table up to date (plain lines when stdout is not a terminal)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.trials: list[Any] = []  # Tune's trial objects as last passed to a hook
        self.last: dict[str, dict[str, Any]] = {}  # Tune trial_id -> its last reported result
        # Tune calls on_trial_complete/on_trial_error before it changes the trial's status, so a finished
        # trial would still read RUNNING in that hook's own refresh without this.
        self.finished: set[str] = set()
        self.done = 0
        self.failed = 0
        self.best: dict[str, float] = {}  # "agent task" -> best mean normalized score seen
        self.start = time.perf_counter()
        self.console: Console = Console(stderr=True)
        self.live: Live | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the terminal handles stay behind.
        state = self.__dict__.copy()
        state["console"] = None
        state["live"] = None
        state["trials"] = []  # Tune's live trial objects belong to the controller, not to this callback
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.console = Console(stderr=True)

    def __enter__(self) -> TrialProgress:
        if self.enabled and self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(exc_type, exc, tb)
        elif self.enabled:
            self.console.print(self._line())

    def _name(self, trial: Any) -> str:
        spec = trial.config["spec"]
        return f"{spec['agent']} {spec['task']} r{spec['ratio']:g} s{spec['seed']}"

    def running(self) -> list[Any]:
        """The trials Tune says are running now."""
        return [t for t in self.trials if getattr(t, "status", None) == RUNNING and t.trial_id not in self.finished]

    def _line(self) -> str:
        return (
            f"[{time.perf_counter() - self.start:7.0f}s] trials: {self.done}/{self.total} done, "
            f"{len(self.running())} running, {self.failed} failed"
        )

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(trial, step, last score, last loss) of every running trial, by name."""
        out = []
        for trial in self.running():
            m = self.last.get(trial.trial_id, {})
            out.append((self._name(trial), str(m.get("step", "-")), _fmt(m.get("score")), _fmt(m.get("loss"), 4)))
        return sorted(out)

    def _table(self) -> Table:
        table = Table(title=self._line())
        for col in ("running trial", "step", "last score", "last loss"):
            table.add_column(col)
        for row in self.rows():
            table.add_row(*row)
        if self.best:
            table.add_section()
            for key, value in sorted(self.best.items()):
                table.add_row(f"best so far: {key}", "", _fmt(value), "")
        return table

    def _refresh(self, force_line: bool = False) -> None:
        if self.live is not None:
            self.live.update(self._table())
        elif self.enabled and force_line:
            self.console.print(self._line())

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.trials = list(trials)
        self._refresh()

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.trials = list(trials)
        self._refresh()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.trials = list(trials)
        if result.get("done"):
            if result.get("status") == "failed":
                self.failed += 1
            return
        self.last[trial.trial_id] = result
        score = result.get("score")
        if isinstance(score, float) and math.isfinite(score):
            spec = trial.config["spec"]
            key = f"{spec['agent']} {spec['task']}"
            self.best[key] = max(self.best.get(key, -math.inf), score)
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.trials = list(trials)
        self.last.pop(trial.trial_id, None)
        self.finished.add(trial.trial_id)
        self.done += 1
        self._refresh(force_line=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.trials = list(trials)
        self.last.pop(trial.trial_id, None)
        self.finished.add(trial.trial_id)
        self.done += 1
        self.failed += 1
        self._refresh(force_line=True)


def _fmt(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and math.isfinite(value) else "-"
