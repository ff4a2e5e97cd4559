"""LaMo agent: paper defaults, LoRA freezing, trainable-parameter counts per switch, the language loss and its
skip at weight 0, each ablation's effect, GPT-2 position handling, checkpoints, and a short fit.

Backbones are SmolLM2 truncated to 1-2 blocks (or a tiny random GPT-2 saved as a local folder). The data root is
a temporary folder; when the real data root already holds the converted SmolLM2 cache it is linked in, otherwise
it is converted once for this module (~30 s). The language corpus is a small local text file, so no test builds
the python-docs corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import agents.lamo as lamo
from agents.base import TaskSpec
from agents.lamo import LAMO_TASK_SETTINGS, LaMoAgent, LaMoConfig, LanguageOnlyPositions
from agents.lm.backbone import cache_dir
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.tasks import TASKS, get_task
from tests.conftest import PARAGRAPHS, tiny_gpt2_folder
from tests.conftest import linear_reacher_dataset as _reacher_dataset

torch.set_num_threads(1)
# Every test here loads SmolLM2 (converted from its GGUF on first use, ~30 s); the agent contract test
# (tests/test_agent_contract.py) covers every LaMo variant quickly on a tiny random GPT-2.
pytestmark = pytest.mark.slow
TASK = get_task("reacher2d-medium")
HEAD_MODULES = ("embed_timestep", "embed_return", "embed_state", "embed_action", "embed_ln", "predict_action")


@pytest.fixture(scope="module")
def lamo_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    real_cache = cache_dir("smollm2-135m")
    root = tmp_path_factory.mktemp("lamo-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMO_BENCH_DATA", str(root))
        if (real_cache / "lamo_cache.json").is_file():
            cache_dir("smollm2-135m").parent.mkdir(parents=True)
            cache_dir("smollm2-135m").symlink_to(real_cache, target_is_directory=True)
        yield root


@pytest.fixture(scope="module")
def text_file(lamo_root: Path) -> str:
    path = lamo_root / "text.txt"
    path.write_text((PARAGRAPHS + "\n") * 3)
    return str(path)


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return _reacher_dataset(episodes=6)


def _config(text_file: str, **overrides: Any) -> LaMoConfig:
    base = {
        "lm_layers": 1,
        "lm_corpus": text_file,
        "lm_block_size": 32,
        "batch_size": 8,
        "warmup_steps": 1,
        "learning_rate": 1e-3,
    }
    return LaMoAgent.default_config(TASK).with_overrides({**base, **overrides})


def _agent(dataset: TrajectoryDataset, text_file: str, seed: int = 0, **overrides: Any) -> LaMoAgent:
    return LaMoAgent(_config(text_file, **overrides), TaskSpec.from_task(TASK, dataset), seed=seed)


def _weights(agent: LaMoAgent) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in agent.named_weights()}


def _head_count(hidden: int, obs: int, act: int, max_timestep: int, mlp: bool) -> int:
    """Parameters of the embeddings, input LayerNorm and action head, from their shapes."""

    def linear(i: int, o: int) -> int:
        return i * o + o

    embed = sum(linear(d, hidden) + (linear(hidden, hidden) if mlp else 0) for d in (1, obs, act))
    head = (linear(hidden, hidden) if mlp else 0) + linear(hidden, act)
    return max_timestep * hidden + embed + 2 * hidden + head


def test_default_config_follows_paper_and_task() -> None:
    c = LaMoAgent.default_config(get_task("halfcheetah-medium"))
    assert (c.lora_rank, c.lora_alpha, c.lora_dropout, c.lm_loss_weight, c.learning_rate, c.weight_decay) == (
        16,
        32,
        0.1,
        0.1,
        1e-4,
        1e-5,
    )
    assert (c.mlp_embedding, c.mlp_head, c.batch_size, c.context_length, c.warmup_steps, c.grad_clip) == (
        True,
        True,
        64,
        20,
        2500,
        0.25,
    )
    assert (c.lm_source, c.lm_corpus, c.lm_batch_size, c.lm_block_size, c.eval_mode) == (
        "smollm2-135m",
        "python-docs",
        2,
        1024,
        "window",
    )  # window: as trained and as officially evaluated
    assert (c.adam_eps, c.lr_schedule) == (1e-6, "warmup")  # experiment-d4rl/utils.py get_optimizer
    assert not (c.full_finetune or c.random_init) and c.lm_layers is None
    hopper = LaMoAgent.default_config(get_task("hopper-medium"))
    assert not hopper.mlp_embedding and not hopper.mlp_head  # the paper's linear-embedding exception
    breakout = LaMoAgent.default_config(get_task("breakout-medium"))
    assert (breakout.lora_rank, breakout.batch_size, breakout.learning_rate, breakout.context_length) == (
        32,
        128,
        1e-3,
        30,
    )
    assert (breakout.adam_eps, breakout.lr_schedule, breakout.max_timestep) == (1e-8, "atari_tokens", 4096)
    # LaMo's per-task settings live beside its config, one entry per registered task domain.
    assert {t.domain for t in TASKS.values()} <= set(LAMO_TASK_SETTINGS)
    assert LaMoAgent.default_config(get_task("pong-medium")).lora_rank == 32
    assert LaMoAgent.default_config(get_task("walker2d-medium")).mlp_embedding
    reacher = LaMoAgent.default_config(TASK)
    assert (reacher.reward_scale, reacher.max_timestep, reacher.context_length) == (10.0, 100, 5)
    for bad in ({"lora_rank": 0}, {"lm_loss_weight": -0.1}, {"lm_layers": 0}, {"lm_block_size": 1}):
        with pytest.raises(BenchError):
            c.with_overrides(bad)
    assert c.with_overrides({"lora_rank": 0, "full_finetune": True}).lora_rank == 0  # no adapters, no rank


def test_trainable_counts_match_switches(dataset: TrajectoryDataset, text_file: str) -> None:
    lora = _agent(dataset, text_file, lm_layers=2)
    cfg: Any = lora.lm.config
    h, layers, r = cfg.hidden_size, 2, 16
    kv = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
    lora_count = layers * r * ((h + h) + 2 * (h + kv))  # q: h -> h; k, v: h -> kv
    obs, act = 12, 2
    total, trainable = lora.num_params()
    assert trainable == lora_count + _head_count(h, obs, act, 100, mlp=True)
    assert lora.lora_target_names == ("q_proj", "k_proj", "v_proj")

    linear = _agent(dataset, text_file, lm_layers=2, mlp_embedding=False, mlp_head=False)
    assert linear.num_params()[1] == lora_count + _head_count(h, obs, act, 100, mlp=False)

    full = _agent(dataset, text_file, lm_layers=2, full_finetune=True)
    full_total, full_trainable = full.num_params()
    assert full_trainable == full_total == total - lora_count  # everything trains, no adapters exist
    assert not any("lora_" in n for n, _ in full.named_weights())
    print(f"SmolLM2 2 blocks: LoRA trains {trainable:,} of {total:,}; full finetune {full_trainable:,}")


def test_lora_leaves_base_weights_unchanged(dataset: TrajectoryDataset, text_file: str) -> None:
    agent = _agent(dataset, text_file)
    before = _weights(agent)
    agent.fit(dataset, 3)
    after = _weights(agent)
    trainable = {n for n, p in agent.named_weights() if p.requires_grad}
    frozen = set(before) - trainable
    assert any("q_proj.base_layer" in n for n in frozen) and any("embed_tokens" in n for n in frozen)
    assert any("layernorm" in n for n in frozen) and any("o_proj" in n for n in frozen)
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    changed = {n for n in trainable if not torch.equal(before[n], after[n])}
    assert any("lora_B" in n for n in changed)  # starts at zero, moves with the first step
    assert any(n.startswith("trajectory.embed_state") for n in changed)
    assert any(n.startswith("trajectory.predict_action") for n in changed)


def test_language_loss_decreases_on_text(dataset: TrajectoryDataset, text_file: str) -> None:
    agent = _agent(dataset, text_file, lm_layers=2)
    params = agent.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    rng = np.random.default_rng(0)
    agent.model.train()
    losses = []
    for _ in range(8):
        loss = agent.language_loss(agent.corpus.sample_batch(2, 32, rng))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5


def test_zero_lm_weight_never_runs_the_language_pass(
    dataset: TrajectoryDataset, text_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def counting(agent: LaMoAgent) -> list[int]:
        calls: list[int] = []
        head = agent.lm.get_output_embeddings()
        assert isinstance(head, nn.Module)
        head.register_forward_hook(lambda *_: calls.append(1))
        return calls

    with_lm = _agent(dataset, text_file, lm_loss_weight=0.1)
    calls = counting(with_lm)
    logs: list[dict[str, float]] = []
    with_lm.fit(dataset, 3, eval_every=3, on_log=lambda _s, m: logs.append(m))
    assert len(calls) == 3 and logs[-1]["lm_loss"] > 0
    assert logs[-1]["loss"] == pytest.approx(logs[-1]["decision_loss"] + 0.1 * logs[-1]["lm_loss"], rel=1e-5)

    def no_corpus(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the corpus must not be built when lm_loss_weight is 0")

    monkeypatch.setattr(lamo, "build_corpus", no_corpus)
    without = _agent(dataset, text_file, lm_loss_weight=0.0)
    calls = counting(without)
    logs.clear()
    without.fit(dataset, 3, eval_every=3, on_log=lambda _s, m: logs.append(m))
    assert calls == [] and "lm_loss" not in logs[-1] and logs[-1]["loss"] == logs[-1]["decision_loss"]


def test_random_init_changes_weights_not_architecture(dataset: TrajectoryDataset, text_file: str) -> None:
    pre = _weights(_agent(dataset, text_file))
    rand_agent = _agent(dataset, text_file, random_init=True)
    rand = _weights(rand_agent)
    assert {n: t.shape for n, t in pre.items()} == {n: t.shape for n, t in rand.items()}
    backbone = [n for n in pre if ".backbone." in n and "lora_" not in n and "norm" not in n]
    assert backbone and all(not torch.equal(pre[n], rand[n]) for n in backbone)
    # Same seed: the task-side modules and LoRA start identical, only the LM weights were redrawn.
    heads = [n for n in pre if n.split(".")[1] in HEAD_MODULES or "lora_" in n]
    assert heads and all(torch.equal(pre[n], rand[n]) for n in heads)
    again = _weights(_agent(dataset, text_file, random_init=True))
    assert all(torch.equal(again[n], rand[n]) for n in backbone)  # the random backbone is reproducible


def test_linear_embeddings_change_only_embeddings_and_head(dataset: TrajectoryDataset, text_file: str) -> None:
    mlp = {n: t.shape for n, t in _weights(_agent(dataset, text_file)).items()}
    linear = {n: t.shape for n, t in _weights(_agent(dataset, text_file, mlp_embedding=False, mlp_head=False)).items()}
    differing = {n for n in mlp.keys() | linear.keys() if mlp.get(n) != linear.get(n)}
    assert differing and {n.split(".")[1] for n in differing} == {
        "embed_return",
        "embed_state",
        "embed_action",
        "predict_action",
    }


def test_full_finetune_trains_the_backbone(dataset: TrajectoryDataset, text_file: str) -> None:
    agent = _agent(dataset, text_file, full_finetune=True, lm_loss_weight=0.0)
    before = _weights(agent)
    agent.fit(dataset, 2)
    after = _weights(agent)
    q = next(n for n in before if n.endswith("q_proj.weight"))
    assert not torch.equal(before[q], after[q])


def test_gpt2_backbone_lora_and_positions(dataset: TrajectoryDataset, text_file: str, lamo_root: Path) -> None:
    folder = tiny_gpt2_folder(lamo_root / "tiny-gpt2")
    agent = _agent(dataset, text_file, lm_source=str(folder), lm_layers=None)
    assert agent.lora_target_names == ("c_attn",)
    h, r = 32, 16
    # per block: Q, K and V adapters (A r x h, B h x r each) and the c_attn bias (bias='lora_only')
    assert agent.num_params()[1] == 2 * (3 * (r * h + h * r) + 3 * h) + _head_count(h, 12, 2, 100, mlp=True)
    wpe = agent.model.backbone.wpe
    assert isinstance(wpe, LanguageOnlyPositions)
    agent.model.eval()
    obs = torch.randn(1, 5, 12)
    act, rtg, ts = torch.zeros(1, 5, 2), torch.ones(1, 5, 1), torch.arange(5)[None]
    ids = agent.corpus.sample_batch(1, 32, np.random.default_rng(0))
    with torch.no_grad():
        decision, language = agent.model(obs, act, rtg, ts), agent.language_loss(ids)
        wpe.table.weight.add_(torch.randn_like(wpe.table.weight))
        # Decision passes ignore the absolute table (cached inference needs that); the language pass uses it.
        assert torch.equal(agent.model(obs, act, rtg, ts), decision)
        assert not torch.equal(agent.language_loss(ids), language)
    assert not wpe.enabled


def test_save_load_round_trip(dataset: TrajectoryDataset, text_file: str, tmp_path: Path) -> None:
    agent = _agent(dataset, text_file, seed=1)
    agent.fit(dataset, 3)
    agent.save(tmp_path / "ckpt")
    file = tmp_path / "ckpt" / "agent.pt"
    assert sorted(p.name for p in file.parent.iterdir()) == ["agent.pt"]
    total, trainable = agent.num_params()
    assert trainable < total / 10
    assert file.stat().st_size < 8 * trainable + 1_000_000  # trainable weights only, not the frozen LM
    other = _agent(dataset, text_file, seed=2)
    other.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(other.obs_mean, agent.obs_mean)
    policies = [a.make_policy(2, 40.0) for a in (agent, other)]
    rng = np.random.default_rng(0)
    for _ in range(7):  # past K=5: the cached mode's sliding window is exercised too
        obs = rng.normal(size=(2, 12)).astype(np.float32)
        first, second = (p.act(obs) for p in policies)
        np.testing.assert_array_equal(first, second)
        for p in policies:
            p.observe(np.ones(2))
    with pytest.raises(BenchError, match="lm_layers"):
        _agent(dataset, text_file, lm_layers=2).load(tmp_path / "ckpt")
    with pytest.raises(BenchError):
        other.load(tmp_path / "missing")


def test_fit_reduces_decision_loss(dataset: TrajectoryDataset, text_file: str) -> None:
    agent = _agent(dataset, text_file, lm_loss_weight=0.0, batch_size=16, warmup_steps=5)
    logs: list[tuple[int, dict[str, float]]] = []
    agent.fit(dataset, 60, eval_every=15, on_log=lambda s, m: logs.append((s, m)))
    assert [s for s, _ in logs] == [15, 30, 45, 60]
    assert logs[-1][1]["decision_loss"] < 0.6 * logs[0][1]["decision_loss"]


# --- LoRA counts on small random GPT-2 and Llama configs (no hub, no tokenizer) ---------------------------


def _patched_agent(
    monkeypatch: pytest.MonkeyPatch, dataset: TrajectoryDataset, model: nn.Module, **overrides: Any
) -> LaMoAgent:
    monkeypatch.setattr(lamo, "load_backbone", lambda _spec: (model, None))
    config = LaMoAgent.default_config(TASK).with_overrides({"lm_loss_weight": 0.0, **overrides})
    return LaMoAgent(config, TaskSpec.from_task(TASK, dataset), seed=0)


def _lm_trainable(agent: LaMoAgent) -> int:
    """Trainable parameters inside the language model (LoRA and the adapted projections' biases)."""
    return sum(p.numel() for n, p in agent.named_weights() if p.requires_grad and ".backbone." in n)


def test_lora_count_closed_form_gpt2(monkeypatch: pytest.MonkeyPatch, dataset: TrajectoryDataset) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    h, layers, r = 48, 3, 8
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=h, n_layer=layers, n_head=4, n_positions=32))
    agent = _patched_agent(monkeypatch, dataset, model, lm_source="gpt2", lora_rank=r, lora_alpha=2 * r)
    # loralib MergedLinear(enable_lora=[True]*3): A (3r, h) + B (3h, r) per block, plus the c_attn bias (3h)
    assert _lm_trainable(agent) == layers * (3 * r * h + 3 * h * r + 3 * h)
    assert agent.num_params()[1] == _lm_trainable(agent) + _head_count(h, 12, 2, 100, mlp=True)
    assert {n.rsplit(".", 1)[-1] for n, p in agent.named_weights() if p.requires_grad and ".h.0." in n} == {
        "lora_A",
        "lora_B",
        "bias",
    }


