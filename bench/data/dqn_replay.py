"""The DQN-replay format (Agarwal et al. 2020; Dopamine's replay checkpoints) that d4rl-atari and the LaMo
paper's Atari data come from, read from and written to a local directory.

A run's `replay_logs/` folder holds, per checkpoint ("epoch") i, four gzipped `.npy` arrays named
`$store$_<name>_ckpt.<i>.gz`: observation (1M single 84x84 uint8 frames), action (int32), reward (float32,
clipped to [-1, 1] by the DQN agent that stored them) and terminal (uint8). d4rl-atari's download cache names
the same arrays `<i>/<name>.gz`; both layouts are read. A run has 50 checkpoints of 1M transitions each.

The LaMo paper's Atari "medium" data is d4rl-atari's `{game}-medium-v0` (`srzer/LaMo-2023` at 3e4fcc8,
`experiment-atari/buffer.py` calls `env.get_dataset()` of a d4rl_atari env with `dataset_type: medium` from
`cfgs/config.yaml`): DQN-replay run 1, checkpoint (epoch) 10 alone, all of its 1M transitions.
`load_d4rl_atari_medium` reads that slice as the official buffer does: every transition is kept, the leading
segment (an episode that began in checkpoint 9) as a trajectory of its own and the unfinished one at the end
too (the official buffer forces a terminal on the last step; here it is a timeout, which is what it is).
The official buffer then draws trajectories with probability proportional to their length
(`sample_type: traj_length`), which `bench.data.sampler.WindowSampler` does as well. Remaining difference:
for sample ratios below 1 the official buffer keeps `floor(n * ratio)` trajectories drawn without
replacement with length-proportional weights; this project subsamples trajectories uniformly by its
cross-task protocol (bench.data.subsample). `load_dqn_replay` also reads other slices: DT's original
"1% of the replay" (500K transitions of whole episodes, spread evenly over the checkpoints present) with its
defaults, or any checkpoints and budget.

Arrays are decompressed once into an uncompressed `.npy` cache beside the data root and then memory-mapped,
so a 7 GB frame array is paged in as the sampler touches it; frames stay single and are stacked when read
(`bench.data.frames`).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bench.atomic import atomic_write
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError

ARRAYS = ("observation", "action", "reward", "terminal")
FRAME_STACK = 4
MEDIUM_TRANSITIONS = 500_000  # 1% of a 50M-transition DQN-replay run (DT's original Atari code)
# d4rl-atari `-medium-v0`: checkpoint 10 of run 1 (the run is the data source's folder, e.g. Pong/1).
D4RL_ATARI_MEDIUM_EPOCH = 10
_DOPAMINE = re.compile(r"^\$store\$_(observation|action|reward|terminal)_ckpt\.(\d+)\.gz$")


def replay_dir(path: Path) -> Path:
    """The folder holding the arrays: `path` itself or its `replay_logs/`."""
    path = Path(path)
    return path / "replay_logs" if (path / "replay_logs").is_dir() else path


def checkpoint_files(path: Path) -> dict[int, dict[str, Path]]:
    """{epoch: {array name: file}} of the complete checkpoints (all four arrays present) under `path`."""
    root = replay_dir(path)
    found: dict[int, dict[str, Path]] = {}
    if root.is_dir():
        for f in root.iterdir():
            m = _DOPAMINE.match(f.name)
            if m:
                found.setdefault(int(m.group(2)), {})[m.group(1)] = f
            elif f.is_dir() and f.name.isdigit():
                for name in ARRAYS:
                    if (f / f"{name}.gz").is_file():
                        found.setdefault(int(f.name), {})[name] = f / f"{name}.gz"
    return {e: files for e, files in sorted(found.items()) if set(files) == set(ARRAYS)}


def write_checkpoint(path: Path, epoch: int, arrays: Mapping[str, np.ndarray], compresslevel: int = 6) -> None:
    """Write one checkpoint in Dopamine's layout under `path/replay_logs/`, each file atomically."""
    missing = set(ARRAYS) - set(arrays)
    if missing:
        raise BenchError(f"a DQN-replay checkpoint needs arrays {', '.join(ARRAYS)}; missing {', '.join(missing)}")
    root = Path(path) / "replay_logs"
    root.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        array = np.ascontiguousarray(arrays[name])

        def write(tmp: Path, array: np.ndarray = array) -> None:
            with gzip.open(tmp, "wb", compresslevel=compresslevel) as f:
                np.save(f, array, allow_pickle=False)

        atomic_write(root / f"$store$_{name}_ckpt.{epoch}.gz", write)


def _cached_array(file: Path, cache_root: Path) -> np.ndarray:
    """The array in gzipped `.npy` `file`, decompressed once into `cache_root` and memory-mapped."""
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_root / f"{file.name.removesuffix('.gz')}-{key}.npy"
    if not target.is_file():

        def decompress(tmp: Path) -> None:
            with gzip.open(file, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 22)
            np.load(tmp, mmap_mode="r", allow_pickle=False)  # a corrupt file fails here, not later

        try:
            atomic_write(target, decompress)
        except (OSError, EOFError, ValueError) as e:
            raise BenchError(f"DQN-replay file {file} is not a gzipped .npy array: {type(e).__name__}: {e}") from None
    arr: np.ndarray = np.load(target, mmap_mode="r", allow_pickle=False)
    return arr


