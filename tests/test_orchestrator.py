"""Suites, grid building, `bench run` end to end through Ray Tune, kill-and-resume, and a local Ray cluster."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psutil
import pytest

from bench.errors import BenchError
from bench.orchestrator import LOOPBACK_RAY_ENV, build_grid, is_loopback_address
from bench.suites import SEEDED_EVALUATION, available_suites, get_profile, load_suite
from tests.conftest import bench_cli as _bench
from tests.conftest import cli_env as _env


def test_packaged_suites_load() -> None:
    assert {"smoke", "sparse", "dense", "mujoco", "kitchen", "atari", "ablations", "all"} <= set(available_suites())
    for name in available_suites():
        suite = load_suite(name)
        assert suite.agents and suite.tasks and suite.seeds
    sparse = load_suite("sparse")
    assert sparse.ratios["kitchen-partial"] == (0.01, 0.1, 1.0)
    assert sparse.seeds == (0, 1, 2)


def test_profiles_list_deviations() -> None:
    # The paper profile's run-level list holds only what every trial shares; the rest is per trial
    # (tests/test_deviations.py).
    assert get_profile("paper").deviations() == [SEEDED_EVALUATION]
    quick = get_profile("quick")
    assert any("training steps" in d for d in quick.deviations())
    assert any("lamo: lm_source = 'tiny-lm'" in d for d in quick.deviations())
    assert quick.overrides_for("lamo-no-lm-loss", "lamo")["lm_source"] == "tiny-lm"  # variants inherit
    assert quick.overrides_for("lamo-random-init", "lamo")["lm_source"] == "tiny-lm"  # the pre-training control
    with pytest.raises(BenchError, match="unknown profile 'fast'; accepted: paper, quick, smoke"):
        get_profile("fast")


def test_user_suite_file_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "mine.toml"
    p.write_text('agents = ["dt"]\ntasks = ["hopper-medium"]\nseeds = [4]\nratios = [0.5]\n')
    suite = load_suite(str(p))
    assert suite.ratios == {"hopper-medium": (0.5,)} and suite.seeds == (4,)
    p.write_text('agents = ["dt"]\ntasks = ["hoper"]\nseeds = [0]\n')
    with pytest.raises(BenchError, match="unknown task 'hoper'"):
        load_suite(str(p))
    with pytest.raises(BenchError, match="unknown suite 'nope'"):
        load_suite("nope")


def test_grid_filters_and_missing_data(reacher_data_root: Path) -> None:
    plan = build_grid(load_suite("sparse"), get_profile("quick"), agents=["dt", "bc"])
    assert {t.task for t in plan.trials} == {"reacher2d-medium"}
    assert len(plan.trials) == 2 * 1 * 3  # agents x the lowest paper ratio (quick: max_ratios = 1) x seeds
    assert {t.ratio for t in plan.trials} == {0.1}
    full = build_grid(load_suite("sparse"), get_profile("paper"), agents=["dt", "bc"])
    assert len(full.trials) == 2 * 3 * 3  # agents x paper ratios x seeds
    thin = dataclasses.replace(get_profile("paper"), max_ratios=2, max_seeds=1)
    assert [(t.ratio, t.seed) for t in build_grid(load_suite("sparse"), thin, agents=["dt"]).trials] == [
        (0.1, 0),
        (0.3, 0),
    ]
    assert "bench data build kitchen-complete" in plan.skipped["kitchen-complete"]
    assert all(t.steps == 200 and t.eval_episodes == 3 and t.profile == "quick" for t in plan.trials)
    assert len({t.trial_id for t in plan.trials}) == len(plan.trials)
    # Ratios and seeds named on the command line are taken as given, not thinned by the profile.
    small = build_grid(load_suite("sparse"), get_profile("quick"), agents=["dt"], ratios=[0.3], seeds=[1])
    assert [(t.ratio, t.seed) for t in small.trials] == [(0.3, 1)]
    with pytest.raises(BenchError, match="out of range"):
        build_grid(load_suite("sparse"), get_profile("quick"), agents=["dt"], ratios=[2.0])


@pytest.mark.slow
def test_dry_run_json(reacher_data_root: Path, tmp_path: Path) -> None:
    out = _bench(
        "run",
        "--suite",
        "sparse",
        "--profile",
        "quick",
        "--agents",
        "dt,bc",
        "--seeds",
        "0",
        "--dry-run",
        "--json",
        env=_env(reacher_data_root, tmp_path / "results"),
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["trials"] == 2 and len(doc["grid"]) == 2  # quick: the lowest paper ratio only
    assert any("at most 1 sample ratio(s) per task" in d for d in doc["deviations_from_paper"])
    assert doc["estimated_cpu_core_hours"] > 0
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


# --- Ray processes of one test only: found by the test's own Ray temp dir, never `ray stop` (which stops every
# Ray on the machine, other users' included) ------------------------------------------------------------------


@contextmanager
def _ray_temp_dir() -> Iterator[str]:
    """A short private Ray temp dir (Ray's Unix socket paths must stay under 107 bytes); its Ray is stopped
    and the folder removed afterwards."""
    path = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    try:
        yield path
    finally:
        _stop_ray_under(path)
        shutil.rmtree(path, ignore_errors=True)


def _ray_processes(temp_dir: str) -> list[psutil.Process]:
    """Every process whose command line names `temp_dir` (GCS, raylet, monitors) and their children (agents,
    workers): exactly the Ray started with that temp dir."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and temp_dir in " ".join(proc.info["cmdline"] or []):
                for p in [proc, *proc.children(recursive=True)]:
                    found[p.pid] = p
        except psutil.Error:
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _stop_ray_under(temp_dir: str) -> None:
    procs = _ray_processes(temp_dir)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=15)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _listening(procs: list[psutil.Process]) -> list[tuple[str, str, int]]:
    """(process name, ip, port) of every LISTEN socket of these processes."""
    out = []
    for p in procs:
        try:
            out += [
                (p.name(), c.laddr.ip, c.laddr.port)
                for c in p.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            ]
        except psutil.Error:
            continue
    return out


