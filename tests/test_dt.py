"""Decision Transformer agent: config from the task, training, policy bookkeeping, seeds and checkpoints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.base import TaskSpec
from agents.dt import CHECKPOINT_FILE, AtariTokenSchedule, DTAgent, DTConfig, SequencePolicy
from agents.models.trajectory import InferenceMode
from agents.registry import make_agent, make_config
from bench.data.trajectories import TrajectoryDataset
from bench.envs.factory import make_env
from bench.errors import BenchError
from bench.tasks import get_task
from tests.conftest import linear_reacher_dataset as _reacher_dataset

torch.set_num_threads(1)
TASK = get_task("reacher2d-medium")


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return _reacher_dataset()


def _agent(dataset: TrajectoryDataset, seed: int = 0, **overrides: object) -> DTAgent:
    config = DTAgent.default_config(TASK).with_overrides({"warmup_steps": 10, "learning_rate": 1e-3, **overrides})
    return DTAgent(config, TaskSpec.from_task(TASK, dataset), seed=seed)


def test_default_config_follows_task_and_paper() -> None:
    hopper = get_task("hopper-medium")
    c = DTAgent.default_config(hopper)
    assert (c.context_length, c.batch_size, c.grad_clip, c.reward_scale, c.max_timestep) == (20, 64, 0.25, 1000.0, 1000)
    assert (c.n_layer, c.hidden_size, c.n_head, c.dropout, c.learning_rate, c.weight_decay) == (
        3,
        128,
        1,
        0.1,
        1e-4,
        1e-4,
    )
    assert c.warmup_steps == 2500 and c.eval_mode == "window"
    r = DTAgent.default_config(TASK)
    assert (r.context_length, r.reward_scale, r.max_timestep) == (5, 10.0, 100)
    assert isinstance(make_config("dt", TASK), DTConfig)
    with pytest.raises(BenchError):
        DTConfig(eval_mode="fast")  # type: ignore[arg-type]
    # The official DT path: AdamW with torch's default eps; linear warm-up then constant; Linear + Tanh head.
    assert (c.adam_eps, c.lr_schedule, c.action_tanh, c.mlp_head) == (1e-8, "warmup", True, False)
    atari = DTAgent.default_config(get_task("pong-medium"))
    assert (atari.lr_schedule, atari.warmup_tokens, atari.final_tokens) == ("atari_tokens", 375e6, 260e9)
    assert c.deviations() == [] and replace(c, eval_mode="cached").deviations() != []
    assert any("experiment-atari" in d for d in atari.deviations())  # the Atari model is not theirs: listed
    with pytest.raises(BenchError, match="lr_schedule"):
        c.with_overrides({"lr_schedule": "cosine"})


def test_atari_tasks_cap_evaluation_at_4096_steps() -> None:
    """LaMo's Atari code stops evaluation episodes at max_timestep 4096 (experiment-atari/cfgs/env/*.yaml)."""
    from gymnasium.wrappers import TimeLimit

    for name in ("breakout-medium", "qbert-medium", "pong-medium"):
        task = get_task(name)
        assert task.max_episode_steps == 4096 and DTAgent.default_config(task).max_timestep == 4096
    env = make_env(get_task("pong-medium"))
    try:
        limits = []
        wrapper = env
        while hasattr(wrapper, "env"):
            if isinstance(wrapper, TimeLimit):
                limits.append(wrapper._max_episode_steps)
            wrapper = wrapper.env
        assert limits == [4096]
    finally:
        env.close()


