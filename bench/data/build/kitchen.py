"""Franka Kitchen datasets from a scripted controller (no human demonstrations are available offline here).

The controller reads the simulator state (privileged, as a scripted demonstrator may) and drives the
end-effector site through per-subtask waypoints. A pose target becomes joint positions by damped
least squares on the site's MuJoCo Jacobian (`mj_jacSite`), and the action moves the joints towards them at
a bounded speed (FrankaKitchen's action is a joint velocity for the 7 arm joints and the 2 fingers).
Articulated objects are grasped at their handle sites and driven by commanding the grasp a little further
along the object's own joint each step; the light switch is pushed with the closed gripper; the kettle is
lifted by its top handle and set down on the top-left burner. Before each subtask the arm moves, in joint
space, to a planned start: an arm configuration from which every waypoint of the subtask is reachable by
small inverse-kinematics steps while staying clear of the joint limits (the arm's reach in this kitchen is
tight, and the Franka here starts folded against its shoulder limit), chosen to need the least joint travel.
Gaussian noise is added to every action, and each episode draws its noise from its own seed.

Episode recipes follow D4RL: `complete` solves the task's four subtasks in order; `partial` mixes episodes
that solve exactly the four target subtasks with episodes solving four subtasks that include others
(hinge cabinet, top and bottom burner), so only part of their reward counts; `mixed` has only the latter.
Rewards are the environment's own: the number of target subtasks completed at that step, each counted once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from tqdm import tqdm

from bench.data.build.rollout import NOISE_STREAM, RawEpisode, RolloutStats, take_transitions
from bench.data.build.writer import env_spec, write_dataset
from bench.data.trajectories import TrajectoryDataset
from bench.envs.factory import make_env
from bench.envs.kitchen import ALL_SUBTASKS, SUBTASK_GOALS, make_kitchen_env, subtask_distance, subtasks_done
from bench.errors import BenchError
from bench.overrides import check_value, field_types
from bench.tasks import Task

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
# Order in which an episode's subtasks are done: D4RL's demonstrations mostly went microwave, kettle,
# burners, light, cabinets, but the hinge cabinet goes first here, as it takes the most steps and succeeds
# reliably only from the arm's start posture (last, it failed or ran out of the 280 steps).
CANONICAL_ORDER = ("hinge cabinet", "microwave", "kettle", "bottom burner", "top burner", "light switch",
                   "slide cabinet")
_PLAN_STREAM = 104_729
# An articulated subtask is driven until its joints are this close to the goal (the environment counts it
# done below 0.3), then let go.
DONE_DISTANCE = 0.1
# A planned start must reach every waypoint at least one of these margins inside the joint limits; wider
# margins leave more room for noise.
_PLAN_MARGINS = (0.3, 0.15, 0.05)
# Radians of extra joint travel worth one radian more margin when choosing where a subtask starts.
_MARGIN_PRICE = 2.0
# Pose commands keep the joints this far inside their limits whenever that still reaches the pose.
_RUN_MARGIN = 0.15
# Most a straight-line move turns the gripper per step (rad).
_TURN_PER_STEP = 0.15


@dataclass(frozen=True)
class KitchenRecipe:
    """Sizes and controller settings of the generated kitchen datasets.

    D4RL's human datasets are small (complete: 19 episodes, 3.7K steps); a scripted generator makes more data
    cheap, so the defaults are 100 episodes for `complete` and 500 for `partial`.
    """

    complete_episodes: int = 100
    partial_episodes: int = 500
    mixed_episodes: int = 500
    # Fraction of `partial` episodes that solve exactly the task's four subtasks; the others solve four
    # subtasks drawn from all seven with at least one outside the target set.
    partial_target_fraction: float = 0.25
    # Standard deviation of the Gaussian noise added to every action component (actions lie in [-1, 1]),
    # scaled by `precise_noise_scale` during the fine approach and grasp.
    action_noise: float = 0.05
    precise_noise_scale: float = 0.25
    max_joint_speed: float = 2.0  # rad/s, before the gravity offset
    joint_gain: float = 1.0  # fraction of the remaining joint error commanded per step, before the speed cap
    damping: float = 0.02
    # Random restarts of the inverse kinematics per subtask and margin, searched once for candidate starts.
    ik_restarts: int = 32
    # Steps the arm idles after its last subtask before the episode is cut (as a timeout).
    settle_steps: int = 5


def kitchen_recipe(overrides: dict[str, Any]) -> KitchenRecipe:
    """The default recipe with some fields replaced; unknown names and wrong types are user errors."""
    fields = field_types(KitchenRecipe)
    default = KitchenRecipe()
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise BenchError(f"unknown budget override {key!r} for KitchenRecipe; accepted: {', '.join(fields)}")
        changes[key] = check_value(value, fields[key], f"budget override {key}")
    return dataclasses.replace(default, **changes)


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

    def sync(self) -> None:
        self.data.qpos[:] = self.env_data.qpos
        self.data.qvel[:] = self.env_data.qvel
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def pose(self) -> Pose:
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def joints(self) -> np.ndarray:
        return np.asarray(self.data.qpos[:_ARM], np.float64).copy()

    def descend(self, pos: np.ndarray, rot: np.ndarray, q: np.ndarray, iters: int,
                margin: float = 0.0) -> tuple[np.ndarray, float]:
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
        if peak > self.recipe.max_joint_speed:
            dq *= self.recipe.max_joint_speed / peak
        # The environment turns the action into a position target for stiff but finite position servos; the
        # offset that holds the arm against gravity and contact loads is added so the joints settle on target.
        dq += np.asarray(self.env_data.qfrc_bias[:_ARM]) / self.kp / self.dt
        action = np.empty(9)
        action[:_ARM] = dq / _ACTION_SCALE
        action[_ARM:] = cmd.grip
        return action


@dataclass(frozen=True)
class Handle:
    """Where and how an articulated subtask is grasped, and which joint it drives to which value.

    `approach` (the gripper's pointing direction) and `fingers` (the fingers' travel direction) are given in
    the frame of the body that carries `site`, so they follow the object as it moves.
    """

    site: str
    joint: str
    goal: float
    approach: tuple[float, float, float]
    fingers: tuple[float, float, float]
    depth: float = 0.0  # how far past the site, along `approach`, the end-effector site is put
    standoff: float = 0.10
    step: float = 0.2  # furthest the commanded grasp runs ahead of the joint (rad or m)
    # Share of a hinge's rotation the gripper turns with: a vertical door handle may spin between the
    # fingers, so the gripper need not turn as far as the door.
    follow: float = 1.0
    # Push with the closed gripper from this offset (site body frame) instead of grasping.
    push_offset: tuple[float, float, float] | None = None
    stiffness: float = 1.0  # of the arm while operating (see Command.stiffness)
    max_steps: int = 40  # of the operate phase


HANDLES: dict[str, Handle] = {
    "microwave": Handle("microhandle_site", "microwave", float(SUBTASK_GOALS["microwave"][0]),
                        (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), depth=-0.005, follow=0.0),
    "slide cabinet": Handle("slide_site", "slide_cabinet", float(SUBTASK_GOALS["slide cabinet"][0]),
                            (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), step=0.06),
    "hinge cabinet": Handle("hinge_site2", "right_hinge_cabinet", float(SUBTASK_GOALS["hinge cabinet"][1]),
                            (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), step=0.4, follow=0.3, stiffness=2.0, max_steps=50),
    "light switch": Handle("light_site", "light_switch", float(SUBTASK_GOALS["light switch"][0]),
                           (-0.39, 0.921, 0.0), (0.921, 0.39, 0.0), step=0.8, follow=0.0, stiffness=3.0,
                           push_offset=(0.046, 0.0, 0.0)),
    "bottom burner": Handle("knob2_site", "knob_Joint_2", float(SUBTASK_GOALS["bottom burner"][0]),
                            (0.0, 0.0, -1.0), (1.0, 0.0, 0.0), depth=-0.028, step=0.2),
    "top burner": Handle("knob4_site", "knob_Joint_4", float(SUBTASK_GOALS["top burner"][0]),
                         (0.0, 0.0, -1.0), (1.0, 0.0, 0.0), depth=-0.028, step=0.2),
}
KETTLE_GOAL = SUBTASK_GOALS["kettle"][:3]
_KETTLE_QPOS = slice(23, 26)
_FINGERS = slice(7, 9)
_FINGERS_OPEN = 0.035  # m, each finger (fully open is 0.04)
_RELEASE_STEPS = 8
_UP = np.array([0.0, 0.0, 1.0])
KETTLE_LIFT = 0.12
KETTLE_STANDOFF = 0.12


class Scene:
    """Read access to the controller's synced copy of the simulation, by MuJoCo names."""

    def __init__(self, ctrl: ArmController) -> None:
        self.ctrl = ctrl
        self.model, self.data = ctrl.model, ctrl.data

    def _id(self, kind: Any, name: str) -> int:
        return int(mujoco.mj_name2id(self.model, kind, name))

    def site(self, name: str) -> Pose:
        """A site's position and the orientation of the body that carries it."""
        i = self._id(mujoco.mjtObj.mjOBJ_SITE, name)
        body = int(self.model.site_bodyid[i])
        return self.data.site_xpos[i].copy(), self.data.xmat[body].reshape(3, 3).copy()

    def joint(self, name: str) -> tuple[float, np.ndarray, np.ndarray, int]:
        """(position, world axis, world anchor, MuJoCo joint type) of a one-dof joint."""
        i = self._id(mujoco.mjtObj.mjOBJ_JOINT, name)
        q = float(self.data.qpos[self.model.jnt_qposadr[i]])
        return q, self.data.xaxis[i].copy(), self.data.xanchor[i].copy(), int(self.model.jnt_type[i])

    def grasp(self, h: Handle, flip: bool) -> Pose:
        """The end-effector pose that grasps `h` now; `flip` turns the (symmetric) gripper by half a turn."""
        pos, body_rot = self.site(h.site)
        fingers = body_rot @ np.asarray(h.fingers)
        rot = _frame(body_rot @ np.asarray(h.approach), -fingers if flip else fingers)
        if h.push_offset is not None:
            pos = pos + body_rot @ np.asarray(h.push_offset)
        return pos + h.depth * rot[:, 2], rot

    def moved(self, pos: np.ndarray, joint: str, delta: float) -> np.ndarray:
        """Where a point attached to `joint`'s body goes when the joint moves by `delta`."""
        _, axis, anchor, kind = self.joint(joint)
        if kind == mujoco.mjtJoint.mjJNT_SLIDE:
            return pos + delta * axis
        return anchor + _axis_rotation(axis, delta) @ (pos - anchor)

    def turned(self, rot: np.ndarray, joint: str, angle: float) -> np.ndarray:
        """An orientation turned about a hinge's axis (unchanged for a slide)."""
        _, axis, _, kind = self.joint(joint)
        if kind == mujoco.mjtJoint.mjJNT_SLIDE:
            return rot
        return _axis_rotation(axis, angle) @ rot

    def kettle_grasp(self, flip: bool) -> tuple[Pose, np.ndarray]:
        """The top-handle grasp and its offset from the kettle's position.

        The gripper points forward with the fingers above and below the handle: reaching down from above
        would put the wrist into the burner knobs and the hood when the kettle is set on the back burner.
        """
        site, body_rot = self.site("kettle_site")
        fingers = body_rot @ np.array([0.0, 0.0, 1.0])
        rot = _frame(body_rot @ np.array([0.0, 1.0, 0.0]), -fingers if flip else fingers)
        return (site, rot), site - self.data.qpos[_KETTLE_QPOS]

    def waypoints(self, name: str, flip: bool) -> list[Pose]:
        """The poses a subtask passes through, from the objects' current state (used to plan the arm)."""
        if name == "kettle":
            (site, rot), offset = self.kettle_grasp(flip)
            return [(site - KETTLE_STANDOFF * rot[:, 2], rot), (site, rot), (site + KETTLE_LIFT * _UP, rot),
                    (KETTLE_GOAL + offset + KETTLE_LIFT * _UP, rot), (KETTLE_GOAL + offset + 0.01 * _UP, rot)]
        h = HANDLES[name]
        pos, rot = self.grasp(h, flip)
        q = self.joint(h.joint)[0]
        aim = _aim(h, q)
        poses = [(pos - h.standoff * rot[:, 2], rot), (pos, rot)]
        for frac in (0.25, 0.5, 0.75, 1.0):
            delta = frac * (aim - q)
            poses.append((self.moved(pos, h.joint, delta), self.turned(rot, h.joint, h.follow * delta)))
        return poses


