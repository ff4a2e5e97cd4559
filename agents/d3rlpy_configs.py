"""Hyperparameters of the d3rlpy-backed baselines (CQL, BC, IQL, TD3+BC and the discrete CQL/BC for Atari).

The LaMo paper (App. B) says "all codes of the baselines are directly from Tarasov et al. (2022) (CORL) and
Seno & Imai (2022) (d3rlpy)" and lists no settings of its own. So:

- Continuous control (Kitchen, Reacher2d, PointMaze, Hopper, HalfCheetah, Walker2d) follows CORL's
  single-file implementations and their per-dataset configs: `tinkoff-ai/CORL` at commit `CORL_COMMIT`,
  `algorithms/offline/{cql,iql,td3_bc,any_percent_bc}.py` (the `TrainConfig` defaults and the algorithm code)
  and `configs/offline/<algo>/<domain>/<dataset>.yaml`. The algorithms themselves run on d3rlpy 2.8.1; each
  config's `deviations()` lists what d3rlpy cannot express.
- Atari (discrete actions) follows d3rlpy's own reproduction scripts (`takuseno/d3rlpy` at `D3RLPY_COMMIT`,
  the v2.8.1 release, `reproductions/offline/discrete_cql.py`); the paper's Atari baselines (CQL, BCQ, NFQ,
  BC, Table 2) are exactly d3rlpy's discrete algorithms, and CORL has no discrete-action code.

Per-dataset values live in the `*_PRESETS` tables below, keyed by task name, each entry naming the file it
was read from. Tasks without a CORL yaml take the algorithm file's `TrainConfig` defaults (which for every
algorithm here equal its gym-MuJoCo yamls) unless a closer reference exists, and their entry says so.

Every value was re-read from the pinned files while writing this module (no value is from memory).
Scaler statistics (observation mean/std, the episode-return range used for reward scaling) are computed
from the dataset the agent is trained on, i.e. after the harness's subsampling; CORL computes them from the
full D4RL dataset it trains on. Both normalise states as (s - mean) / (std + 1e-3) (CORL `compute_mean_std`
eps 1e-3; d3rlpy `StandardObservationScaler` eps 1e-3).

`AgentConfig.learning_rate` is the critic's learning rate for the actor-critic agents (CQL, IQL, TD3+BC), and
the only learning rate for BC and the discrete agents; the actor has its own `actor_learning_rate`.
`weight_decay` is Adam's L2 term on actor and critic (every reference uses plain Adam, so it defaults to 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from agents.base import AgentConfig
from bench.errors import BenchError
from bench.tasks import Task

#: D4RL gym-MuJoCo locomotion domains.
LOCOMOTION_DOMAINS = frozenset({"hopper", "halfcheetah", "walker2d"})

#: `tinkoff-ai/CORL` commit every CORL citation here refers to (what `fetch github:tinkoff-ai/CORL` gave).
CORL_COMMIT = "6afec90484bbf47dee05fdf525e26a3ebe028e9b"
#: `takuseno/d3rlpy` commit of the v2.8.1 release (the installed version).
D3RLPY_COMMIT = "38c34b6f99fde82875e2ad81d1ba1f7a7da34137"
#: `ikostrikov/implicit_q_learning` (the IQL authors' code) commit, for Franka Kitchen.
IQL_AUTHORS_COMMIT = "09d700248117881a75cb21f0adb95c6c8a694cb2"

#: CORL's locomotion reward normalisation, `modify_reward` in cql.py / iql.py: rewards are divided by
#: (max episode return - min episode return) and multiplied by `max_episode_steps`, 1000.
CORL_LOCOMOTION_REWARD_SCALE = 1000.0


def corl(path: str) -> str:
    """A pinned citation of a CORL file."""
    return f"tinkoff-ai/CORL@{CORL_COMMIT[:7]}:{path}"


@dataclass(frozen=True)
class Preset:
    """One task's settings on top of a config class's defaults, and the file they were read from."""

    source: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


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
        scale = getattr(self, "reward_return_scale", None)
        if scale is not None and not scale > 0.0:
            raise BenchError(f"{type(self).__name__}.reward_return_scale must be positive or unset (None), got {scale}")


# CORL `algorithms/offline/cql.py` (`TrainConfig`, `TanhGaussianPolicy`, `FullyConnectedQFunction`,
# `ContinuousCQL`) is the source of every CQLConfig default; "yaml" means the value is the same in all 18
# gym-MuJoCo yamls `configs/offline/cql/{hopper,halfcheetah,walker2d}/*_v2.yaml`.
@dataclass(frozen=True)
class CQLConfig(D3rlpyConfig):
    """Continuous CQL (SAC-based, no Lagrange dual), as CORL's `cql.py` with its gym-MuJoCo yamls."""

    batch_size: int = 256  # CORL batch_size 256 (yaml)
    learning_rate: float = 3e-4  # critics; CORL qf_lr 3e-4 (yaml)
    actor_learning_rate: float = 3e-5  # CORL policy_lr 3e-5 (yaml)
    # SAC temperature, tuned automatically (CORL use_automatic_entropy_tuning true): CORL's alpha optimizer
    # is Adam with lr=policy_lr (`ContinuousCQL.__init__`). Target entropy -|A| in both CORL and d3rlpy.
    temp_learning_rate: float = 3e-5
    initial_temperature: float = 1.0  # CORL log_alpha = Scalar(0.0), so alpha starts at 1
    # Lagrange dual on the conservative weight: 0 = off (CORL cql_lagrange false in the yamls). CORL's dual
    # optimizer uses lr=qf_lr when on (maze2d yamls).
    alpha_learning_rate: float = 0.0
    # The dual multiplier d3rlpy scales the conservative term by. Without Lagrange CORL's term is plain
    # cql_alpha * gap, so it must stay 1; with Lagrange CORL starts log_alpha_prime at Scalar(1.0), i.e. e.
    initial_alpha: float = 1.0
    # CORL cql_target_action_gap: only read with the Lagrange dual. d3rlpy always subtracts
    # conservative_weight * threshold from the conservative term (a constant without the dual), so 0 keeps the
    # logged critic loss equal to CORL's qf_loss.
    alpha_threshold: float = 0.0
    conservative_weight: float = 10.0  # CORL cql_alpha 10.0 (yaml: every gym-MuJoCo dataset)
    n_action_samples: int = 10  # CORL cql_n_actions 10 (yaml); importance-sampled in both (cql_importance_sample)
    n_critics: int = 2  # CORL critic_1, critic_2
    tau: float = 0.005  # CORL soft_target_update_rate 5e-3, target_update_period 1 (yaml)
    gamma: float = 0.99  # CORL discount 0.99 (yaml)
    # CORL q_n_hidden_layers 3 of width 256 (yaml); the actor (`TanhGaussianPolicy`) has 3 hidden layers of
    # 256 hard-coded.
    hidden_units: tuple[int, ...] = (256, 256, 256)
    standardize_observations: bool = True  # CORL normalize true (yaml)
    # Rewards times reward_return_scale / (max episode return - min episode return) when set (d3rlpy
    # ReturnBasedRewardScaler = CORL `modify_reward` with reward_scale 1, reward_bias 0). CORL
    # normalize_reward is false in the gym-MuJoCo yamls except hopper/medium_v2.yaml (see CQL_PRESETS).
    reward_return_scale: float | None = None
    # Q target at s': False = min target Q at the policy's action with no entropy term (CORL backup_entropy
    # false); True = d3rlpy's SAC target, which subtracts temperature * log-prob (CORL backup_entropy true).
    soft_q_backup: bool = False
    # Max over n_action_samples policy actions in the target (CORL cql_max_target_backup, false in the yamls).
    max_q_backup: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_action_samples < 1:
            raise BenchError(f"CQLConfig.n_action_samples must be at least 1, got {self.n_action_samples}")
        if self.soft_q_backup and self.max_q_backup:
            raise BenchError("CQLConfig.soft_q_backup and max_q_backup exclude each other; set at most one")

    def deviations(self) -> list[str]:
        out = []
        if self.soft_q_backup:
            out.append(
                "Q target subtracts temperature * log-prob at s' (d3rlpy soft_q_backup); CORL's yamls "
                "use backup_entropy false"
            )
        elif not self.max_q_backup:
            out.append(
                "Q target evaluates the policy's mean (tanh of the Gaussian mean) action at s'; CORL "
                "samples a' from the policy (d3rlpy's only sampled-action target also adds the entropy "
                "term CORL leaves out)"
            )
        out += [
            "networks use PyTorch's default initialisation; CORL initialises critic hidden layers orthogonally "
            "(gain sqrt 2) and output layers with gain 1e-2 (orthogonal for critics, Xavier for the actor)",
            "policy log-std is the network output clamped to [-20, 2]; CORL adds a learned offset starting at "
            "-1 (log_std_offset) before clamping, so its initial policy is narrower",
            "each step updates the critics, then the temperature and the actor against the updated critics; "
            "CORL computes all three losses from the pre-update networks and then steps them",
            "temperature loss -alpha*(log pi - |A|) is differentiated through alpha; CORL's uses log alpha "
            "(same fixed point, different step size)",
        ]
        return out


