"""The continuous baselines are configured as CORL configures them, and the d3rlpy objects carry those values.

The expected values are an independent re-statement of CORL's per-dataset yamls (tinkoff-ai/CORL@6afec90,
`configs/offline/<algo>/<domain>/<dataset>.yaml`), written here with CORL's own key names, and translated
to our field names by a mapping written here too; they are not read from `agents.d3rlpy_configs`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from agents.base import TaskSpec
from agents.d3rlpy_agents import (
    BCConfig,
    CQLConfig,
    DataStats,
    IQLConfig,
    TD3PlusBCConfig,
)
from agents.d3rlpy_configs import (
    BC_PRESETS,
    CORL_COMMIT,
    CQL_PRESETS,
    IQL_PRESETS,
    TD3_PLUS_BC_PRESETS,
    D3rlpyConfig,
)
from agents.registry import make_agent, make_config
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.tasks import TASKS, get_task
from tests.conftest import make_episodes

torch.set_num_threads(1)

# --- CORL yamls, re-stated (only the keys that configure the learner) -------------------------------------

_CQL_GYM = {
    "batch_size": 256,
    "discount": 0.99,
    "policy_lr": 3e-5,
    "qf_lr": 3e-4,
    "soft_target_update_rate": 0.005,
    "cql_n_actions": 10,
    "cql_alpha": 10.0,
    "cql_lagrange": False,
    "cql_max_target_backup": False,
    "backup_entropy": False,
    "normalize": True,
    "normalize_reward": False,
    "q_n_hidden_layers": 3,
    "use_automatic_entropy_tuning": True,
}
CORL_CQL = {
    "hopper-medium": _CQL_GYM | {"normalize_reward": True},  # cql/hopper/medium_v2.yaml
    "halfcheetah-medium-replay": _CQL_GYM,  # cql/halfcheetah/medium_replay_v2.yaml
    "walker2d-medium-expert": _CQL_GYM,  # cql/walker2d/medium_expert_v2.yaml
    # cql/maze2d/umaze_v1.yaml
    "pointmaze-umaze": _CQL_GYM | {"cql_lagrange": True, "cql_target_action_gap": 5.0},
}
_IQL_GYM = {
    "batch_size": 256,
    "discount": 0.99,
    "tau": 0.005,
    "beta": 3.0,
    "iql_tau": 0.7,
    "iql_deterministic": False,
    "normalize": True,
    "normalize_reward": False,
    "actor_lr": 3e-4,
    "qf_lr": 3e-4,
    "vf_lr": 3e-4,
}
CORL_IQL = {
    # iql/hopper/medium_v2.yaml
    "hopper-medium": _IQL_GYM | {"tau": 0.001, "iql_deterministic": True, "normalize_reward": True},
    "hopper-medium-replay": _IQL_GYM | {"tau": 0.001, "iql_deterministic": True, "normalize_reward": True},
    "hopper-medium-expert": _IQL_GYM | {"beta": 6.0, "iql_tau": 0.5},  # iql/hopper/medium_expert_v2.yaml
    "halfcheetah-medium-replay": _IQL_GYM,
    "walker2d-medium-expert": _IQL_GYM,
}
_TD3_GYM = {
    "batch_size": 256,
    "discount": 0.99,
    "tau": 0.005,
    "policy_noise": 0.2,
    "noise_clip": 0.5,
    "policy_freq": 2,
    "alpha": 2.5,
    "normalize": True,
}
CORL_TD3 = {t: _TD3_GYM for t in ("hopper-medium", "halfcheetah-medium-replay", "walker2d-medium-expert")}
_BC_GYM = {"batch_size": 256, "frac": 1.0, "normalize": True}
CORL_BC = {t: _BC_GYM for t in ("hopper-medium", "halfcheetah-medium-replay", "walker2d-medium-expert")}

# Learning rates and widths CORL hard-codes in the algorithm files rather than the yamls.
CORL_TD3_LR = 3e-4  # td3_bc.py: Adam(lr=3e-4) for actor and critics
CORL_BC_LR = 3e-4  # any_percent_bc.py: Adam(lr=3e-4)
CORL_REWARD_NORM_STEPS = 1000  # modify_reward(max_episode_steps=1000)


def _expected_cql(y: dict[str, Any]) -> dict[str, Any]:
    lagrange = y["cql_lagrange"]
    return {
        "batch_size": y["batch_size"],
        "gamma": y["discount"],
        "actor_learning_rate": y["policy_lr"],
        "learning_rate": y["qf_lr"],
        "temp_learning_rate": y["policy_lr"],
        "tau": y["soft_target_update_rate"],
        "n_action_samples": y["cql_n_actions"],
        "conservative_weight": y["cql_alpha"],
        "alpha_learning_rate": y["qf_lr"] if lagrange else 0.0,
        "initial_alpha": math.exp(1.0) if lagrange else 1.0,
        "alpha_threshold": y["cql_target_action_gap"] if lagrange else 0.0,
        "max_q_backup": y["cql_max_target_backup"],
        "soft_q_backup": y["backup_entropy"],
        "standardize_observations": y["normalize"],
        "reward_return_scale": float(CORL_REWARD_NORM_STEPS) if y["normalize_reward"] else None,
        "hidden_units": (256,) * y["q_n_hidden_layers"],
        "initial_temperature": 1.0,
    }


def _expected_iql(y: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_size": y["batch_size"],
        "gamma": y["discount"],
        "tau": y["tau"],
        "weight_temp": y["beta"],
        "expectile": y["iql_tau"],
        "deterministic_actor": y["iql_deterministic"],
        "standardize_observations": y["normalize"],
        "actor_learning_rate": y["actor_lr"],
        "learning_rate": y["qf_lr"],
        "reward_return_scale": float(CORL_REWARD_NORM_STEPS) if y["normalize_reward"] else None,
        "hidden_units": (256, 256),
        "actor_cosine_schedule": True,
        "actor_dropout": 0.0,
        "max_weight": 100.0,
    }


def _expected_td3(y: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_size": y["batch_size"],
        "gamma": y["discount"],
        "tau": y["tau"],
        "alpha": y["alpha"],
        "target_smoothing_sigma": y["policy_noise"],
        "target_smoothing_clip": y["noise_clip"],
        "update_actor_interval": y["policy_freq"],
        "standardize_observations": y["normalize"],
        "learning_rate": CORL_TD3_LR,
        "actor_learning_rate": CORL_TD3_LR,
        "hidden_units": (256, 256),
    }


def _expected_bc(y: dict[str, Any]) -> dict[str, Any]:
    assert y["frac"] == 1.0  # plain BC on all data: no trajectory filtering to restate
    return {
        "batch_size": y["batch_size"],
        "standardize_observations": y["normalize"],
        "learning_rate": CORL_BC_LR,
        "hidden_units": (256, 256),
        "policy_type": "deterministic",
    }


CASES = [
    *(("cql", t, _expected_cql(y)) for t, y in CORL_CQL.items()),
    *(("iql", t, _expected_iql(y)) for t, y in CORL_IQL.items()),
    *(("td3+bc", t, _expected_td3(y)) for t, y in CORL_TD3.items()),
    *(("bc", t, _expected_bc(y)) for t, y in CORL_BC.items()),
]


@pytest.mark.parametrize(("agent", "task", "expected"), CASES, ids=[f"{a}-{t}" for a, t, _ in CASES])
def test_default_config_matches_the_corl_yaml(agent: str, task: str, expected: dict[str, Any]) -> None:
    config = make_config(agent, get_task(task))
    got = {k: getattr(config, k) for k in expected}
    assert got == expected, {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    assert config.weight_decay == 0.0  # plain Adam everywhere in CORL


def test_kitchen_iql_follows_the_iql_authors() -> None:
    """ikostrikov/implicit_q_learning@09d7002 configs/kitchen_config.py: temperature 0.5, expectile 0.7,
    dropout 0.1; train_offline.py normalises neither Kitchen's rewards nor its states."""
    for task in ("kitchen-complete", "kitchen-partial"):
        c = make_config("iql", get_task(task))
        assert isinstance(c, IQLConfig)
        assert (c.weight_temp, c.expectile, c.actor_dropout, c.tau) == (0.5, 0.7, 0.1, 0.005)
        assert c.reward_return_scale is None and not c.standardize_observations
        assert "implicit_q_learning" in IQL_PRESETS[task].source


