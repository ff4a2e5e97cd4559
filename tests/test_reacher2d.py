from __future__ import annotations

import gymnasium as gym
import numpy as np

import bench.envs  # noqa: F401  (registers bench/Reacher2d-v0)
from bench.envs.reacher2d import DT, SUCCESS_L1, Reacher2dEnv


def _rollout(seed: int, steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    env = gym.make("bench/Reacher2d-v0")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(rng.uniform(-1, 1, 2))
        observations.append(obs)
        rewards.append(r)
        assert not term
    assert trunc  # 100-step time limit, no early termination
    return np.array(observations), np.array(rewards)


def test_spaces_and_step_length() -> None:
    env = gym.make("bench/Reacher2d-v0")
    assert env.observation_space.shape == (12,)
    assert env.action_space.shape == (2,)
    assert abs(DT - 0.15) < 1e-12
    assert env.spec is not None and env.spec.max_episode_steps == 100


def test_reset_and_step_are_deterministic_under_a_seed() -> None:
    a_obs, a_rew = _rollout(3)
    b_obs, b_rew = _rollout(3)
    np.testing.assert_array_equal(a_obs, b_obs)
    np.testing.assert_array_equal(a_rew, b_rew)
    c_obs, _ = _rollout(4)
    assert not np.allclose(a_obs[0], c_obs[0])


def test_reset_distribution() -> None:
    env = Reacher2dEnv()
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        q = env.data.qpos[:2]
        assert np.all(np.abs(q) <= 2.0)
        assert 0.5 <= np.linalg.norm(env.target) <= 1.0
        np.testing.assert_allclose(obs[0:2], np.sin(q))
        np.testing.assert_allclose(obs[2:4], np.cos(q))
        np.testing.assert_allclose(obs[8:10], env.target)
        np.testing.assert_allclose(obs[10:12], obs[6:8] - obs[8:10])
        assert np.all(obs[4:6] == 0)


def test_sparse_reward_rule() -> None:
    env = Reacher2dEnv()
    env.reset(seed=0)
    tip = env.data.site_xpos[env._tip][:2].copy()
    # Put the target just inside / just outside the L1 ball around the fingertip; zero action keeps the arm still.
    env.target = tip + np.array([0.6 * SUCCESS_L1, 0.3 * SUCCESS_L1])
    _, r, *_ = env.step(np.zeros(2))
    assert r == 1.0
    env.target = tip + np.array([0.6 * SUCCESS_L1, 0.5 * SUCCESS_L1])
    _, r, *_ = env.step(np.zeros(2))
    assert r == 0.0


def test_actions_are_clipped() -> None:
    env = Reacher2dEnv()
    env.reset(seed=1)
    env.step(np.array([5.0, -7.0]))
    np.testing.assert_array_equal(env.data.ctrl, [1.0, -1.0])
