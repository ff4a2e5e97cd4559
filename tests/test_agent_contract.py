"""The contract every registered agent keeps (like d3rlpy's shared algorithm tester), run over every entry of
`agents.registry.AGENTS`: build from its config -> fit a few steps with callbacks -> act in the real Reacher2d
environment through `bench.evaluate` -> save -> `load_agent` from the checkpoint alone -> the same actions ->
`num_params`. A new agent registered in the registry is tested here without editing this file; if it breaks
the contract, the failing assertion names the part.

Sizes are tiny so each case takes a few seconds: LaMo variants run on a 2-block random GPT-2 with a word-level
tokenizer built here (no SmolLM2 conversion), and d3rlpy agents on small batches. Pixel (Atari) agents are
covered by tests/test_atari.py (fit + evaluate on fake DQN-replay frames); their save/load round trip runs
here on the same fake frames, marked slow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.base import Agent, TaskSpec
from agents.checkpoint import REQUIRED_KEYS, find_checkpoint
from agents.loading import load_agent, read_checkpoint_info
from agents.registry import AGENTS, get_entry, make_agent
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.evaluate import episode_seeds, evaluate
from bench.tasks import get_task
from tests.conftest import ATARI_TINY, bench_in_process, random_reacher_episodes, write_fake_replay

torch.set_num_threads(1)
TASK = dataclasses.replace(get_task("reacher2d-medium"), max_episode_steps=12)  # a few env steps per episode
WORDS = "the arm reaches for the target and the policy learns from offline data while a language model helps"

#: Per family: the smallest settings that still exercise every code path. A family missing here runs with its
#: defaults (slow, but still checked).
TINY: dict[str, dict[str, Any]] = {
    "dt": {"n_layer": 1, "hidden_size": 16, "batch_size": 4, "warmup_steps": 1, "max_timestep": 200},
    "lamo": {
        "lm_layers": None,
        "lm_block_size": 8,
        "lm_batch_size": 1,
        "batch_size": 4,
        "warmup_steps": 1,
        "max_timestep": 200,
    },
    "cql": {"batch_size": 8, "hidden_units": (16, 16)},
    "bc": {"batch_size": 8, "hidden_units": (16, 16)},
    "iql": {"batch_size": 8, "hidden_units": (16, 16)},
    "td3+bc": {"batch_size": 8, "hidden_units": (16, 16)},
}


def tiny_lm(folder: Path) -> Path:
    """A 2-block random GPT-2 and a word-level tokenizer over WORDS, saved as a local LM folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", *sorted(set(WORDS.split()))])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(vocab), n_embd=16, n_layer=2, n_head=2, n_positions=64, bos_token_id=1, eos_token_id=1
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lm_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("contract-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMO_BENCH_DATA", str(root))
        text = root / "text.txt"
        words = WORDS.split()
        # Distinct paragraphs (documents): the corpus keeps a held-out share of them.
        text.write_text("\n\n".join(" ".join(words[i:] + words[:i]) for i in range(len(words))))
        yield {"lm_source": str(tiny_lm(root / "tiny-gpt2")), "lm_corpus": str(text)}


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return TrajectoryDataset.from_episodes(random_reacher_episodes(4), name="reacher2d-contract")


def tiny_overrides(name: str, lm_setup: dict[str, Any]) -> dict[str, Any]:
    family = get_entry(name).family
    extra = lm_setup if family == "lamo" else {}
    return {**TINY.get(family, {}), **extra}


