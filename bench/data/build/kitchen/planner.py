"""Where each subtask is grasped, the scene read by MuJoCo names, and the arm start planned per subtask."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from bench.data.build.kitchen.controller import (
    _IK_ACCEPT,
    ArmController,
    Pose,
    _axis_rotation,
    _frame,
)
from bench.data.build.kitchen.recipe import _PLAN_STREAM, EpisodeStyle, KitchenRecipe
from bench.envs.kitchen import ALL_SUBTASKS, SUBTASK_GOALS

# An articulated subtask is driven until its joints are this close to the goal (the environment counts it
# done below 0.3), then let go.
DONE_DISTANCE = 0.1
# A planned start must reach every waypoint at least one of these margins inside the joint limits; wider
# margins leave more room for noise.
_PLAN_MARGINS = (0.3, 0.15, 0.05)
# Radians of extra joint travel worth one radian more margin when choosing where a subtask starts.
_MARGIN_PRICE = 2.0


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
    "microwave": Handle(
        "microhandle_site",
        "microwave",
        float(SUBTASK_GOALS["microwave"][0]),
        (0.0, 1.0, 0.0),
        (1.0, 0.0, 0.0),
        depth=-0.005,
        follow=0.0,
    ),
    "slide cabinet": Handle(
        "slide_site",
        "slide_cabinet",
        float(SUBTASK_GOALS["slide cabinet"][0]),
        (0.0, 1.0, 0.0),
        (1.0, 0.0, 0.0),
        step=0.06,
    ),
    "hinge cabinet": Handle(
        "hinge_site2",
        "right_hinge_cabinet",
        float(SUBTASK_GOALS["hinge cabinet"][1]),
        (0.0, 1.0, 0.0),
        (1.0, 0.0, 0.0),
        step=0.4,
        follow=0.3,
        stiffness=2.0,
        max_steps=50,
    ),
    "light switch": Handle(
        "light_site",
        "light_switch",
        float(SUBTASK_GOALS["light switch"][0]),
        (-0.39, 0.921, 0.0),
        (0.921, 0.39, 0.0),
        step=0.8,
        follow=0.0,
        stiffness=3.0,
        push_offset=(0.046, 0.0, 0.0),
    ),
    "bottom burner": Handle(
        "knob2_site",
        "knob_Joint_2",
        float(SUBTASK_GOALS["bottom burner"][0]),
        (0.0, 0.0, -1.0),
        (1.0, 0.0, 0.0),
        depth=-0.028,
        step=0.2,
    ),
    "top burner": Handle(
        "knob4_site",
        "knob_Joint_4",
        float(SUBTASK_GOALS["top burner"][0]),
        (0.0, 0.0, -1.0),
        (1.0, 0.0, 0.0),
        depth=-0.028,
        step=0.2,
    ),
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
        self.style = EpisodeStyle()

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
        out: np.ndarray = anchor + _axis_rotation(axis, delta) @ (pos - anchor)
        return out

    def turned(self, rot: np.ndarray, joint: str, angle: float) -> np.ndarray:
        """An orientation turned about a hinge's axis (unchanged for a slide)."""
        _, axis, _, kind = self.joint(joint)
        if kind == mujoco.mjtJoint.mjJNT_SLIDE:
            return rot
        out: np.ndarray = _axis_rotation(axis, angle) @ rot
        return out

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
            return [
                (site - KETTLE_STANDOFF * rot[:, 2], rot),
                (site, rot),
                (site + KETTLE_LIFT * _UP, rot),
                (KETTLE_GOAL + offset + KETTLE_LIFT * _UP, rot),
                (KETTLE_GOAL + offset + 0.01 * _UP, rot),
            ]
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

    def start(self, scene: Scene, name: str, choice: float = 0.0) -> tuple[bool, np.ndarray]:
        """A start of low cost: the largest joint move to get there, plus a price on thin margins.

        `choice` in [0, 1) picks among the starts within the recipe's `start_slack` of the cheapest (0: the
        cheapest), so episodes reach a subtask in different arm postures and gripper half-turns.
        """
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
        options.sort(key=lambda o: (o[0], o[1]))
        near = [o for o in options if o[0] <= options[0][0] + self.recipe.start_slack]
        _, flip, q = near[min(len(near) - 1, int(choice * len(near)))]
        return flip, q


def _aim(h: Handle, q: float) -> float:
    """The joint value a subtask drives towards: just past where it stops (DONE_DISTANCE short of the goal).

    Near some goals the arm is at the edge of its reach, so the planner and the operate loop both stop
    at this value instead of the goal itself.
    """
    return h.goal - math.copysign(0.5 * DONE_DISTANCE, h.goal - q)
