"""Hyperparameters of the d3rlpy-backed baselines (CQL, BC, IQL, TD3+BC and the discrete CQL/BC for Atari).

The LaMo paper does not list its own settings for these baselines, so every default here is taken from a
standard reference implementation, and each field says which one:

- "d3rlpy repro": the reproduction scripts in d3rlpy's repository (`reproductions/offline/<algo>.py`),
  which are the settings d3rlpy's own D4RL numbers were produced with. Quoted from memory of those scripts
  (the scripts are not part of the installed package, so they could not be re-read offline); where memory is
  shaky the comment says "unsure".
- "CORL": the single-file implementations in CORL (`algorithms/offline/{cql,any_percent_bc,iql,td3_bc}.py`),
  default `TrainConfig` values for D4RL gym-MuJoCo, also from memory.
- "d3rlpy default": the default of the installed d3rlpy 2.8.1 config class (read from its source), used where
  no reproduction script exists.

Where the references disagree, the d3rlpy reproduction wins because the algorithm code itself is d3rlpy's;
the CORL value is noted next to it.

`AgentConfig.learning_rate` is the critic's learning rate for the actor-critic agents (CQL, IQL, TD3+BC), and
the only learning rate for BC and the discrete agents; the actor has its own `actor_learning_rate`.
`weight_decay` is Adam's L2 term on actor and critic (every reference uses plain Adam, so it defaults to 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents.base import AgentConfig
from bench.errors import BenchError
from bench.tasks import Task

#: D4RL gym-MuJoCo locomotion domains: the ones the locomotion-specific reference settings apply to.
LOCOMOTION_DOMAINS = frozenset({"hopper", "halfcheetah", "walker2d"})


@dataclass(frozen=True)
class D3rlpyConfig(AgentConfig):
    """Fields every d3rlpy-backed agent shares."""

    batch_size: int = 256
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    gamma: float = 0.99
    # Hidden layer widths of every MLP (actor, critics, value function) on vector observations. Pixel
    # observations always use the Nature-DQN convolutional encoder instead.
    hidden_units: tuple[int, ...] = (256, 256)
    # Standardize vector observations with the dataset's mean and std (d3rlpy StandardObservationScaler).
    # Pixel observations are always divided by 255 (PixelObservationScaler) regardless of this flag.
    standardize_observations: bool = False

    def __post_init__(self) -> None:
        # TOML and CLI overrides give lists; keep the frozen config hashable and comparable.
        object.__setattr__(self, "hidden_units", tuple(int(h) for h in self.hidden_units))
        if self.batch_size < 1:
            raise BenchError(f"{type(self).__name__}.batch_size must be at least 1, got {self.batch_size}")
        if not self.hidden_units or min(self.hidden_units) < 1:
            raise BenchError(f"{type(self).__name__}.hidden_units must be positive widths, got {self.hidden_units}")
        if not 0.0 <= self.gamma <= 1.0:
            raise BenchError(f"{type(self).__name__}.gamma must lie in [0, 1], got {self.gamma}")
        if self.learning_rate <= 0.0:
            raise BenchError(f"{type(self).__name__}.learning_rate must be positive, got {self.learning_rate}")


@dataclass(frozen=True)
class CQLConfig(D3rlpyConfig):
    """Continuous CQL (SAC-based), as d3rlpy's `reproductions/offline/cql.py`."""

    batch_size: int = 256  # d3rlpy repro 256; CORL 256
    learning_rate: float = 3e-4  # critic; d3rlpy repro 3e-4; CORL qf_lr 3e-4
    actor_learning_rate: float = 1e-4  # d3rlpy repro 1e-4; CORL policy_lr 3e-5
    # SAC temperature ("automatic entropy tuning"): d3rlpy repro 1e-4; CORL tunes it with the policy lr.
    temp_learning_rate: float = 1e-4
    initial_temperature: float = 1.0  # d3rlpy default; CORL starts log_alpha at 0, i.e. 1.0 too
    # 0 keeps the conservative weight fixed (no Lagrange dual): d3rlpy repro 0.0; CORL cql_lagrange=False.
    alpha_learning_rate: float = 0.0
    initial_alpha: float = 1.0  # d3rlpy default (with alpha_learning_rate 0 the multiplier stays 1)
    alpha_threshold: float = 10.0  # d3rlpy default; only matters when alpha is learned
    # The CQL weight: d3rlpy repro uses 10.0 for the "medium" datasets and 5.0 otherwise (see
    # `cql_default_config`); CORL cql_alpha 10.0.
    conservative_weight: float = 5.0
    n_action_samples: int = 10  # d3rlpy repro 10; CORL cql_n_actions 10
    n_critics: int = 2  # d3rlpy default 2; CORL 2 (twin Q)
    tau: float = 0.005  # d3rlpy default; CORL soft_target_update_rate 5e-3
    gamma: float = 0.99  # d3rlpy default; CORL discount 0.99
    hidden_units: tuple[int, ...] = (256, 256, 256)  # d3rlpy repro [256, 256, 256]; CORL 3 hidden layers of 256
    # d3rlpy repro does not scale observations (CORL normalize=True does).
    standardize_observations: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_action_samples < 1:
            raise BenchError(f"CQLConfig.n_action_samples must be at least 1, got {self.n_action_samples}")


