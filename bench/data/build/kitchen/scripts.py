"""The demonstration scripts: per-subtask command sequences (reach, grasp, operate, release), styled per episode."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from bench.data.build.kitchen.controller import CLOSE, OPEN, Command, Pose, _axis_rotation, _rotvec
from bench.data.build.kitchen.planner import (
    _FINGERS,
    _FINGERS_OPEN,
    _RELEASE_STEPS,
    _UP,
    DONE_DISTANCE,
    HANDLES,
    KETTLE_GOAL,
    KETTLE_LIFT,
    KETTLE_STANDOFF,
    Planner,
    Scene,
    _aim,
)
from bench.data.build.kitchen.recipe import SubtaskStyle
from bench.envs.kitchen import subtask_distance

# Most a straight-line move turns the gripper per step (rad).
_TURN_PER_STEP = 0.15

Script = Iterator[Command]


def _reach(
    scene: Scene,
    pose: Pose,
    grip: float,
    tol: float,
    max_steps: int,
    rot_tol: float = 0.1,
    phase: str = "reach",
    speed: float = 0.03,
    precise: bool = False,
) -> Script:
    """Move the site along a straight line (and the shortest rotation) to `pose`, at most `speed` m per step.

    The commanded pose leads the site by one increment, so the joint targets stay near the current joints
    and the path stays straight even for long moves (the arm would otherwise swing along a joint-space line).
    """
    pace = scene.style.speed
    speed, max_steps = speed * pace, math.ceil(max_steps / min(1.0, pace))
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
    for _ in range(math.ceil(max_steps / min(1.0, scene.style.speed))):
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


def _pause(scene: Scene, steps: int) -> Script:
    """Hesitate: hold the current pose with the gripper open."""
    pose = scene.ctrl.pose()
    yield from _hold(pose, OPEN, steps, "pause")


def _fumble(scene: Scene) -> Script:
    """A missed grasp: close on nothing short of the handle, then open again."""
    pose = scene.ctrl.pose()
    yield from _hold(pose, CLOSE, 4, "fumble")
    for _ in range(_RELEASE_STEPS):
        yield Command(pose[0], pose[1], OPEN, phase="fumble")
        if float(scene.data.qpos[_FINGERS].min()) > _FINGERS_OPEN:
            break


def _pre_grasp(pos: np.ndarray, rot: np.ndarray, standoff: float, st: SubtaskStyle) -> np.ndarray:
    """The pre-grasp point of this episode's approach path: backed off along the approach axis, moved sideways."""
    out: np.ndarray = pos - standoff * st.standoff * rot[:, 2] + rot[:, :2] @ np.asarray(st.lateral)
    return out


def _off_centre(pose: Pose, st: SubtaskStyle) -> np.ndarray:
    """Where this episode's imperfect grasp puts the end-effector site."""
    out: np.ndarray = pose[0] + pose[1] @ np.asarray(st.grasp)
    return out


def articulated(scene: Scene, planner: Planner, name: str) -> Script:
    """Grasp the handle (or push), lead the grasp along the joint to its goal, let go, back off."""
    h = HANDLES[name]
    st = scene.style.of(name)
    yield from _pause(scene, st.pause)
    flip, start = planner.start(scene, name, st.start_choice)
    grip = OPEN if h.push_offset is None else CLOSE
    yield from _transit(scene, start, OPEN)
    pos, rot = scene.grasp(h, flip)
    yield from _reach(scene, (_pre_grasp(pos, rot, h.standoff, st), rot), grip, 0.02, 20, 0.15, phase="pre-grasp")
    if st.fumble and grip == OPEN:
        yield from _fumble(scene)
    pos, rot = scene.grasp(h, flip)
    pos = _off_centre((pos, rot), st)
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
        target = scene.moved(_off_centre(scene.grasp(h, flip), st), h.joint, delta)
        yield Command(
            target,
            scene.turned(rot, h.joint, h.follow * (q + delta - q0)),
            CLOSE,
            phase="operate",
            stiffness=h.stiffness,
        )

    def held() -> Pose:  # the handle's live position, the gripper's own orientation (it may lag the handle's)
        return scene.grasp(h, flip)[0], scene.ctrl.pose()[1]

    yield from _back_off(scene, h.standoff, 15, None if h.push_offset is not None else held)


def kettle(scene: Scene, planner: Planner) -> Script:
    """Lift the kettle by its top handle, carry it to the top-left burner, set it down and let go."""
    st = scene.style.of("kettle")
    yield from _pause(scene, st.pause)
    flip, start = planner.start(scene, "kettle", st.start_choice)
    yield from _transit(scene, start, OPEN)
    (site, rot), _ = scene.kettle_grasp(flip)
    yield from _reach(scene, (_pre_grasp(site, rot, KETTLE_STANDOFF, st), rot), OPEN, 0.02, 20, 0.15, phase="pre-grasp")
    if st.fumble:
        yield from _fumble(scene)
    (site, rot), offset = scene.kettle_grasp(flip)
    site = _off_centre((site, rot), st)
    offset = offset + rot @ np.asarray(st.grasp)
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