class Planner:
    """Chooses, before each subtask, the gripper half-turn and the arm configuration to start it from.

    A start is valid when every waypoint of the subtask can be reached by following the joints from one
    waypoint to the next while staying a margin inside the joint limits. Candidates come from the current
    joints and from seeded random restarts (searched once per subtask and margin, from the objects' state
    at that first use, normally their rest state); the one needing the least joint travel wins, with
    thinner margins priced in.
    """

    def __init__(self, recipe: KitchenRecipe, seed: int) -> None:
        self.recipe, self.seed = recipe, seed
        self.cache: dict[tuple[str, float], list[tuple[bool, np.ndarray]]] = {}

    @staticmethod
    def _chain(ctrl: ArmController, poses: list[Pose], q: np.ndarray, margin: float) -> np.ndarray | None:
        start = None
        for pos, rot in poses:
            q, err = ctrl.descend(pos, rot, q, 150, margin)
            if err > _IK_ACCEPT:
                return None
            start = q if start is None else start
        return start

    def _restarts(self, scene: Scene, name: str, margin: float) -> list[tuple[bool, np.ndarray]]:
        if (name, margin) not in self.cache:
            ctrl = scene.ctrl
            found = []
            # One random stream per subtask and margin, so the starts do not depend on the order of subtasks.
            stream = [self.seed, _PLAN_STREAM, ALL_SUBTASKS.index(name), _PLAN_MARGINS.index(margin)]
            rng = np.random.default_rng(stream)
            for _ in range(self.recipe.ik_restarts):
                seed = rng.uniform(ctrl.lower, ctrl.upper)
                for flip in (False, True):
                    q = self._chain(ctrl, scene.waypoints(name, flip), seed, margin)
                    if q is not None:
                        found.append((flip, q))
            self.cache[(name, margin)] = found
        return self.cache[(name, margin)]

    def start(self, scene: Scene, name: str) -> tuple[bool, np.ndarray]:
        """The start with the least cost: the largest joint move to get there, plus a price on thin margins."""
        ctrl = scene.ctrl
        here = ctrl.joints()
        options: list[tuple[float, bool, np.ndarray]] = []
        for margin in _PLAN_MARGINS:
            penalty = _MARGIN_PRICE * (_PLAN_MARGINS[0] - margin)
            candidates = list(self._restarts(scene, name, margin))
            for flip in (False, True):
                q = self._chain(ctrl, scene.waypoints(name, flip), here, margin)
                if q is not None:
                    candidates.append((flip, q))
            options += [(float(np.abs(q - here).max()) + penalty, flip, q) for flip, q in candidates]
        if not options:
            # Nothing valid: start from here and let the subtask fail on its own.
            return False, here
        _, flip, q = min(options, key=lambda o: (o[0], o[1]))
        return flip, q