def test_every_continuous_task_has_a_cited_preset() -> None:
    """A task added later must get a deliberate entry (with its source) in every table."""
    continuous = {name for name, t in TASKS.items() if t.action_kind == "continuous"}
    for table in (CQL_PRESETS, IQL_PRESETS, TD3_PLUS_BC_PRESETS, BC_PRESETS):
        assert set(table) == continuous
        for task, preset in table.items():
            assert CORL_COMMIT[:7] in preset.source or "implicit_q_learning" in preset.source, (task, preset)
            if task.split("-")[0] in ("hopper", "halfcheetah", "walker2d", "pointmaze"):
                assert preset.source.endswith(".yaml"), (task, preset.source)
    assert CQL_PRESETS["halfcheetah-medium-replay"].source.endswith(
        "configs/offline/cql/halfcheetah/medium_replay_v2.yaml"
    )
    assert IQL_PRESETS["pointmaze-medium"].source.endswith("configs/offline/iql/maze2d/medium_v1.yaml")


def test_tasks_without_a_corl_yaml_take_the_train_config_defaults() -> None:
    for agent, cls in (("cql", CQLConfig), ("td3+bc", TD3PlusBCConfig), ("bc", BCConfig), ("iql", IQLConfig)):
        assert make_config(agent, get_task("reacher2d-medium")) == cls()
        if agent != "iql":
            assert make_config(agent, get_task("kitchen-partial")) == cls()