@dataclass(frozen=True)
class BCConfig(D3rlpyConfig):
    """Behaviour cloning with a deterministic tanh MLP policy and MSE loss: CORL `any_percent_bc.py` with
    frac 1.0 (every `configs/offline/bc/*.yaml`; `bc_10` is the 10% variant), i.e. plain BC on all data."""

    batch_size: int = 256  # CORL batch_size 256 (yaml)
    learning_rate: float = 3e-4  # CORL `train`: Adam(actor.parameters(), lr=3e-4), hard-coded
    hidden_units: tuple[int, ...] = (256, 256)  # CORL `Actor`: 2 hidden layers of 256, tanh output
    standardize_observations: bool = True  # CORL normalize true (yaml)
    # CORL: deterministic actor, F.mse_loss (d3rlpy BC "deterministic" is the same: tanh head, mean MSE).
    policy_type: Literal["deterministic", "stochastic"] = "deterministic"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy_type not in ("deterministic", "stochastic"):
            raise BenchError(f"BCConfig.policy_type must be 'deterministic' or 'stochastic', got {self.policy_type!r}")

    def deviations(self) -> list[str]:
        if self.policy_type != "deterministic":
            return ["stochastic (Gaussian likelihood) policy; CORL's BC is a deterministic MSE policy"]
        return []