Script = Iterator[Command]


def _aim(h: Handle, q: float) -> float:
    """The joint value a subtask drives towards: just past where it stops (DONE_DISTANCE short of the goal).

    Near some goals the arm is at the edge of its reach, so the planner and the operate loop both stop
    at this value instead of the goal itself.
    """
    return h.goal - math.copysign(0.5 * DONE_DISTANCE, h.goal - q)


def _reach(scene: Scene, pose: Pose, grip: float, tol: float, max_steps: int, rot_tol: float = 0.1,
           phase: str = "reach", speed: float = 0.03, precise: bool = False) -> Script:
    """Move the site along a straight line (and the shortest rotation) to `pose`, at most `speed` m per step.

    The commanded pose leads the site by one increment, so the joint targets stay near the current joints
    and the path stays straight even for long moves (the arm would otherwise swing along a joint-space line).
    """
    start_pos, start_rot = scene.ctrl.pose()
    turn = _rotvec(pose[1] @ start_rot.T)
    length = float(np.linalg.norm(pose[0] - start_pos))
    n = max(1, math.ceil(max(length / speed, float(np.linalg.norm(turn)) / _TURN_PER_STEP)))
    for i in range(max_steps):
        pos, rot = scene.ctrl.pose()
        if i >= n and np.linalg.norm(pos - pose[0]) < tol and np.linalg.norm(_rotvec(pose[1] @ rot.T)) < rot_tol:
            return
        frac = min(1.0, (i + 1) / n)
        norm = float(np.linalg.norm(turn))
        rot_cmd = pose[1] if frac >= 1.0 or norm < 1e-9 else _axis_rotation(turn / norm, frac * norm) @ start_rot
        yield Command(start_pos + frac * (pose[0] - start_pos), rot_cmd, grip, phase=phase, precise=precise)