# --- the d3rlpy objects ------------------------------------------------------------------------------------


def _spec(task: str, obs_dim: int = 11, act_dim: int = 3) -> TaskSpec:
    t = get_task(task)
    return TaskSpec(
        task=task,
        observation_shape=(obs_dim,),
        action_dim=act_dim,
        discrete=False,
        context_length=t.context_length,
        max_episode_steps=t.max_episode_steps,
        reward_scale=t.paper.reward_scale,
        rtg_targets=t.rtg_targets,
    )


STATS = DataStats(
    obs_mean=np.linspace(-1, 1, 11),
    obs_std=np.linspace(0.5, 2, 11),
    return_min=-20.0,
    return_max=380.0,
    schedule_steps=1000,
)


def _encoder_units(factory: Any) -> list[int]:
    return list(factory.hidden_units)


def test_cql_d3rlpy_config_carries_the_corl_values() -> None:
    agent = make_agent("cql", get_task("hopper-medium"), _spec("hopper-medium"))
    d = agent.d3rlpy_config(STATS)  # type: ignore[attr-defined]
    assert (d.actor_learning_rate, d.critic_learning_rate, d.temp_learning_rate) == (3e-5, 3e-4, 3e-5)
    assert (d.alpha_learning_rate, d.initial_alpha, d.conservative_weight, d.n_action_samples) == (0.0, 1.0, 10.0, 10)
    assert (d.soft_q_backup, d.max_q_backup, d.batch_size, d.gamma, d.tau, d.n_critics) == (
        False,
        False,
        256,
        0.99,
        0.005,
        2,
    )
    assert _encoder_units(d.actor_encoder_factory) == _encoder_units(d.critic_encoder_factory) == [256] * 3
    assert np.array_equal(d.observation_scaler.mean, STATS.obs_mean)
    assert np.array_equal(d.observation_scaler.std, STATS.obs_std) and d.observation_scaler.eps == 1e-3
    # CORL modify_reward: r / (max return - min return) * 1000.
    rs = d.reward_scaler
    r = np.array([1.0, -2.5, 3.0])
    assert np.allclose(rs.multiplier * r / (rs.return_max - rs.return_min), r / (380.0 - -20.0) * 1000)

    maze = make_agent("cql", get_task("pointmaze-umaze"), _spec("pointmaze-umaze", 4, 2))
    dm = maze.d3rlpy_config(STATS)  # type: ignore[attr-defined]
    assert (dm.alpha_learning_rate, dm.alpha_threshold, dm.conservative_weight) == (3e-4, 5.0, 10.0)
    assert dm.initial_alpha == pytest.approx(math.e) and dm.reward_scaler is None

    other = make_agent("cql", get_task("walker2d-medium-expert"), _spec("walker2d-medium-expert", 17, 6))
    assert other.d3rlpy_config(STATS).reward_scaler is None  # type: ignore[attr-defined]