def same_actions(first: Agent, second: Agent, spec: TaskSpec, steps: int = 7) -> None:
    """Both agents' policies give identical actions for identical observations and rewards (past the context
    length, so cached/windowed histories are exercised too)."""
    target = spec.rtg_targets[0] if first.return_conditioned else None
    policies = [a.make_policy(2, target) for a in (first, second)]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs = rng.normal(size=(2, *spec.observation_shape)).astype(np.float32)
        a, b = (p.act(obs) for p in policies)
        assert a.shape[0] == 2
        np.testing.assert_array_equal(a, b)
        for p in policies:
            p.observe(np.ones(2, np.float32))


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_contract(name: str, dataset: TrajectoryDataset, lm_setup: dict[str, Any], tmp_path: Path) -> None:
    entry = get_entry(name)
    cls = entry.agent_class()
    assert issubclass(cls, Agent), f"{entry.target} is not an Agent subclass"
    assert entry.return_conditioned == cls.return_conditioned, (
        f"registry entry {name} says return_conditioned={entry.return_conditioned}, {cls.__name__} says "
        f"{cls.return_conditioned}"
    )
    assert cls.name == entry.family, f"{cls.__name__}.name {cls.name!r} must be its registry family {entry.family!r}"

    # build from config
    spec = TaskSpec.from_task(TASK, dataset)
    agent = make_agent(name, TASK, spec, tiny_overrides(name, lm_setup), seed=3)
    for key, value in entry.overrides.items():
        assert getattr(agent.config, key) == value, f"variant override {key} not applied"

    # fit with callbacks at the documented points
    logged: list[tuple[int, dict[str, float]]] = []
    evaluated: list[int] = []
    agent.fit(
        dataset,
        2,
        eval_every=1,
        on_eval=lambda step, a: evaluated.append(step),
        on_log=lambda step, m: logged.append((step, m)),
    )
    assert evaluated == [1, 2], f"on_eval must be called every eval_every steps and at the end, got {evaluated}"
    assert [s for s, _ in logged] == [1, 2] and all(np.isfinite(m["loss"]) for _, m in logged), logged

    # act / observe in the real environment
    results = evaluate(agent, TASK, episodes=2, seed=0)
    assert len(results) == (len(TASK.rtg_targets) if agent.return_conditioned else 1)
    assert all(len(r.returns) == 2 and np.isfinite(r.mean_score) for r in results)
    if not agent.return_conditioned:
        assert results[0].target is None

    # save -> load from the checkpoint alone -> same actions, same parameter counts
    agent.save(tmp_path / "ckpt")
    file, payload = find_checkpoint(tmp_path / "ckpt")
    assert all(k in payload for k in REQUIRED_KEYS)
    info = read_checkpoint_info(file)
    assert info["agent"] == entry.family and info["seed"] == 3 and info["spec"]["task"] == TASK.name
    assert info["variant"] == name  # the variant is recognised from the saved config
    loaded = load_agent(tmp_path / "ckpt")
    assert type(loaded) is cls and loaded.seed == 3 and loaded.spec == agent.spec
    assert loaded.config == agent.config
    same_actions(agent, loaded, spec)
    total, trainable = agent.num_params()
    assert 0 < trainable <= total
    assert loaded.num_params() == (total, trainable)


def test_load_agent_finds_trial_folders_and_refuses_non_checkpoints(dataset: TrajectoryDataset, tmp_path: Path) -> None:
    spec = TaskSpec.from_task(TASK, dataset)
    agent = make_agent("bc", TASK, spec, TINY["bc"], seed=1)
    agent.fit(dataset, 1)
    agent.save(tmp_path / "trial" / "checkpoint")
    torch.save({"step": 1}, tmp_path / "trial" / "checkpoint" / "training_state.pt")  # resumable state beside it
    assert type(load_agent(tmp_path / "trial")) is type(agent)  # a trial folder: its checkpoint/ is used
    assert read_checkpoint_info(tmp_path / "trial")["agent"] == "bc"
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(BenchError, match="not a readable agent checkpoint"):
        load_agent(tmp_path / "junk.pt")
    with pytest.raises(BenchError, match="no checkpoint at"):
        load_agent(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="holds no .pt file"):
        load_agent(tmp_path / "empty")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(BenchError, match="not a lamo-bench agent checkpoint"):
        load_agent(tmp_path / "other.pt")
    torch.save(
        {**torch.load(tmp_path / "trial" / "checkpoint" / "d3rlpy_agent.pt", weights_only=True), "agent": "nope"},
        tmp_path / "unknown.pt",
    )
    with pytest.raises(BenchError, match="unknown agent 'nope'"):
        load_agent(tmp_path / "unknown.pt")