# CORL `algorithms/offline/iql.py` (`TrainConfig`, `GaussianPolicy`, `TwinQ`, `ValueFunction`,
# `ImplicitQLearning`) is the source of every IQLConfig default; "yaml" as for CQL, over
# `configs/offline/iql/{hopper,halfcheetah,walker2d}/*_v2.yaml`.
@dataclass(frozen=True)
class IQLConfig(D3rlpyConfig):
    """Implicit Q-Learning, as CORL's `iql.py` with its per-dataset yamls (see IQL_PRESETS)."""

    batch_size: int = 256  # CORL batch_size 256 (yaml)
    learning_rate: float = 3e-4  # Q and V functions; CORL qf_lr = vf_lr = 3e-4 (yaml)
    actor_learning_rate: float = 3e-4  # CORL actor_lr 3e-4 (yaml)
    # Cosine decay of the actor lr to 0 over the first `fit` call's steps: CORL CosineAnnealingLR(actor
    # optimizer, max_timesteps), i.e. over the whole training run.
    actor_cosine_schedule: bool = True
    expectile: float = 0.7  # CORL iql_tau 0.7 (yaml except hopper-medium-expert)
    weight_temp: float = 3.0  # CORL beta 3.0 (yaml except hopper-medium-expert)
    max_weight: float = 100.0  # CORL EXP_ADV_MAX 100
    n_critics: int = 2  # CORL TwinQ
    tau: float = 0.005  # CORL tau 0.005 (yaml except hopper-medium, hopper-medium-replay)
    gamma: float = 0.99  # CORL discount 0.99 (yaml)
    hidden_units: tuple[int, ...] = (256, 256)  # CORL MLPs: 2 hidden layers of 256 (hidden_dim, n_hidden)
    # Dropout after each hidden layer of the actor. CORL actor_dropout is unset in every gym-MuJoCo and maze2d
    # yaml (its GaussianPolicy ignores it anyway); the IQL authors use 0.1 for Kitchen (IQL_PRESETS).
    actor_dropout: float = 0.0
    # Rewards times reward_return_scale / (max episode return - min episode return) when set (d3rlpy
    # ReturnBasedRewardScaler = CORL `modify_reward` for locomotion). CORL normalize_reward is false in the
    # gym-MuJoCo yamls except hopper medium and medium-replay (IQL_PRESETS).
    reward_return_scale: float | None = None
    standardize_observations: bool = True  # CORL normalize true (yaml)
    # CORL iql_deterministic (true only for hopper medium and medium-replay): a deterministic actor trained
    # with advantage-weighted squared error. d3rlpy's IQL has only a Gaussian actor, so this is recorded and
    # reported by deviations(), not honoured.
    deterministic_actor: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.expectile < 1.0:
            raise BenchError(f"IQLConfig.expectile must lie in (0, 1), got {self.expectile}")
        if not 0.0 <= self.actor_dropout < 1.0:
            raise BenchError(f"IQLConfig.actor_dropout must lie in [0, 1), got {self.actor_dropout}")

    def deviations(self) -> list[str]:
        out = []
        if self.deterministic_actor:
            out.append(
                "Gaussian actor; CORL's yaml for this dataset trains a deterministic actor "
                "(iql_deterministic true), which d3rlpy's IQL cannot build"
            )
        out += [
            "Gaussian actor's state-independent log-std is a parameter squashed by a sigmoid into [-5, 2] "
            "(starting at -1.5); CORL's is a free parameter clamped to [-20, 2], starting at 0",
            "each step updates Q and V together, then the actor with advantages from the updated V; CORL "
            "updates V, then Q (target from the pre-update V), then the actor with pre-update advantages",
        ]
        return out


