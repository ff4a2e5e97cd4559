"""The dataset layer: one trajectory format, loaders, subsampling, window sampling and d3rlpy conversion."""

from bench.data.loaders import load_task_dataset
from bench.data.subsample import subsample
from bench.data.trajectories import Episode, TrajectoryDataset

__all__ = ["Episode", "TrajectoryDataset", "load_task_dataset", "subsample"]
