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


# --- the official physics ---------------------------------------------------------------------------------
# Our own restatement of the official model's physics (srzer/LaMo-2023 at 3e4fcc8,
# data/data_generation_PPO/envs/assets/reacher_2d.xml), written from reading that file: joint defaults
# armature 0.05 / damping 1 / limited, geoms density 1000 with contacts ON (condim 1), a floor and a fixed
# root capsule overlapping the shoulder link, the shoulder body rotated +0.785 rad and the elbow body
# -0.785 rad about z, elbow range [-2, 3.5], motors of gear 1 with control range [-1, 1].
# (`coordinate="local"` is left out: MuJoCo 3 no longer accepts that attribute, and local is its only mode.)
_OFFICIAL_XML = """
<mujoco model="reacher2d-official">
  <compiler angle="radian" inertiafromgeom="true"/>
  <default>
    <joint armature="0.05" damping="1" limited="true"/>
    <geom friction="1 0.1 0.1" density="1000" condim="1" contype="1" conaffinity="1"/>
  </default>
  <option gravity="0 0 0" integrator="RK4" timestep="0.01"/>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 -0.15" size="2 2 0.1" contype="1" conaffinity="1"/>
    <geom name="root" type="capsule" fromto="0 0 -0.1 0 0 0.1" size="0.1"/>
    <body name="shoulder" pos="0 0 -0.075" axisangle="0 0 1 0.785">
      <joint name="shoulder" type="hinge" pos="0 0 0" axis="0 0 1" limited="false" damping="1.0"/>
      <geom name="shoulder" type="capsule" fromto="0 0 0 0.6 0 0" size="0.05" contype="1" conaffinity="1"/>
      <body name="elbow" pos="0.6 0 0" axisangle="0 0 1 -0.785">
        <joint name="elbow" type="hinge" pos="0 0 0" axis="0 0 1" range="-2.0 3.5" damping="1.0"/>
        <geom name="elbow" type="capsule" fromto="0 0 0 0.4 0 0" size="0.05" contype="1" conaffinity="1"/>
        <site type="sphere" pos="0.45 0 0" size="0.05" name="fingertip"/>
      </body>
    </body>
    <body name="target" pos="-0.5 0 -0.1">
      <geom type="cylinder" size="0.1 0.05 0.05" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="shoulder" ctrlrange="-1 1" ctrllimited="true" gear="1"/>
    <motor joint="elbow" ctrlrange="-1 1" ctrllimited="true" gear="1"/>
  </actuator>
</mujoco>
"""


class _Official:
    """The official env's step/reward/observation, restated on the model above (15 substeps per step)."""

    def __init__(self) -> None:
        import mujoco

        self.mj = mujoco
        self.model = mujoco.MjModel.from_xml_string(_OFFICIAL_XML)
        self.data = mujoco.MjData(self.model)
        self.tip = self.model.site("fingertip").id
        self.target = self.model.body("target").id
        self.max_contacts = 0

    def set_state(self, qpos: np.ndarray, goal: np.ndarray) -> None:
        self.mj.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        self.data.qvel[:] = 0.0
        self.model.body_pos[self.target][:2] = goal
        self.mj.mj_forward(self.model, self.data)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        self.data.ctrl[:] = np.clip(action, -1.0, 1.0)
        for _ in range(15):
            self.mj.mj_step(self.model, self.data)
            self.max_contacts = max(self.max_contacts, int(self.data.ncon))
        tip = self.data.site_xpos[self.tip][:2].copy()
        tar = self.data.xpos[self.target][:2]
        return tip, 1.0 if np.abs(tip - tar).sum() < 0.1 else 0.0


def test_model_constants_match_the_official_model() -> None:
    env = Reacher2dEnv()
    m = env.model
    np.testing.assert_allclose(m.dof_armature, [0.05, 0.05])
    np.testing.assert_allclose(m.dof_damping, [1.0, 1.0])
    np.testing.assert_allclose(m.actuator_gear[:, 0], [1.0, 1.0])
    np.testing.assert_allclose(m.geom_size[m.geom("shoulder").id][0], 0.05)
    np.testing.assert_allclose(m.geom_size[m.geom("elbow").id][0], 0.05)
    # Capsules at density 1000: pi r^2 L + 4/3 pi r^3.
    for body, length in (("shoulder", 0.6), ("elbow", 0.4)):
        mass = 1000 * (np.pi * 0.05**2 * length + 4 / 3 * np.pi * 0.05**3)
        np.testing.assert_allclose(m.body_mass[m.body(body).id], mass, rtol=1e-9)
    assert bool(m.jnt_limited[m.joint("elbow").id]) and not bool(m.jnt_limited[m.joint("shoulder").id])
    np.testing.assert_allclose(m.jnt_range[m.joint("elbow").id], [-2.0, 3.5])
    # Body rotations: at q = (0, 0) the fingertip sits at 0.6 (cos .785, sin .785) + (0.45, 0).
    env.reset(seed=0)
    env.data.qpos[:] = 0.0
    import mujoco

    mujoco.mj_forward(env.model, env.data)
    expected = np.array([0.6 * np.cos(0.785) + 0.45, 0.6 * np.sin(0.785)])
    np.testing.assert_allclose(env.data.site_xpos[env._tip][:2], expected, atol=1e-12)


def _reaching_action(env: Reacher2dEnv, obs: np.ndarray) -> np.ndarray:
    """Jacobian-transpose control toward the target with velocity damping (so some steps score 1)."""
    q = env.data.qpos[:2]
    a1, a2 = q[0] + 0.785, q[0] + q[1]
    jac = np.array(
        [
            [-0.6 * np.sin(a1) - 0.45 * np.sin(a2), -0.45 * np.sin(a2)],
            [0.6 * np.cos(a1) + 0.45 * np.cos(a2), 0.45 * np.cos(a2)],
        ]
    )
    return np.asarray(np.clip(8.0 * jac.T @ (-obs[10:12]) - 2.0 * env.data.qvel[:2], -1, 1))


def test_same_fingertip_path_and_rewards_as_the_official_model_with_contacts() -> None:
    """Contacts are off in our env; the official model's contacts (root vs shoulder) change no path."""
    env = Reacher2dEnv()
    official = _Official()
    total_reward = 0.0
    for seed in range(9):
        obs, _ = env.reset(seed=seed)
        official.set_state(env.data.qpos[:2].copy(), env.target)
        rng = np.random.default_rng(100 + seed)
        # Random actions, out of range too so clipping is compared; saturated ones; a reaching controller.
        for _ in range(100):
            if seed < 4:
                action = rng.uniform(-1.5, 1.5, 2)
            elif seed < 6:
                action = np.sign(rng.standard_normal(2))
            else:
                action = _reaching_action(env, obs)
            obs, reward, *_ = env.step(action)
            tip, official_reward = official.step(action)
            np.testing.assert_allclose(obs[6:8], tip, rtol=0, atol=1e-6)
            assert reward == official_reward
            total_reward += reward
        np.testing.assert_allclose(env.data.qpos[:2], official.data.qpos, rtol=0, atol=1e-6)
    # The comparison is not vacuous: the official model does make contacts (root capsule vs shoulder link),
    # and rewards of 1 were compared as well as 0.
    assert official.max_contacts > 0
    assert total_reward > 0
