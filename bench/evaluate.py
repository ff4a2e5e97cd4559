"""Evaluation engine: roll out an agent's policy in the task's environment, and the paper's score protocol.

`evaluate` runs all episodes of one return-to-go target in parallel (a gymnasium `SyncVectorEnv` of exactly
`episodes` environments, one batched `policy.act` per step) and every target of the task in one call.
`evaluate_sequential` is the LaMo reference code's way (one environment, one episode after another); it gives
the same episodes and serves as the speed baseline.

Start states: episode i of evaluation number e of a trial with seed s starts from env seed
`s * 100_000_000 + e * 10_000 + i` (`episode_seeds`), the same for every agent and every return-to-go target, so
agents are compared on the same initial states, while each evaluation during training sees fresh ones. The
official code does not seed its evaluation environment, so its 8 scored evaluations (20 episodes each) see
about 160 different start states (srzer/LaMo-2023 @3e4fcc8, experiment-d4rl/decision_transformer/evaluation/
evaluate_episodes.py calls `env.reset()` without a seed); reusing one set of 20 at all 8 would score every
checkpoint on the same 20 starts and let their luck enter the final score 8 times. The formula is injective for
fewer than 10,000 evaluations of fewer than 10,000 episodes each.

Score protocol: an agent is evaluated every `eval_every` training steps; its final score is the mean of the
evaluations in the last `report_window` steps of training (the paper: the last 20K of 100K steps), computed per
return-to-go target. A trial keeps every target's final score (`target_summaries`); the report then scores a
task x ratio cell at one target for all seeds, the one with the highest mean final score over seeds (the
authors' protocol, LaMo-2023 issue #1; `bench.report.stats.select_cell_targets`). `select_target` (the best
target of one trial) only names the trial's own best, which is optimistic when used per seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from gymnasium.vector import SyncVectorEnv

from agents.base import Agent, EpisodePolicy
from bench.envs.factory import env_factory, make_env
from bench.errors import BenchError
from bench.tasks import Task

#: Episode seeds of one evaluation are consecutive; at most this many episodes per evaluation.
EPISODE_SEED_STRIDE = 10_000
#: At most this many evaluations per trial; the seeds of one trial span EPISODE_SEED_STRIDE * EVAL_INDEX_STRIDE.
EVAL_INDEX_STRIDE = 10_000

#: Builds a fresh policy for (number of parallel episodes, return-to-go target).
PolicyFactory = Callable[[int, float | None], EpisodePolicy]


@dataclass(frozen=True)
class EvalResult:
    """All episodes of one evaluation at one return-to-go target (None for agents that take no target)."""

    target: float | None
    returns: tuple[float, ...]
    scores: tuple[float, ...]  # task.normalize of each return
    lengths: tuple[int, ...]
    seeds: tuple[int, ...]
    wall_time_s: float
    env_steps: int  # steps of the evaluated episodes (steps of finished envs that auto-reset are not counted)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.scores))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(mean_return=self.mean_return, mean_score=self.mean_score)
        return d


def episode_seeds(seed: int, episodes: int, eval_index: int = 0) -> list[int]:
    """Env seeds of the episodes of evaluation `eval_index` (0-based) of a trial with seed `seed`.

    `seed * EVAL_INDEX_STRIDE * EPISODE_SEED_STRIDE + eval_index * EPISODE_SEED_STRIDE + i` for episode i: a
    function of (trial seed, evaluation index, episode index) alone, never of the agent or the target, and
    distinct for every distinct triple within the strides (see the module docstring for why).
    """
    if episodes < 1 or episodes > EPISODE_SEED_STRIDE:
        raise BenchError(f"episodes must be between 1 and {EPISODE_SEED_STRIDE}, got {episodes}")
    if seed < 0:
        raise BenchError(f"evaluation seed must be non-negative, got {seed}")
    if not 0 <= eval_index < EVAL_INDEX_STRIDE:
        raise BenchError(f"evaluation index must be between 0 and {EVAL_INDEX_STRIDE - 1}, got {eval_index}")
    base = (seed * EVAL_INDEX_STRIDE + eval_index) * EPISODE_SEED_STRIDE
    return [base + i for i in range(episodes)]


def eval_targets(agent: Agent, task: Task, rtg_targets: Sequence[float] | None = None) -> list[float | None]:
    """The targets an agent is evaluated at: the task's (or the given) ones, or just None without conditioning."""
    if not agent.return_conditioned:
        return [None]
    targets = list(task.rtg_targets if rtg_targets is None else rtg_targets)
    if not targets:
        raise BenchError(f"no return-to-go targets to evaluate {agent.name} on {task.name}")
    return [float(t) for t in targets]


def _result(
    task: Task, target: float | None, returns: np.ndarray, lengths: np.ndarray, seeds: list[int], wall: float
) -> EvalResult:
    return EvalResult(
        target=target,
        returns=tuple(float(r) for r in returns),
        scores=tuple(task.normalize(float(r)) for r in returns),
        lengths=tuple(int(x) for x in lengths),
        seeds=tuple(seeds),
        wall_time_s=wall,
        env_steps=int(lengths.sum()),
    )