def test_lora_count_gpt2_small_is_the_official_0_88m() -> None:
    """GPT-2 small (768 wide, 12 blocks, rank 16) built on the meta device: 884,736 LoRA weights, as the
    official model prints, plus 27,648 c_attn biases."""
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config())
    config = LaMoAgent.default_config(get_task("halfcheetah-medium"))
    targets, biases = lamo._inject_lora(model, config)
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert targets == ("c_attn",) and lora == 12 * 6 * 16 * 768 == 884_736
    assert sum(p.numel() for p in biases) == 12 * 3 * 768 == 27_648


def test_lora_count_closed_form_llama(monkeypatch: pytest.MonkeyPatch, dataset: TrajectoryDataset) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    h, heads, kv_heads, layers, r = 48, 6, 2, 2, 8
    kv = kv_heads * (h // heads)

    def llama(bias: bool) -> nn.Module:
        return LlamaForCausalLM(
            LlamaConfig(
                vocab_size=40,
                hidden_size=h,
                intermediate_size=96,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                num_key_value_heads=kv_heads,
                attention_bias=bias,
            )
        )

    lora = layers * r * ((h + h) + 2 * (h + kv))  # q: h -> h; k, v: h -> kv (grouped-query attention)
    smol = _patched_agent(monkeypatch, dataset, llama(False), lora_rank=r)
    assert smol.lora_target_names == ("q_proj", "k_proj", "v_proj")
    assert _lm_trainable(smol) == lora  # SmolLM2-shaped: no attention biases to train
    assert not any(p.requires_grad for n, p in smol.named_weights() if "o_proj" in n or "mlp" in n)
    biased = _patched_agent(monkeypatch, dataset, llama(True), lora_rank=r)
    assert _lm_trainable(biased) == lora + layers * (h + 2 * kv)  # q/k/v biases train, as bias='lora_only'
    assert not any(p.requires_grad for n, p in biased.named_weights() if "o_proj" in n)


def test_deviations_list_what_differs_from_the_official_run() -> None:
    official = LaMoAgent.default_config(get_task("halfcheetah-medium")).with_overrides(
        {"lm_source": "gpt2", "lm_corpus": "wikitext-103", "amp": False}
    )
    assert official.deviations() == [
        "the language pass adds GPT-2's position embeddings (official GPT2Model_LoRA leaves them out: "
        "to_add_position_embeds=False)"
    ]
    quick = LaMoAgent.default_config(TASK).with_overrides(
        {"lm_layers": 2, "lm_block_size": 32, "lm_batch_size": 1, "eval_mode": "cached"}
    )
    text = " | ".join(quick.deviations())
    for part in ("eval_mode cached", "backbone smollm2-135m", "first 2 blocks", "python-docs", "1 x 32 tokens", "bf16"):
        assert part in text
    assert not any("position embeddings" in d for d in quick.deviations())  # RoPE: nothing to add
    assert official.with_overrides({"lm_loss_weight": 0.0}).deviations() == []
    assert any("experiment-atari" in d for d in LaMoAgent.default_config(get_task("pong-medium")).deviations())


def test_optimizer_and_old_checkpoints(
    monkeypatch: pytest.MonkeyPatch, dataset: TrajectoryDataset, tmp_path: Path
) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=32))
    agent = _patched_agent(monkeypatch, dataset, model, lm_source="gpt2", lora_rank=2)
    optimizer, _ = agent._ensure_optimizer()
    group = optimizer.param_groups[0]
    assert (group["eps"], group["weight_decay"], group["lr"]) == (1e-6, 1e-5, pytest.approx(1e-4 / 2500))
    agent.save(tmp_path / "ckpt")
    old = torch.load(tmp_path / "ckpt" / "agent.pt", weights_only=True)
    torch.save({**old, "format": 1}, tmp_path / "ckpt" / "agent.pt")  # before the official model (format 2)
    with pytest.raises(BenchError, match="format 1, this version reads format 2"):
        agent.load(tmp_path / "ckpt")


