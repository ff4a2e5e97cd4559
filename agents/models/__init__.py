"""Model math shared by agents (kept apart from the agents' training and checkpoint plumbing)."""

from agents.models.trajectory import (
    INFERENCE_MODES,
    InferenceMode,
    SlidingKVCache,
    TrajectoryModel,
    TrajectoryModelConfig,
    build_gpt2_backbone,
    disable_position_embeddings,
)

__all__ = [
    "INFERENCE_MODES",
    "InferenceMode",
    "SlidingKVCache",
    "TrajectoryModel",
    "TrajectoryModelConfig",
    "build_gpt2_backbone",
    "disable_position_embeddings",
]
