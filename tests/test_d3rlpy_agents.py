"""The d3rlpy baselines (cql, bc, iql, td3+bc): configs, training, policies, seeds and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.base import Agent, TaskSpec
from agents.d3rlpy_agents import (
    CHECKPOINT_FILE,
    BCAgent,
    BCConfig,
    CQLAgent,
    CQLConfig,
    D3rlpyAgent,
    DiscreteBCConfig,
    DiscreteCQLConfig,
    IQLAgent,
    IQLConfig,
    TD3PlusBCConfig,
    TransitionSampler,
)
from agents.registry import make_agent, make_config
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.tasks import get_task
from tests.conftest import controller_reacher_dataset

torch.set_num_threads(1)
TASK = get_task("reacher2d-medium")
ATARI = get_task("breakout-medium")
AGENTS = ("bc", "cql", "iql", "td3+bc")
# Small networks and batches keep the 200-step runs to about a second each on one CPU thread.
SMALL: dict[str, dict[str, object]] = {
    "bc": {"batch_size": 64, "hidden_units": (64, 64)},
    "cql": {"batch_size": 64, "hidden_units": (64, 64)},
    "iql": {"batch_size": 64, "hidden_units": (64, 64)},
    "td3+bc": {"batch_size": 64, "hidden_units": (64, 64)},
}


def _discrete_dataset(
    obs_shape: tuple[int, ...] = (4,), n_actions: int = 3, n: int = 600, seed: int = 0
) -> TrajectoryDataset:
    """Vector (float) or frame (uint8) observations; the action is a fixed function of the observation and
    the reward is 1 for one action, so both BC and CQL have something to learn."""
    rng = np.random.default_rng(seed)
    if len(obs_shape) == 3:
        obs = rng.integers(0, 256, size=(n, *obs_shape), dtype=np.uint8)
        actions = (obs.reshape(n, -1)[:, :n_actions].argmax(1)).astype(np.int64)
    else:
        obs = rng.normal(size=(n, *obs_shape)).astype(np.float32)
        actions = obs[:, :n_actions].argmax(1).astype(np.int64)
    rewards = (actions == 0).astype(np.float32)
    ends = np.arange(n) % 50 == 49
    return TrajectoryDataset.from_flat(
        obs,
        actions,
        rewards,
        terminals=ends & (np.arange(n) % 100 == 49),
        timeouts=ends & (np.arange(n) % 100 == 99),
        name="discrete-synthetic",
    )


def _discrete_spec(dataset: TrajectoryDataset, n_actions: int = 3) -> TaskSpec:
    return TaskSpec(
        task="discrete-synthetic",
        observation_shape=dataset.observation_shape,
        action_dim=n_actions,
        discrete=True,
        context_length=30,
        max_episode_steps=50,
        reward_scale=1.0,
        rtg_targets=(1.0,),
    )


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return controller_reacher_dataset()


@pytest.fixture(scope="module")
def spec(dataset: TrajectoryDataset) -> TaskSpec:
    return TaskSpec.from_task(TASK, dataset)


def _agent(name: str, spec: TaskSpec, seed: int = 0, **overrides: object) -> Agent:
    return make_agent(name, TASK, spec, {**SMALL[name], **overrides}, seed=seed)


# --- configs ----------------------------------------------------------------------------------------------


def test_default_configs_follow_the_references() -> None:
    """Spot checks; tests/test_corl_configs.py compares every CORL-configured field per dataset."""
    cql = make_config("cql", get_task("hopper-medium"))
    assert isinstance(cql, CQLConfig)
    assert (cql.batch_size, cql.learning_rate, cql.actor_learning_rate, cql.n_action_samples) == (256, 3e-4, 3e-5, 10)
    assert cql.conservative_weight == 10.0 and cql.hidden_units == (256, 256, 256) and cql.alpha_learning_rate == 0
    assert make_config("cql", get_task("hopper-medium-replay")).conservative_weight == 10.0  # type: ignore[attr-defined]
    assert make_config("cql", TASK).conservative_weight == 10.0  # type: ignore[attr-defined]

    bc = make_config("bc", TASK)
    assert isinstance(bc, BCConfig) and (bc.batch_size, bc.learning_rate, bc.hidden_units) == (256, 3e-4, (256, 256))
    assert bc.standardize_observations

    iql = make_config("iql", get_task("walker2d-medium-expert"))
    assert isinstance(iql, IQLConfig)
    assert (iql.expectile, iql.weight_temp, iql.learning_rate, iql.batch_size) == (0.7, 3.0, 3e-4, 256)
    assert iql.reward_return_scale is None and iql.actor_cosine_schedule and iql.standardize_observations
    assert make_config("iql", get_task("hopper-medium")).reward_return_scale == 1000.0  # type: ignore[attr-defined]
    assert make_config("iql", TASK).reward_return_scale is None  # type: ignore[attr-defined]
    assert make_config("iql", get_task("kitchen-partial")).weight_temp == 0.5  # type: ignore[attr-defined]

    td3 = make_config("td3+bc", TASK)
    assert isinstance(td3, TD3PlusBCConfig)
    assert (td3.alpha, td3.target_smoothing_sigma, td3.target_smoothing_clip, td3.update_actor_interval) == (
        2.5,
        0.2,
        0.5,
        2,
    )
    assert td3.standardize_observations and td3.weight_decay == 0.0

    assert isinstance(make_config("cql", ATARI), DiscreteCQLConfig)
    assert isinstance(make_config("bc", ATARI), DiscreteBCConfig)
    for name in ("iql", "td3+bc"):
        with pytest.raises(BenchError, match="continuous actions only"):
            make_config(name, ATARI)


def test_config_overrides_are_checked() -> None:
    config = make_config("cql", TASK, {"hidden_units": [32, 16]})
    assert config.hidden_units == (32, 16)  # type: ignore[attr-defined]
    with pytest.raises(BenchError, match="unknown CQLConfig field"):
        make_config("cql", TASK, {"expectile": 0.5})
    with pytest.raises(BenchError, match="expectile"):
        make_config("iql", TASK, {"expectile": 1.5})
    with pytest.raises(BenchError, match="hidden_units"):
        make_config("bc", TASK, {"hidden_units": []})


def test_config_must_match_action_kind(spec: TaskSpec) -> None:
    with pytest.raises(BenchError, match="DiscreteCQLConfig does not fit"):
        CQLAgent(DiscreteCQLConfig(), spec)
    with pytest.raises(BenchError, match="needs a IQLConfig"):
        IQLAgent(BCConfig(), spec)


# --- data -------------------------------------------------------------------------------------------------


def test_sampler_matches_d3rlpy_transitions(small_dataset: TrajectoryDataset) -> None:
    """Terminal steps are sampled with a zero next observation; a timeout's last step is never sampled."""
    ds = small_dataset
    sampler = TransitionSampler(ds)
    last = ds.episode_starts[1:] - 1
    timeouts_last = last[~ds.terminals[last]]
    assert len(sampler) == ds.num_transitions - len(timeouts_last)
    batch = sampler.sample(np.random.default_rng(0), 4000)
    obs = batch.observations
    # Every sampled row is a dataset row; look the rows up to check next observations and flags.
    lookup = {row.tobytes(): i for i, row in enumerate(ds.observations)}
    rows = np.array([lookup[o.tobytes()] for o in obs])
    assert not np.isin(rows, timeouts_last).any()
    terminal = ds.terminals[rows]
    assert np.array_equal(batch.terminals[:, 0], terminal.astype(np.float32))
    assert terminal.any() and np.all(batch.next_observations[terminal] == 0)
    assert np.array_equal(batch.next_observations[~terminal], ds.observations[rows[~terminal] + 1])
    assert np.array_equal(batch.actions, ds.actions[rows]) and np.array_equal(batch.rewards[:, 0], ds.rewards[rows])