def test_config_has_no_dt_only_fields(
    monkeypatch: pytest.MonkeyPatch, dataset: TrajectoryDataset, tmp_path: Path
) -> None:
    """LaMoConfig holds only what LaMo reads: DT's GPT-2 size is refused as an override, and a checkpoint written
    while LaMoConfig still carried those fields (same format 2) loads through `load_agent`, the fields skipped."""
    from dataclasses import fields

    from transformers import GPT2Config, GPT2LMHeadModel

    from agents.dt import DTConfig, TrajectoryAgentConfig
    from agents.loading import load_agent

    dt_only = {f.name for f in fields(DTConfig)} - {f.name for f in fields(TrajectoryAgentConfig)}
    assert dt_only == set(LaMoConfig.retired_fields) == {"hidden_size", "n_layer", "n_head", "activation"}
    assert not dt_only & {f.name for f in fields(LaMoConfig)}
    with pytest.raises(BenchError, match="unknown LaMoConfig field"):
        LaMoConfig().with_overrides({"n_layer": 2})

    def tiny_gpt2() -> nn.Module:
        return GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=32))

    agent = _patched_agent(monkeypatch, dataset, tiny_gpt2(), lm_source="gpt2", lora_rank=2)
    agent.save(tmp_path / "ckpt")
    monkeypatch.setattr(lamo, "load_backbone", lambda _spec: (tiny_gpt2(), None))  # a fresh LM per agent
    saved = torch.load(tmp_path / "ckpt" / "agent.pt", weights_only=True)
    old_config = {**saved["config"], "hidden_size": 128, "n_layer": 3, "n_head": 1, "activation": "relu"}
    torch.save({**saved, "config": old_config}, tmp_path / "ckpt" / "agent.pt")
    again = load_agent(tmp_path / "ckpt")
    assert again.config == agent.config
    torch.save({**saved, "config": {**saved["config"], "n_layers": 3}}, tmp_path / "ckpt" / "agent.pt")
    with pytest.raises(BenchError, match="unknown LaMoConfig field"):
        load_agent(tmp_path / "ckpt")
