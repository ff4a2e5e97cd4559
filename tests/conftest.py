"""Shared fixtures: small datasets written by the tests themselves, in every supported format."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from bench.data.trajectories import TrajectoryDataset

torch.set_num_threads(1)
os.environ.setdefault("MUJOCO_GL", "egl")


def make_episodes(
    num: int, obs_dim: int = 3, act_dim: int = 2, seed: int = 0, min_len: int = 5, max_len: int = 30
) -> list[dict[str, np.ndarray]]:
    """Random episodes of varying length; the last one ends by timeout, the others by termination."""
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(num):
        n = int(rng.integers(min_len, max_len + 1))
        term = np.zeros(n, bool)
        tout = np.zeros(n, bool)
        if i % 2 == 0:
            term[-1] = True
        else:
            tout[-1] = True
        episodes.append(
            {
                "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
                "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
                "rewards": rng.normal(size=n).astype(np.float32),
                "terminals": term,
                "timeouts": tout,
            }
        )
    return episodes


@pytest.fixture
def small_dataset() -> TrajectoryDataset:
    return TrajectoryDataset.from_episodes(make_episodes(12), name="synthetic")


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root for the duration of a test."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("LAMO_BENCH_DATA", str(root))
    return root


def reacher_rollouts(
    num: int, act: Callable[[np.ndarray], np.ndarray], reset_seed: Callable[[int], int]
) -> list[dict[str, np.ndarray]]:
    """Reacher2d episodes (100 steps, ending by timeout) of policy `act` in the real environment; episode i
    starts from `reset_seed(i)`. The one rollout loop behind every Reacher test dataset below."""
    from bench.envs.factory import make_env
    from bench.tasks import get_task

    env = make_env(get_task("reacher2d-medium"))
    episodes = []
    for i in range(num):
        obs, _ = env.reset(seed=reset_seed(i))
        rows, acts, rews = [], [], []
        done = False
        while not done:
            action = np.asarray(act(obs), np.float32)
            rows.append(obs)
            acts.append(action)
            obs, r, term, trunc, _ = env.step(action)
            rews.append(r)
            done = term or trunc
        n = len(rews)
        episodes.append(
            {
                "observations": np.array(rows, np.float32),
                "actions": np.array(acts),
                "rewards": np.array(rews, np.float32),
                "terminals": np.zeros(n, bool),
                "timeouts": np.arange(n) == n - 1,
            }
        )
    env.close()
    return episodes


def random_reacher_episodes(num: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Uniformly random actions: data with no policy to learn (loaders, the store, data checks)."""
    rng = np.random.default_rng(seed)
    return reacher_rollouts(num, lambda _obs: rng.uniform(-1, 1, 2), lambda i: seed * 1000 + i)


def linear_reacher_dataset(episodes: int = 12, seed: int = 0) -> TrajectoryDataset:
    """A noisy fixed linear-tanh policy, tanh(obs W + 0.05 noise): actions are a learnable function of
    observations, so sequence models have something to fit (DT, LaMo)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(scale=0.5, size=(12, 2))
    eps = reacher_rollouts(episodes, lambda obs: np.tanh(obs @ weights + 0.05 * rng.normal(size=2)), lambda i: 1000 + i)
    return TrajectoryDataset.from_episodes(eps, name="reacher2d-test")


def controller_reacher_dataset(episodes: int = 4, seed: int = 0) -> TrajectoryDataset:
    """A random linear-tanh controller plus clipped action noise 0.1 (the d3rlpy agents' BC-fittable data)."""
    rng = np.random.default_rng(seed)
    gain = rng.normal(scale=0.7, size=(12, 2))
    eps = reacher_rollouts(
        episodes, lambda obs: np.clip(np.tanh(obs @ gain) + 0.1 * rng.normal(size=2), -1, 1), lambda i: seed * 100 + i
    )
    return TrajectoryDataset.from_episodes(eps, name="reacher2d-rollouts")


@pytest.fixture
def reacher_data_root(data_root: Path) -> Path:
    """A data root holding a small random-policy reacher2d-medium dataset in the generated (Minari) slot."""
    write_minari(data_root / "minari", "lamo-bench/reacher2d/medium-v0", random_reacher_episodes(10))
    return data_root


def write_minari(root: Path, dataset_id: str, episodes: list[dict[str, np.ndarray]]) -> None:
    import minari
    from minari.data_collector import EpisodeBuffer

    obs_dim, act_dim = episodes[0]["observations"].shape[1], episodes[0]["actions"].shape[1]
    buffers = []
    for i, e in enumerate(episodes):
        final_obs = np.zeros((1, obs_dim), np.float32)
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([e["observations"], final_obs]),
                actions=e["actions"],
                rewards=e["rewards"],
                terminations=e["terminals"],
                truncations=e["timeouts"],
                infos={},
            )
        )
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            algorithm_name="random",
            author="tests",
            observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
            action_space=gym.spaces.Box(-1, 1, (act_dim,), np.float32),
        )
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def bench_cli(*args: str, env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, env=env, **kw)  # type: ignore[call-overload]


