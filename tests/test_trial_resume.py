"""Mid-trial checkpoints and resume: a trial stopped after its first checkpoint (SIGKILLed in a child process
for DT, an exception in-process for LaMo and CQL) and resumed gives the same evaluation rows, training metrics
and final weights, bit for bit on CPU, as one that ran through (DT, LaMo on a tiny random GPT-2, CQL); only the
newest checkpoint is kept; a checkpoint of another trial definition is refused in one line. Also the shared
training loop's bookkeeping (evaluation points, metric means, callback order)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from agents.base import Agent
from agents.training_loop import MetricMeans, run_loop
from bench.errors import BenchError
from bench.trial import CHECKPOINTS_DIR, TRAIN_METRICS_FILE, TrialSpec, latest_checkpoint, run_trial

TASK = "reacher2d-medium"

# Runs one trial in a child process; at its second evaluation (after the first checkpoint is on disk) it
# writes a marker and hangs, so the parent can SIGKILL it mid-training.
CHILD = """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from bench.trial import TrialSpec, run_trial
spec = TrialSpec(**json.loads(sys.argv[1]))
marker = Path(sys.argv[3])
calls = []
def report(step, metrics):
    calls.append(step)
    if len(calls) == 2:
        marker.write_text(str(step))
        time.sleep(600)
run_trial(spec, on_report=report, trial_dir=Path(sys.argv[2]))
"""


def _spec(agent: str, root: Path) -> TrialSpec:
    overrides: dict[str, Any] = {}
    if agent == "dt":
        overrides = {"batch_size": 8, "warmup_steps": 2}
    elif agent == "lamo":
        from tests.conftest import PARAGRAPHS, tiny_gpt2_folder

        text = root / "text.txt"
        text.write_text((PARAGRAPHS + "\n") * 3)
        overrides = {
            "lm_source": str(tiny_gpt2_folder(root / "tiny-gpt2")),
            "lm_corpus": str(text),
            "lm_block_size": 32,
            "lm_batch_size": 2,
            "batch_size": 8,
            "warmup_steps": 2,
        }
    elif agent == "cql":
        overrides = {"batch_size": 16, "hidden_units": [32, 32]}
    return TrialSpec(
        agent=agent, task=TASK, ratio=0.2, seed=3, steps=4, eval_every=2, eval_episodes=1, overrides=overrides
    )


def _rows(result_rows: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(r).items() if k != "wall_time_s"} for r in result_rows]


def _weights(trial_dir: Path) -> dict[str, Any]:
    (file,) = (trial_dir / "checkpoint").glob("*.pt")
    return dict(torch.load(file, weights_only=True))


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Deep equality with tensors compared bit for bit (d3rlpy's weights are one serialized byte tensor)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, where


class Interrupt(Exception):
    """Stands for a kill in the in-process variant."""


def _kill_in_child(spec: TrialSpec, killed: Path, marker: Path) -> None:
    """A real kill: the trial runs in a child process, SIGKILLed at its second evaluation."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(asdict(spec)), str(killed), str(marker)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), (proc.stderr.read() if proc.stderr and proc.poll() is not None else b"").decode()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _interrupt_in_process(spec: TrialSpec, killed: Path) -> None:
    """The cheaper stand-in: an exception at the second evaluation, in this process. Resuming still goes
    through the files only (a new agent is built from the checkpoint)."""
    calls: list[int] = []

    def report(step: int, _metrics: dict[str, float]) -> None:
        calls.append(step)
        if len(calls) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_trial(spec, on_report=report, trial_dir=killed)


# A real SIGKILL for DT (the process boundary: nothing survives but the files); LaMo and CQL are interrupted
# in-process, which checks the same files and states at a fraction of the cost (no second interpreter).
@pytest.mark.slow
@pytest.mark.parametrize(("agent", "kill"), [("dt", True), ("lamo", False), ("cql", False)])
def test_interrupted_trial_resumes_to_the_same_result(
    agent: str, kill: bool, reacher_data_root: Path, tmp_path: Path
) -> None:
    spec = _spec(agent, tmp_path)
    through = run_trial(spec, trial_dir=tmp_path / "through")
    assert [p.name for p in (tmp_path / "through" / CHECKPOINTS_DIR).iterdir()] == ["step-000000004"]

    killed = tmp_path / "killed"
    if kill:
        _kill_in_child(spec, killed, tmp_path / "marker")
    else:
        _interrupt_in_process(spec, killed)
    # Stopped at its second evaluation: only the first checkpoint exists, and no final weights.
    assert latest_checkpoint(killed / CHECKPOINTS_DIR) == killed / CHECKPOINTS_DIR / "step-000000002"
    assert [p.name for p in (killed / CHECKPOINTS_DIR).iterdir()] == ["step-000000002"]
    assert not (killed / "checkpoint").exists()

    resumed = run_trial(spec, trial_dir=killed, resume=True)
    assert _rows(resumed.evals) == _rows(through.evals)
    assert [r.step for r in resumed.evals if r.rtg_target == resumed.evals[0].rtg_target] == [2, 4]
    assert resumed.final.final_score == through.final.final_score
    assert resumed.final.extra["resumed_from_step"] == 2 and through.final.extra["resumed_from_step"] is None
    _assert_same(_weights(killed), _weights(tmp_path / "through"), "weights")
    metrics = pd.read_parquet(killed / TRAIN_METRICS_FILE)
    pd.testing.assert_frame_equal(metrics, pd.read_parquet(tmp_path / "through" / TRAIN_METRICS_FILE))
    assert list(metrics["step"]) == [2, 4]
    expected = {
        "dt": {"loss", "lr"},
        "lamo": {"loss", "lr", "decision_loss", "lm_loss"},
        "cql": {"loss", "critic_loss", "actor_loss", "temp_loss"},
    }[agent]
    assert expected <= set(metrics.columns)