def _episode_span(terminals: np.ndarray, budget: int | None, keep_first: bool) -> tuple[int, int]:
    """[start, end) covering whole episodes of one checkpoint, at most `budget` transitions if given.

    The segment up to the first terminal may have begun in an earlier checkpoint: it is dropped unless
    `keep_first` (episode-aligned checkpoints) or it is the only episode that ends here.
    """
    ends = np.flatnonzero(terminals) + 1
    if len(ends) == 0:
        return 0, 0
    start = 0 if keep_first or len(ends) == 1 else int(ends[0])
    usable = ends[ends > start]
    if budget is not None:
        usable = usable[usable - start <= budget]
    if len(usable) == 0:
        return start, start
    return start, int(usable[-1])


def load_dqn_replay(
    path: Path,
    name: str = "",
    epochs: tuple[int, ...] | None = None,
    transitions: int | None = MEDIUM_TRANSITIONS,
    cache_root: Path | None = None,
    keep_first_episode: bool = False,
    partial_episodes: bool = False,
) -> TrajectoryDataset:
    """Complete episodes from the DQN-replay checkpoints under `path` (see the module docstring).

    `epochs` picks checkpoints (default: all present); `transitions` caps the total (None: everything).
    `keep_first_episode` keeps each checkpoint's first episode, for data written episode-aligned (the
    generated substitute), where nothing began in an earlier checkpoint. `partial_episodes` keeps every
    transition of each checkpoint, its leading partial episode and its unfinished last one (ending in a
    timeout), as the official LaMo Atari buffer does; it needs `transitions=None`.
    """
    if partial_episodes and transitions is not None:
        raise BenchError("partial_episodes keeps whole checkpoints; pass transitions=None with it")
    from bench.paths import data_root

    files = checkpoint_files(path)
    if not files:
        raise BenchError(
            f"no DQN-replay checkpoints under {path}; expected files like "
            f"'$store$_observation_ckpt.10.gz' (with action, reward, terminal) in it or in replay_logs/"
        )
    chosen = sorted(files) if epochs is None else list(epochs)
    unknown = [e for e in chosen if e not in files]
    if unknown:
        raise BenchError(f"DQN-replay checkpoint(s) {unknown} not under {path}; present: {sorted(files)}")
    if transitions is not None and transitions < 1:
        raise BenchError(f"transitions must be positive or None, got {transitions}")
    cache = cache_root or data_root() / "cache" / "dqn_replay"
    per_ckpt = None if transitions is None else max(1, transitions // len(chosen))
    parts: list[dict[str, np.ndarray]] = []
    for epoch in chosen:
        arrays = {n: _cached_array(files[epoch][n], cache) for n in ARRAYS}
        n = len(arrays["reward"])
        shapes = {k: v.shape for k, v in arrays.items()}
        if any(v.shape[0] != n for v in arrays.values()) or arrays["observation"].ndim != 3:
            raise BenchError(f"DQN-replay checkpoint {epoch} under {path} has mismatched arrays {shapes}")
        terminal = np.asarray(arrays["terminal"]).astype(bool)
        if partial_episodes:
            start, end = 0, n
        else:
            start, end = _episode_span(terminal, per_ckpt, keep_first_episode)
        if end > start:
            part = {k: v[start:end] for k, v in arrays.items()}
            timeout = np.zeros(end - start, bool)
            timeout[-1] = not terminal[end - 1]  # only with partial_episodes: the unfinished last episode
            parts.append({**part, "timeout": timeout})
    if not parts:
        raise BenchError(f"DQN-replay data under {path} holds no complete episode in checkpoints {chosen}")

    def joined(key: str) -> np.ndarray:
        # One checkpoint stays a memory-mapped view; several are concatenated into memory.
        return parts[0][key] if len(parts) == 1 else np.concatenate([p[key] for p in parts])

    terminals = joined("terminal").astype(bool)
    return TrajectoryDataset.from_flat(
        observations=joined("observation"),
        actions=np.asarray(joined("action")).astype(np.int64),
        rewards=np.asarray(joined("reward"), np.float32),
        terminals=terminals,
        timeouts=np.asarray(joined("timeout"), bool),
        name=name,
        metadata={"frame_stack": FRAME_STACK, "dqn_replay_epochs": chosen, "dqn_replay_path": str(path)},
    )


def load_d4rl_atari_medium(path: Path, name: str = "", cache_root: Path | None = None) -> TrajectoryDataset:
    """d4rl-atari's `-medium-v0` slice of a DQN-replay run, as the official LaMo Atari code reads it.

    Checkpoint 10 only, all of its transitions (see the module docstring); a run without checkpoint 10 is
    refused with the checkpoints it has.
    """
    files = checkpoint_files(path)
    if files and D4RL_ATARI_MEDIUM_EPOCH not in files:
        raise BenchError(
            f"DQN-replay run {path} has no checkpoint {D4RL_ATARI_MEDIUM_EPOCH}, which is d4rl-atari's 'medium' "
            f"slice (the LaMo paper's data); present: {sorted(files)}"
        )
    return load_dqn_replay(
        path,
        name=name,
        epochs=(D4RL_ATARI_MEDIUM_EPOCH,),
        transitions=None,
        cache_root=cache_root,
        partial_episodes=True,
    )