def test_write_checkpoint_refuses_payloads_without_metadata(tmp_path: Path) -> None:
    from agents.checkpoint import write_checkpoint

    with pytest.raises(ValueError, match="lacks config, spec, seed"):
        write_checkpoint(tmp_path, "agent.pt", {"agent": "dt"})
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_bench_eval_rescores_a_saved_agent(
    dataset: TrajectoryDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    task = get_task("reacher2d-medium")
    spec = TaskSpec.from_task(task, dataset)
    for name in ("bc", "dt"):
        agent = make_agent(name, task, spec, TINY[name], seed=4)
        agent.fit(dataset, 1)
        agent.save(tmp_path / name / "checkpoint")
    direct = evaluate(load_agent(tmp_path / "bc"), task, episodes=2, seed=4)

    assert bench_in_process(monkeypatch, "eval", str(tmp_path / "bc"), "--episodes", "2", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["agent"] == doc["variant"] == "bc" and doc["task"] == task.name and doc["seed"] == 4  # its seed
    assert [r["target"] for r in doc["results"]] == [None]
    assert doc["results"][0]["returns"] == list(direct[0].returns)  # the same episodes as evaluate()

    assert (
        bench_in_process(
            monkeypatch,
            "eval",
            str(tmp_path / "dt" / "checkpoint"),
            "--episodes",
            "1",
            "--targets",
            "10,20",
            "--seed",
            "1",
            "--json",
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [r["target"] for r in doc["results"]] == [10.0, 20.0] and doc["seed"] == 1
    assert all(r["seeds"] == episode_seeds(1, 1) for r in doc["results"])

    assert bench_in_process(monkeypatch, "eval", str(tmp_path / "dt"), "--episodes", "1", "--targets", "10") == 0
    out = capsys.readouterr().out
    assert "dt on reacher2d-medium" in out and "normalized score" in out

    for bad, message in ((tmp_path / "nowhere", "no checkpoint at"), (tmp_path, "holds no .pt file")):
        assert bench_in_process(monkeypatch, "eval", str(bad)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert bench_in_process(monkeypatch, "eval", str(tmp_path / "bc"), "--episodes", "0") == 2
    assert "--episodes 0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dt", "lamo", "cql", "bc"])
def test_pixel_agents_round_trip_through_load_agent(
    name: str, tmp_path: Path, lm_setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Atari variants (frame stacks, discrete actions, the discrete d3rlpy configs): fit on tiny fake DQN-replay
    data, save, `load_agent`, same actions. Their evaluation in the real Atari env is in tests/test_atari.py."""
    from bench.data.dqn_replay import load_dqn_replay

    monkeypatch.setenv("LAMO_BENCH_DATA", str(tmp_path / "datasets"))
    data = load_dqn_replay(write_fake_replay(tmp_path / "Pong" / "1", checkpoints=(1,)), transitions=None)
    task = get_task("pong-medium")
    spec = TaskSpec.from_task(task, data)
    overrides = {**ATARI_TINY[name], **(lm_setup if name == "lamo" else {})}
    if name == "lamo":
        overrides.pop("lm_layers", None)
    agent = make_agent(name, task, spec, overrides, seed=2)
    agent.fit(data, 2)
    agent.save(tmp_path / "ckpt")
    loaded = load_agent(tmp_path / "ckpt")
    assert type(loaded) is type(agent) and loaded.config == agent.config and loaded.spec == spec
    same_actions(agent, loaded, spec, steps=3)
    assert loaded.num_params() == agent.num_params()


def test_families_come_from_the_registry() -> None:
    """A variant's family is its base agent, which is itself registered, uses the same class and the same
    return conditioning; callers (`bench train` LaMo switches, grid cost estimates, result rows) use these."""
    for name, entry in AGENTS.items():
        base = AGENTS[entry.family]
        assert base.family == base.name and not base.overrides, f"{name}: family {entry.family} is itself a variant"
        assert entry.target == base.target and entry.return_conditioned == base.return_conditioned, name
    assert {e.family for e in AGENTS.values()} == {"lamo", "dt", "cql", "bc", "iql", "td3+bc"}
    assert [n for n, e in AGENTS.items() if e.return_conditioned] == [n for n in AGENTS if n.startswith(("lamo", "dt"))]


def test_lamo_switches_are_refused_for_other_families(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("train", "dt", "reacher2d-medium", "--ratio", "1", "--seed", "0", "--steps", "1", "--lm-layers", "1")
    assert bench_in_process(monkeypatch, *args) == 2
    assert "apply to lamo agents only, not 'dt'" in capsys.readouterr().err
