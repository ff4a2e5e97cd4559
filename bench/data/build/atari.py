"""A local stand-in for the DQN-replay "medium" Atari data: a scripted player of medium quality on the real game.

DQN-replay cannot be downloaded here, and training a DQN on a 2-core CPU takes days, so the behaviour policy
is scripted. It reads the game state from the Atari RAM (ball and paddle positions) and moves its paddle
towards the ball, with a per-episode aiming offset, and takes a uniformly random action with probability
epsilon. Epsilon falls linearly over the build (`epsilon_start` -> `epsilon_end`), so, like the replay
buffer of a DQN run, the data holds weak early play and stronger late play; the card records the returns.

How it differs from DQN-replay: one scripted policy family instead of a learning agent's history; far fewer
transitions by default (100K, against 500K in the paper's 1% slice; `--transitions` raises it); rewards are
stored raw (DQN-replay stores clipped ones; training clips both, so for Pong, whose rewards are +-1, the two
are the same); the environment is the one evaluation uses (bench.envs.atari: no sticky actions, up to 30
no-ops at reset), whereas DQN-replay was recorded with sticky actions.

The files are DQN-replay's own format (bench.data.dqn_replay), written in episode-aligned checkpoints of
`checkpoint_transitions` each; a killed build resumes after its last complete checkpoint, and every episode
is seeded by (seed, episode index), so a resumed build writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.build.config import AtariRecipe
from bench.data.build.workdir import read_json, replace_dir, write_json
from bench.data.dqn_replay import checkpoint_files, load_dqn_replay, write_checkpoint
from bench.envs.atari import FRAME_STACK, ale_of, make_atari_env
from bench.errors import BenchError
from bench.paths import data_root, minari_root
from bench.tasks import Task

CARD_FILE = "card.json"
# Generated episodes run to the ALE's usual 108K-frame limit (27,000 agent steps), like DQN-replay's; the task's
# max_episode_steps (4,096) is the evaluation cap of LaMo's Atari code, not a property of the data.
ATARI_DATA_MAX_STEPS = 27_000


# --- scripted players -------------------------------------------------------------------------------------


class Player:
    """A RAM-reading paddle controller; `act` returns the game action for the current frame."""

    def __init__(self, aim_offset: int, dead_zone: int) -> None:
        self.aim_offset = aim_offset
        self.dead_zone = dead_zone

    def act(self, ram: np.ndarray) -> int:
        raise NotImplementedError

    def steer(self, target: int, paddle: int, increase: int, decrease: int) -> int:
        """The action moving the paddle's RAM coordinate towards `target` (shifted by the aim offset): `increase`
        or `decrease`, or NOOP (0) inside the dead zone."""
        error = int(target) - (int(paddle) + self.aim_offset)
        if error > self.dead_zone:
            return increase
        if error < -self.dead_zone:
            return decrease
        return 0


class PongPlayer(Player):
    """Pong: RAM 51 is the player's paddle y, 54 the ball y; action 2 (RIGHT) moves up, 3 (LEFT) down."""

    def act(self, ram: np.ndarray) -> int:
        return self.steer(ram[54], ram[51], increase=3, decrease=2)


class BreakoutPlayer(Player):
    """Breakout: RAM 72 is the paddle x, 99 the ball x, 101 the ball y (0 when no ball is in play);
    action 1 (FIRE) launches a ball, 2 (RIGHT) and 3 (LEFT) move the paddle."""

    def act(self, ram: np.ndarray) -> int:
        if int(ram[101]) == 0:
            return 1
        return self.steer(ram[99], ram[72], increase=2, decrease=3)


PLAYERS: dict[str, type[Player]] = {"pong": PongPlayer, "breakout": BreakoutPlayer}


# --- collection -------------------------------------------------------------------------------------------


def _epsilon(recipe: AtariRecipe, collected: int, total: int) -> float:
    frac = min(1.0, collected / max(1, total))
    return recipe.epsilon_start + (recipe.epsilon_end - recipe.epsilon_start) * frac