@dataclass(frozen=True)
class BCConfig(D3rlpyConfig):
    """Continuous behaviour cloning with a deterministic MLP policy and MSE loss.

    As CORL `any_percent_bc.py` run on the whole dataset (frac 1.0): d3rlpy has no BC reproduction script
    that I know of, and its library defaults (lr 1e-3, batch 100) are not tuned for D4RL.
    """

    batch_size: int = 256  # CORL 256 (d3rlpy default 100)
    learning_rate: float = 3e-4  # CORL 3e-4 (d3rlpy default 1e-3)
    hidden_units: tuple[int, ...] = (256, 256)  # CORL actor: 2 hidden layers of 256, tanh output
    standardize_observations: bool = True  # CORL normalize=True
    policy_type: Literal["deterministic", "stochastic"] = "deterministic"  # CORL deterministic MSE; d3rlpy default

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy_type not in ("deterministic", "stochastic"):
            raise BenchError(
                f"BCConfig.policy_type must be 'deterministic' or 'stochastic', got {self.policy_type!r}"
            )


@dataclass(frozen=True)
class IQLConfig(D3rlpyConfig):
    """Implicit Q-Learning, as d3rlpy's `reproductions/offline/iql.py` (which follows the IQL paper)."""

    batch_size: int = 256  # d3rlpy repro 256; CORL 256
    learning_rate: float = 3e-4  # Q and V functions; d3rlpy repro 3e-4; CORL qf_lr = vf_lr = 3e-4
    actor_learning_rate: float = 3e-4  # d3rlpy repro 3e-4; CORL 3e-4
    # Cosine decay of the actor lr to 0 over the first `fit` call's steps: d3rlpy repro
    # (CosineAnnealingLRFactory with T_max = its 1M training steps); CORL and the IQL paper do the same.
    actor_cosine_schedule: bool = True
    expectile: float = 0.7  # d3rlpy repro 0.7; CORL iql_tau 0.7
    weight_temp: float = 3.0  # beta, inverse temperature; d3rlpy repro 3.0; CORL beta 3.0
    max_weight: float = 100.0  # advantage-weight clip; d3rlpy repro 100; CORL EXP_ADV_MAX 100
    n_critics: int = 2  # d3rlpy default
    tau: float = 0.005  # d3rlpy default; CORL 0.005
    gamma: float = 0.99
    hidden_units: tuple[int, ...] = (256, 256)  # d3rlpy default [256, 256]; CORL 2 hidden layers of 256
    # Dropout in the actor MLP: 0 for locomotion; 0.1 for Franka Kitchen (IQL paper's kitchen config; from
    # memory, unsure).
    actor_dropout: float = 0.0
    # Rewards are multiplied by reward_return_scale / (max episode return - min episode return) when set
    # (d3rlpy ReturnBasedRewardScaler). d3rlpy repro and the IQL paper do this with 1000 for D4RL locomotion
    # only (CORL: normalize_reward=True does the same there); None leaves rewards as they are.
    reward_return_scale: float | None = None
    standardize_observations: bool = False  # d3rlpy repro and the IQL paper: none (CORL normalize=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.expectile < 1.0:
            raise BenchError(f"IQLConfig.expectile must lie in (0, 1), got {self.expectile}")
        if not 0.0 <= self.actor_dropout < 1.0:
            raise BenchError(f"IQLConfig.actor_dropout must lie in [0, 1), got {self.actor_dropout}")


