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
    EpisodeStyle,
    KitchenRecipe,
    build_kitchen,
    controller_success,
    draw_style,
    episode_plan,
    kitchen_recipe,
)
from bench.data.info import dataset_summary
from bench.data.kitchen_layout import D4RL_KITCHEN_OBS_DIM, OBS_ELEMENT_INDICES, flatten_kitchen_observation
from bench.data.loaders import load_d4rl_hdf5, load_minari_path
from bench.data.trajectories import TrajectoryDataset
from bench.envs.factory import make_env
from bench.envs.kitchen import (
    ALL_SUBTASKS,
    D4RL_NOISE_KWARGS,
    D4RL_TASK_SETS,
    EVAL_DEVIATIONS,
    SUBTASK_GOALS,
    KitchenD4RLObservation,
    eval_deviations,
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


# D4RL's observation indices of the target subtasks' joints (d4rl/kitchen/kitchen_envs.py OBS_ELEMENT_INDICES).
D4RL_INDICES = {
    "microwave": [22],
    "kettle": [23, 24, 25, 26, 27, 28, 29],
    "light switch": [17, 18],
    "slide cabinet": [19],
}


def _d4rl_goal_slots() -> np.ndarray:
    """D4RL KitchenBase._get_task_goal: zeros, the target subtasks' goals at their observation indices."""
    goal = np.zeros(30, np.float32)
    for name in TARGETS:
        goal[D4RL_INDICES[name]] = D4RL_GOALS[name]
    return goal


def _satisfied(obs: np.ndarray) -> int:
    """D4RL's completion rule restated: a target is satisfied when its joints are within 0.3 of its goal."""
    return sum(float(np.linalg.norm(obs[D4RL_INDICES[n]] - np.asarray(D4RL_GOALS[n]))) < 0.3 for n in TARGETS)


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
        # joints and objects are observed with D4RL's uniform noise of at most 0.1 * pos_noise_amp 0.1 = 0.01.
        np.testing.assert_allclose(qpos[:23], init[:23])
        np.testing.assert_allclose(obs[:9], init[:9], atol=0.0101)
        np.testing.assert_allclose(obs[9:30], qpos[9:30], atol=0.0101)
        assert np.abs(obs[9:30] - qpos[9:30]).max() > 1e-3  # the objects are observed with D4RL's noise
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
    assert 0.01 < target_share < 0.08  # D4RL's partial: a few percent of episodes do the four targets
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
    path = build_kitchen(
        task, "lamo-bench/kitchen/complete-v1", seed=0, transitions=80, progress=False, recipe=KitchenRecipe()
    )
    assert path == tmp_path / "minari" / "lamo-bench" / "kitchen" / "complete-v1"
    data = load_minari_path(path, name=task.name)
    assert data.num_transitions == 80
    assert data.observation_shape == (60,)
    assert data.action_dim == 9
    assert np.all(np.abs(data.actions) <= 1.0)
    assert data.timeouts[-1] and not data.terminals.any()
    # D4RL/Minari labels: each step earns the number of targets satisfied in the state it reaches (restated
    # here from the stored next observation), so once the microwave is open every later step earns 1 again.
    obs, rewards = data.observations, data.rewards
    expected = [_satisfied(obs[t + 1]) for t in range(len(rewards) - 1)]
    np.testing.assert_array_equal(rewards[:-1], expected)
    assert rewards.sum() >= 5.0 and rewards[-1] >= 1.0
    card = json.loads((path / "card.json").read_text())
    assert card["transitions"] == 80 and card["target_subtasks"] == list(TARGETS)
    assert card["scripted_subtask_success"]["microwave"]["completed"] >= 1
    assert "markovian" in card["reward"].lower() and card["differences_from_d4rl"]
    assert card["scripted_episode_length"]["min"] > 80  # the whole first episode, not the 80 steps kept
    kitchen = dataset_summary(task, data)["kitchen"]
    assert kitchen["reward_labels"].startswith("markovian")


def test_sizes_follow_d4rl() -> None:
    recipe = KitchenRecipe()
    # kitchen-complete: 19 demonstrations, so the paper's ratios 0.3 / 0.5 / 1 keep about 6 / 10 / 19.
    assert recipe.complete_episodes == 19
    assert [max(1, round(r * recipe.complete_episodes)) for r in (0.3, 0.5, 1.0)] == [6, 10, 19]
    # kitchen-partial: Minari D4RL/kitchen/partial-v2's 156,560 steps, few episodes planned on the four targets.
    assert recipe.partial_transitions == 156_560 and recipe.partial_target_fraction < 0.1
    assert (recipe.complete_max_steps, recipe.partial_max_steps) == (280, 450)


def test_episode_styles_vary_within_the_recipe() -> None:
    recipe = KitchenRecipe()
    styles = [draw_style(recipe, TARGETS, np.random.default_rng([i, 7])) for i in range(200)]
    assert styles[3] == draw_style(recipe, TARGETS, np.random.default_rng([3, 7]))
    speeds = np.array([s.speed for s in styles])
    assert recipe.speed_min <= speeds.min() and speeds.max() <= recipe.speed_max and speeds.std() > 0.1
    subtasks = [st for s in styles for _, st in s.subtasks]
    assert len(subtasks) == 800 and [name for name, _ in styles[0].subtasks] == list(TARGETS)
    assert 0.15 < np.mean([st.pause > 0 for st in subtasks]) < 0.35
    assert 0.05 < np.mean([st.fumble for st in subtasks]) < 0.2
    assert max(float(np.hypot(*st.lateral)) for st in subtasks) <= recipe.approach_jitter
    assert all(recipe.settle_steps <= s.settle <= recipe.settle_max_steps for s in styles)
    choices = np.array([st.start_choice for st in subtasks])
    assert choices.min() >= 0.0 and choices.max() < 1.0 and choices.std() > 0.2
    assert EpisodeStyle().of("kettle").pause == 0 and EpisodeStyle().speed == 1.0


def test_d4rl_layout_file_agrees_with_minari_flattening(tmp_path: Path) -> None:
    """A small file written the way D4RL's generate_kitchen_datasets.py writes its hdf5 (goal slots relabelled
    with the task's goal, reward = targets satisfied in that observation, last step terminal) loads into the
    same 60-dim layout our Minari flattening gives for the same states."""
    import h5py

    rng = np.random.default_rng(0)
    steps = 6
    qpos = rng.normal(size=(steps, 30)).astype(np.float32)
    qpos[:, [17, 18, 19, 22, *range(23, 30)]] = 0.0  # every target far from its goal ...
    qpos[3:, 22] = -0.74  # microwave open from step 3
    qpos[5, 19] = 0.36  # slide cabinet open at the last step
    d4rl_obs = np.concatenate([qpos, np.tile(_d4rl_goal_slots(), (steps, 1))], axis=1)
    rewards = np.array([_satisfied(o) for o in d4rl_obs], np.float32)
    path = tmp_path / "kitchen-complete-v0.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = d4rl_obs
        f["actions"] = rng.uniform(-1, 1, size=(steps, 9)).astype(np.float32)
        f["rewards"] = rewards
        f["terminals"] = np.arange(steps) == steps - 1
    d4rl = load_d4rl_hdf5(path)
    # gymnasium-robotics' observation: [robot qpos 9, robot qvel 9, object qpos 21, object qvel 20]; Minari
    # stores desired_goal with the task's subtasks only.
    gym_obs = np.concatenate([qpos[:, :9], np.zeros((steps, 9)), qpos[:, 9:30], np.zeros((steps, 20))], axis=1)
    goals = {name: np.tile(SUBTASK_GOALS[name], (steps, 1)) for name in TARGETS}
    minari = flatten_kitchen_observation(gym_obs, goals)
    np.testing.assert_allclose(d4rl.observations, minari, atol=1e-6)
    np.testing.assert_array_equal(d4rl.rewards, [0, 0, 0, 1, 1, 2])
    assert d4rl.num_episodes == 1


def test_evaluation_noise_is_d4rls_and_the_rest_is_listed() -> None:
    task = get_task("kitchen-complete")
    for key, value in D4RL_NOISE_KWARGS.items():
        assert task.env_kwargs[key] == value == 0.1
    env = make_env(task)
    try:
        kitchen = env.unwrapped
        assert kitchen.robot_env.robot_noise_ratio == 0.1  # type: ignore[attr-defined]
        assert kitchen.object_noise_ratio == 0.1  # type: ignore[attr-defined]
        assert kitchen.remove_task_when_completed and kitchen.terminate_on_tasks_completed  # type: ignore[attr-defined]
    finally:
        env.close()
    assert eval_deviations(task.env_kwargs) == list(EVAL_DEVIATIONS)
    loose = eval_deviations({"tasks_to_complete": list(TARGETS)})
    assert len(loose) == len(EVAL_DEVIATIONS) + 2 and "object_noise_ratio=0.0005" in loose[-1]


def test_info_reports_kitchen_labels_and_solves() -> None:
    task = get_task("kitchen-complete")

    def dataset(rewards: list[list[float]]) -> TrajectoryDataset:
        r = np.concatenate([np.asarray(x, np.float32) for x in rewards])
        n = len(r)
        ends = np.cumsum([len(x) for x in rewards]) - 1
        timeouts = np.zeros(n, bool)
        timeouts[ends] = True
        return TrajectoryDataset.from_flat(
            np.zeros((n, 60), np.float32), np.zeros((n, 9), np.float32), r, np.zeros(n, bool), timeouts
        )

    markov = dataset_summary(task, dataset([[0, 1, 1, 2, 3, 4, 4], [0, 1, 1, 1]]))["kitchen"]
    assert markov["reward_labels"].startswith("markovian")
    assert markov["episodes_satisfying_all_targets"] == {"count": 1, "fraction": 0.5}
    assert markov["most_targets_satisfied_at_once"] == {"0": 0, "1": 1, "2": 0, "3": 0, "4": 1}
    once = dataset_summary(task, dataset([[0, 1, 0, 1, 2], [1, 0, 0]]))["kitchen"]
    assert once["reward_labels"].startswith("each subtask once")
    assert once["episodes_satisfying_all_targets"]["count"] == 1