def play_episode(
    task: Task, env: Any, player_type: type[Player], recipe: AtariRecipe, seed: int, index: int, epsilon: float
) -> dict[str, np.ndarray]:
    """One seeded episode: the newest frame of each observation, actions, raw rewards, terminal/timeout."""
    rng = np.random.default_rng([seed, index])
    player = player_type(int(rng.integers(recipe.aim_offset[0], recipe.aim_offset[1] + 1)), recipe.dead_zone)
    obs, _ = env.reset(seed=seed * 1_000_000 + index)
    env.action_space.seed(int(rng.integers(2**31)))
    ale = ale_of(env)
    frames, actions, rewards = [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        frames.append(np.asarray(obs)[-1])
        action = int(rng.integers(env.action_space.n)) if rng.random() < epsilon else player.act(ale.getRAM())
        obs, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        rewards.append(float(reward))
    n = len(actions)
    terminal = np.zeros(n, np.uint8)
    terminal[-1] = 1  # game over, or the time limit: DQN-replay marks only game over, so a cut episode
    return {  # also ends with a terminal; the card counts them (none are cut at Pong's 27K-step limit)
        "observation": np.stack(frames).astype(np.uint8),
        "action": np.asarray(actions, np.int32),
        "reward": np.asarray(rewards, np.float32),
        "terminal": terminal,
        "truncated": np.asarray([truncated]),
    }


def build_atari(
    task: Task,
    dataset_id: str,
    seed: int,
    transitions: int | None,
    progress: bool,
    recipe: AtariRecipe,
    workdir: Path | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
) -> Path:
    player_type = PLAYERS.get(task.domain)
    if player_type is None:
        raise BenchError(
            f"`bench data build` has no scripted player for {task.name}; scripted players exist for "
            f"{', '.join(f'{g}-medium' for g in PLAYERS)}. Put DQN-replay files under "
            f"{data_root() / 'dqn_replay'} instead (see bench.data.dqn_replay)"
        )
    total = transitions or recipe.transitions
    work = workdir or data_root() / "build" / f"{task.domain}-seed{seed}"
    stage = work / "replay"
    state_file = work / "state.json"
    started = time.perf_counter()
    state: dict[str, Any] = {
        "recipe": asdict(recipe),
        "total": total,
        "seed": seed,
        "episodes": 0,
        "collected": 0,
        "checkpoints": 0,
        "truncated": 0,
        "wall_s": 0.0,
    }
    if state_file.is_file():
        previous = read_json(state_file)
        same = ("recipe", "total", "seed")
        if {k: previous.get(k) for k in same} == {k: state[k] for k in same}:
            state = previous
            for epoch, files in checkpoint_files(stage).items():
                if epoch >= state["checkpoints"]:  # written after the last state save: redo
                    for f in files.values():
                        f.unlink()
    if state["checkpoints"] == 0:
        for f in (stage / "replay_logs").glob("*") if (stage / "replay_logs").is_dir() else []:
            f.unlink()
    env = make_atari_env(task.env_id, ATARI_DATA_MAX_STEPS, **task.env_kwargs)
    session = time.perf_counter()
    try:
        while state["collected"] < total:
            chunk: list[dict[str, np.ndarray]] = []
            size = 0
            while size < recipe.checkpoint_transitions and state["collected"] + size < total:
                eps = _epsilon(recipe, state["collected"] + size, total)
                episode = play_episode(task, env, player_type, recipe, seed, state["episodes"] + len(chunk), eps)
                chunk.append(episode)
                size += len(episode["reward"])
            write_checkpoint(
                stage,
                state["checkpoints"],
                {k: np.concatenate([e[k] for e in chunk]) for k in ("observation", "action", "reward", "terminal")},
            )
            state["episodes"] += len(chunk)
            state["collected"] += size
            state["checkpoints"] += 1
            state["truncated"] += int(sum(bool(e["truncated"][0]) for e in chunk))
            state["wall_s"] = float(state["wall_s"]) + time.perf_counter() - session
            session = time.perf_counter()
            write_json(state_file, state)
            if progress:
                print(
                    f"{task.name}: {state['collected']:,}/{total:,} transitions, {state['episodes']} episodes, "
                    f"epsilon {eps:.3f}",
                    flush=True,
                )
            if on_checkpoint is not None:
                on_checkpoint(state["checkpoints"])
    finally:
        env.close()
    return _publish(task, dataset_id, stage, state, recipe, started)


def _publish(
    task: Task, dataset_id: str, stage: Path, state: dict[str, Any], recipe: AtariRecipe, started: float
) -> Path:
    from bench.data.build.writer import versions
    from bench.data.info import dataset_summary

    final = minari_root() / dataset_id
    staged = final.with_name(f".{final.name}.staging")
    if staged.exists():
        shutil.rmtree(staged)
    (staged / "replay_logs").mkdir(parents=True)
    for files in checkpoint_files(stage).values():
        for f in files.values():
            shutil.copyfile(f, staged / "replay_logs" / f.name)
    loaded = load_dqn_replay(
        staged, name=task.name, transitions=None, keep_first_episode=True, cache_root=staged / ".cache"
    )
    summary = dataset_summary(task, loaded)
    doc = {
        "dataset_id": dataset_id,
        "task": task.name,
        "env_id": task.env_id,
        "description": f"{task.name}: scripted medium-quality player on {task.env_id}, DQN-replay file format",
        "recipe": "scripted RAM-reading paddle controller + epsilon-random actions (epsilon falls over the build)",
        "seed": state["seed"],
        "behaviour_policy": {
            "algorithm": f"{PLAYERS[task.domain].__name__} (no learning)",
            "hyperparameters": asdict(recipe),
            "training_steps": 0,
        },
        "format": "DQN-replay (Dopamine) gzipped .npy checkpoints in replay_logs/; single 84x84 frames, "
        f"stacked {FRAME_STACK} when read; raw (unclipped) rewards",
        "environment": "bench.envs.atari.make_atari_env: AtariPreprocessing (noop_max 30, frame skip 4, "
        "84x84 grayscale), no sticky actions, no terminal on life loss",
        "episodes_cut_by_time_limit": state["truncated"],
        "collection": {
            "env_steps": state["collected"],
            "wall_s": round(float(state["wall_s"]), 3),
            "env_steps_per_s": round(state["collected"] / max(1e-9, float(state["wall_s"])), 1),
        },
        "build_wall_time_s": round(time.perf_counter() - started, 3),
        "episodes": summary["episodes"],
        "transitions": summary["transitions"],
        "observation_shape": summary["observation_shape"],
        "episode_length": summary["episode_length"],
        "return": summary["return"],
        "normalized_return": summary["normalized_return"],
        "content_hash": summary["content_hash"],
        "versions": versions(),
    }
    del loaded
    shutil.rmtree(staged / ".cache", ignore_errors=True)
    write_json(staged / CARD_FILE, doc)
    replace_dir(staged, final)
    return final
