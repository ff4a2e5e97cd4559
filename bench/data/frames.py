"""Frame stacks read on demand from single frames, the way DQN replay buffers store Atari data.

A pixel dataset keeps one 84x84 frame per transition; the observation at step t is the stack of frames
t-3..t of its own episode. Storing stacks would take four times the memory (a 1M-transition Atari dataset is
7 GB as single frames already). Steps before an episode's fourth repeat its first frame, as gymnasium's
`FrameStackObservation(padding_type="reset")` does at evaluation time (bench.envs.atari).
"""

from __future__ import annotations

import numpy as np


def stack_frames(frames: np.ndarray, index: np.ndarray, episode_first: np.ndarray, n: int) -> np.ndarray:
    """Frame stacks (*index.shape, n, H, W) for transitions `index` whose episodes start at `episode_first`."""
    index = np.asarray(index, np.int64)
    offsets = np.arange(-(n - 1), 1, dtype=np.int64)
    rows = np.maximum(index[..., None] + offsets, np.asarray(episode_first, np.int64)[..., None])
    stacked: np.ndarray = frames[rows]
    return stacked
