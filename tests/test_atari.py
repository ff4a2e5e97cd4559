"""Atari end to end on small data: DQN-replay files, frame stacks, every agent's training step, evaluation,
and the scripted-player dataset build."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.base import TaskSpec
from agents.registry import make_agent
from bench.data.dqn_replay import checkpoint_files, load_dqn_replay, write_checkpoint
from bench.data.frames import stack_frames
from bench.data.sampler import WindowSampler
from bench.data.subsample import subsample
from bench.envs.atari import make_atari_env
from bench.envs.factory import env_spaces
from bench.errors import BenchError
from bench.evaluate import evaluate
from bench.tasks import get_task
from tests.conftest import ATARI_TINY, dqn_replay_arrays

torch.set_num_threads(1)
PONG = get_task("pong-medium")


def test_replay_loader_keeps_whole_episodes_as_single_frames(replay_dir: Path) -> None:
    assert sorted(checkpoint_files(replay_dir)) == [1, 2]
    ds = load_dqn_replay(replay_dir, name="pong-medium", transitions=None)
    # The leading partial episode of each checkpoint (7 and 5 steps) is dropped.
    assert list(ds.episode_lengths) == [40, 35, 12, 30, 30]
    assert ds.observations.shape == (147, 84, 84) and ds.observations.dtype == np.uint8
    assert ds.observation_shape == (4, 84, 84) and ds.frame_stack == 4
    assert ds.actions.dtype == np.int64 and ds.discrete_actions
    assert ds.terminals.sum() == 5
    # A budget splits evenly over checkpoints and keeps whole episodes: 60 per checkpoint.
    budget = load_dqn_replay(replay_dir, transitions=120)
    assert list(budget.episode_lengths) == [40, 30, 30]
    one = load_dqn_replay(replay_dir, epochs=(2,), transitions=None)
    assert isinstance(one.observations, np.memmap) or isinstance(one.observations.base, np.memmap)


def test_replay_loader_reads_d4rl_atari_layout_and_rejects_bad_input(tmp_path: Path, data_root: Path) -> None:
    arrays = dqn_replay_arrays([3, 20, 20])
    folder = tmp_path / "d4rl" / "10"
    folder.mkdir(parents=True)
    for name, arr in arrays.items():
        with gzip.open(folder / f"{name}.gz", "wb") as f:
            np.save(f, arr)
    ds = load_dqn_replay(tmp_path / "d4rl", epochs=(10,), transitions=None)
    assert list(ds.episode_lengths) == [20, 20]
    with pytest.raises(BenchError, match="not under"):
        load_dqn_replay(tmp_path / "d4rl", epochs=(3,))
    with pytest.raises(BenchError, match="no DQN-replay checkpoints"):
        load_dqn_replay(tmp_path / "empty")
    (folder / "reward.gz").write_bytes(b"not gzip")
    with pytest.raises(BenchError, match="not a gzipped .npy"):
        load_dqn_replay(tmp_path / "d4rl", epochs=(10,), transitions=None, cache_root=tmp_path / "c2")


def test_default_slice_is_d4rl_atari_medium_as_the_official_buffer_reads_it(data_root: Path) -> None:
    """Run 1, checkpoint 10 only, every transition (srzer/LaMo-2023 experiment-atari/buffer.py)."""
    from bench.data.loaders import load_task_dataset

    run = data_root / "dqn_replay" / "Pong" / "1"
    write_checkpoint(run, 9, dqn_replay_arrays([11, 25], seed=9))
    ten = dqn_replay_arrays([6, 30, 20, 9], seed=10)
    ten["terminal"][-1] = 0  # the last episode continues in checkpoint 11
    write_checkpoint(run, 10, ten)
    write_checkpoint(run, 11, dqn_replay_arrays([4, 15], seed=11))
    ds = load_task_dataset(PONG)
    assert ds.metadata["source"] == "dqn_replay:Pong/1" and ds.metadata["dqn_replay_epochs"] == [10]
    # All 65 transitions of checkpoint 10: the leading partial episode (6) and the unfinished last one (9).
    assert ds.num_transitions == 65 and list(ds.episode_lengths) == [6, 30, 20, 9]
    np.testing.assert_array_equal(ds.rewards, ten["reward"])
    assert ds.terminals.sum() == 3 and ds.timeouts.sum() == 1 and ds.timeouts[-1]
    # A run without checkpoint 10 is refused with what it has.
    for f in (run / "replay_logs").glob("*ckpt.10.gz"):
        f.unlink()
    with pytest.raises(BenchError, match=r"no checkpoint 10, which is d4rl-atari's 'medium'.*\[9, 11\]"):
        load_task_dataset(PONG)


@pytest.mark.slow
def test_frame_stacks_repeat_the_first_frame_like_the_env(replay_dir: Path) -> None:
    ds = load_dqn_replay(replay_dir, transitions=None)
    first = ds.episode_first_index()
    start = int(ds.episode_starts[1])  # second episode
    stacks = ds.observations_at(np.array([start, start + 1, start + 5]))
    values = stacks[:, :, 0, 0].astype(int)
    f0 = int(ds.observations[start, 0, 0])
    assert values[0].tolist() == [f0] * 4
    assert values[1].tolist() == [f0, f0, f0, f0 + 1]
    assert values[2].tolist() == [f0 + 2, f0 + 3, f0 + 4, f0 + 5]
    np.testing.assert_array_equal(stack_frames(ds.observations, np.array([start]), first[[start]], 4), stacks[:1])
    # The environment's stack at reset is the first frame four times, as in the data.
    env = make_atari_env("ALE/Pong-v5", max_episode_steps=10)
    obs, _ = env.reset(seed=0)
    env.close()
    assert obs.shape == (4, 84, 84) and all(np.array_equal(obs[0], obs[i]) for i in range(4))


def test_subsample_and_window_batches_of_frames(replay_dir: Path) -> None:
    ds = load_dqn_replay(replay_dir, transitions=None)
    half = subsample(ds, 0.6, seed=0)
    assert half.num_episodes == 3 and half.frame_stack == 4
    assert np.array_equal(half.observations, subsample(ds, 0.6, seed=0).observations)
    sampler = WindowSampler(ds, context_length=6, reward_scale=1.0, max_timestep=1000, clip_rewards=True)
    batch = sampler.sample(5, np.random.default_rng(0))
    assert batch.observations.shape == (5, 6, 4, 84, 84) and batch.observations.dtype == np.uint8
    assert batch.actions.shape == (5, 6) and batch.actions.dtype == np.int64
    # Returns-to-go count clipped rewards: the 2.0 rewards count as 1.
    assert sampler.rtg.max() <= max(ds.episode_lengths)
    assert np.allclose(sampler.rtg[ds.episode_starts[:-1]], [np.clip(e.rewards, -1, 1).sum() for e in ds.episodes()])


@pytest.mark.slow
def test_env_is_dqn_preprocessed() -> None:
    assert env_spaces(PONG) == ((4, 84, 84), 6)
    env = make_atari_env(PONG.env_id, max_episode_steps=50, **PONG.env_kwargs)
    try:
        assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0  # type: ignore[attr-defined]
        env.reset(seed=1)
        steps = 0
        truncated = terminated = False
        while not (truncated or terminated):
            obs, _, terminated, truncated, _ = env.step(0)
            steps += 1
        assert steps == 50 and truncated and obs.dtype == np.uint8
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("agent_name", ["dt", "lamo", "cql", "bc"])
def test_each_agent_trains_and_evaluates_on_frames(agent_name: str, replay_dir: Path) -> None:
    ds = load_dqn_replay(replay_dir, transitions=None)
    task = dataclasses.replace(PONG, max_episode_steps=60)  # a few hundred env steps in all
    spec = TaskSpec.from_task(task, ds)
    assert spec.observation_shape == (4, 84, 84) and spec.action_dim == 6 and spec.clip_rewards
    agent = make_agent(agent_name, task, spec, overrides=ATARI_TINY[agent_name], seed=0)
    losses: list[float] = []
    agent.fit(ds, steps=2, eval_every=2, on_log=lambda _s, m: losses.append(m["loss"]))
    assert len(losses) == 1 and np.isfinite(losses[0])
    results = evaluate(agent, task, episodes=2, seed=0)
    assert results and all(np.isfinite(r.mean_score) and len(r.returns) == 2 for r in results)
    assert all(max(r.lengths) <= 60 for r in results)


def test_dt_uses_the_atari_architecture() -> None:
    from agents.dt import DTAgent

    c = DTAgent.default_config(PONG)
    assert (c.n_layer, c.n_head, c.learning_rate, c.weight_decay, c.grad_clip) == (6, 8, 6e-4, 0.1, 1.0)
    assert (c.batch_size, c.context_length) == (128, 30)
    agent = DTAgent(
        c.with_overrides({"max_timestep": 100}),
        TaskSpec(
            task="pong-medium",
            observation_shape=(4, 84, 84),
            action_dim=6,
            discrete=True,
            context_length=30,
            max_episode_steps=100,
            reward_scale=1.0,
            rtg_targets=(20.0,),
            clip_rewards=True,
        ),
    )
    convs = [m for m in agent.model.embed_state.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [(32, 8, 4), (64, 4, 2), (64, 3, 1)]


@pytest.mark.slow
def test_pong_build_is_resumable_and_loads(data_root: Path) -> None:
    from bench.data.build import build_dataset
    from bench.data.loaders import load_task_dataset

    class Killed(Exception):
        pass

    def kill(checkpoint: int) -> None:
        if checkpoint == 1:
            raise Killed

    budget = {"checkpoint_transitions": 600}
    with pytest.raises(Killed):
        build_dataset(PONG, transitions=1200, progress=False, on_checkpoint=kill, **budget)
    path = build_dataset(PONG, transitions=1200, progress=False, **budget)
    resumed = load_task_dataset(PONG, source="generated")
    assert (path / "card.json").is_file() and resumed.frame_stack == 4
    assert resumed.num_transitions >= 1200 and np.all(resumed.terminals[resumed.episode_starts[1:] - 1])
    fresh_root = data_root.parent / "fresh"
    fresh_root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMO_BENCH_DATA", str(fresh_root))
        build_dataset(PONG, transitions=1200, progress=False, **budget)
        fresh = load_task_dataset(PONG, source="generated")
    assert fresh.content_hash() == resumed.content_hash()
    with pytest.raises(BenchError, match="no scripted player"):
        build_dataset(get_task("qbert-medium"), transitions=100, progress=False)


def test_window_policy_embeds_each_frame_stack_once_with_the_same_result() -> None:
    from agents.dt import DTAgent

    spec = TaskSpec(
        task="pong-medium",
        observation_shape=(4, 84, 84),
        action_dim=6,
        discrete=True,
        context_length=3,
        max_episode_steps=50,
        reward_scale=1.0,
        rtg_targets=(5.0,),
        clip_rewards=True,
    )
    c = DTAgent.default_config(PONG).with_overrides(
        {"n_layer": 1, "hidden_size": 32, "context_length": 3, "max_timestep": 50}
    )
    agent = DTAgent(c, spec)
    model = agent.model.eval()
    rng = np.random.default_rng(0)
    frames = torch.as_tensor(rng.integers(0, 255, (2, 3, 4, 84, 84)), dtype=torch.float32)
    actions = torch.as_tensor(rng.integers(0, 6, (2, 3)))
    rtg, ts = torch.ones(2, 3, 1), torch.arange(3).repeat(2, 1)
    with torch.no_grad():
        raw = model.predict_last(frames.reshape(2, 3, -1), actions, rtg, ts)
        embedded = model.predict_last(model.embed_state(frames.reshape(2, 3, -1)), actions, rtg, ts, True)
    torch.testing.assert_close(raw, embedded)
    policy = agent.make_policy(2, 5.0)
    assert policy.embed_once
    for _ in range(5):  # past K, so the window slides
        out = policy.act(rng.integers(0, 255, (2, 4, 84, 84)).astype(np.uint8))
        policy.observe(np.array([2.0, -1.0]))
        assert out.shape == (2,) and out.dtype == np.int64
    assert policy.h_obs.shape == (2, 3, 32)
    torch.testing.assert_close(policy.rtg, torch.tensor([[0.0], [10.0]]))  # 5 - 5 x clip(2), 5 + 5 x 1


@pytest.mark.slow
def test_breakout_player_beats_random_play(data_root: Path) -> None:
    from bench.data.build import build_dataset
    from bench.data.loaders import load_task_dataset

    task = get_task("breakout-medium")
    build_dataset(task, transitions=1500, progress=False, checkpoint_transitions=1500)
    ds = load_task_dataset(task, source="generated")
    # Random play scores 1.7 (the paper's reference); the scripted paddle keeps the ball in play far longer.
    assert ds.episode_returns().mean() > 3 * task.random_score