def _hold(pose: Pose, grip: float, steps: int, phase: str = "hold", precise: bool = False) -> Script:
    for _ in range(steps):
        yield Command(pose[0], pose[1], grip, phase=phase, precise=precise)


def _transit(scene: Scene, joints: np.ndarray, grip: float, max_steps: int = 40, tol: float = 0.08) -> Script:
    """Move the arm in joint space to a planned configuration."""
    for _ in range(max_steps):
        if float(np.abs(scene.ctrl.joints() - joints).max()) < tol:
            return
        pos, rot = scene.ctrl.pose()
        yield Command(pos, rot, grip, joints=joints, phase="transit")


def _back_off(scene: Scene, distance: float, max_steps: int, held: Callable[[], Pose] | None = None) -> Script:
    """Open the gripper until the fingers are apart, then withdraw along the gripper's own axis.

    While opening, the gripper follows `held` (the live grasp pose of what it held), so the handle sits
    centred between the fingers and neither finger drags it along on the way out.
    """
    pos, rot = scene.ctrl.pose()
    for _ in range(_RELEASE_STEPS):
        if float(scene.data.qpos[_FINGERS].min()) > _FINGERS_OPEN:
            break
        if held is not None:
            pos, rot = held()
        yield Command(pos, rot, OPEN, phase="release")
    pos, rot = scene.ctrl.pose()
    yield from _reach(scene, (pos - distance * rot[:, 2], rot), OPEN, 0.015, max_steps, 0.3, phase="back off")