def test_iql_td3_bc_d3rlpy_configs_carry_the_corl_values() -> None:
    iql = make_agent("iql", get_task("hopper-medium"), _spec("hopper-medium")).d3rlpy_config(STATS)  # type: ignore[attr-defined]
    assert (iql.tau, iql.expectile, iql.weight_temp, iql.max_weight) == (0.001, 0.7, 3.0, 100.0)
    assert (iql.actor_learning_rate, iql.critic_learning_rate, iql.batch_size) == (3e-4, 3e-4, 256)
    assert iql.reward_scaler.multiplier == 1000.0 and iql.observation_scaler is not None
    assert iql.actor_optim_factory.lr_scheduler_factory.T_max == STATS.schedule_steps
    me = make_agent("iql", get_task("hopper-medium-expert"), _spec("hopper-medium-expert")).d3rlpy_config(STATS)  # type: ignore[attr-defined]
    assert (me.tau, me.expectile, me.weight_temp, me.reward_scaler) == (0.005, 0.5, 6.0, None)

    td3 = make_agent(
        "td3+bc", get_task("halfcheetah-medium-replay"), _spec("halfcheetah-medium-replay", 17, 6)
    ).d3rlpy_config(STATS)  # type: ignore[attr-defined]
    assert (td3.alpha, td3.target_smoothing_sigma, td3.target_smoothing_clip, td3.update_actor_interval) == (
        2.5,
        0.2,
        0.5,
        2,
    )
    assert (td3.actor_learning_rate, td3.critic_learning_rate, td3.tau, td3.batch_size) == (3e-4, 3e-4, 0.005, 256)
    assert _encoder_units(td3.actor_encoder_factory) == [256, 256] and td3.observation_scaler is not None

    bc = make_agent("bc", get_task("walker2d-medium-expert"), _spec("walker2d-medium-expert", 17, 6)).d3rlpy_config(
        STATS
    )  # type: ignore[attr-defined]
    assert (bc.learning_rate, bc.batch_size, bc.policy_type) == (3e-4, 256, "deterministic")
    assert _encoder_units(bc.encoder_factory) == [256, 256] and bc.observation_scaler is not None


def test_corl_presets_train() -> None:
    """The reward-normalised and Lagrange presets build and step in d3rlpy (a few small updates)."""
    data = TrajectoryDataset.from_episodes(make_episodes(8, obs_dim=4, act_dim=2, seed=1), name="synthetic")
    logs: list[dict[str, float]] = []
    for agent_name, task in (("cql", "hopper-medium"), ("cql", "pointmaze-umaze"), ("iql", "hopper-medium")):
        agent = make_agent(agent_name, get_task(task), _spec(task, 4, 2), {"batch_size": 16, "hidden_units": [32]})
        logs.clear()
        agent.fit(data, 3, on_log=lambda _s, m: logs.append(m))
        assert logs and all(np.isfinite(v) for v in logs[-1].values())


