"""Writing collected episodes as a Minari dataset with its `card.json`, so loaders never see a partial one.

The dataset is written under a hidden staging folder inside the Minari root (same filesystem as the final
place), read back with the project's own loader to compute the content hash and return statistics for the
card, and only then renamed to `<minari root>/<dataset id>/`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

import bench
from bench.atomic import atomic_write
from bench.data.build.rollout import RawEpisode
from bench.data.build.workdir import replace_dir, write_json
from bench.data.info import dataset_summary
from bench.data.loaders import load_minari_path
from bench.data.trajectories import TrajectoryDataset
from bench.paths import minari_root
from bench.tasks import Task

CARD_FILE = "card.json"
_VERSIONED = ("mujoco", "gymnasium", "gymnasium-robotics", "minari", "d3rlpy", "torch", "numpy")


def versions() -> dict[str, str]:
    """Versions of everything that decides the bytes of a generated dataset."""
    out = {"lamo-bench": bench.__version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@contextmanager
def _minari_path(path: Path) -> Iterator[None]:
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def _episode_buffer(i: int, ep: RawEpisode) -> Any:
    from minari.data_collector import EpisodeBuffer

    return EpisodeBuffer(
        id=i,
        seed=ep.seed,
        observations=ep.observations.astype(np.float32),
        actions=ep.actions.astype(np.float32),
        rewards=ep.rewards.astype(np.float32),
        terminations=ep.terminations.astype(bool),
        truncations=ep.truncations.astype(bool),
    )


def _copy_group(src: Any, dst: Any) -> None:
    dst.attrs.update(dict(src.attrs))
    for key, item in src.items():
        if hasattr(item, "shape"):
            dst.create_dataset(key, data=item[()])
            dst[key].attrs.update(dict(item.attrs))
        else:
            _copy_group(item, dst.create_group(key, track_order=True))


def _compact_hdf5(path: Path) -> None:
    """Rewrite Minari's HDF5 file with contiguous datasets.

    Minari writes every per-episode array chunked and resizable so episodes can be appended later; for a
    finished dataset that index overhead is most of the file (Reacher2d: 1.0 MB -> 0.45 MB). The groups,
    names, attributes and values stay the same, so Minari reads it exactly as before.
    """
    import h5py

    def compact(tmp: Path) -> None:
        with h5py.File(path, "r") as src, h5py.File(tmp, "w", track_order=True) as dst:
            _copy_group(src, dst)

    atomic_write(path, compact)
    meta_path = path.with_name("metadata.json")
    meta = json.loads(meta_path.read_text())
    meta["dataset_size"] = round(path.stat().st_size / 1e6, 1)  # Minari's own unit: MB, one decimal
    write_json(meta_path, meta)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned_staging() -> None:
    """Delete staging folders left by killed builds (their process is gone), never a running build's."""
    root = minari_root()
    if not root.is_dir():
        return
    for folder in root.glob(".staging-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def write_dataset(
    task: Task,
    dataset_id: str,
    episodes: list[RawEpisode],
    env_spec: EnvSpec | None,
    card: Callable[[TrajectoryDataset], dict[str, Any]],
    description: str,
    algorithm_name: str,
) -> Path:
    """Write `episodes` as Minari dataset `dataset_id` plus `card.json`; return the dataset folder.

    `card` receives the dataset as loaded back and returns the card's recipe-specific fields; the summary
    statistics, content hash and versions are added here.
    """
    import minari

    obs_dim = episodes[0].observations.shape[1]
    act_dim = episodes[0].actions.shape[1]
    obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, shape=(act_dim,), dtype=np.float32)
    _remove_abandoned_staging()
    staging = minari_root() / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        with _minari_path(staging), warnings.catch_warnings():
            # Minari warns about the missing author e-mail and code permalink; the card says who made it.
            warnings.simplefilter("ignore", UserWarning)
            minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=[_episode_buffer(i, ep) for i, ep in enumerate(episodes)],
                env=env_spec,
                algorithm_name=algorithm_name,
                author="lamo-bench",
                code_permalink="bench/data/build (lamo-bench)",
                description=description,
                observation_space=obs_space,
                action_space=act_space,
                data_format="hdf5",
            )
        staged = staging / dataset_id
        _compact_hdf5(staged / "data" / "main_data.hdf5")
        loaded = load_minari_path(staged, name=task.name)
        summary = dataset_summary(task, loaded)
        doc = {
            "dataset_id": dataset_id,
            "task": task.name,
            "env_id": task.env_id,
            "description": description,
            **card(loaded),
            "episodes": summary["episodes"],
            "transitions": summary["transitions"],
            "observation_shape": summary["observation_shape"],
            "episode_length": summary["episode_length"],
            "return": summary["return"],
            "normalized_return": summary["normalized_return"],
            "terminals": summary["terminals"],
            "timeouts": summary["timeouts"],
            "content_hash": summary["content_hash"],
            "versions": versions(),
        }
        write_json(staged / CARD_FILE, doc)
        final = minari_root() / dataset_id
        replace_dir(staged, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def env_spec(task: Task) -> EnvSpec | None:
    """The spec of the task's evaluation environment, recorded in the Minari metadata."""
    from bench.envs.factory import make_env

    env = make_env(task)
    try:
        return env.spec
    finally:
        env.close()
