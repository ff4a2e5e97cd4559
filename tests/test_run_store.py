"""The run store through the real CLI: one command per run folder, nothing written before the checks pass,
resumed runs reuse only trials with the same definition, failed trials are retried, names stay inside results/.

Each test builds the folder state it needs with the store's own writers (no Ray), so only the retry test
starts Ray; signals are tested in tests/test_orchestrator.py on a real run.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.orchestrator import build_grid, pin_datasets, write_manifest
from bench.results import (
    LOCK_FILE,
    FinalRow,
    RunLock,
    RunStore,
    atomic_write_json,
    atomic_write_parquet,
    check_run_name,
)
from bench.suites import get_profile, load_suite
from bench.trial import _base_fields
from tests.conftest import bench_cli as _bench
from tests.conftest import cli_env as _env

#: The smallest grid of the smoke suite: one bc trial on reacher2d-medium (ratio 0.2, seed 0, 40 steps).
GRID = ["--suite", "smoke", "--agents", "bc", "--tasks", "reacher2d-medium"]
TRIAL = "bc__reacher2d-medium__r0.2__s0"


def _stored_run(
    results: Path,
    name: str,
    status: str = "ok",
    changes: dict[str, Any] | None = None,
    profile: str = "smoke",
    manifest: bool = True,
) -> RunStore:
    """A run folder as `bench run` leaves it after its one trial finished, without running anything."""
    suite, prof = load_suite("smoke"), get_profile(profile)
    plan, datasets = pin_datasets(build_grid(suite, prof, agents=["bc"], tasks=["reacher2d-medium"]))
    store = RunStore(results / name)
    for spec in plan.trials:
        final = FinalRow(
            **_base_fields(spec, name),
            status=status,
            error="" if status == "ok" else "boom",
            final_score=None if status != "ok" else 1.0,
            steps=spec.steps,
            extra={"definition": {**spec.definition(), **(changes or {})}},
        )
        store.write_trial(spec.trial_id, [], final)
    if manifest:
        write_manifest(store, suite, prof, plan, None, datasets)
    store.merge()
    return store


def _json_doc(stdout: str) -> dict[str, Any]:
    """`bench run --json`'s document; Ray Tune prints its experiment banner on stdout before it."""
    start = 0 if stdout.startswith("{") else stdout.rindex("\n{\n") + 1
    doc: dict[str, Any] = json.loads(stdout[start:])
    return doc


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["../x", "/tmp/x", ".hidden", "a/b", "", "x y"])
def test_run_names_are_plain_folder_names(reacher_data_root: Path, tmp_path: Path, name: str) -> None:
    results = tmp_path / "results"
    out = _bench("run", *GRID, "--name", name, env=_env(reacher_data_root, results))
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]  # one line
    assert "run name" in out.stderr and "accepted: letters, digits" in out.stderr
    assert not (tmp_path / "x").exists() and not results.exists()
    check_run_name("sparse-quick.v2_1")  # what is accepted


def test_train_names_are_checked_too(reacher_data_root: Path, tmp_path: Path) -> None:
    out = _bench(
        "train", "bc", "reacher2d-medium", "--name", "../out", env=_env(reacher_data_root, tmp_path / "results")
    )
    assert out.returncode == 2 and "run name '../out' is not accepted" in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_second_run_with_the_same_name_is_refused_naming_the_holder(reacher_data_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    with RunLock(results / "busy"):
        out = _bench("run", *GRID, "--name", "busy", env=_env(reacher_data_root, results))
        assert out.returncode == 2, out.stderr
        assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in (results / "busy").iterdir()) == [LOCK_FILE]  # nothing written
    assert not (results / "busy").exists()  # the holder made the folder, and leaves it as it found it