def test_reward_scale_needs_a_return_range() -> None:
    agent = make_agent("cql", get_task("hopper-medium"), _spec("hopper-medium"))
    flat = DataStats(obs_mean=STATS.obs_mean, obs_std=STATS.obs_std, return_min=5.0, return_max=5.0)
    with pytest.raises(BenchError, match="reward_return_scale needs episodes with different returns"):
        agent.d3rlpy_config(flat)  # type: ignore[attr-defined]
    with pytest.raises(BenchError, match="reward_return_scale must be positive"):
        CQLConfig(reward_return_scale=0.0)
    with pytest.raises(BenchError, match="exclude each other"):
        CQLConfig(soft_q_backup=True, max_q_backup=True)


# --- deviations ---------------------------------------------------------------------------------------------


def _deviations(agent: str, task: str) -> str:
    config = make_config(agent, get_task(task))
    assert isinstance(config, D3rlpyConfig)
    return " | ".join(config.deviations())


def test_deviations_list_what_d3rlpy_cannot_express() -> None:
    cql = _deviations("cql", "hopper-medium")
    for detail in ("mean", "samples a'", "orthogonal", "log_std_offset", "pre-update", "log alpha"):
        assert detail in cql, detail
    sampled = " | ".join(CQLConfig(soft_q_backup=True).deviations())
    assert "backup_entropy" in sampled and "samples a'" not in sampled
    assert "samples a'" not in " | ".join(CQLConfig(max_q_backup=True).deviations())

    assert "deterministic actor" in _deviations("iql", "hopper-medium")
    assert "deterministic actor" in _deviations("iql", "hopper-medium-replay")
    walker = _deviations("iql", "walker2d-medium")
    assert "deterministic actor" not in walker and "sigmoid" in walker and "pre-update" in walker

    assert "0-based" in _deviations("td3+bc", "hopper-medium")
    assert _deviations("bc", "hopper-medium") == ""
    assert "epsilon 0.001" in _deviations("cql", "breakout-medium")
    assert _deviations("bc", "breakout-medium") == ""


def _corl_normalise(dataset: TrajectoryDataset) -> tuple[np.ndarray, float]:
    """CORL's preprocessing re-stated: `compute_mean_std(eps=1e-3)` + `normalize_states`, and
    `modify_reward`'s factor max_episode_steps / (max return - min return) over episodes cut at a terminal or
    a timeout (D4RL locomotion times out at its 1000-step limit, where CORL cuts too)."""
    obs = dataset.observations.astype(np.float64)
    normalised = (obs - obs.mean(0)) / (obs.std(0) + 1e-3)
    returns, ret = [], 0.0
    for r, t, o in zip(dataset.rewards, dataset.terminals, dataset.timeouts, strict=True):
        ret += float(r)
        if t or o:
            returns.append(ret)
            ret = 0.0
    return normalised, CORL_REWARD_NORM_STEPS / (max(returns) - min(returns))


def test_scalers_match_corl_preprocessing() -> None:
    """After one update on a dataset, the fitted d3rlpy scalers transform states and rewards as CORL does."""
    data = TrajectoryDataset.from_episodes(make_episodes(10, obs_dim=4, act_dim=2, seed=2), name="synthetic")
    agent = make_agent(
        "cql", get_task("hopper-medium"), _spec("hopper-medium", 4, 2), {"batch_size": 8, "hidden_units": [16]}
    )
    agent.fit(data, 1)
    algo = agent._algo  # type: ignore[attr-defined]
    states, factor = _corl_normalise(data)
    got = algo.observation_scaler.transform_numpy(data.observations.astype(np.float64))
    assert np.allclose(got, states, atol=1e-6)
    rewards = data.rewards.astype(np.float64)
    assert np.allclose(algo.reward_scaler.transform_numpy(rewards), rewards * factor, rtol=1e-6)
