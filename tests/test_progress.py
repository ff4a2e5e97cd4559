"""The live progress of `bench run` counts running trials from Ray Tune's trial states and shows each running
trial's last step and score; and the noise that used to surround `bench train`/`bench run` stays away."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.progress import TrialProgress


@dataclass
class FakeTrial:
    """What the callback reads from a Tune `Trial`: its id, status and config."""

    trial_id: str
    agent: str
    status: str = "PENDING"
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = {"spec": {"agent": self.agent, "task": "reacher2d-medium", "ratio": 1.0, "seed": 0}}


def test_running_count_and_rows_follow_tune_states() -> None:
    a, b, c = FakeTrial("a", "dt"), FakeTrial("b", "bc"), FakeTrial("c", "cql")
    trials = [a, b, c]
    cb = TrialProgress(total=3, enabled=False)
    a.status = "RUNNING"
    cb.on_trial_start(0, trials, a)
    # b starts running without this callback seeing on_trial_start (e.g. a restored trial): a step still counts it
    b.status = "RUNNING"
    cb.on_step_begin(1, trials)
    assert "2 running" in cb._line() and "0/3 done" in cb._line()
    assert cb.rows() == [("bc reacher2d-medium r1 s0", "-", "-", "-"), ("dt reacher2d-medium r1 s0", "-", "-", "-")]

    cb.on_trial_result(2, trials, a, {"step": 50, "score": 12.345, "loss": 0.5})
    cb.on_trial_result(3, trials, b, {"step": 20, "score": float("nan"), "loss": 1.25})
    assert cb.rows() == [
        ("bc reacher2d-medium r1 s0", "20", "-", "1.2500"),
        ("dt reacher2d-medium r1 s0", "50", "12.3", "0.5000"),
    ]
    assert cb.best == {"dt reacher2d-medium": 12.345}

    cb.on_trial_complete(4, trials, a)  # Tune calls this while the trial's status still reads RUNNING
    assert "1/3 done" in cb._line() and "1 running" in cb._line()
    a.status = "TERMINATED"
    c.status = "RUNNING"
    cb.on_step_begin(5, trials)
    assert "1/3 done" in cb._line() and "2 running" in cb._line()
    assert [r[0] for r in cb.rows()] == ["bc reacher2d-medium r1 s0", "cql reacher2d-medium r1 s0"]

    cb.on_trial_error(6, trials, b)
    cb.on_trial_result(7, trials, c, {"done": True, "status": "failed"})
    cb.on_trial_complete(8, trials, c)
    assert "3/3 done" in cb._line() and "0 running" in cb._line() and "2 failed" in cb._line()
    assert cb.rows() == []
    assert cb.__getstate__()["trials"] == []  # Tune's trial objects are never pickled with the callback


@pytest.mark.slow
def test_importing_d3rlpy_agents_prints_no_legacy_gym_banner() -> None:
    code = "import agents.d3rlpy_agents, d3rlpy; import bench.data.d3rlpy_convert"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=True,
    )
    assert "Gym has been unmaintained" not in out.stderr + out.stdout
