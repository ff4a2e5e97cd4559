"""Evaluation engine and inference modes: cached vs uncached agreement, seeds, targets and the score protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaModel

from agents.base import Agent, AgentConfig, EpisodePolicy, EvalCallback, LogCallback, TaskSpec
from agents.dt import DTAgent, SequencePolicy
from agents.models.trajectory import InferenceMode, TrajectoryModel, TrajectoryModelConfig
from bench.data.trajectories import TrajectoryDataset
from bench.envs.factory import make_env
from bench.errors import BenchError
from bench.evaluate import (
    PolicyFactory,
    episode_seeds,
    evaluate,
    evaluate_sequential,
    final_score,
    select_target,
    summarize,
    target_summaries,
)
from bench.tasks import Task, get_task

torch.set_num_threads(1)
TASK = get_task("reacher2d-medium")
MODES: tuple[InferenceMode, ...] = ("window", "cached", "banded")


def _open_loop_actions(model: TrajectoryModel, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Actions of each inference mode fed the same observations and rewards: (steps, envs, act_dim) each."""
    rng = np.random.default_rng(seed)
    n, obs_dim = 3, model.config.obs_dim
    obs = rng.normal(size=(steps, n, obs_dim)).astype(np.float32)
    rewards = rng.normal(size=(steps, n))
    out: dict[str, np.ndarray] = {}
    for mode in MODES:
        policy = SequencePolicy(model, n, 50.0, 10.0, np.zeros(obs_dim), np.ones(obs_dim), mode, "cpu")
        acts = []
        for t in range(steps):
            acts.append(policy.act(obs[t]))
            policy.observe(rewards[t])
        out[mode] = np.stack(acts)
    return out


def _check_modes(model: TrajectoryModel) -> None:
    k = model.config.context_length
    acts = _open_loop_actions(model.eval(), steps=4 * k + 3)
    # cached == its uncached reference over a whole episode much longer than K
    np.testing.assert_allclose(acts["cached"], acts["banded"], atol=1e-5, rtol=0)
    # cached == the paper's window while the window has not slid yet ...
    np.testing.assert_allclose(acts["cached"][:k], acts["window"][:k], atol=1e-5, rtol=0)
    # ... and not after: the window re-encodes older tokens with less context (see the module docstring)
    assert np.abs(acts["cached"][k:] - acts["window"][k:]).max() > 1e-6


def test_cached_matches_uncached_gpt2() -> None:
    torch.manual_seed(0)
    _check_modes(TrajectoryModel(TrajectoryModelConfig(obs_dim=6, act_dim=2, context_length=4, max_timestep=10)))