def test_actions_outside_unit_box_are_rejected(dataset: TrajectoryDataset, spec: TaskSpec) -> None:
    from dataclasses import replace

    wide = replace(dataset, actions=dataset.actions * 3.0)
    with pytest.raises(BenchError, match=r"actions in \[-1, 1\]"):
        _agent("bc", spec).fit(wide, 1)


# --- training, policy, seeds, checkpoints -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", AGENTS)
def test_agent_trains_acts_and_round_trips(
    name: str, dataset: TrajectoryDataset, spec: TaskSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 steps: the reported loss falls, callbacks fire at the eval points, the policy acts in bounds, a
    checkpoint restores the same actions and the same seed gives the same weights.

    The reported `loss` is BC's MSE for bc and the critic loss for the others. On this sparse-reward data
    (almost all rewards 0) the critics' TD error shrinks as they fit the near-zero targets; CQL's critic loss
    falls mainly through its conservative term (it includes the constant -conservative_weight*threshold)."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    global_torch, global_numpy = torch.get_rng_state(), np.random.get_state()

    agent = _agent(name, spec, seed=3)
    logs: list[tuple[int, dict[str, float]]] = []
    evals: list[int] = []
    agent.fit(
        dataset, 200, eval_every=50, on_log=lambda s, m: logs.append((s, m)), on_eval=lambda s, a: evals.append(s)
    )

    assert evals == [50, 100, 150, 200] and [s for s, _ in logs] == evals
    assert all(np.isfinite(v) for _, m in logs for v in m.values())
    assert logs[-1][1]["loss"] < logs[0][1]["loss"], [m["loss"] for _, m in logs]
    assert list(workdir.iterdir()) == []  # no d3rlpy_logs or anything else written
    assert torch.equal(torch.get_rng_state(), global_torch)
    assert np.array_equal(np.random.get_state()[1], global_numpy[1])  # type: ignore[index]

    obs = dataset.observations[:7]
    policy = agent.make_policy(7, rtg_target=None)
    actions = policy.act(obs)
    policy.observe(np.zeros(7))
    assert actions.shape == (7, 2) and actions.dtype == np.float32
    assert np.all(np.isfinite(actions)) and np.all(np.abs(actions) <= 1.0)
    assert np.array_equal(policy.act(obs), actions)  # stateless
    total, trainable = agent.num_params()
    assert total == trainable > 0

    agent.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / CHECKPOINT_FILE).is_file()
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [CHECKPOINT_FILE]
    restored = _agent(name, spec, seed=99)
    restored.load(tmp_path / "ckpt")
    assert np.array_equal(restored.make_policy(7, None).act(obs), actions)
    assert restored.num_params() == (total, trainable)

    twin = _agent(name, spec, seed=3)
    twin.fit(dataset, 200)
    assert np.array_equal(twin.make_policy(7, None).act(obs), actions)
    other = _agent(name, spec, seed=4)
    other.fit(dataset, 200)
    assert not np.array_equal(other.make_policy(7, None).act(obs), actions)