def test_atari_token_schedule_counts_as_the_official_code() -> None:
    """Re-stated from experiment-atari/core.py: `tokens += (actions > 0).sum(); scheduler.step(tokens)`, where
    the scheduler adds what it is given to its own count, so the count is a sum of running totals."""
    schedule = AtariTokenSchedule(warmup_tokens=100, final_tokens=1100)
    counts = [3, 5, 0, 7, 2, 6, 4, 9, 8, 1] * 3
    running = scheduled = 0
    for n in counts:
        actions = torch.tensor([1] * n + [0] * (12 - n)).reshape(3, 4)
        schedule.observe(actions, torch.ones(3, 4))
        running += n
        scheduled += running
        mult = scheduled / 100 if scheduled < 100 else max(0.1, 0.5 * (1 + np.cos(np.pi * (scheduled - 100) / 1000)))
        assert schedule(0) == pytest.approx(mult)
    # Quadratic count: past final_tokens within 30 steps. The official progress is never clamped to 1, so the
    # cosine climbs back up after its 0.1 floor; the re-statement above follows that too.
    assert scheduled > 1100 and schedule(0) > 0.5
    padded = AtariTokenSchedule(100, 1100)
    padded.observe(torch.ones(2, 3, dtype=torch.long), torch.tensor([[0, 1, 1], [1, 1, 1]]))
    assert padded.running == 5  # padding is not counted


def test_atari_schedule_drives_the_optimizer() -> None:
    spec = TaskSpec(
        task="toy",
        observation_shape=(4,),
        action_dim=3,
        discrete=True,
        context_length=4,
        max_episode_steps=30,
        reward_scale=1.0,
        rtg_targets=(30.0,),
    )
    rng = np.random.default_rng(0)
    episodes = [
        {
            "observations": rng.normal(size=(30, 4)).astype(np.float32),
            "actions": rng.integers(0, 3, 30),
            "rewards": np.ones(30),
            "terminals": np.arange(30) == 29,
            "timeouts": np.zeros(30, bool),
        }
        for _ in range(4)
    ]
    data = TrajectoryDataset.from_episodes(episodes)
    config = DTConfig(
        context_length=4,
        max_timestep=30,
        reward_scale=1.0,
        batch_size=8,
        hidden_size=16,
        n_layer=1,
        lr_schedule="atari_tokens",
        warmup_tokens=400,
        final_tokens=4000,
    )
    agent = DTAgent(config, spec)
    lrs: list[float] = []
    agent.fit(data, 12, eval_every=1, on_log=lambda s, m: lrs.append(m["lr"]))
    schedule = agent._token_schedule
    assert schedule is not None and schedule.running > 0
    assert lrs[-1] == pytest.approx(1e-4 * schedule.multiplier(schedule.scheduled))
    assert lrs[0] < lrs[1]  # warming up
    optimizer, _ = agent._ensure_optimizer()
    assert optimizer.param_groups[0]["eps"] == 1e-8


@pytest.mark.slow
def test_training_lowers_loss_and_reports(dataset: TrajectoryDataset) -> None:
    agent = _agent(dataset, batch_size=16)  # small batches keep the test short on a shared CPU
    logs: list[tuple[int, dict[str, float]]] = []
    evals: list[int] = []
    agent.fit(
        dataset, 200, eval_every=40, on_log=lambda s, m: logs.append((s, m)), on_eval=lambda s, a: evals.append(s)
    )
    assert [s for s, _ in logs] == evals == [40, 80, 120, 160, 200]
    assert all(np.isfinite(m["loss"]) for _, m in logs)
    assert logs[-1][1]["loss"] < 0.5 * logs[0][1]["loss"]
    assert logs[-1][1]["lr"] == pytest.approx(1e-3)  # warm-up over, constant afterwards
    np.testing.assert_allclose(agent.obs_mean, dataset.state_stats()[0], rtol=1e-6)


@pytest.mark.slow
def test_same_seed_same_weights_and_batches(dataset: TrajectoryDataset) -> None:
    a, b, c = _agent(dataset, seed=3), _agent(dataset, seed=3), _agent(dataset, seed=4)
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)
    assert any(not torch.equal(x, y) for x, y in zip(a.model.parameters(), c.model.parameters(), strict=True))
    a.fit(dataset, 15)
    b.fit(dataset, 15)
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)