def test_resume_refuses_another_trial_definition(reacher_data_root: Path, tmp_path: Path) -> None:
    spec = TrialSpec(agent="bc", task=TASK, ratio=0.2, seed=0, steps=4, eval_every=2, eval_episodes=1)
    run_trial(spec, trial_dir=tmp_path / "t")
    checkpoint = latest_checkpoint(tmp_path / "t" / CHECKPOINTS_DIR)
    assert checkpoint is not None and checkpoint.name == "step-000000004"
    with pytest.raises(BenchError, match=r"belongs to a different trial \(steps 4 vs 8\)") as info:
        run_trial(replace(spec, steps=8), trial_dir=tmp_path / "t", resume=True)
    assert "\n" not in str(info.value)
    with pytest.raises(BenchError, match="no trial checkpoint at"):
        run_trial(spec, trial_dir=tmp_path / "t", resume=tmp_path / "nowhere")
    # Resuming the final checkpoint of a finished trial trains nothing and gives the same rows.
    again = run_trial(spec, trial_dir=tmp_path / "t", resume=True)
    assert again.final.extra["resumed_from_step"] == 4
    # A fresh (not resumed) run clears the old checkpoints first.
    (tmp_path / "t" / CHECKPOINTS_DIR / "step-000000099").mkdir()
    run_trial(spec, trial_dir=tmp_path / "t")
    assert [p.name for p in (tmp_path / "t" / CHECKPOINTS_DIR).iterdir()] == ["step-000000004"]


def test_training_loop_points_means_and_order() -> None:
    calls: list[tuple[str, int, Any]] = []

    def step_fn(step: int) -> dict[str, float | torch.Tensor]:
        out: dict[str, float | torch.Tensor] = {"loss": torch.tensor(float(step))}
        if step % 2:
            out["actor_loss"] = 10.0 * step  # reported on odd steps only
        return out

    agent: Agent = object()  # type: ignore[assignment]
    run_loop(
        step_fn,
        agent,
        7,
        eval_every=3,
        on_log=lambda s, m: calls.append(("log", s, m)),
        on_eval=lambda s, _a: calls.append(("eval", s, None)),
        on_checkpoint=lambda s, _a: calls.append(("ckpt", s, None)),
        log_extras=lambda: {"lr": 0.5},
    )
    assert [(kind, s) for kind, s, _ in calls] == [
        (
            "log",
            3,
        ),
        ("eval", 3),
        ("ckpt", 3),
        ("log", 6),
        ("eval", 6),
        ("ckpt", 6),
        ("log", 7),
        ("eval", 7),
        ("ckpt", 7),
    ]
    logs = [m for kind, _, m in calls if kind == "log"]
    assert logs[0] == {"loss": 2.0, "actor_loss": 20.0, "lr": 0.5}  # steps 1-3; actor on 1 and 3
    assert logs[1] == {"loss": 5.0, "actor_loss": 50.0, "lr": 0.5}  # steps 4-6; actor on 5
    assert logs[2] == {"loss": 7.0, "actor_loss": 70.0, "lr": 0.5}
    resumed: list[int] = []
    run_loop(lambda s: {"loss": float(s)}, agent, 7, start=3, eval_every=3, on_log=lambda s, m: resumed.append(s))
    assert resumed == [6, 7]
    means = MetricMeans()
    means.add({"a": np.float32(1.5)})  # type: ignore[dict-item]
    assert means.pop() == {"a": 1.5} and means.pop() == {}


def test_bench_train_resume_flag(
    reacher_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    monkeypatch.setenv("LAMO_BENCH_RESULTS", str(tmp_path / "results"))
    args = [
        "bench",
        "train",
        "bc",
        TASK,
        "--ratio",
        "0.2",
        "--seed",
        "0",
        "--eval-every",
        "2",
        "--episodes",
        "1",
        "--name",
        "cli",
        "--json",
    ]
    monkeypatch.setattr(sys, "argv", [*args, "--steps", "4"])
    main()
    trial = tmp_path / "results" / "cli" / "trials" / "bc__reacher2d-medium__r0.2__s0"
    assert [p.name for p in (trial / CHECKPOINTS_DIR).iterdir()] == ["step-000000004"]
    assert list(pd.read_parquet(trial / TRAIN_METRICS_FILE)["step"]) == [2, 4]
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", [*args, "--steps", "6", "--resume"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "belongs to a different trial (steps 4 vs 6)" in err
    monkeypatch.setattr(sys, "argv", [*args, "--steps", "4", "--resume"])
    main()
    out = json.loads(capsys.readouterr().out)
    assert out["final"]["extra"]["resumed_from_step"] == 4 and [r["step"] for r in out["evals"]] == [2, 4]
    monkeypatch.setattr(sys, "argv", [a for a in args if a != "--json"] + ["--steps", "4", "--resume"])
    main()
    assert "resumed from the checkpoint at step 4" in capsys.readouterr().out