# CORL `algorithms/offline/td3_bc.py` is the source of every TD3PlusBCConfig default; all 18 gym-MuJoCo yamls
# `configs/offline/td3_bc/{hopper,halfcheetah,walker2d}/*_v2.yaml` and the maze2d ones share these values.
@dataclass(frozen=True)
class TD3PlusBCConfig(D3rlpyConfig):
    """TD3+BC, as CORL's `td3_bc.py` (which follows the TD3+BC paper)."""

    batch_size: int = 256  # CORL batch_size 256 (yaml)
    learning_rate: float = 3e-4  # critics; CORL `train`: Adam lr=3e-4, hard-coded
    actor_learning_rate: float = 3e-4  # CORL `train`: Adam lr=3e-4, hard-coded
    alpha: float = 2.5  # CORL alpha 2.5 (yaml); lambda = alpha / mean|Q1(s, pi(s))| in both
    target_smoothing_sigma: float = 0.2  # CORL policy_noise 0.2 (yaml), times max_action 1
    target_smoothing_clip: float = 0.5  # CORL noise_clip 0.5 (yaml), times max_action 1
    update_actor_interval: int = 2  # CORL policy_freq 2 (yaml); targets also update only then, in both
    n_critics: int = 2  # CORL critic_1, critic_2
    tau: float = 0.005  # CORL tau 0.005 (yaml)
    gamma: float = 0.99  # CORL discount 0.99 (yaml)
    hidden_units: tuple[int, ...] = (256, 256)  # CORL `Actor`, `Critic`: 2 hidden layers of 256
    standardize_observations: bool = True  # CORL normalize true (yaml)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.update_actor_interval < 1:
            raise BenchError(
                f"TD3PlusBCConfig.update_actor_interval must be at least 1, got {self.update_actor_interval}"
            )

    def deviations(self) -> list[str]:
        if self.update_actor_interval == 1:
            return []
        return [
            f"delayed actor updates fall on d3rlpy's 0-based steps 0, {self.update_actor_interval}, ...; "
            f"CORL's on its 1-based iterations {self.update_actor_interval}, "
            f"{2 * self.update_actor_interval}, ... (the first actor update comes one step earlier)"
        ]


@dataclass(frozen=True)
class DiscreteCQLConfig(D3rlpyConfig):
    """Discrete CQL (double DQN based) for Atari, as d3rlpy's `reproductions/offline/discrete_cql.py`
    (takuseno/d3rlpy@38c34b6), every value below read from that script."""

    batch_size: int = 32  # repro batch_size=32
    learning_rate: float = 5e-5  # repro learning_rate=5e-5
    adam_eps: float = 1e-2 / 32  # repro AdamFactory(eps=1e-2 / 32)
    alpha: float = 4.0  # conservative weight; repro alpha=4.0 (d3rlpy default 1.0)
    n_quantiles: int = 200  # repro QRQFunctionFactory(n_quantiles=200); 0 = plain mean Q head
    target_update_interval: int = 2000  # repro target_update_interval=2000 (d3rlpy default 8000)
    n_critics: int = 1  # d3rlpy DiscreteCQLConfig default (the repro does not set it)
    clip_rewards: bool = True  # repro reward_scaler=ClipRewardScaler(-1.0, 1.0)
    gamma: float = 0.99  # d3rlpy default (the repro does not set it)
    # For vector observations only (the synthetic tests); pixel observations use the Nature-DQN encoder
    # (d3rlpy's default encoder for images, as in the repro) with PixelObservationScaler (repro).
    hidden_units: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_quantiles < 0 or self.target_update_interval < 1:
            raise BenchError(
                "DiscreteCQLConfig needs n_quantiles >= 0 and target_update_interval >= 1, got "
                f"{self.n_quantiles} and {self.target_update_interval}"
            )

    def deviations(self) -> list[str]:
        return [
            "evaluation acts greedily; d3rlpy's reproduction evaluates epsilon-greedy with epsilon 0.001 "
            "(EnvironmentEvaluator(env, epsilon=0.001))"
        ]