def cli_env(data_root: Path, results: Path) -> dict[str, str]:
    return {**os.environ, "LAMO_BENCH_DATA": str(data_root), "LAMO_BENCH_RESULTS": str(results)}


#: A few paragraphs of plain English for language-model tests (perplexity, tokenizers, tiny corpora).
PARAGRAPHS = """\
The old lighthouse stood at the edge of the cliff for more than a hundred years. Every night the keeper climbed
the narrow stairs, lit the lamp and watched the ships pass safely along the rocky coast. When the storms came in
winter, the waves crashed against the rocks below, but the light never went out.

Water boils at one hundred degrees Celsius at sea level. At higher altitudes the air pressure is lower, so water
boils at a lower temperature, and food takes longer to cook. This is why climbers often carry pressure cookers on
long expeditions into the mountains.

The city council met on Tuesday evening to discuss the new budget for the coming year. Most of the money will be
spent on schools, roads and public transport, while a smaller part will go to parks and libraries. The mayor said
that the plan would be published online so that every citizen could read it before the final vote next month.

Python is a popular programming language that is easy to learn. It is used for web development, data analysis,
machine learning and automation. Many beginners start with Python because its syntax is simple and readable.
"""


# --- Atari: fake DQN-replay runs and tiny agent settings (tests/test_atari.py, tests/test_agent_contract.py) ---


def dqn_replay_arrays(lengths: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """DQN-replay arrays of episodes back to back; frame t of the whole array is filled with t % 251 so stacks
    can be checked."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    frames = (np.arange(n) % 251).astype(np.uint8)[:, None, None] * np.ones((1, 84, 84), np.uint8)
    terminal = np.zeros(n, np.uint8)
    terminal[np.cumsum(lengths) - 1] = 1
    return {
        "observation": frames,
        "action": rng.integers(0, 6, n).astype(np.int32),
        "reward": rng.choice([-1.0, 0.0, 0.0, 2.0], n).astype(np.float32),
        "terminal": terminal,
    }


#: The fake run's checkpoints: (episode lengths, seed). Checkpoint 2 starts with the tail of an episode of 1's
#: (its last 12 steps end an episode too).
FAKE_REPLAY_CHECKPOINTS: dict[int, tuple[list[int], int]] = {1: ([7, 40, 35, 12], 1), 2: ([5, 30, 30], 2)}


def write_fake_replay(run: Path, checkpoints: tuple[int, ...] = (1, 2)) -> Path:
    """A tiny DQN-replay run folder (`<game>/<run>`) holding the given FAKE_REPLAY_CHECKPOINTS."""
    from bench.data.dqn_replay import write_checkpoint

    for index in checkpoints:
        lengths, seed = FAKE_REPLAY_CHECKPOINTS[index]
        write_checkpoint(run, index, dqn_replay_arrays(lengths, seed=seed))
    return run


@pytest.fixture
def replay_dir(tmp_path: Path, data_root: Path) -> Path:
    """A tiny DQN-replay run: two checkpoints, each starting with the tail of an earlier episode."""
    return write_fake_replay(tmp_path / "Pong" / "1")


#: Per agent: the smallest settings that still train and evaluate on 84x84 frame stacks.
ATARI_TINY: dict[str, dict[str, Any]] = {
    "dt": {
        "n_layer": 1,
        "n_head": 1,
        "hidden_size": 32,
        "batch_size": 4,
        "context_length": 4,
        "warmup_steps": 1,
        "max_timestep": 200,
    },
    "lamo": {
        "lm_layers": 1,
        "lm_block_size": 8,
        "lm_batch_size": 1,
        "batch_size": 2,
        "context_length": 3,
        "warmup_steps": 1,
        "max_timestep": 200,
    },
    "cql": {"batch_size": 8},
    "bc": {"batch_size": 8},
}


def tiny_gpt2_folder(folder: Path) -> Path:
    """A 2-block, 32-wide random GPT-2 with the SmolLM2 tokenizer, saved as a local model folder (kept if
    `folder` exists); the global torch random state is left as it was."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from agents.lm.backbone import load_tokenizer

    if not folder.is_dir():
        tokenizer = load_tokenizer("smollm2-135m")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            config = GPT2Config(
                vocab_size=len(tokenizer),
                n_embd=32,
                n_layer=2,
                n_head=2,
                n_positions=64,
                bos_token_id=tokenizer.eos_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            GPT2LMHeadModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def bench_in_process(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the `bench` entry point in this process and return its exit code (a subprocess would re-import torch
    for seconds)."""
    from bench.cli import main

    monkeypatch.setattr("sys.argv", ["bench", *args])
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0