def articulated(scene: Scene, planner: Planner, name: str) -> Script:
    """Grasp the handle (or push), lead the grasp along the joint to its goal, let go, back off."""
    h = HANDLES[name]
    flip, start = planner.start(scene, name)
    grip = OPEN if h.push_offset is None else CLOSE
    yield from _transit(scene, start, OPEN)
    pos, rot = scene.grasp(h, flip)
    yield from _reach(scene, (pos - h.standoff * rot[:, 2], rot), grip, 0.02, 20, 0.15, phase="pre-grasp")
    pos, rot = scene.grasp(h, flip)
    yield from _reach(scene, (pos, rot), grip, 0.01, 25, phase="approach", speed=0.02, precise=True)
    if grip == OPEN:
        yield from _hold((pos, rot), CLOSE, 5, "close", precise=True)
    q0 = scene.joint(h.joint)[0]
    aim = _aim(h, q0)
    for _ in range(h.max_steps):
        if subtask_distance(scene.data.qpos, name) < DONE_DISTANCE:
            break
        q = scene.joint(h.joint)[0]
        delta = float(np.clip(aim - q, -h.step, h.step))
        target = scene.moved(scene.grasp(h, flip)[0], h.joint, delta)
        yield Command(target, scene.turned(rot, h.joint, h.follow * (q + delta - q0)), CLOSE, phase="operate",
                      stiffness=h.stiffness)
    def held() -> Pose:  # the handle's live position, the gripper's own orientation (it may lag the handle's)
        return scene.grasp(h, flip)[0], scene.ctrl.pose()[1]

    yield from _back_off(scene, h.standoff, 15, None if h.push_offset is not None else held)