def run_batched(
    envs: SyncVectorEnv, task: Task, make_policy: PolicyFactory, target: float | None, seeds: list[int]
) -> EvalResult:
    """Run `len(seeds)` episodes in lock step, one per env, until all are done.

    gymnasium 1.0 resets a finished env on the step after it finished; its later rewards are masked out and
    its actions are ignored, so each env contributes exactly the one episode that started from its seed.
    """
    n = len(seeds)
    if envs.num_envs != n:
        raise ValueError(f"{envs.num_envs} envs for {n} episodes")
    start = time.perf_counter()
    obs: Any
    obs, _ = envs.reset(seed=seeds)
    policy = make_policy(n, target)
    returns = np.zeros(n, np.float64)
    lengths = np.zeros(n, np.int64)
    done = np.zeros(n, bool)
    while not done.all():
        actions = policy.act(obs)
        step: tuple[Any, ...] = envs.step(actions)
        obs, terminated, truncated = step[0], step[2], step[3]
        rewards = np.where(done, 0.0, np.asarray(step[1], np.float64))
        returns += rewards
        lengths += ~done
        policy.observe(rewards)
        done |= np.asarray(terminated, bool) | np.asarray(truncated, bool)
    return _result(task, target, returns, lengths, seeds, time.perf_counter() - start)


def evaluate(
    agent: Agent,
    task: Task,
    episodes: int,
    seed: int,
    rtg_targets: Sequence[float] | None = None,
    *,
    eval_index: int = 0,
    policy_factory: PolicyFactory | None = None,
) -> list[EvalResult]:
    """Evaluate `agent` on `episodes` parallel episodes per target; one `EvalResult` per target.

    `seed` is the trial's seed and `eval_index` the number of this evaluation within the trial (0 for the
    first); together they fix the start states (`episode_seeds`). `policy_factory` replaces
    `agent.make_policy` (e.g. to pick an inference mode); it gets the same arguments.
    """
    seeds = episode_seeds(seed, episodes, eval_index)
    targets = eval_targets(agent, task, rtg_targets)
    make_policy = policy_factory or agent.make_policy
    envs = SyncVectorEnv([env_factory(task) for _ in seeds])
    try:
        return [run_batched(envs, task, make_policy, target, seeds) for target in targets]
    finally:
        envs.close()


def evaluate_sequential(
    agent: Agent,
    task: Task,
    episodes: int,
    seed: int,
    rtg_targets: Sequence[float] | None = None,
    *,
    eval_index: int = 0,
    policy_factory: PolicyFactory | None = None,
) -> list[EvalResult]:
    """The reference evaluator: one environment, one episode at a time, a fresh 1-episode policy for each.

    Same episodes (seeds) and results layout as `evaluate`; only slower. Used as the benchmark baseline.
    """
    seeds = episode_seeds(seed, episodes, eval_index)
    make_policy = policy_factory or agent.make_policy
    env = make_env(task)
    results = []
    try:
        for target in eval_targets(agent, task, rtg_targets):
            start = time.perf_counter()
            returns = np.zeros(episodes, np.float64)
            lengths = np.zeros(episodes, np.int64)
            for i, s in enumerate(seeds):
                obs, _ = env.reset(seed=s)
                policy = make_policy(1, target)
                done = False
                while not done:
                    action = policy.act(np.asarray(obs)[None])[0]
                    obs, reward, terminated, truncated, _ = env.step(action)
                    returns[i] += float(reward)
                    lengths[i] += 1
                    policy.observe(np.array([reward], np.float64))
                    done = bool(terminated or truncated)
            results.append(_result(task, target, returns, lengths, seeds, time.perf_counter() - start))
    finally:
        env.close()
    return results


# --- score protocol ---------------------------------------------------------------------------------------

#: (training step, mean normalized score of the evaluation at that step)
Evaluation = tuple[int, float]


def _checked(evals: Sequence[Evaluation]) -> list[Evaluation]:
    if not evals:
        raise BenchError("no evaluations to score")
    return sorted((int(s), float(v)) for s, v in evals)


def final_score(evals: Sequence[Evaluation], report_window: int) -> float:
    """Mean score of the evaluations in the last `report_window` training steps.

    "Last window" is the half-open interval (last step - report_window, last step]: with 100K steps, a 20K
    window and an evaluation every 2.5K, that is the 8 evaluations from 82.5K to 100K (the one at 80K scored
    weights trained before the window). If no evaluation falls inside it, the last one is used.
    """
    ordered = _checked(evals)
    last_step = ordered[-1][0]
    inside = [v for s, v in ordered if s > last_step - report_window]
    return float(np.mean(inside)) if inside else ordered[-1][1]


def last_score(evals: Sequence[Evaluation]) -> float:
    return _checked(evals)[-1][1]


def best_score(evals: Sequence[Evaluation]) -> float:
    return max(v for _, v in _checked(evals))


@dataclass(frozen=True)
class ScoreSummary:
    """One agent-task-seed run scored the paper's way, plus the last and best evaluations for reference."""

    target: float | None
    final: float
    last: float
    best: float


def summarize(evals: Sequence[Evaluation], report_window: int, target: float | None = None) -> ScoreSummary:
    return ScoreSummary(
        target=target, final=final_score(evals, report_window), last=last_score(evals), best=best_score(evals)
    )


def target_summaries(per_target: Mapping[float | None, Sequence[Evaluation]], report_window: int) -> list[ScoreSummary]:
    """Every target's summary, in the mapping's order (the task's target order); `{None: evals}` without one."""
    if not per_target:
        raise BenchError("no targets to select from")
    return [summarize(evals, report_window, target) for target, evals in per_target.items()]


def select_target(per_target: Mapping[float | None, Sequence[Evaluation]], report_window: int) -> ScoreSummary:
    """One trial's best target (highest final score); ties go to the first target in the mapping's order.

    This is a per-seed choice: averaged over seeds it favours lucky seeds. The reported score of a cell uses
    one target for all its seeds instead (module docstring); trials keep `target_summaries` for that.
    """
    return max(target_summaries(per_target, report_window), key=lambda s: s.final)