def _assert_loopback_only(listening: list[tuple[str, str, int]]) -> None:
    assert listening, "no listening sockets found: the check would prove nothing"
    outside = [x for x in listening if x[1] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
    assert not outside, f"Ray sockets listening beyond loopback: {outside}"


def test_loopback_addresses() -> None:
    assert is_loopback_address(None) and is_loopback_address("127.0.0.1:6379")
    assert is_loopback_address("localhost:1") and is_loopback_address("ray://127.0.0.1:10001")
    assert not is_loopback_address("10.0.0.5:6379") and not is_loopback_address("head.example.org:6379")


@pytest.mark.slow
def test_local_ray_of_bench_run_listens_on_loopback_only(tmp_path: Path) -> None:
    """`bench run` without --address starts Ray through `start_ray`; with one task run (so a worker exists),
    every listening socket of the driver and the Ray processes it started is on 127.0.0.1."""
    script = (
        "import json, os, psutil, ray\n"
        "from bench.orchestrator import start_ray\n"
        "start_ray(None, {})\n"
        "ray.get(ray.remote(lambda: os.getpid()).remote())\n"
        "me = psutil.Process()\n"
        "out = []\n"
        "for p in [me, *me.children(recursive=True)]:\n"
        "    try:\n"
        "        out += [(p.name(), c.laddr.ip, c.laddr.port) for c in p.net_connections(kind='inet')\n"
        "                if c.status == psutil.CONN_LISTEN]\n"
        "    except psutil.Error:\n"
        "        pass\n"
        "node_ip = ray.util.get_node_ip_address()\n"
        "ray.shutdown()\n"
        "print(json.dumps({'listening': out, 'node_ip': node_ip}))\n"
    )
    with _ray_temp_dir() as ray_tmp:
        env = {k: v for k, v in os.environ.items() if k not in LOOPBACK_RAY_ENV}  # start_ray must set it
        env.update(RAY_TMPDIR=ray_tmp, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["node_ip"] == "127.0.0.1"
    _assert_loopback_only([tuple(x) for x in doc["listening"]])


def _signal_after(
    args: list[str],
    env: dict[str, str],
    trials: Path,
    finished: int,
    sig: signal.Signals,
    meanwhile: Callable[[int], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Start `bench run`, send `sig` to its driver (what a scheduler or Ctrl+C does) once `finished` trials have
    written their final row (after calling `meanwhile` with its pid), and wait for it to stop."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(trials.glob("*/final.json"))) < finished and proc.poll() is None:
        time.sleep(0.2)
    if meanwhile is not None:
        meanwhile(proc.pid)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_sigterm_then_sigint_then_resume_has_one_row_per_trial(reacher_data_root: Path, tmp_path: Path) -> None:
    with _ray_temp_dir() as ray_tmp:  # its Ray is stopped afterwards whatever happens to the driver
        _sigterm_then_sigint_then_resume(reacher_data_root, tmp_path, ray_tmp)


def _sigterm_then_sigint_then_resume(reacher_data_root: Path, tmp_path: Path, ray_tmp: str) -> None:
    results = tmp_path / "results"
    env = {**_env(reacher_data_root, results), "RAY_TMPDIR": ray_tmp}
    args = [
        "run",
        "--suite",
        "smoke",
        "--agents",
        "bc",
        "--tasks",
        "reacher2d-medium",
        "--seeds",
        "0,1,2,3",
        "--max-concurrent",
        "1",
        "--name",
        "killed",
    ]
    trials = results / "killed" / "trials"

    def second_run_is_refused(pid: int) -> None:
        second = _bench(*args, "--resume", env=env)
        assert second.returncode == 2 and f"run 'killed' is in use by pid {pid} on host" in second.stderr

    stopped = _signal_after(args, env, trials, 1, signal.SIGTERM, meanwhile=second_run_is_refused)
    assert stopped.returncode == 143, [line for line in stopped.stderr.splitlines() if "interrupt" in line]
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and "interrupted by SIGTERM" in lines[0] and lines[0].endswith("--name killed --resume")
    assert "SIGTERM received" not in stopped.stderr and "PC: @" not in stopped.stderr  # no C++ stack dump
    assert "Tuner.restore" not in stopped.stderr + stopped.stdout  # the way to resume is bench's, not Tune's
    assert not (results / "killed" / "run.lock").exists()
    merged = pd.read_parquet(results / "killed" / "final.parquet")  # tables merged on the way out
    finished_before = len(list(trials.glob("*/final.json")))
    assert 1 <= len(merged) == finished_before < 4, "the signal should land after the first trial, before the last"
    first = next(trials.glob("*/final.json")).parent
    assert (first / "evals.parquet").stat().st_mode == (first / "final.json").stat().st_mode
    again = _bench(*args, env=env)  # without --resume: refuses, names the flag
    assert again.returncode == 2 and "--resume" in again.stderr
    if finished_before < 3:
        stopped = _signal_after([*args, "--resume"], env, trials, finished_before + 1, signal.SIGINT)
        assert stopped.returncode == 130, [line for line in stopped.stderr.splitlines() if "interrupt" in line]
        assert "interrupted by SIGINT" in stopped.stderr
    resumed = _bench(*args, "--resume", "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    final = pd.read_parquet(results / "killed" / "final.parquet")
    assert sorted(final["trial_id"]) == sorted(f"bc__reacher2d-medium__r0.2__s{s}" for s in range(4))
    assert (final["status"] == "ok").all()
    evals = pd.read_parquet(results / "killed" / "evals.parquet")
    assert not evals.duplicated(["trial_id", "step", "rtg_target"]).any()
    assert len(evals) == 4 * 2  # 2 evaluations (steps 20, 40) per trial
    manifest = json.loads((results / "killed" / "manifest.json").read_text())
    assert len(manifest["trials"]) == 4 and all(t["definition"]["steps"] == 40 for t in manifest["trials"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_tiny_grid_on_a_local_ray_cluster(reacher_data_root: Path, tmp_path: Path) -> None:
    """A `ray start` cluster on loopback (with the orchestrator's LOOPBACK_RAY_ENV, as the README tells users
    to start a single-machine cluster), and `bench run --address` on it; every socket stays on 127.0.0.1."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    with _ray_temp_dir() as ray_tmp:
        env = {**_env(reacher_data_root, tmp_path / "results"), **LOOPBACK_RAY_ENV}
        start = subprocess.run(
            [
                ray_bin,
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={ray_tmp}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert start.returncode == 0, start.stderr
        assert "Local node IP: 127.0.0.1" in start.stdout + start.stderr
        _assert_loopback_only(_listening(_ray_processes(ray_tmp)))
        out = _bench(
            "run",
            "--suite",
            "smoke",
            "--agents",
            "bc",
            "--tasks",
            "reacher2d-medium",
            "--name",
            "cluster",
            "--address",
            f"127.0.0.1:{port}",
            "--json",
            env=env,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        final = pd.read_parquet(tmp_path / "results" / "cluster" / "final.parquet")
        assert list(final["status"]) == ["ok"]
        manifest = json.loads((tmp_path / "results" / "cluster" / "manifest.json").read_text())
        assert manifest["machine"]["ray_address"] == f"127.0.0.1:{port}"
        _assert_loopback_only(_listening(_ray_processes(ray_tmp)))  # with the run's workers still around


@pytest.mark.slow
def test_build_missing_builds_only_what_is_absent(reacher_data_root: Path) -> None:
    from bench.orchestrator import build_missing_datasets

    # Reacher2d's data is present, so nothing is built; Qbert's generated source has no recipe here, which
    # is reported in one line instead of stopping the run.
    lines = build_missing_datasets(["reacher2d-medium", "qbert-medium"])
    assert len(lines) == 1 and lines[0].startswith("qbert-medium: not built:") and "dqn_replay" in lines[0]