def kettle(scene: Scene, planner: Planner) -> Script:
    """Lift the kettle by its top handle, carry it to the top-left burner, set it down and let go."""
    flip, start = planner.start(scene, "kettle")
    yield from _transit(scene, start, OPEN)
    (site, rot), _ = scene.kettle_grasp(flip)
    yield from _reach(scene, (site - KETTLE_STANDOFF * rot[:, 2], rot), OPEN, 0.02, 20, 0.15, phase="pre-grasp")
    (site, rot), offset = scene.kettle_grasp(flip)
    # The fingers clear the handle by 7 mm above and below: approach slowly and settle before closing.
    yield from _reach(scene, (site, rot), OPEN, 0.004, 25, phase="approach", speed=0.015, precise=True)
    yield from _hold((site, rot), CLOSE, 6, "close", precise=True)
    yield from _reach(scene, (site + KETTLE_LIFT * _UP, rot), CLOSE, 0.02, 20, phase="lift")
    yield from _reach(scene, (KETTLE_GOAL + offset + KETTLE_LIFT * _UP, rot), CLOSE, 0.02, 40, phase="carry")
    yield from _reach(scene, (KETTLE_GOAL + offset + 0.01 * _UP, rot), CLOSE, 0.015, 20, phase="place")
    yield from _back_off(scene, KETTLE_STANDOFF, 15, lambda: scene.kettle_grasp(flip)[0])
    # Rise above the handle, so the next joint-space move cannot scoop the kettle up between open fingers.
    pos, rot = scene.ctrl.pose()
    yield from _reach(scene, (pos + KETTLE_LIFT * _UP, rot), OPEN, 0.03, 10, 0.3, phase="clear")


def subtask_script(scene: Scene, planner: Planner, name: str) -> Script:
    if name == "kettle":
        return kettle(scene, planner)
    return articulated(scene, planner, name)


# --- episodes ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScriptedEpisode:
    """One scripted episode and which of its planned subtasks were completed (at any step)."""

    episode: RawEpisode
    plan: tuple[str, ...]
    completed: tuple[str, ...]


class KitchenDemonstrator:
    """Runs scripted episodes in one FrankaKitchen environment (created by `make`), reusing its plans."""

    def __init__(self, env: gym.Env[Any, Any], recipe: KitchenRecipe, seed: int) -> None:
        self.env, self.recipe = env, recipe
        self.planner = Planner(recipe, seed)
        self.ctrl = ArmController(env, recipe)
        self.scene = Scene(self.ctrl)

    def run(self, plan: Sequence[str], seed: int, index: int = 0) -> ScriptedEpisode:
        """Reset with `seed` and do the subtasks of `plan` in order; the episode ends when the environment ends
        it (all target subtasks done, or its time limit) or, after the plan and `settle_steps`, with a cut."""
        unknown = [name for name in plan if name not in ALL_SUBTASKS]
        if unknown:
            raise BenchError(f"unknown kitchen subtask(s) {', '.join(unknown)}; accepted: {', '.join(ALL_SUBTASKS)}")
        rng = np.random.default_rng([seed, NOISE_STREAM])
        obs, _ = self.env.reset(seed=seed)
        self.ctrl.sync()
        observations = [np.asarray(obs, np.float32)]
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        terms: list[bool] = []
        truncs: list[bool] = []
        completed: list[str] = []
        ended = False

        def step(cmd: Command) -> bool:
            noise = self.recipe.action_noise * (self.recipe.precise_noise_scale if cmd.precise else 1.0)
            action = np.clip(self.ctrl.act(cmd) + noise * rng.standard_normal(9), -1.0, 1.0).astype(np.float32)
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self.ctrl.sync()
            observations.append(np.asarray(obs, np.float32))
            actions.append(action)
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated) and not terminated)
            completed.extend(n for n in subtasks_done(self.scene.data.qpos, plan) if n not in completed)
            return bool(terminated or truncated)

        for name in plan:
            for cmd in subtask_script(self.scene, self.planner, name):
                ended = step(cmd)
                if ended:
                    break
            if ended:
                break
        if not ended:
            pos, rot = self.ctrl.pose()
            for _ in range(self.recipe.settle_steps):
                if step(Command(pos, rot, OPEN, phase="settle")):
                    break
            truncs[-1] = not terms[-1]  # the scripted episode is over: cut here, as a timeout
        raw = RawEpisode(
            index=index, seed=seed, observations=np.asarray(observations, np.float32),
            actions=np.asarray(actions, np.float32), rewards=np.asarray(rewards, np.float32),
            terminations=np.asarray(terms, bool), truncations=np.asarray(truncs, bool),
        )
        return ScriptedEpisode(raw, tuple(plan), tuple(n for n in plan if n in completed))


