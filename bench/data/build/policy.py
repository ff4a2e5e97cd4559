"""The SAC behaviour policy: creation from settings, and batched action sampling with explicit noise.

Actions are computed from the policy's Gaussian (mean and log-std from the network) with noise drawn from
numpy generators the caller owns, rather than from torch's global generator. That keeps each rollout episode
a function of its own seed only, and keeps evaluation from disturbing the training random stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data.build.config import SacSettings


def create_sac(settings: SacSettings, obs_dim: int, act_dim: int, seed: int) -> Any:
    """A d3rlpy SAC with freshly initialised networks (initialisation seeded by `seed`)."""
    from bench.legacy_gym import quiet_legacy_gym

    quiet_legacy_gym()
    import d3rlpy

    torch.manual_seed(seed)
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(settings.hidden_units))
    algo = d3rlpy.algos.SACConfig(
        batch_size=settings.batch_size,
        gamma=settings.gamma,
        tau=settings.tau,
        actor_learning_rate=settings.actor_learning_rate,
        critic_learning_rate=settings.critic_learning_rate,
        temp_learning_rate=settings.temp_learning_rate,
        initial_temperature=settings.initial_temperature,
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
    ).create(device="cpu:0")
    algo.create_impl((obs_dim,), act_dim)
    return algo


def policy_module(algo: Any) -> torch.nn.Module:
    module: torch.nn.Module = algo.impl.modules.policy
    return module


def save_policy(algo: Any, path: Path) -> None:
    torch.save(policy_module(algo).state_dict(), path)


def load_policy(algo: Any, path: Path) -> None:
    policy_module(algo).load_state_dict(torch.load(path, map_location="cpu"))


class GaussianActor:
    """Batched actions from a SAC policy: tanh(mu + std * eps), or tanh(mu) plus clipped Gaussian noise."""

    def __init__(self, algo: Any) -> None:
        self._policy = policy_module(algo)

    def mean_logstd(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = self._policy(torch.as_tensor(np.asarray(obs, np.float32)))
        return out.mu.numpy().astype(np.float64), out.logstd.numpy().astype(np.float64)

    def sample(self, obs: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """The SAC policy's own stochastic action for standard-normal draws `eps` (one row per observation)."""
        mu, logstd = self.mean_logstd(obs)
        out: np.ndarray = np.tanh(mu + np.exp(logstd) * eps).astype(np.float32)
        return out

    def noisy_mean(self, obs: np.ndarray, eps: np.ndarray, noise_std: float) -> np.ndarray:
        """The deterministic action plus Gaussian noise of std `noise_std`, clipped to the action box."""
        mu, _ = self.mean_logstd(obs)
        out: np.ndarray = np.clip(np.tanh(mu) + noise_std * eps, -1.0, 1.0).astype(np.float32)
        return out
