"""`make run`'s stage plan and exit codes, with a stand-in `bench` that logs its calls and exits as told.

The main job runs two suites and reports over both; a run that exits 1 (some trials failed) still gets its
report and fails the recipe with 1, a refused (2) or interrupted (130) run stops the recipe with that code and
no report. GNU make itself exits 2 whenever a recipe fails and names the recipe's code as "Error N".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import bench_in_process

REPO = Path(__file__).resolve().parents[1]
FAKE_BENCH = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1 $3" in
  "data "*) exit "${FAKE_DATA:-0}" ;;
  "run sparse") exit "${FAKE_SPARSE:-0}" ;;
  "run dense-mujoco") exit "${FAKE_DENSE:-0}" ;;
  "report "*) exit "${FAKE_REPORT:-0}" ;;
esac
exit 99
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


DENSE = "hopper-medium walker2d-medium"
DENSE_LIST = "hopper-medium,walker2d-medium"  # what `bench run --tasks` accepts: one comma list


def _make_run(tmp_path: Path, dense_tasks: str = DENSE, **codes: int) -> tuple[int, list[str]]:
    """The recipe's exit code (0, or the N of make's "Error N") and the stand-in's calls, in order."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    bench = venv / "bin" / "bench"
    bench.write_text(FAKE_BENCH)
    bench.chmod(0o755)
    stamp = venv / ".installed"
    stamp.touch()
    os.utime(stamp, (4e9, 4e9))  # newer than Makefile and pyproject.toml: `install` does nothing
    log = tmp_path / "calls.log"
    env = {**os.environ, "FAKE_LOG": str(log), **{f"FAKE_{k.upper()}": str(v) for k, v in codes.items()}}
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), "run", f"VENV={venv}", f"DENSE_TASKS={dense_tasks}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    (tmp_path / "stderr.txt").write_text(done.stderr)
    if done.returncode == 0:
        return 0, calls
    assert done.returncode == 2, done.stderr
    error = re.search(r"\] Error (\d+)", done.stderr)
    assert error is not None, done.stderr
    return int(error.group(1)), calls


def test_stage_plan_of_a_clean_run(tmp_path: Path) -> None:
    rc, calls = _make_run(tmp_path)
    assert rc == 0
    assert calls == [
        "data build-missing sparse",
        "run --suite sparse --profile quick --name quick-sparse --resume",
        f"run --suite dense-mujoco --profile quick --name quick-dense --tasks {DENSE_LIST} --resume --build-missing",
        "report results/quick-sparse results/quick-dense --out reports/quick",
    ]


def test_the_real_bench_accepts_the_dense_call_the_recipe_makes(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stand-in accepts any arguments, so check the recipe's dense call against the real parser: with two
    policies shipped, space-separated task names were refused as extra arguments and stopped `make run`."""
    rc, calls = _make_run(tmp_path)
    assert rc == 0
    dense = calls[2].split()
    assert dense[:3] == ["run", "--suite", "dense-mujoco"] and dense[-2:] == ["--resume", "--build-missing"]
    monkeypatch.setenv("LAMO_BENCH_RESULTS", str(tmp_path / "results"))
    capsys.readouterr()
    assert bench_in_process(monkeypatch, *dense[:-2], "--dry-run", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    # Empty data root: both tasks are parsed, planned and skipped for lack of data (not refused).
    assert sorted(plan["skipped_tasks"]) == DENSE.split()


def test_without_shipped_policies_the_dense_half_is_skipped_out_loud(tmp_path: Path) -> None:
    """A fresh clone without behaviour policies still runs the sparse half and reports it, and says so."""
    rc, calls = _make_run(tmp_path, dense_tasks="")
    assert rc == 0
    assert calls == [
        "data build-missing sparse",
        "run --suite sparse --profile quick --name quick-sparse --resume",
        "report results/quick-sparse --out reports/quick",
    ]
    assert "dense half skipped: no medium behaviour policy shipped" in (tmp_path / "stderr.txt").read_text()


@pytest.mark.parametrize(
    ("codes", "rc", "n_calls"),
    [
        ({"sparse": 1}, 1, 4),  # failed trials: both runs, the report, then make fails with 1
        ({"dense": 1}, 1, 4),
        ({"sparse": 1, "report": 2}, 2, 4),  # a failing report wins
        ({"sparse": 2}, 2, 2),  # refused: no dense run, no report
        ({"sparse": 130}, 130, 2),  # interrupted: stop at once
        ({"sparse": 1, "dense": 143}, 143, 3),  # the dense run killed: no report
        ({"data": 130}, 130, 1),  # builds interrupted: nothing runs
    ],
)
def test_exit_codes(tmp_path: Path, codes: dict[str, int], rc: int, n_calls: int) -> None:
    got, calls = _make_run(tmp_path, **codes)
    assert (got, len(calls)) == (rc, n_calls), calls
    assert any(c.startswith("report ") for c in calls) == (n_calls == 4)