def episode_plan(kind: str, targets: Sequence[str], recipe: KitchenRecipe, seed: int, index: int) -> tuple[str, ...]:
    """The subtasks of episode `index` of a `complete`, `partial` or `mixed` dataset, in the order they are done."""
    targets = tuple(targets)
    if kind == "complete":
        return targets
    if kind not in ("partial", "mixed"):
        raise BenchError(f"no kitchen recipe for dataset {kind!r}; accepted: complete, partial, mixed")
    rng = np.random.default_rng([seed, index, _PLAN_STREAM])
    # `mixed` (D4RL): no episode does exactly the target subtasks.
    if kind == "partial" and rng.random() < recipe.partial_target_fraction:
        return targets
    while True:
        chosen = set(rng.choice(len(ALL_SUBTASKS), size=len(targets), replace=False).tolist())
        names = {ALL_SUBTASKS[i] for i in chosen}
        if names != set(targets):
            return tuple(n for n in CANONICAL_ORDER if n in names)


# --- measurement --------------------------------------------------------------------------------------------

def controller_success(subtasks: Sequence[str] = ALL_SUBTASKS, episodes: int = 20, seed: int = 0,
                       recipe: KitchenRecipe | None = None, progress: bool = False) -> dict[str, float]:
    """Fraction of `episodes` single-subtask episodes (env seeds seed+0..) in which each subtask is completed."""
    recipe = recipe or KitchenRecipe()
    env = make_kitchen_env(list(ALL_SUBTASKS), terminate_on_tasks_completed=False)
    try:
        demo = KitchenDemonstrator(env, recipe, seed)
        rates = {}
        for name in subtasks:
            done = 0
            for i in tqdm(range(episodes), desc=f"scripted {name}", disable=not progress, leave=False):
                done += name in demo.run([name], seed + i, i).completed
            rates[name] = done / episodes
        return rates
    finally:
        env.close()


# --- dataset build ------------------------------------------------------------------------------------------

_RECIPE_TEXT = {
    "complete": "every episode does the four target subtasks in order",
    "partial": ("{fraction:.0%} of episodes do the four target subtasks, the others four subtasks drawn from all "
                "seven with at least one outside the targets"),
    "mixed": "every episode does four subtasks drawn from all seven, never exactly the four targets",
}

