"""Building the offline datasets here, D4RL-style, when the D4RL/Minari/DQN-replay servers are out of reach.

Recipes: Reacher2d medium (LaMo paper), MuJoCo locomotion medium / medium-replay / medium-expert (D4RL, SAC
behaviour policies), PointMaze umaze / medium (D4RL maze2d: waypoint planner with a PD controller).
"""

from bench.data.build.api import build_dataset
from bench.data.build.config import LocomotionRecipe, MazeRecipe, Phase, ReacherRecipe, SacSettings, with_overrides

__all__ = ["LocomotionRecipe", "MazeRecipe", "Phase", "ReacherRecipe", "SacSettings", "build_dataset", "with_overrides"]
