"""Loaders on small files the tests write themselves: D4RL hdf5 and Minari, plus the error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from bench.data.d3rlpy_convert import to_mdp_dataset
from bench.data.kitchen_layout import flatten_kitchen_observation
from bench.data.loaders import load_d4rl_hdf5, load_minari_path, load_task_dataset
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.tasks import get_task
from tests.conftest import make_episodes, write_minari


def write_d4rl(path: Path, episodes: list[dict[str, np.ndarray]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
            f[key] = np.concatenate([e[key] for e in episodes])


def test_d4rl_hdf5_roundtrip(data_root: Path) -> None:
    eps = make_episodes(7, obs_dim=11, act_dim=3)
    write_d4rl(data_root / "d4rl" / "hopper-medium-v2.hdf5", eps)
    ds = load_task_dataset(get_task("hopper-medium"))
    assert ds.num_episodes == 7
    assert ds.metadata["source"] == "d4rl_hdf5:hopper-medium-v2"
    np.testing.assert_allclose(ds.episode_returns(), [e["rewards"].sum() for e in eps], rtol=1e-5)


def test_minari_roundtrip_and_preference_order(data_root: Path) -> None:
    eps = make_episodes(5, obs_dim=11, act_dim=3)
    write_minari(data_root / "minari", "lamo-bench/hopper/medium-v0", eps)
    ds = load_task_dataset(get_task("hopper-medium"))
    assert ds.metadata["source"] == "generated:lamo-bench/hopper/medium-v0"
    assert ds.num_episodes == 5
    for i, e in enumerate(eps):
        np.testing.assert_allclose(ds.episode(i).observations, e["observations"])
        np.testing.assert_array_equal(ds.episode(i).terminals, e["terminals"])
    # A D4RL file, when present, is preferred (it is listed first in the registry).
    write_d4rl(data_root / "d4rl" / "hopper-medium-v2.hdf5", make_episodes(3, obs_dim=11, act_dim=3))
    assert load_task_dataset(get_task("hopper-medium")).num_episodes == 3
    assert load_task_dataset(get_task("hopper-medium"), source="generated").num_episodes == 5


def test_missing_dataset_says_how_to_get_it(data_root: Path) -> None:
    with pytest.raises(BenchError, match=r"no dataset for walker2d-medium.*bench data build walker2d-medium"):
        load_task_dataset(get_task("walker2d-medium"))
    with pytest.raises(BenchError, match=r"no data source 'nope'; accepted: d4rl_hdf5:"):
        load_task_dataset(get_task("walker2d-medium"), source="nope")


def test_corrupt_files_are_one_line_errors(data_root: Path) -> None:
    bad = data_root / "d4rl" / "hopper-medium-v2.hdf5"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(BenchError, match="corrupt D4RL file .*hopper-medium-v2.hdf5"):
        load_d4rl_hdf5(bad)
    with h5py.File(bad, "w") as f:
        f["observations"] = np.zeros((3, 2))
    with pytest.raises(BenchError, match="missing actions, rewards, terminals"):
        load_d4rl_hdf5(bad)
    broken = data_root / "minari" / "x"
    (broken / "data").mkdir(parents=True)
    (broken / "data" / "metadata.json").write_text("{not json")
    with pytest.raises(BenchError, match="corrupt Minari dataset"):
        load_minari_path(broken)


def test_d3rlpy_conversion_keeps_episodes(small_dataset: TrajectoryDataset) -> None:
    mdp = to_mdp_dataset(small_dataset)
    assert len(mdp.episodes) == small_dataset.num_episodes
    assert [len(e.rewards) for e in mdp.episodes] == small_dataset.episode_lengths.tolist()
    assert [bool(e.terminated) for e in mdp.episodes] == [bool(e.terminals[-1]) for e in small_dataset.episodes()]


def test_kitchen_flattening_layout() -> None:
    obs = np.arange(59, dtype=np.float32)[None]
    goal = {"microwave": np.array([[-0.75]]), "kettle": np.arange(7)[None] + 100.0}
    flat = flatten_kitchen_observation(obs, goal)
    assert flat.shape == (1, 60)
    np.testing.assert_array_equal(flat[0, :9], np.arange(9))  # robot joint positions
    np.testing.assert_array_equal(flat[0, 9:30], np.arange(18, 39))  # object positions
    assert flat[0, 30 + 22] == -0.75  # microwave goal at its object index
    np.testing.assert_array_equal(flat[0, 30 + 23 : 30 + 30], np.arange(7) + 100.0)
    assert np.count_nonzero(flat[0, 30:]) == 8  # 1 microwave + 7 kettle entries, all other goals zero


def test_cli_data_info_json_on_both_formats(data_root: Path) -> None:
    write_d4rl(data_root / "d4rl" / "hopper-medium-v2.hdf5", make_episodes(4, obs_dim=11, act_dim=3))
    write_minari(data_root / "minari", "lamo-bench/walker2d/medium-v0", make_episodes(6, obs_dim=17, act_dim=6))
    env = {**os.environ, "LAMO_BENCH_DATA": str(data_root)}
    for task, episodes in (("hopper-medium", 4), ("walker2d-medium", 6)):
        out = subprocess.run(
            [sys.executable, "-m", "bench.cli", "data", "info", task, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        doc = json.loads(out.stdout)
        assert doc["episodes"] == episodes
        assert len(doc["content_hash"]) == 16
        assert {"mean", "std", "min", "max"} <= set(doc["normalized_return"])


def test_cli_errors_exit_2_with_one_line(data_root: Path) -> None:
    env = {**os.environ, "LAMO_BENCH_DATA": str(data_root)}
    for args, pattern in (
        (["data", "info", "nope"], "unknown task 'nope'"),
        (["data", "info", "hopper-medium"], "no dataset for hopper-medium"),
    ):
        out = subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, env=env)
        assert out.returncode == 2
        assert pattern in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert "Traceback" not in out.stderr