@dataclass(frozen=True)
class TD3PlusBCConfig(D3rlpyConfig):
    """TD3+BC, as d3rlpy's `reproductions/offline/td3_plus_bc.py` (which follows the TD3+BC paper)."""

    batch_size: int = 256  # d3rlpy repro 256; CORL 256
    learning_rate: float = 3e-4  # critic; d3rlpy repro 3e-4; CORL 3e-4
    actor_learning_rate: float = 3e-4  # d3rlpy repro 3e-4; CORL 3e-4
    alpha: float = 2.5  # BC trade-off; d3rlpy repro 2.5; CORL 2.5
    target_smoothing_sigma: float = 0.2  # policy noise; d3rlpy repro 0.2; CORL 0.2
    target_smoothing_clip: float = 0.5  # noise clip; d3rlpy repro 0.5; CORL 0.5
    update_actor_interval: int = 2  # policy delay; d3rlpy repro 2; CORL policy_freq 2
    n_critics: int = 2
    tau: float = 0.005  # d3rlpy default; CORL 0.005
    gamma: float = 0.99
    hidden_units: tuple[int, ...] = (256, 256)  # d3rlpy default [256, 256]; CORL 2 hidden layers of 256
    standardize_observations: bool = True  # d3rlpy repro StandardObservationScaler; CORL normalize=True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.update_actor_interval < 1:
            raise BenchError(
                f"TD3PlusBCConfig.update_actor_interval must be at least 1, got {self.update_actor_interval}"
            )


@dataclass(frozen=True)
class DiscreteCQLConfig(D3rlpyConfig):
    """Discrete CQL (double-DQN based) for Atari, as d3rlpy's `reproductions/offline/discrete_cql.py`.

    Remembered from that script, unsure on the details: lr 5e-5, Adam eps 1e-2/32, batch 32, alpha 4,
    quantile-regression Q head with 200 quantiles, target update every 2000 steps, rewards clipped to [-1, 1].
    """

    batch_size: int = 32
    learning_rate: float = 5e-5
    adam_eps: float = 1e-2 / 32
    alpha: float = 4.0  # conservative weight (d3rlpy default 1.0)
    n_quantiles: int = 200  # 0 = plain mean Q head
    target_update_interval: int = 2000  # d3rlpy default 8000
    n_critics: int = 1
    clip_rewards: bool = True
    gamma: float = 0.99
    # For vector observations only (the synthetic tests); pixel observations use the Nature-DQN encoder.
    hidden_units: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_quantiles < 0 or self.target_update_interval < 1:
            raise BenchError(
                "DiscreteCQLConfig needs n_quantiles >= 0 and target_update_interval >= 1, got "
                f"{self.n_quantiles} and {self.target_update_interval}"
            )


@dataclass(frozen=True)
class DiscreteBCConfig(D3rlpyConfig):
    """Discrete behaviour cloning (cross-entropy) for Atari.

    d3rlpy defaults (lr 1e-3, batch 100, beta 0.5 logit penalty): there is no d3rlpy reproduction script or
    CORL file for discrete BC that I know of.
    """

    batch_size: int = 100
    learning_rate: float = 1e-3
    beta: float = 0.5
    hidden_units: tuple[int, ...] = (256, 256)  # vector observations only


def cql_default_config(task: Task) -> CQLConfig | DiscreteCQLConfig:
    if task.action_kind == "discrete":
        return DiscreteCQLConfig()
    # d3rlpy repro: conservative_weight 10 when the dataset name contains "medium-v0" (hopper/halfcheetah/
    # walker2d-medium), else 5. Applied here to the locomotion "medium" datasets; the other tasks' "medium"
    # names (reacher2d, pointmaze) are not D4RL locomotion data and keep 5.
    weight = 10.0 if task.domain in LOCOMOTION_DOMAINS and task.dataset == "medium" else 5.0
    return CQLConfig(conservative_weight=weight)


def bc_default_config(task: Task) -> BCConfig | DiscreteBCConfig:
    return DiscreteBCConfig() if task.action_kind == "discrete" else BCConfig()


def iql_default_config(task: Task) -> IQLConfig:
    if task.action_kind == "discrete":
        raise BenchError(f"iql has continuous actions only; task {task.name} has discrete actions")
    if task.domain in LOCOMOTION_DOMAINS:
        return IQLConfig(reward_return_scale=1000.0)
    if task.domain == "kitchen":
        # IQL paper's kitchen setting (beta 0.5, actor dropout 0.1); from memory, unsure.
        return IQLConfig(weight_temp=0.5, actor_dropout=0.1)
    return IQLConfig()


def td3_plus_bc_default_config(task: Task) -> TD3PlusBCConfig:
    if task.action_kind == "discrete":
        raise BenchError(f"td3+bc has continuous actions only; task {task.name} has discrete actions")
    return TD3PlusBCConfig()
