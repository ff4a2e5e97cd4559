"""Reacher2d: the LaMo paper's sparse-reward reaching task, rebuilt on the `mujoco` package.

The official environment (`srzer/LaMo-2023` at commit 3e4fcc8, `data/data_generation_PPO/envs/reacher_2d.py`
with its model `data/data_generation_PPO/envs/assets/reacher_2d.xml`; an identical copy lives under
`experiment-d4rl/`) runs on mujoco-py and gym 0.23, which no longer install cleanly. This module restates it
on the `mujoco` package with the official model's physics:
- planar two-link arm, no gravity, timestep 0.01 s with RK4 and 15 substeps, so one step is 0.15 s;
- joints: armature 0.05, damping 1; shoulder unlimited, elbow limited to [-2, 3.5] rad;
- links: capsules of radius 0.05 at density 1000 (shoulder 0.6 long, about 5.24 kg; elbow 0.4 long, about
  3.67 kg; inertia from the geoms), fingertip 0.45 along the elbow link;
- body frames: the shoulder body is rotated +0.785 rad about z and the elbow body -0.785 rad, so at
  q = (0, 0) the fingertip is at about (0.874, 0.424);
- actuators: motors with gear 1, control range [-1, 1] (actions are also clipped to [-1, 1], as the
  official `step` does); full torque from rest turns the shoulder by pi in about 38 steps;
- observation (12): sin q (2), cos q (2), dt * qdot (2), fingertip xy (2), target xy (2), fingertip - target (2);
- reward 1 when the L1 distance from fingertip to target is below 0.1, else 0 (no shaping);
- 100-step episodes with no early termination (the time limit truncates; the official data script runs
  `max_ep_len = 100`);
- reset: joint angles uniform in [-2, 2], velocities 0; target uniform in [-1.5, 1.5]^2, resampled until its
  radius lies in [0.5, 1.0].

One difference: the official model has contacts on (a fixed root capsule overlapping the shoulder, and a
floor). Here all geoms have contacts off, which is faster; tests/test_reacher2d.py drives this environment
and a model restating the official XML with its contacts, and checks that the fingertip paths agree to 1e-6
(the only contact, root vs shoulder link, acts through the shoulder's hinge axis, so it exerts no torque).
The official target is a body whose position is moved; here it is a site, which has no physics either.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

FRAME_SKIP = 15
TIMESTEP = 0.01
DT = FRAME_SKIP * TIMESTEP
SUCCESS_L1 = 0.1
EPISODE_STEPS = 100

_XML = f"""
<mujoco model="reacher2d">
  <compiler angle="radian" inertiafromgeom="true"/>
  <option timestep="{TIMESTEP}" integrator="RK4" gravity="0 0 0"/>
  <default>
    <joint armature="0.05" damping="1" limited="true"/>
    <geom contype="0" conaffinity="0" density="1000" condim="1" friction="1 0.1 0.1" rgba="0.5 0.5 0.7 1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 -0.15" size="2 2 0.1" rgba="0.9 0.9 0.9 1"/>
    <geom name="root" type="capsule" fromto="0 0 -0.1 0 0 0.1" size="0.1"/>
    <body name="shoulder" pos="0 0 -0.075" axisangle="0 0 1 0.785">
      <joint name="shoulder" type="hinge" axis="0 0 1" limited="false"/>
      <geom name="shoulder" type="capsule" fromto="0 0 0 0.6 0 0" size="0.05"/>
      <body name="elbow" pos="0.6 0 0" axisangle="0 0 1 -0.785">
        <joint name="elbow" type="hinge" axis="0 0 1" range="-2.0 3.5"/>
        <geom name="elbow" type="capsule" fromto="0 0 0 0.4 0 0" size="0.05"/>
        <site name="fingertip" type="sphere" pos="0.45 0 0" size="0.05" rgba="0.6 0.3 0.3 1"/>
      </body>
    </body>
    <site name="target" pos="-0.5 0 -0.1" size="0.1" rgba="0.4 0.7 0.4 1"/>
  </worldbody>
  <actuator>
    <motor joint="shoulder" ctrllimited="true" ctrlrange="-1 1" gear="1"/>
    <motor joint="elbow" ctrllimited="true" ctrlrange="-1 1" gear="1"/>
  </actuator>
</mujoco>
"""


class Reacher2dEnv(gym.Env[np.ndarray, np.ndarray]):
    """The paper's Reacher2d (see module docstring); registered as `bench/Reacher2d-v0`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / DT)}  # noqa: RUF012

    def __init__(self, render_mode: str | None = None) -> None:
        self.model = mujoco.MjModel.from_xml_string(_XML)
        self.data = mujoco.MjData(self.model)
        self.render_mode = render_mode
        self._tip = self.model.site("fingertip").id
        self._target_site = self.model.site("target").id
        self.target = np.zeros(2)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(12,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._renderer: mujoco.Renderer | None = None

    def _obs(self) -> np.ndarray:
        q, qd = self.data.qpos[:2], self.data.qvel[:2]
        tip = self.data.site_xpos[self._tip][:2]
        return np.concatenate([np.sin(q), np.cos(q), DT * qd, tip, self.target, tip - self.target])

    def _success(self) -> bool:
        tip = self.data.site_xpos[self._tip][:2]
        return bool(np.abs(tip - self.target).sum() < SUCCESS_L1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:2] = self.np_random.uniform(-2.0, 2.0, size=2)
        # Respect the elbow's joint range: the paper samples [-2, 2], inside [-2, 3.5].
        while True:
            goal = self.np_random.uniform(-1.5, 1.5, size=2)
            if 0.5 <= np.linalg.norm(goal) <= 1.0:
                break
        self.target = goal
        self.model.site_pos[self._target_site][:2] = goal
        mujoco.mj_forward(self.model, self.data)
        return self._obs(), {"success": self._success()}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.data.ctrl[:] = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        success = self._success()
        return self._obs(), float(success), False, False, {"success": success}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, 240, 240)
        self._renderer.update_scene(self.data)
        out: np.ndarray | None = self._renderer.render()
        return out

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