def build_kitchen(task: Task, dataset_id: str, seed: int, transitions: int | None, progress: bool,
                  recipe: KitchenRecipe) -> Path:
    """Generate the task's scripted dataset (`complete` or `partial`) and write it as a Minari dataset.

    Episode i resets with seed + i. With `transitions`, episodes are collected until that many steps exist
    and the last one is cut there (a timeout).
    """
    started = time.perf_counter()
    targets = tuple(task.env_kwargs.get("tasks_to_complete", ()))
    if task.domain != "kitchen" or not targets:
        raise BenchError(f"task {task.name} is not a kitchen task with tasks_to_complete")
    kind = task.dataset
    n_episodes = {"complete": recipe.complete_episodes, "partial": recipe.partial_episodes}.get(
        kind, recipe.mixed_episodes)
    episode_plan(kind, targets, recipe, seed, 0)  # rejects an unknown dataset kind before any work
    env = make_env(task)
    collected: list[ScriptedEpisode] = []
    steps = 0
    bar = tqdm(total=transitions or n_episodes, desc=f"collect {task.name}", disable=not progress,
               unit="step" if transitions else "episode", mininterval=2.0)
    try:
        demo = KitchenDemonstrator(env, recipe, seed)
        i = 0
        while (steps < transitions) if transitions else (i < n_episodes):
            result = demo.run(episode_plan(kind, targets, recipe, seed, i), seed + i, i)
            collected.append(result)
            steps += len(result.episode)
            bar.update(len(result.episode) if transitions else 1)
            i += 1
    finally:
        bar.close()
        env.close()
    collect_wall = time.perf_counter() - started
    episodes = [c.episode for c in collected]
    if transitions:
        episodes = take_transitions(episodes, transitions)
    stats = RolloutStats(len(collected), steps, collect_wall)

    def card(_: TrajectoryDataset) -> dict[str, Any]:
        attempts: dict[str, list[int]] = {name: [0, 0] for name in ALL_SUBTASKS}
        for c in collected:
            for name in c.plan:
                attempts[name][0] += 1
                attempts[name][1] += name in c.completed
        plans: dict[str, int] = {}
        for c in collected:
            key = ", ".join(c.plan)
            plans[key] = plans.get(key, 0) + 1
        return {
            "recipe": f"D4RL kitchen-{kind} style data from a scripted controller (no human demonstrations): "
                      + _RECIPE_TEXT[kind].format(fraction=recipe.partial_target_fraction),
            "seed": seed,
            "behaviour_policy": {
                "algorithm": ("scripted end-effector waypoints per subtask; damped-least-squares inverse "
                              "kinematics on the end-effector site's MuJoCo Jacobian; joint-velocity actions; "
                              "Gaussian action noise"),
                "hyperparameters": dataclasses.asdict(recipe),
                "training_steps": 0,
            },
            "target_subtasks": list(targets),
            "observation": "D4RL's 60-dim kitchen layout [robot qpos 9, object qpos 21, goal 30]",
            "reward": "number of target subtasks completed at that step (each counted once); return 0-4",
            "plans": plans,
            "scripted_subtask_success": {
                name: {"attempted": a, "completed": c, "rate": round(c / a, 4)}
                for name, (a, c) in attempts.items() if a
            },
            "collection": {
                "episodes_collected": stats.episodes, "env_steps": stats.env_steps,
                "wall_s": round(stats.wall_s, 3), "env_steps_per_s": round(stats.steps_per_s, 1),
                "episode_seeds": "episode i is reset with seed + i",
            },
            "build_wall_time_s": round(time.perf_counter() - started, 3),
        }

    return write_dataset(
        task, dataset_id, episodes, env_spec(task), card,
        description=(f"{task.name}: scripted-controller demonstrations on {task.env_id} in D4RL's 60-dim "
                     f"observation layout ({kind} recipe); see card.json"),
        algorithm_name="scripted waypoint controller (Jacobian IK) + Gaussian action noise",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m bench.data.build.kitchen success|build ...`: measurements behind the dataset card."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.data.build.kitchen")
    sub = parser.add_subparsers(dest="command", required=True)
    p_success = sub.add_parser("success", help="per-subtask success rate of the scripted controller")
    p_success.add_argument("--episodes", type=int, default=20)
    p_success.add_argument("--seed", type=int, default=0)
    p_success.add_argument("--subtasks", default=",".join(ALL_SUBTASKS))
    p_build = sub.add_parser("build", help="build a kitchen dataset (as `bench data build` does)")
    p_build.add_argument("task", help="kitchen-complete or kitchen-partial (a registered kitchen task)")
    p_build.add_argument("--seed", type=int, default=0)
    p_build.add_argument("--transitions", type=int, default=None)
    p_build.add_argument("--episodes", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "success":
        started = time.perf_counter()
        rates = controller_success(args.subtasks.split(","), args.episodes, args.seed, progress=True)
        print(json.dumps({"episodes": args.episodes, "seed": args.seed, "success": rates,
                          "wall_s": round(time.perf_counter() - started, 1)}, indent=2))
        return
    from bench.tasks import get_task

    task = get_task(args.task)
    overrides = {} if args.episodes is None else {f"{task.dataset}_episodes": args.episodes}
    source = next(s for s in task.sources if s.kind == "generated")
    path = build_kitchen(task, source.id, args.seed, args.transitions, True, kitchen_recipe(overrides))
    print(path)


if __name__ == "__main__":
    main()