@dataclass(frozen=True)
class DiscreteBCConfig(D3rlpyConfig):
    """Discrete behaviour cloning (cross-entropy) for Atari.

    d3rlpy's `DiscreteBCConfig` defaults (d3rlpy/algos/qlearning/bc.py at takuseno/d3rlpy@38c34b6): its
    `reproductions/offline/` has no discrete BC script and CORL has no discrete-action code, so the library
    defaults are the only d3rlpy setting there is.
    """

    batch_size: int = 100  # d3rlpy default
    learning_rate: float = 1e-3  # d3rlpy default
    beta: float = 0.5  # d3rlpy default logit penalty
    hidden_units: tuple[int, ...] = (256, 256)  # vector observations only


# --- per-dataset tables -----------------------------------------------------------------------------------

_NO_CORL_KITCHEN = (
    "no CORL yaml for Franka Kitchen at this commit (configs/offline/{algo}/ has antmaze, door, "
    "hammer, pen, relocate, maze2d and gym-MuJoCo only): {file} TrainConfig defaults, equal to "
    "its gym-MuJoCo yamls"
)
_NO_CORL_REACHER = (
    "Reacher2d is LaMo's own environment, absent from CORL: {file} TrainConfig defaults, equal to its gym-MuJoCo yamls"
)
_LOCOMOTION_TASKS = tuple(
    f"{d}-{s}" for d in ("hopper", "halfcheetah", "walker2d") for s in ("medium", "medium-replay", "medium-expert")
)
# PointMaze's Minari datasets (D4RL/pointmaze/*-v2) regenerate D4RL's maze2d-*-v1 (sparse reward) data.
_MAZE_FILES = {"pointmaze-umaze": "umaze_v1.yaml", "pointmaze-medium": "medium_v1.yaml"}


def _yaml(algo: str, task: str) -> str:
    if task in _MAZE_FILES:
        return corl(f"configs/offline/{algo}/maze2d/{_MAZE_FILES[task]}")
    domain, dataset = task.split("-", 1)
    return corl(f"configs/offline/{algo}/{domain}/{dataset.replace('-', '_')}_v2.yaml")


def _presets(algo: str, file: str, special: Mapping[str, Preset]) -> dict[str, Preset]:
    """Every continuous task: its CORL yaml with no overrides (the config defaults are the yamls' values),
    except where `special` says otherwise."""
    table = {t: Preset(_yaml(algo, t)) for t in (*_LOCOMOTION_TASKS, *_MAZE_FILES)}
    for task in ("kitchen-complete", "kitchen-partial"):
        table[task] = Preset(_NO_CORL_KITCHEN.format(algo=algo, file=corl(file)))
    table["reacher2d-medium"] = Preset(_NO_CORL_REACHER.format(file=corl(file)))
    return table | dict(special)


_CQL_LAGRANGE = {"alpha_learning_rate": 3e-4, "initial_alpha": math.e, "alpha_threshold": 5.0}

#: CQL per task. Only hopper-medium normalises rewards among the gym-MuJoCo yamls; the maze2d yamls turn on
#: the Lagrange dual (cql_lagrange true, cql_target_action_gap 5.0, dual lr = qf_lr 3e-4, log-multiplier
#: starting at 1.0); everything else is the same in all of them (cql_alpha 10, policy_lr 3e-5, ...).
CQL_PRESETS: dict[str, Preset] = _presets(
    "cql",
    "algorithms/offline/cql.py",
    {
        "hopper-medium": Preset(_yaml("cql", "hopper-medium"), {"reward_return_scale": CORL_LOCOMOTION_REWARD_SCALE}),
        **{t: Preset(_yaml("cql", t), _CQL_LAGRANGE) for t in _MAZE_FILES},
    },
)

