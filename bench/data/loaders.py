"""Loaders from each on-disk format into `TrajectoryDataset`, and the per-task source resolution.

A task lists its sources in order of preference (bench/tasks.py); `load_task_dataset` uses the first one that
is present locally. Nothing is downloaded unless asked for (`download=True`), because most machines that run
this harness have no route to the D4RL, Minari or DQN-replay servers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.kitchen_layout import flatten_kitchen_observation
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.paths import d4rl_root, data_root, minari_root
from bench.tasks import DataSource, Task

D4RL_KEYS = ("observations", "actions", "rewards", "terminals")


def load_d4rl_hdf5(path: Path, name: str = "") -> TrajectoryDataset:
    """A D4RL hdf5 file (observations, actions, rewards, terminals, optional timeouts), split into episodes."""
    import h5py

    if not path.is_file():
        raise BenchError(f"D4RL file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in D4RL_KEYS if k not in f]
            if missing:
                raise BenchError(
                    f"corrupt D4RL file {path}: missing {', '.join(missing)}; expected keys "
                    f"{', '.join(D4RL_KEYS)} (+ timeouts)"
                )
            arrays = {k: np.asarray(f[k][()]) for k in D4RL_KEYS}
            n = len(arrays["rewards"])
            timeouts = np.asarray(f["timeouts"][()]) if "timeouts" in f else np.zeros(n, bool)
    except OSError as e:
        raise BenchError(f"corrupt D4RL file {path}: {e}; expected an HDF5 file written by D4RL") from None
    return TrajectoryDataset.from_flat(
        arrays["observations"],
        arrays["actions"],
        arrays["rewards"],
        arrays["terminals"],
        timeouts,
        name=name or path.stem,
        metadata={"source": f"d4rl_hdf5:{path.name}"},
    )


def _flatten_observations(obs: Any) -> np.ndarray:
    """Box observations as they are; FrankaKitchen's dict observations in D4RL's 60-dim layout."""
    if isinstance(obs, Mapping):
        if "observation" in obs and "desired_goal" in obs:
            return flatten_kitchen_observation(obs["observation"], obs["desired_goal"])
        raise BenchError(f"unsupported dict observation with keys {sorted(obs)}; accepted: Box or kitchen-style")
    return np.asarray(obs)


def load_minari_path(path: Path, name: str = "") -> TrajectoryDataset:
    """A Minari dataset directory (the folder that holds `data/`)."""
    from minari import MinariDataset

    data_path = path / "data"
    if not data_path.is_dir():
        raise BenchError(f"Minari dataset {path} does not exist (no data/ folder)")
    try:
        ds = MinariDataset(data_path)
        episodes = []
        for ep in ds.iterate_episodes():
            obs = _flatten_observations(ep.observations)
            episodes.append(
                {
                    "observations": obs[: len(ep.rewards)],
                    "actions": ep.actions,
                    "rewards": ep.rewards,
                    "terminals": ep.terminations,
                    "timeouts": ep.truncations,
                }
            )
    except BenchError:
        raise
    except Exception as e:  # h5py/arrow/json errors all mean the same thing to a user
        raise BenchError(f"corrupt Minari dataset {path}: {type(e).__name__}: {e}") from None
    return TrajectoryDataset.from_episodes(
        episodes,
        name=name or path.name,
        metadata={"source": f"minari:{path}"},
    )


def minari_dataset_path(dataset_id: str) -> Path:
    return minari_root() / dataset_id


def source_path(source: DataSource) -> Path:
    """Where a source's files live under the data root."""
    if source.kind == "d4rl_hdf5":
        return d4rl_root() / f"{source.id}.hdf5"
    if source.kind in ("minari", "generated"):
        return minari_dataset_path(source.id)
    return data_root() / "dqn_replay" / source.id


def source_available(source: DataSource) -> bool:
    path = source_path(source)
    if source.kind == "d4rl_hdf5":
        return path.is_file()
    if source.kind in ("minari", "generated"):
        return (path / "data").is_dir() or (path / "replay_logs").is_dir()
    return path.is_dir() and any(path.iterdir())


