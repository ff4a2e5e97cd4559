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

A script alone repeats itself, where D4RL's human demonstrations differ in pace and path; so each episode
also draws a style (`draw_style`): a pace factor for its moves, pauses before some subtasks, a sideways
offset and a different distance for each pre-grasp point, a grasp error, and now and then a fumbled grasp
(closing short of the handle and reopening). Some of these make a subtask fail, as human attempts do.

Episode recipes and sizes follow D4RL: `complete` keeps 19 episodes that satisfy all four targets (failed
attempts are discarded, as D4RL's 19 demonstrations all succeed); `partial` fills about 156K steps, a few
percent of its episodes planned on exactly the four targets and the rest on four subtasks that include others
(hinge cabinet, top and bottom burner), so they satisfy at most three targets; `mixed` has only the latter.
Rewards are D4RL's and Minari's Markovian labels (`data_env`): each step earns the number of target subtasks
satisfied in the state it reaches, nothing removed, so a file built here and a D4RL or Minari file of the
same task mean the same thing. Evaluation still scores each subtask once (bench.envs.kitchen).

The package is split by job: `recipe` (sizes, mixtures, episode styles), `controller` (IK and actions),
`planner` (handles, scene, arm starts), `scripts` (per-subtask commands) and `build` (episodes, labels,
measurements, the dataset build; `python -m bench.data.build.kitchen` runs its `main`).
"""

from bench.data.build.kitchen.build import (
    D4RL_DIFFERENCES,
    KitchenDemonstrator,
    ScriptedEpisode,
    build_kitchen,
    controller_success,
    data_env,
    episode_plan,
    main,
    targets_satisfied,
    uniformity,
)
from bench.data.build.kitchen.recipe import (
    CANONICAL_ORDER,
    EpisodeStyle,
    KitchenRecipe,
    SubtaskStyle,
    draw_style,
    kitchen_recipe,
)

__all__ = [
    "CANONICAL_ORDER",
    "D4RL_DIFFERENCES",
    "EpisodeStyle",
    "KitchenDemonstrator",
    "KitchenRecipe",
    "ScriptedEpisode",
    "SubtaskStyle",
    "build_kitchen",
    "controller_success",
    "data_env",
    "draw_style",
    "episode_plan",
    "kitchen_recipe",
    "main",
    "targets_satisfied",
    "uniformity",
]
