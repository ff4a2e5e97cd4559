"""Joint-velocity actions that bring the Franka's end-effector site to a pose (damped least squares IK)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from bench.data.build.kitchen.recipe import KitchenRecipe

OPEN, CLOSE = 1.0, -1.0
# FrankaKitchen maps an action a in [-1, 1] to a joint velocity of 2a (rad/s or m/s).
_ACTION_SCALE = 2.0
_ARM = 7
_LIMIT_MARGIN = 0.02
# Inverse kinematics: a radian of orientation error weighs like this many metres; tolerances on the
# weighted error.
_ROT_WEIGHT = 0.1
_IK_TOL = 2e-4
_IK_ACCEPT = 2e-3
# Pose commands keep the joints this far inside their limits whenever that still reaches the pose.
_RUN_MARGIN = 0.15


Pose = tuple[np.ndarray, np.ndarray]  # (position (3,), rotation matrix (3, 3))


@dataclass(frozen=True)
class Command:
    """One step's targets: the end-effector site's pose (or explicit arm joints) and the gripper."""

    pos: np.ndarray
    rot: np.ndarray
    grip: float
    joints: np.ndarray | None = None
    phase: str = ""
    # Fine approach and grasp: the fingers clear a handle by a few millimetres, so less noise is added.
    precise: bool = False
    # Multiplies the joint error commanded per step: above 1 the servos push harder against a resisting
    # object (a stiffer grip on the arm's own target).
    stiffness: float = 1.0


def _rotvec(rot: np.ndarray) -> np.ndarray:
    """Axis * angle of a rotation matrix (the shortest rotation)."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rot, dtype=np.float64).ravel())
    if quat[0] < 0:
        quat = -quat
    s = float(np.linalg.norm(quat[1:]))
    if s < 1e-12:
        return np.zeros(3)
    return quat[1:] / s * (2.0 * math.atan2(s, quat[0]))


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, np.asarray(axis, np.float64), float(angle))
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)


def _frame(approach: np.ndarray, fingers: np.ndarray) -> np.ndarray:
    """Site orientation whose z axis points along `approach` and whose y axis (finger travel) along `fingers`."""
    z = approach / np.linalg.norm(approach)
    y = fingers - z * float(fingers @ z)
    y /= np.linalg.norm(y)
    return np.column_stack([np.cross(y, z), y, z])


class ArmController:
    """Joint-velocity actions that bring the end-effector site to a pose target.

    A new target is solved to joint positions by damped-least-squares iterations on the site's Jacobian,
    started from the current joints, and the action moves the joints towards them at a bounded speed, plus
    the offset the position servos need to hold the arm against gravity. Kinematics run on a private
    `MjData` copied from the environment's state, so the controller never perturbs the simulation.
    """

    def __init__(self, env: gym.Env[Any, Any], recipe: KitchenRecipe) -> None:
        kitchen = env.unwrapped
        robot = kitchen.robot_env  # type: ignore[attr-defined]
        self.model, self.env_data = kitchen.model, kitchen.data  # type: ignore[attr-defined]
        self.data = mujoco.MjData(self.model)
        self.scratch = mujoco.MjData(self.model)
        self.recipe, self.dt = recipe, float(robot.dt)
        self.site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "end_effector")
        self.jacp = np.zeros((3, self.model.nv))
        self.jacr = np.zeros((3, self.model.nv))
        # Usable joint range: the model's limits and the environment's position bounds, less a margin.
        bounds = np.asarray(robot.robot_pos_bound, np.float64)[:_ARM]
        self.lower = np.maximum(self.model.jnt_range[:_ARM, 0], bounds[:, 0]) + _LIMIT_MARGIN
        self.upper = np.minimum(self.model.jnt_range[:_ARM, 1], bounds[:, 1]) - _LIMIT_MARGIN
        self.kp = np.asarray(self.model.actuator_gainprm[:_ARM, 0], np.float64)
        self._key: bytes | None = None
        self._goal = np.zeros(_ARM)
        self.speed = 1.0  # the episode's pace: multiplies the joint-speed cap

    def sync(self) -> None:
        self.data.qpos[:] = self.env_data.qpos
        self.data.qvel[:] = self.env_data.qvel
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def pose(self) -> Pose:
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def joints(self) -> np.ndarray:
        return np.asarray(self.data.qpos[:_ARM], np.float64).copy()

    def descend(
        self, pos: np.ndarray, rot: np.ndarray, q: np.ndarray, iters: int, margin: float = 0.0
    ) -> tuple[np.ndarray, float]:
        """Damped-least-squares iterations from `q`, keeping `margin` inside the joint limits.

        Returns the joints and the remaining weighted pose error.
        """
        d = self.scratch
        d.qpos[:] = self.data.qpos
        lower, upper = self.lower + margin, self.upper - margin
        q = np.clip(q, lower, upper)
        err = np.inf
        for _ in range(iters):
            d.qpos[:_ARM] = q
            mujoco.mj_kinematics(self.model, d)
            mujoco.mj_comPos(self.model, d)
            rot_err = _rotvec(rot @ d.site_xmat[self.site].reshape(3, 3).T)
            e = np.concatenate([pos - d.site_xpos[self.site], rot_err * _ROT_WEIGHT])
            err = float(np.linalg.norm(e))
            if err < _IK_TOL:
                break
            mujoco.mj_jacSite(self.model, d, self.jacp, self.jacr, self.site)
            jac = np.vstack([self.jacp[:, :_ARM], self.jacr[:, :_ARM] * _ROT_WEIGHT])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + self.recipe.damping**2 * np.eye(6), e)
            q = np.clip(q + dq, lower, upper)
        return q, err

    def solve(self, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Joints for a pose near the current ones, kept clear of the joint limits unless only a limit reaches it."""
        q, err = self.descend(pos, rot, self.joints(), 100, _RUN_MARGIN)
        if err > _IK_ACCEPT:
            q_edge, err_edge = self.descend(pos, rot, q, 100)
            if err_edge < err:
                q = q_edge
        return q

    def act(self, cmd: Command) -> np.ndarray:
        if cmd.joints is not None:
            self._goal, self._key = cmd.joints, None
        else:
            key = cmd.pos.tobytes() + cmd.rot.tobytes()
            if key != self._key:
                self._goal = self.solve(cmd.pos, cmd.rot)
                self._key = key
        dq = (self._goal - self.joints()) / self.dt * self.recipe.joint_gain * cmd.stiffness
        peak = float(np.abs(dq).max())
        cap = self.recipe.max_joint_speed * self.speed
        if peak > cap:
            dq *= cap / peak
        # The environment turns the action into a position target for stiff but finite position servos; the
        # offset that holds the arm against gravity and contact loads is added so the joints settle on target.
        dq += np.asarray(self.env_data.qfrc_bias[:_ARM]) / self.kp / self.dt
        action = np.empty(9)
        action[:_ARM] = dq / _ACTION_SCALE
        action[_ARM:] = cmd.grip
        return action