def how_to_get(task: Task, source: DataSource) -> str:
    path = source_path(source)
    if source.kind == "generated":
        return f"run `bench data build {task.name}`"
    if source.kind == "minari":
        return f"`MINARI_DATASETS_PATH={minari_root()} minari download {source.id}` where the server is reachable"
    if source.kind == "d4rl_hdf5":
        return f"put D4RL's {source.id}.hdf5 at {path}"
    return f"put the DQN-replay files for {source.id} under {path}"


def load_source(task: Task, source: DataSource, download: bool = False) -> TrajectoryDataset:
    name = task.name
    if source.kind == "d4rl_hdf5":
        ds = load_d4rl_hdf5(source_path(source), name=name)
    elif source.kind == "generated" and (source_path(source) / "replay_logs").is_dir():
        from bench.data.dqn_replay import load_dqn_replay

        # Generated Atari data is written in DQN-replay's own format, whole episodes per checkpoint.
        ds = load_dqn_replay(source_path(source), name=name, transitions=None, keep_first_episode=True)
    elif source.kind in ("minari", "generated"):
        path = source_path(source)
        if download and source.kind == "minari" and not (path / "data").is_dir():
            _download_minari(source.id)
        ds = load_minari_path(path, name=name)
    else:
        from bench.data.dqn_replay import load_d4rl_atari_medium

        # The paper's Atari data: d4rl-atari's medium slice (run 1, checkpoint 10, 1M transitions).
        ds = load_d4rl_atari_medium(source_path(source), name=name)
    ds.metadata["source"] = str(source)
    return ds


def _download_minari(dataset_id: str) -> None:
    import os

    import minari

    os.environ["MINARI_DATASETS_PATH"] = str(minari_root())
    try:
        minari.download_dataset(dataset_id)
    except Exception as e:
        raise BenchError(f"could not download Minari dataset {dataset_id}: {type(e).__name__}: {e}") from None


def resolve_source(task: Task, source: str | None = None) -> DataSource:
    """The source to use: the named one (kind or kind:id), else the first one present locally."""
    if source is not None:
        for s in task.sources:
            if source in (s.kind, str(s)):
                return s
        raise BenchError(
            f"task {task.name} has no data source {source!r}; accepted: {', '.join(str(s) for s in task.sources)}"
        )
    for s in task.sources:
        if source_available(s):
            return s
    hints = "; ".join(f"{s.kind}: {how_to_get(task, s)}" for s in task.sources)
    raise BenchError(f"no dataset for {task.name} under {data_root()}; to get one: {hints}")


CARD_FILE = "card.json"  # the dataset card `bench data build` writes next to a generated dataset


def card_hash(source: DataSource) -> str | None:
    """The content hash a dataset's card records (generated datasets), or None when there is no card."""
    card = source_path(source) / CARD_FILE
    if not card.is_file():
        return None
    try:
        doc = json.loads(card.read_text())
    except (OSError, ValueError) as e:
        raise BenchError(f"corrupt dataset card {card}: {e}; expected the JSON `bench data build` writes") from None
    value = doc.get("content_hash") if isinstance(doc, dict) else None
    return str(value) if value else None


def check_dataset(task: Task, source: DataSource, dataset: TrajectoryDataset) -> None:
    """Refuse data that loads but is wrong: values that are not finite, or content that is not what the
    dataset's card says was built (a file edited, truncated or swapped after the build)."""
    dataset.check_finite()
    expected = card_hash(source)
    if expected is not None and (actual := dataset.content_hash()) != expected:
        raise BenchError(
            f"dataset {source} for {task.name} has content hash {actual}, its card "
            f"{source_path(source) / CARD_FILE} says {expected}; accepted: the data the card describes "
            f"(rebuild with `bench data build {task.name}`)"
        )


def load_task_dataset(task: Task, source: str | None = None, download: bool = False) -> TrajectoryDataset:
    """Load a task's dataset from its preferred available source, checked against its card."""
    chosen = resolve_source(task, source)
    if not source_available(chosen) and not (download and chosen.kind == "minari"):
        raise BenchError(f"dataset {chosen} for {task.name} is not present; {how_to_get(task, chosen)}")
    dataset = load_source(task, chosen, download=download)
    check_dataset(task, chosen, dataset)
    return dataset