def test_policy_return_to_go_and_timestep_clipping(dataset: TrajectoryDataset) -> None:
    agent = _agent(dataset, max_timestep=3)
    policy = agent.make_policy(2, 40.0)
    assert isinstance(policy, SequencePolicy)
    obs = np.zeros((2, 12))
    for step in range(8):  # runs past max_timestep and past K without index errors
        action = policy.act(obs)
        assert action.shape == (2, 2) and np.all(np.abs(action) <= 1.0)
        policy.observe(np.array([1.0, 0.0]) if step == 0 else np.zeros(2))
    np.testing.assert_allclose(policy.rtg.numpy().ravel(), [3.9, 4.0], rtol=1e-6)
    assert policy.h_ts.shape[1] == 5 and int(policy.h_ts.max()) == 7  # window keeps K steps; clipping is in-model
    with pytest.raises(BenchError):
        agent.make_policy(1, None)


@pytest.mark.slow
def test_save_load_round_trip(dataset: TrajectoryDataset, tmp_path: Path) -> None:
    agent = _agent(dataset, seed=1)
    agent.fit(dataset, 20)
    agent.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["agent.pt"]  # no temp file left
    other = _agent(dataset, seed=2)
    other.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(other.obs_std, agent.obs_std)
    obs = dataset.observations[:3]
    p, q = agent.make_policy(3, 76.0), other.make_policy(3, 76.0)
    for _ in range(7):
        np.testing.assert_array_equal(p.act(obs), q.act(obs))
        p.observe(np.ones(3))
        q.observe(np.ones(3))
    with pytest.raises(BenchError, match="no checkpoint"):
        other.load(tmp_path / "missing")
    wider = DTAgent(replace(agent.config, hidden_size=64), agent.spec)
    with pytest.raises(BenchError, match="does not fit"):
        wider.load(tmp_path / "ckpt")
    old = torch.load(tmp_path / "ckpt" / CHECKPOINT_FILE, weights_only=True)
    torch.save({**old, "format": 1}, tmp_path / "ckpt" / CHECKPOINT_FILE)  # written before the official model
    with pytest.raises(BenchError, match="format 1, this version reads format 2"):
        other.load(tmp_path / "ckpt")


def test_num_params_and_registry(dataset: TrajectoryDataset) -> None:
    agent = make_agent("dt", TASK, TaskSpec.from_task(TASK, dataset))
    total, trainable = agent.num_params()
    assert total == trainable and 500_000 < total < 800_000  # 3 x 128-wide GPT-2 blocks plus embeddings


@pytest.mark.slow
def test_discrete_actions_train_and_act() -> None:
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(8):
        obs = rng.normal(size=(30, 4)).astype(np.float32)
        episodes.append(
            {
                "observations": obs,
                "actions": obs[:, :3].argmax(1),
                "rewards": np.ones(30),
                "terminals": np.arange(30) == 29,
                "timeouts": np.zeros(30, bool),
            }
        )
    data = TrajectoryDataset.from_episodes(episodes)
    spec = TaskSpec(
        task="toy",
        observation_shape=(4,),
        action_dim=3,
        discrete=True,
        context_length=4,
        max_episode_steps=30,
        reward_scale=1.0,
        rtg_targets=(30.0,),
    )
    config = DTConfig(
        context_length=4, max_timestep=30, reward_scale=1.0, warmup_steps=1, learning_rate=1e-3, batch_size=16
    )
    agent = DTAgent(config, spec)
    logs: list[float] = []
    agent.fit(data, 120, eval_every=40, on_log=lambda s, m: logs.append(m["loss"]))
    assert logs[-1] < 0.5 * logs[0]
    modes: tuple[InferenceMode, ...] = ("window", "cached")
    for mode in modes:
        policy = agent.make_policy(5, 30.0, mode=mode)
        for t in range(6):  # past K, so the cached mode feeds previous (discrete) actions back in
            acts = policy.act(data.observations[5 * t : 5 * t + 5])
            assert acts.dtype == np.int64 and acts.shape == (5,) and set(acts.tolist()) <= {0, 1, 2}
            policy.observe(np.ones(5))