@pytest.mark.slow
def test_stale_lock_of_a_dead_run_is_taken_over_with_a_note(reacher_data_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = _env(reacher_data_root, results)
    _stored_run(results, "stale")
    # What a SIGKILLed `bench run` leaves: its lock file with its pid (the kernel dropped the lock itself).
    (results / "stale" / LOCK_FILE).write_text(
        json.dumps({"pid": 999_999_999, "host": socket.gethostname(), "started": "2026-01-01T00:00:00Z"})
    )
    out = _bench("run", *GRID, "--name", "stale", "--resume", "--json", env=env)  # nothing left to run: no Ray
    assert out.returncode == 0, out.stderr
    assert "note: took over the lock of run 'stale' left by pid 999999999" in out.stderr
    assert _json_doc(out.stdout)["already_done"] == 1
    assert not (results / "stale" / LOCK_FILE).exists()


@pytest.mark.slow
def test_refused_rerun_leaves_the_folder_untouched(reacher_data_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    store = _stored_run(results, "done")
    before = _snapshot(store.root)
    out = _bench("run", *GRID, "--seeds", "0,1", "--name", "done", env=_env(reacher_data_root, results))
    assert out.returncode == 2 and "--resume" in out.stderr
    assert _snapshot(store.root) == before  # the manifest still describes the grid that ran


@pytest.mark.parametrize(
    ("changes", "profile", "args", "expected"),
    [
        ({"steps": 200}, "smoke", [], f"trial {TRIAL} was run with steps=200, this run asks steps=40"),
        (
            {"dataset_hash": "0123456789abcdef"},
            "smoke",
            [],
            f"trial {TRIAL} was run with dataset_hash=0123456789abcdef, this run asks dataset_hash=",
        ),
        ({"overrides": {"batch_size": 64}}, "smoke", [], f"trial {TRIAL} was run with overrides="),
        (
            {},
            "quick",
            ["--profile", "smoke"],
            "run 'mixed' was run with profile quick (steps=200), this run asks profile smoke (steps=40)",
        ),
    ],
)
@pytest.mark.slow
def test_resume_with_another_definition_is_refused(
    reacher_data_root: Path, tmp_path: Path, changes: dict[str, Any], profile: str, args: list[str], expected: str
) -> None:
    results = tmp_path / "results"
    store = _stored_run(results, "mixed", changes=changes, profile=profile)
    before = _snapshot(store.root)
    out = _bench("run", *GRID, *args, "--name", "mixed", "--resume", env=_env(reacher_data_root, results))
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert _snapshot(store.root) == before


@pytest.mark.slow
def test_resume_of_a_trial_without_definition_is_refused(reacher_data_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    store = _stored_run(results, "old", manifest=False)
    final = json.loads((store.trial_dir(TRIAL) / "final.json").read_text())
    del final["extra"]["definition"]  # as written before trials recorded their definition
    atomic_write_json(store.trial_dir(TRIAL) / "final.json", final)
    out = _bench("run", *GRID, "--name", "old", "--resume", env=_env(reacher_data_root, results))
    assert out.returncode == 2 and "has no recorded definition" in out.stderr


@pytest.mark.slow
def test_failed_trials_fail_the_run_and_are_retried_on_resume(reacher_data_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = _env(reacher_data_root, results)
    _stored_run(results, "flaky", status="failed")
    kept = _bench("run", *GRID, "--name", "flaky", "--resume", "--no-retry-failed", "--json", env=env)
    assert kept.returncode == 1, kept.stderr
    assert "1 of 1 trials of flaky failed" in kept.stderr and "--resume" in kept.stderr
    assert _json_doc(kept.stdout)["failed"] == 1
    retried = _bench("run", *GRID, "--name", "flaky", "--resume", "--json", env=env)
    assert retried.returncode == 0, retried.stderr[-2000:]
    doc = _json_doc(retried.stdout)
    assert (doc["ok"], doc["failed"], doc["already_done"]) == (1, 0, 0)
    final = pd.read_parquet(results / "flaky" / "final.parquet")
    assert list(final["trial_id"]) == [TRIAL] and list(final["status"]) == ["ok"]


def test_parquet_and_json_files_get_the_same_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        atomic_write_parquet(tmp_path / "a.parquet", pd.DataFrame({"x": [1]}))
    finally:
        os.umask(old)
    modes = {stat.S_IMODE((tmp_path / f).stat().st_mode) for f in ("a.json", "a.parquet")}
    assert len(modes) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