def test_second_fit_continues_training(dataset: TrajectoryDataset, spec: TaskSpec) -> None:
    """A second `fit` starts from the trained weights instead of rebuilding the networks."""
    agent = _agent("bc", spec, seed=0)
    losses: list[float] = []
    agent.fit(dataset, 50, on_log=lambda s, m: losses.append(m["loss"]))
    agent.fit(dataset, 50, on_log=lambda s, m: losses.append(m["loss"]))
    assert losses[1] < losses[0]


def test_errors_before_fit_and_on_bad_checkpoints(dataset: TrajectoryDataset, spec: TaskSpec, tmp_path: Path) -> None:
    agent = _agent("bc", spec)
    assert agent.num_params()[0] > 0  # countable before training
    with pytest.raises(BenchError, match="no weights yet"):
        agent.make_policy(2, None)
    with pytest.raises(BenchError, match="nothing to save"):
        agent.save(tmp_path / "x")
    with pytest.raises(BenchError, match="no checkpoint"):
        agent.load(tmp_path / "missing")
    with pytest.raises(BenchError, match="steps must be at least 1"):
        agent.fit(dataset, 0)
    agent.fit(dataset, 2)
    agent.save(tmp_path / "bc")
    with pytest.raises(BenchError, match="for agent 'bc'"):
        _agent("td3+bc", spec).load(tmp_path / "bc")
    with pytest.raises(BenchError, match="does not fit"):
        _agent("bc", spec, hidden_units=(32,)).load(tmp_path / "bc")
    with pytest.raises(BenchError, match="shape"):
        agent.make_policy(2, None).act(np.zeros((3, 12), np.float32))


# --- discrete actions -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bc", "cql"])
def test_discrete_agents_train_on_vector_observations(name: str, tmp_path: Path) -> None:
    ds = _discrete_dataset()
    spec = _discrete_spec(ds)
    overrides: dict[str, object] = {"batch_size": 64, "hidden_units": (64, 64), "learning_rate": 1e-3}
    if name == "cql":
        overrides.update(target_update_interval=50, n_quantiles=0)
    agent = make_agent(name, ATARI, spec, overrides, seed=0)
    assert isinstance(agent, D3rlpyAgent)
    assert isinstance(agent.config, DiscreteBCConfig if name == "bc" else DiscreteCQLConfig)
    logs: list[dict[str, float]] = []
    agent.fit(ds, 200, eval_every=50, on_log=lambda s, m: logs.append(m))
    assert logs[-1]["loss"] < logs[0]["loss"], [m["loss"] for m in logs]

    obs = ds.observations[:64]
    actions = agent.make_policy(64, None).act(obs)
    assert actions.shape == (64,) and actions.dtype == np.int64
    assert actions.min() >= 0 and actions.max() < 3
    if name == "bc":  # the labels are argmax of the first three features
        assert np.mean(actions == ds.actions[:64]) > 0.8
    agent.save(tmp_path / name)
    restored = make_agent(name, ATARI, spec, overrides, seed=5)
    restored.load(tmp_path / name)
    assert np.array_equal(restored.make_policy(64, None).act(obs), actions)


@pytest.mark.parametrize("name", ["bc", "cql"])
def test_discrete_agents_use_pixel_encoder_on_frames(name: str) -> None:
    ds = _discrete_dataset(obs_shape=(2, 36, 36), n=120)
    spec = _discrete_spec(ds)
    agent = make_agent(name, ATARI, spec, {"batch_size": 8}, seed=0)
    agent.fit(ds, 3)
    assert isinstance(agent, D3rlpyAgent)
    # Nature-DQN encoder: 3 convolutions then a 512-unit layer, far more parameters than the MLP default.
    assert agent.num_params()[0] > 40_000
    actions = agent.make_policy(4, None).act(ds.observations[:4])
    assert actions.shape == (4,) and np.all((actions >= 0) & (actions < 3))


def test_bc_agent_class_is_registered() -> None:
    assert make_agent("bc", TASK, TaskSpec.from_task(TASK, observation_shape=(12,), action_dim=2)).__class__ is BCAgent
