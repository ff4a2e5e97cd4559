"""Franka Kitchen end to end: D4RL observation layout, reward, scripted controller, generated dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from bench.data.build.kitchen import (
    CANONICAL_ORDER,
    KitchenRecipe,
    build_kitchen,
    controller_success,
    episode_plan,
    kitchen_recipe,
)
from bench.data.kitchen_layout import D4RL_KITCHEN_OBS_DIM, OBS_ELEMENT_INDICES
from bench.data.loaders import load_minari_path
from bench.envs.factory import make_env
from bench.envs.kitchen import (
    ALL_SUBTASKS,
    D4RL_TASK_SETS,
    SUBTASK_GOALS,
    KitchenD4RLObservation,
    make_kitchen_env,
    subtasks_done,
)
from bench.errors import BenchError
from bench.tasks import get_task

TARGETS = ("microwave", "kettle", "light switch", "slide cabinet")
# D4RL's goal values of the target subtasks (d4rl/kitchen/kitchen_envs.py OBS_ELEMENT_GOALS).
D4RL_GOALS = {
    "microwave": [-0.75],
    "kettle": [-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06],
    "light switch": [-0.69, -0.05],
    "slide cabinet": [0.37],
}


def _set_state(env: gym.Env[Any, Any], qpos: np.ndarray) -> None:
    data = env.unwrapped.data  # type: ignore[attr-defined]
    data.qpos[:] = qpos
    data.qvel[:] = 0.0
    mujoco.mj_forward(env.unwrapped.model, data)  # type: ignore[attr-defined]


def test_task_sets_and_goals_follow_d4rl_and_gymnasium_robotics() -> None:
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS

    for name in ALL_SUBTASKS:
        np.testing.assert_array_equal(SUBTASK_GOALS[name], OBS_ELEMENT_GOALS[name])
    for name, goal in D4RL_GOALS.items():
        np.testing.assert_allclose(SUBTASK_GOALS[name], goal)
    assert D4RL_TASK_SETS["complete"] == D4RL_TASK_SETS["partial"] == TARGETS
    assert D4RL_TASK_SETS["mixed"] == ("microwave", "kettle", "bottom burner", "light switch")
    for name in ("kitchen-complete", "kitchen-partial"):
        assert tuple(get_task(name).env_kwargs["tasks_to_complete"]) == TARGETS


@pytest.mark.slow
def test_evaluation_env_gives_d4rl_observations_at_reset() -> None:
    env = make_env(get_task("kitchen-complete"))
    try:
        assert isinstance(env, KitchenD4RLObservation)
        assert env.observation_space.shape == (D4RL_KITCHEN_OBS_DIM,)
        obs, _ = env.reset(seed=3)
        assert obs.shape == (60,) and obs.dtype == np.float32
        init = env.unwrapped.robot_env.init_qpos  # type: ignore[attr-defined]
        qpos = env.unwrapped.data.qpos  # type: ignore[attr-defined]
        # The reset state is the environment's init_qpos (MuJoCo normalizes the kettle's quaternion); robot
        # joints are observed with uniform noise of at most robot_noise_ratio * pos_noise_amp = 0.001, objects
        # with at most object_noise_ratio * 0.1 = 5e-5.
        np.testing.assert_allclose(qpos[:23], init[:23])
        np.testing.assert_allclose(obs[:9], init[:9], atol=1.1e-3)
        np.testing.assert_allclose(obs[9:30], qpos[9:30], atol=6e-5)
        goal = np.zeros(30)
        for name, value in D4RL_GOALS.items():
            goal[OBS_ELEMENT_INDICES[name]] = value
        np.testing.assert_allclose(obs[30:], goal, atol=1e-6)
        assert env.spec is not None and "FrankaKitchen-v1" in env.spec.to_json()
    finally:
        env.close()


@pytest.mark.slow
def test_observation_mapping_on_a_set_state() -> None:
    env = make_kitchen_env(TARGETS, robot_noise_ratio=0.0, object_noise_ratio=0.0)
    try:
        env.reset(seed=0)
        qpos = np.array(env.unwrapped.robot_env.init_qpos, copy=True)  # type: ignore[attr-defined]
        qpos[:9] = [0.1, -1.5, 1.7, -2.3, 0.2, 0.9, 1.4, 0.03, 0.02]
        qpos[22] = -0.3  # microwave door, short of done (0.45 from its goal, threshold 0.3)
        qpos[19] = 0.25  # slide cabinet
        qpos[17], qpos[18] = -0.42, -0.03  # light switch and its coupled light joint
        qpos[23:30] = [-0.25, 0.6, 1.63, 1.0, 0.0, 0.0, 0.0]  # kettle pose
        _set_state(env, qpos)
        kitchen = env.unwrapped
        # The environment's own observation code path (what reset/step return), then the wrapper's mapping.
        raw = kitchen._get_obs(kitchen.robot_env._get_obs())  # type: ignore[attr-defined]
        flat = env.observation(raw)
        np.testing.assert_allclose(flat[:9], qpos[:9], atol=1e-6)
        np.testing.assert_allclose(flat[9:30], qpos[9:30], atol=1e-6)
        for name, value in D4RL_GOALS.items():
            np.testing.assert_allclose(flat[30:][OBS_ELEMENT_INDICES[name]], value, atol=1e-6)
        others = [i for i in range(30) if not any(i in OBS_ELEMENT_INDICES[n] for n in TARGETS)]
        assert np.all(flat[30:][others] == 0.0)
        assert set(subtasks_done(qpos, TARGETS)) == {"light switch", "slide cabinet", "kettle"}
    finally:
        env.close()


@pytest.mark.slow
def test_reward_counts_completed_subtasks_once() -> None:
    env = make_env(get_task("kitchen-complete"))
    try:
        env.reset(seed=0)
        kitchen = env.unwrapped
        hold = np.zeros(9, np.float32)  # zero joint velocity: the arm holds its pose
        assert env.step(hold)[1] == 0.0

        qpos = np.array(kitchen.data.qpos, copy=True)  # type: ignore[attr-defined]
        qpos[22] = -0.75
        qpos[17], qpos[18] = -0.69, -0.69 / 14  # light switch (coupled 14:1 to the light joint)
        _set_state(env, qpos)
        _, reward, terminated, _, info = env.step(hold)
        assert reward == 2.0 and not terminated
        assert set(info["episode_task_completions"]) == {"microwave", "light switch"}
        assert env.step(hold)[1] == 0.0  # completed subtasks are not rewarded again

        qpos = np.array(kitchen.data.qpos, copy=True)  # type: ignore[attr-defined]
        qpos[19] = 0.37
        qpos[23:30] = D4RL_GOALS["kettle"]
        _set_state(env, qpos)
        _, reward, terminated, _, _ = env.step(hold)
        assert reward == 2.0 and terminated  # all four done: return 4, the expert score of the 0/4 normalization
        assert get_task("kitchen-complete").normalize(4.0) == pytest.approx(100.0)
    finally:
        env.close()


@pytest.mark.slow
def test_scripted_controller_solves_each_subtask() -> None:
    # Three seeded episodes per subtask (the 20-episode figures are in the dataset card and the README).
    rates = controller_success(ALL_SUBTASKS, episodes=3, seed=0)
    assert set(rates) == set(ALL_SUBTASKS)
    for name, rate in rates.items():
        assert rate >= 2 / 3, f"{name}: {rate}"


def test_partial_plans_mix_target_and_other_subtasks() -> None:
    recipe = KitchenRecipe()
    plans = [episode_plan("partial", TARGETS, recipe, 0, i) for i in range(400)]
    assert plans == [episode_plan("partial", TARGETS, recipe, 0, i) for i in range(400)]
    target_share = sum(p == TARGETS for p in plans) / len(plans)
    assert 0.18 < target_share < 0.32
    for plan in plans:
        assert len(set(plan)) == 4
        if plan != TARGETS:
            assert set(plan) != set(TARGETS)
            assert list(plan) == [n for n in CANONICAL_ORDER if n in plan]
    assert episode_plan("complete", TARGETS, recipe, 0, 5) == TARGETS
    assert all(set(episode_plan("mixed", TARGETS, recipe, 0, i)) != set(TARGETS) for i in range(50))
    with pytest.raises(BenchError):
        episode_plan("expert", TARGETS, recipe, 0, 0)


def test_recipe_overrides_reject_bad_names_and_types() -> None:
    assert kitchen_recipe({"complete_episodes": 7, "action_noise": 0}).complete_episodes == 7
    with pytest.raises(BenchError, match="unknown budget override"):
        kitchen_recipe({"episodes": 3})
    with pytest.raises(BenchError, match="wrong type"):
        kitchen_recipe({"complete_episodes": "many"})


@pytest.mark.slow
def test_tiny_build_writes_a_loadable_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMO_BENCH_DATA", str(tmp_path))
    task = get_task("kitchen-complete")
    path = build_kitchen(task, "lamo-bench/kitchen/complete-v0", seed=0, transitions=80, progress=False,
                         recipe=KitchenRecipe())
    assert path == tmp_path / "minari" / "lamo-bench" / "kitchen" / "complete-v0"
    data = load_minari_path(path, name=task.name)
    assert data.num_transitions == 80
    assert data.observation_shape == (60,)
    assert data.action_dim == 9
    assert np.all(np.abs(data.actions) <= 1.0)
    assert data.timeouts[-1] and not data.terminals.any()
    # Rewards are completed-subtask counts: whole numbers, and the microwave is done within 80 steps.
    assert set(np.unique(data.rewards)) <= {0.0, 1.0, 2.0}
    assert data.rewards.sum() >= 1.0
    card = json.loads((path / "card.json").read_text())
    assert card["transitions"] == 80 and card["target_subtasks"] == list(TARGETS)
    assert card["scripted_subtask_success"]["microwave"]["completed"] >= 1
