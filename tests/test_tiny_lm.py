"""tiny-lm, the project's DT-sized pre-trained GPT-2 (agents/lm/tiny.py, shipped in agents/lm/tiny_lm/):
it loads offline from the repository whatever the data root, knows language (held-out perplexity far below the
same architecture with random weights), its card matches the shipped weights, and LaMo runs on it with LoRA.

All of it takes seconds: the model has 1.7M parameters and the held-out text ships with it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from agents.base import TaskSpec
from agents.lamo import LaMoAgent
from agents.lm import backbone
from agents.lm.backbone import BackboneSpec, accepted_sources, load_backbone, load_tokenizer, perplexity, source_name
from agents.lm.tiny import CARD_FILE, HELDOUT_FILE, TINY_LM_DIR, PretrainConfig, train_tokenizer
from agents.registry import make_config
from bench.errors import BenchError
from bench.tasks import get_task
from tests.conftest import PARAGRAPHS, linear_reacher_dataset

TASK = get_task("reacher2d-medium")


@pytest.fixture(autouse=True)
def empty_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty data root and no hub: tiny-lm must come from the repository alone."""
    monkeypatch.setenv("LAMO_BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield tmp_path / "data"


def _card() -> dict[str, object]:
    card: dict[str, object] = json.loads((TINY_LM_DIR / CARD_FILE).read_text())
    return card


def _heldout_ids(tokenizer: object) -> torch.Tensor:
    text = (TINY_LM_DIR / HELDOUT_FILE).read_text(encoding="utf-8")
    from agents.lm.corpus import tokenize_documents

    return torch.from_numpy(tokenize_documents([text], tokenizer).astype("int64"))  # type: ignore[arg-type]


def test_loads_offline_with_dt_shape() -> None:
    model, tokenizer = load_backbone("tiny-lm")
    c = model.config
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert (c.n_layer, c.n_embd, c.n_head, c.activation_function) == (3, 128, 1, "relu")  # agents/dt.py DTConfig
    assert c.n_positions >= 256 and c.vocab_size == len(tokenizer) == 8192
    assert model.lm_head.weight is model.transformer.wte.weight  # tied embeddings
    assert all(p.dtype == torch.float32 for p in model.parameters()) and not model.training
    assert source_name("tiny-lm") == tokenizer.name_or_path == "tiny-lm"
    assert load_tokenizer("tiny-lm").get_vocab() == tokenizer.get_vocab()
    assert "tiny-lm" in accepted_sources()
    assert tokenizer.eos_token_id == 0 and tokenizer.decode(tokenizer("Return a list.")["input_ids"]) == (
        "Return a list."
    )


def test_heldout_perplexity_far_below_random_init_and_matches_card() -> None:
    model, tokenizer = load_backbone("tiny-lm")
    random_model, _ = load_backbone(BackboneSpec(source="tiny-lm", random_init=True, seed=0))
    ids = _heldout_ids(tokenizer)
    block = int(_card()["config"]["block_size"])  # type: ignore[index]
    ppl, ppl_random = perplexity(model, ids, block_size=block), perplexity(random_model, ids, block_size=block)
    assert ppl < ppl_random / 10
    assert ppl_random > 0.5 * model.config.vocab_size  # random weights: about uniform over the vocabulary
    card = _card()
    assert ppl == pytest.approx(card["heldout_sample_perplexity"], rel=1e-3)  # the card describes these weights
    assert card["heldout_perplexity"] < card["heldout_perplexity_random_init"] / 10  # type: ignore[operator]


def test_card_says_how_it_was_built() -> None:
    card = _card()
    corpus = card["corpus"]
    assert isinstance(corpus, dict) and corpus["source"] == "python-docs" and len(corpus["text_sha256"]) == 64
    assert str(card["command"]).startswith("bench lm pretrain ")
    assert card["tokens_seen"] == card["config"]["steps"] * 32 * 256  # type: ignore[index]
    assert card["config"] == {**card["config"], "seed": 0, "vocab_size": 8192}  # type: ignore[dict-item]
    assert card["samples"] and card["wall_seconds"]
    assert sum(f.stat().st_size for f in TINY_LM_DIR.iterdir()) < 8_000_000  # a few MB in the repository


def _lamo(source_overrides: dict[str, object], tmp_path: Path, agent: str = "lamo") -> LaMoAgent:
    dataset = linear_reacher_dataset(episodes=4)
    text = tmp_path / "text.txt"
    text.write_text((PARAGRAPHS + "\n") * 3)
    overrides = {"lm_corpus": str(text), "lm_block_size": 64, "batch_size": 4, **source_overrides}
    config = make_config(agent, TASK, overrides)
    return LaMoAgent(config, TaskSpec.from_task(TASK, dataset), seed=0)  # type: ignore[arg-type]


def test_lamo_on_tiny_lm_trains_lora_embeddings_and_heads(tmp_path: Path) -> None:
    agent = _lamo({"lm_source": "tiny-lm"}, tmp_path)
    assert agent.lora_target_names == ("c_attn",)
    h, r, layers, obs, act = 128, agent.config.lora_rank, 3, 12, 2
    lora = layers * (3 * (r * h + h * r) + 3 * h)  # Q, K, V adapters and c_attn's bias (bias='lora_only')

    def linear(i: int, o: int) -> int:
        return i * o + o

    embeddings = sum(linear(d, h) + linear(h, h) for d in (1, obs, act)) + agent.config.max_timestep * h
    head = linear(h, h) + linear(h, act) + 2 * h  # MLP action head and the input LayerNorm
    total, trainable = agent.num_params()
    assert trainable == lora + embeddings + head
    trainable_names = {n for n, p in agent.named_weights() if p.requires_grad}
    assert all("lora_" in n or "c_attn.bias" in n for n in trainable_names if ".backbone." in n or n.startswith("lm."))
    logs: list[dict[str, float]] = []
    agent.fit(linear_reacher_dataset(episodes=4), 2, eval_every=2, on_log=lambda step, m: logs.append(dict(m)))
    assert logs and all(k in logs[-1] for k in ("loss", "lm_loss"))  # decision + language loss through LoRA

    control = _lamo({"lm_source": "tiny-lm"}, tmp_path, agent="lamo-random-init")
    assert control.config.random_init and control.num_params() == (total, trainable)
    pre = dict(agent.lm.named_parameters())
    rand = dict(control.lm.named_parameters())
    name = "transformer.h.0.mlp.c_fc.weight"
    assert pre[name].shape == rand[name].shape and not torch.equal(pre[name], rand[name])


def test_language_block_longer_than_context_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"lm_block_size=1024 .* at most 256"):
        _lamo({"lm_source": "tiny-lm", "lm_block_size": 1024}, tmp_path)


def test_bad_or_missing_source_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"unknown LM backbone source 'tiny-lmm'.*tiny-lm"):
        load_backbone("tiny-lmm")
    monkeypatch.setitem(backbone.PACKAGED_SOURCES, "tiny-lm", tmp_path / "gone")
    with pytest.raises(BenchError, match="missing from this checkout.*bench lm pretrain"):
        load_backbone("tiny-lm")


def test_pretrain_cli_refuses_bad_numbers(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    monkeypatch.setattr(sys, "argv", ["bench", "lm", "pretrain", "--out", "/nonexistent/x", "--steps", "0"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line] == [line for line in err.splitlines() if "steps=0" in line]


def test_tokenizer_training_is_deterministic() -> None:
    docs = [p for p in PARAGRAPHS.split("\n") if p.strip()] * 4
    a, b = train_tokenizer(docs, 300), train_tokenizer(docs, 300)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    with pytest.raises(BenchError, match="block_size"):
        PretrainConfig(block_size=512)