_IQL_HOPPER = {"tau": 0.001, "reward_return_scale": CORL_LOCOMOTION_REWARD_SCALE, "deterministic_actor": True}

#: IQL per task: hopper medium and medium-replay use tau 0.001, reward normalisation and a deterministic actor;
#: hopper-medium-expert beta 6 and iql_tau (expectile) 0.5; the other gym-MuJoCo and maze2d yamls keep the
#: TrainConfig defaults. Kitchen follows the IQL authors' Kitchen config instead of CORL's defaults.
IQL_PRESETS: dict[str, Preset] = _presets(
    "iql",
    "algorithms/offline/iql.py",
    {
        "hopper-medium": Preset(_yaml("iql", "hopper-medium"), _IQL_HOPPER),
        "hopper-medium-replay": Preset(_yaml("iql", "hopper-medium-replay"), _IQL_HOPPER),
        "hopper-medium-expert": Preset(_yaml("iql", "hopper-medium-expert"), {"weight_temp": 6.0, "expectile": 0.5}),
        **{
            t: Preset(
                "no CORL yaml for Franka Kitchen; the IQL authors' "
                f"ikostrikov/implicit_q_learning@{IQL_AUTHORS_COMMIT[:7]}"
                ":configs/kitchen_config.py (temperature 0.5, expectile 0.7, dropout_rate 0.1, lrs 3e-4, 2x256) and "
                "train_offline.py (Kitchen rewards and states are not normalised; cosine actor schedule, batch 256)",
                {"weight_temp": 0.5, "actor_dropout": 0.1, "standardize_observations": False},
            )
            for t in ("kitchen-complete", "kitchen-partial")
        },
    },
)

#: TD3+BC per task: every gym-MuJoCo and maze2d yaml has the TrainConfig values (normalize_reward is true only
#: for antmaze, which is not a task here).
TD3_PLUS_BC_PRESETS: dict[str, Preset] = _presets("td3_bc", "algorithms/offline/td3_bc.py", {})

#: BC per task: every `configs/offline/bc` yaml is frac 1.0 with normalize true (the TrainConfig default frac
#: is 0.1, so the kitchen and reacher2d entries take frac 1.0 from the yamls, as "plain BC").
BC_PRESETS: dict[str, Preset] = _presets(
    "bc",
    "algorithms/offline/any_percent_bc.py",
    {
        t: Preset(
            p.source.replace(
                "TrainConfig defaults, equal to its gym-MuJoCo yamls",
                "TrainConfig with frac 1.0 as in every configs/offline/bc yaml (its default is 0.1)",
            )
        )
        for t, p in _presets("bc", "algorithms/offline/any_percent_bc.py", {}).items()
        if not p.source.endswith(".yaml")
    },
)

_C = TypeVar("_C", bound=D3rlpyConfig)


def _from_presets(base: _C, presets: Mapping[str, Preset], task: Task) -> _C:
    """The task's preset on top of `base`. A task missing from the table (one added after this table was
    written) gets the CORL TrainConfig defaults; `tests/test_corl_configs.py` fails until it has an entry."""
    preset = presets.get(task.name)
    return base if preset is None else base.with_overrides(dict(preset.overrides))


def cql_default_config(task: Task) -> CQLConfig | DiscreteCQLConfig:
    if task.action_kind == "discrete":
        return DiscreteCQLConfig()
    return _from_presets(CQLConfig(), CQL_PRESETS, task)


def bc_default_config(task: Task) -> BCConfig | DiscreteBCConfig:
    if task.action_kind == "discrete":
        return DiscreteBCConfig()
    return _from_presets(BCConfig(), BC_PRESETS, task)


def iql_default_config(task: Task) -> IQLConfig:
    if task.action_kind == "discrete":
        raise BenchError(f"iql has continuous actions only; task {task.name} has discrete actions")
    return _from_presets(IQLConfig(), IQL_PRESETS, task)


def td3_plus_bc_default_config(task: Task) -> TD3PlusBCConfig:
    if task.action_kind == "discrete":
        raise BenchError(f"td3+bc has continuous actions only; task {task.name} has discrete actions")
    return _from_presets(TD3PlusBCConfig(), TD3_PLUS_BC_PRESETS, task)