def test_cached_matches_uncached_llama_backbone_with_rope() -> None:
    """A pre-trained-style backbone of another width, with RoPE and grouped KV heads, plugs in unchanged."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    cfg._attn_implementation = "sdpa"
    model = TrajectoryModel(
        TrajectoryModelConfig(
            obs_dim=5, act_dim=3, context_length=3, max_timestep=64, mlp_embedding=True, mlp_head=True
        ),
        backbone=LlamaModel(cfg),
    )
    assert model.hidden_size == 32
    _check_modes(model)


def test_unpadded_window_matches_padded_training_forward() -> None:
    """Evaluation skips the padding training uses; both must give the same last-step action."""
    torch.manual_seed(0)
    k = 5
    model = TrajectoryModel(TrajectoryModelConfig(obs_dim=4, act_dim=2, context_length=k, max_timestep=20)).eval()
    for length in (1, 3, k):
        obs, act = torch.randn(2, length, 4), torch.randn(2, length, 2)
        rtg, ts = torch.randn(2, length, 1), torch.arange(length).expand(2, -1)
        pad = k - length
        padded = [torch.cat((x.new_zeros((2, pad, *x.shape[2:])), x), 1) for x in (obs, act, rtg, ts)]
        mask = torch.cat((torch.zeros(2, pad), torch.ones(2, length)), 1)
        with torch.no_grad():
            full = model(*padded, mask)[:, -1]
            last = model.predict_last(obs, act, rtg, ts)
        torch.testing.assert_close(last, full, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def agent() -> DTAgent:
    return DTAgent(DTAgent.default_config(TASK), TaskSpec.from_task(TASK), seed=0)


class _Recorder:
    """Wraps a policy and keeps the actions it took, to compare modes in closed loop."""

    def __init__(self, policy: EpisodePolicy, log: list[np.ndarray]) -> None:
        self.policy, self.log = policy, log

    def act(self, observations: np.ndarray) -> np.ndarray:
        action = self.policy.act(observations)
        self.log.append(action)
        return action

    def observe(self, rewards: np.ndarray) -> None:
        self.policy.observe(rewards)


@pytest.mark.slow
def test_cached_and_uncached_agree_in_the_environment(agent: DTAgent) -> None:
    logs: dict[str, list[np.ndarray]] = {"cached": [], "banded": []}

    def factory(mode: InferenceMode) -> PolicyFactory:
        return lambda n, target: _Recorder(agent.make_policy(n, target, mode=mode), logs[mode])

    cached = evaluate(agent, TASK, 2, seed=5, rtg_targets=[76.0], policy_factory=factory("cached"))
    banded = evaluate(agent, TASK, 2, seed=5, rtg_targets=[76.0], policy_factory=factory("banded"))
    assert len(logs["cached"]) == 100 > 3 * TASK.context_length
    np.testing.assert_allclose(np.stack(logs["cached"]), np.stack(logs["banded"]), atol=1e-5, rtol=0)
    assert cached[0].returns == banded[0].returns


@pytest.mark.slow
def test_evaluate_all_targets_finite_and_reproducible(agent: DTAgent) -> None:
    first = evaluate(agent, TASK, 3, seed=7)
    assert [r.target for r in first] == list(TASK.rtg_targets)
    for r in first:
        assert len(r.scores) == 3 and all(np.isfinite(r.scores)) and np.isfinite(r.mean_score)
        assert r.lengths == (100, 100, 100) and r.env_steps == 300
        assert r.seeds == (700_000_000, 700_000_001, 700_000_002)
        assert r.scores == tuple(TASK.normalize(x) for x in r.returns)
    again = evaluate(DTAgent(agent.config, agent.spec, seed=0), TASK, 3, seed=7)
    assert [r.returns for r in again] == [r.returns for r in first]
    assert [r.to_dict()["mean_score"] for r in again] == [r.mean_score for r in first]


@pytest.mark.slow
def test_batched_and_sequential_evaluators_agree(agent: DTAgent) -> None:
    batched = evaluate(agent, TASK, 3, seed=2, rtg_targets=[40.0])
    sequential = evaluate_sequential(agent, TASK, 3, seed=2, rtg_targets=[40.0])
    assert batched[0].seeds == sequential[0].seeds
    assert batched[0].lengths == sequential[0].lengths
    np.testing.assert_allclose(batched[0].returns, sequential[0].returns)


class _ZeroAgent(Agent):
    """A target-free agent that always outputs zero torque, for the non-return-conditioned path."""

    name = "zero"

    @classmethod
    def default_config(cls, task: Task) -> AgentConfig:
        return AgentConfig()

    def fit(
        self,
        dataset: TrajectoryDataset,
        steps: int,
        *,
        eval_every: int = 0,
        on_eval: EvalCallback | None = None,
        on_log: LogCallback | None = None,
    ) -> None:
        return None

    def make_policy(self, num_envs: int, rtg_target: float | None) -> EpisodePolicy:
        assert rtg_target is None

        class _Zero:
            def act(self, observations: np.ndarray) -> np.ndarray:
                return np.zeros((num_envs, 2), np.float32)

            def observe(self, rewards: np.ndarray) -> None:
                return None

        return _Zero()

    def save(self, path: Path) -> None:
        return None

    def load(self, path: Path) -> None:
        return None

    def num_params(self) -> tuple[int, int]:
        return 0, 0


def test_agent_without_targets_is_evaluated_once() -> None:
    results = evaluate(_ZeroAgent(AgentConfig(), TaskSpec.from_task(TASK)), TASK, 2, seed=0, rtg_targets=[1.0, 2.0])
    assert [r.target for r in results] == [None]
    assert results[0].env_steps == 200


def test_episode_seeds() -> None:
    assert episode_seeds(0, 3) == [0, 1, 2]
    assert episode_seeds(0, 2, eval_index=1) == [10_000, 10_001]
    assert episode_seeds(2, 2, eval_index=3) == [200_030_000, 200_030_001]  # s * 1e8 + e * 1e4 + i
    for bad in ((0, 0, 0), (-1, 5, 0), (0, 5, -1), (0, 5, 10_000), (0, 10_001, 0)):
        with pytest.raises(BenchError):
            episode_seeds(*bad)


def test_episode_seeds_never_collide_on_a_paper_sized_grid() -> None:
    # Paper: 100K steps evaluated every 2.5K (40 evaluations) x 20 episodes; seeds 0-2, plus room to spare.
    seen = [s for seed in range(10) for e in range(40) for s in episode_seeds(seed, 20, eval_index=e)]
    assert len(set(seen)) == len(seen) == 10 * 40 * 20


def test_each_evaluation_gets_fresh_start_states_shared_by_agents_and_targets(agent: DTAgent) -> None:
    """Different evaluation index -> different start states; same (seed, index) -> same for any agent/target."""
    first = evaluate(agent, TASK, 3, seed=1, eval_index=0)
    second = evaluate(agent, TASK, 3, seed=1, eval_index=1)
    assert len({r.seeds for r in first}) == 1  # every target of an evaluation starts from the same states
    assert set(first[0].seeds).isdisjoint(second[0].seeds)
    other = evaluate(_ZeroAgent(AgentConfig(), TaskSpec.from_task(TASK)), TASK, 3, seed=1, eval_index=1)
    assert other[0].seeds == second[0].seeds

    def starts(seeds: tuple[int, ...]) -> list[np.ndarray]:
        env = make_env(TASK)
        try:
            return [np.asarray(env.reset(seed=s)[0]) for s in seeds]
        finally:
            env.close()

    a, b = starts(first[0].seeds), starts(second[0].seeds)
    assert not any(np.allclose(x, y) for x in a for y in b)  # the start states themselves differ
    assert all(np.array_equal(x, y) for x, y in zip(starts(second[0].seeds), b, strict=True))


def test_score_protocol() -> None:
    # eval every 2.5K up to 100K; scores rise by 1 per evaluation
    evals = [(s, float(i)) for i, s in enumerate(range(2500, 100_001, 2500))]
    # last 20K: the 8 evaluations at 82.5K..100K score 32..39
    assert final_score(evals, 20_000) == pytest.approx(np.mean(range(32, 40)))
    summary = summarize(list(reversed(evals)), 20_000, target=3600.0)
    assert (summary.last, summary.best, summary.target) == (39.0, 39.0, 3600.0)
    assert final_score([(10, 5.0)], 0) == 5.0
    peaked = [(1, 90.0), (2, 10.0), (3, 20.0)]
    assert summarize(peaked, 1).best == 90.0 and summarize(peaked, 1).last == 20.0
    per_target = {1800.0: [(1, 50.0), (2, 60.0)], 3600.0: [(1, 80.0), (2, 40.0)]}
    chosen = select_target(per_target, report_window=1)
    assert chosen.target == 1800.0 and chosen.final == 60.0
    every = target_summaries(per_target, report_window=1)  # every target kept, in order, for the cell rule
    assert [(s.target, s.final, s.best) for s in every] == [(1800.0, 60.0, 60.0), (3600.0, 40.0, 80.0)]
    assert select_target({None: [(1, 3.0)]}, 10).target is None
    with pytest.raises(BenchError):
        final_score([], 10)
