"""The language corpus: python-docs (offline default) determinism, held-out split, cache, batches; local
.txt/.jsonl sources; wikitext-103 error and parsing paths. Tokenizer: SmolLM2's (from the GGUF file)."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.lm.backbone import load_tokenizer
from agents.lm.corpus import (
    TokenCorpus,
    build_corpus,
    python_docs_documents,
    split_documents,
    tokenize_documents,
    wikitext_articles,
)
from bench.errors import BenchError


@pytest.fixture(scope="module")
def corpus_data_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("corpus-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMO_BENCH_DATA", str(root))
        yield root


@pytest.fixture(scope="module")
def tokenizer(corpus_data_root: Path) -> Any:
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def docs_corpus(tokenizer: Any) -> TokenCorpus:
    return build_corpus("python-docs", tokenizer)


@pytest.mark.slow
def test_python_docs_card(docs_corpus: TokenCorpus, corpus_data_root: Path) -> None:
    card = docs_corpus.card
    assert card["words"] > 150_000 and card["characters"] > 1_000_000
    assert card["documents"] == card["documents_train"] + card["documents_eval"]
    assert card["tokens_train"] == docs_corpus.train.shape[0] > 100_000
    assert card["tokens_eval"] == docs_corpus.eval.shape[0] > 256 * 20
    assert docs_corpus.train.dtype == np.uint32 and docs_corpus.eval.dtype == np.uint32
    assert docs_corpus.path is not None and docs_corpus.path.parent == corpus_data_root / "cache" / "corpus"
    assert json.loads((docs_corpus.path / "card.json").read_text()) == card
    print(
        f"python-docs: {card['words']} words, {card['characters']} characters, {card['documents']} documents, "
        f"{card['tokens_train']} + {card['tokens_eval']} tokens, built in {card['build_seconds']} s"
    )


@pytest.mark.slow
def test_python_docs_deterministic(docs_corpus: TokenCorpus, tokenizer: Any) -> None:
    rebuilt = build_corpus("python-docs", tokenizer, cache=False)  # a fresh collection in a new child process
    assert rebuilt.path is None
    assert np.array_equal(rebuilt.train, docs_corpus.train)
    assert np.array_equal(rebuilt.eval, docs_corpus.eval)
    assert rebuilt.card["text_sha256"] == docs_corpus.card["text_sha256"]


@pytest.mark.slow
def test_cache_is_reused(docs_corpus: TokenCorpus, tokenizer: Any) -> None:
    assert docs_corpus.path is not None
    mtime = (docs_corpus.path / "train.npy").stat().st_mtime_ns
    again = build_corpus("python-docs", tokenizer)
    assert again.path == docs_corpus.path
    assert (docs_corpus.path / "train.npy").stat().st_mtime_ns == mtime
    assert np.array_equal(again.train, docs_corpus.train)
    assert not [p for p in docs_corpus.path.parent.iterdir() if p.name.startswith(".")]


def test_held_out_split_disjoint_and_non_empty() -> None:
    docs = python_docs_documents()
    assert len(docs) > 100
    train, held_out = split_documents(docs)
    assert held_out and train
    assert not set(train) & set(held_out)
    assert len(set(train)) + len(held_out) == len(set(docs))
    assert 0.04 <= len(held_out) / len(set(docs)) <= 0.06
    assert split_documents(list(reversed(docs)))[1] == list(reversed(held_out))  # chosen by content, not position
    assert all("antigravity" not in d[:40] for d in docs)


@pytest.mark.slow
def test_sample_batch(docs_corpus: TokenCorpus, tokenizer: Any) -> None:
    batch = docs_corpus.sample_batch(4, 64, np.random.default_rng(7))
    assert isinstance(batch, torch.Tensor) and batch.dtype == torch.long and batch.shape == (4, 64)
    assert int(batch.max()) < len(tokenizer)
    again = docs_corpus.sample_batch(4, 64, np.random.default_rng(7))
    assert torch.equal(batch, again)
    other = docs_corpus.sample_batch(4, 64, np.random.default_rng(8))
    assert not torch.equal(batch, other)
    train = np.asarray(docs_corpus.train)
    for row in batch.numpy():  # each row is a contiguous slice of the train stream
        starts = np.flatnonzero(train[: len(train) - 63] == row[0])
        assert any(np.array_equal(train[s : s + 64], row) for s in starts)
    with pytest.raises(BenchError):
        docs_corpus.sample_batch(2, len(train) + 1, np.random.default_rng(0))


def test_tokenize_documents_separates_with_eos(tokenizer: Any) -> None:
    ids = tokenize_documents(["Hello there.", "General Kenobi."], tokenizer)
    eos = tokenizer.eos_token_id
    assert ids.dtype == np.uint32 and int((ids == eos).sum()) == 2 and ids[-1] == eos
    first = tokenizer("Hello there.", add_special_tokens=False)["input_ids"]
    assert ids[: len(first)].tolist() == first


PARAGRAPHS = [
    "The river flows slowly through the green valley toward the sea.",
    "Children played in the park until the sun went down behind the hills.",
    "The library opens at nine in the morning and closes at six in the evening.",
    "A good cup of tea needs freshly boiled water and a few minutes of patience.",
]


def test_local_txt(tmp_path: Path, tokenizer: Any, corpus_data_root: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(PARAGRAPHS) + "\n")
    corpus = build_corpus(str(path), tokenizer)
    assert corpus.card["documents"] == 4 and corpus.card["documents_eval"] == 1
    assert corpus.card["words"] == sum(len(p.split()) for p in PARAGRAPHS)
    assert corpus.train.size > 0 and corpus.eval.size > 0
    text = tokenizer.decode(np.concatenate([corpus.train, corpus.eval]).tolist())
    assert all(p in text for p in PARAGRAPHS)
    assert corpus.path is not None and corpus.path.name.startswith("notes-")
    # changed content gets its own cache entry
    path.write_text("\n\n".join(PARAGRAPHS[:3]) + "\n")
    changed = build_corpus(str(path), tokenizer)
    assert changed.path != corpus.path and changed.card["documents"] == 3


def test_local_jsonl_and_folder(tmp_path: Path, tokenizer: Any, corpus_data_root: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    lines = [json.dumps({"text": p, "id": i}) for i, p in enumerate(PARAGRAPHS)]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n\n")
    corpus = build_corpus(str(folder / "a.jsonl"), tokenizer)
    assert corpus.card["documents"] == 4
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("Snow fell quietly over the sleeping town.\n")
    (folder / "ignored.csv").write_text("a,b\n")
    both = build_corpus(str(folder), tokenizer)
    assert both.card["documents"] == 5


def test_local_errors(tmp_path: Path, tokenizer: Any, corpus_data_root: Path) -> None:
    with pytest.raises(BenchError, match="no such file"):
        build_corpus(str(tmp_path / "missing.txt"), tokenizer)
    with pytest.raises(BenchError, match="unknown corpus source"):
        build_corpus("wikitext-2", tokenizer)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    with pytest.raises(BenchError, match="line 2"):
        build_corpus(str(bad), tokenizer)
    no_field = tmp_path / "nofield.jsonl"
    no_field.write_text('{"body": "x"}\n')
    with pytest.raises(BenchError, match='"text"'):
        build_corpus(str(no_field), tokenizer)
    one = tmp_path / "one.txt"
    one.write_text("Only one paragraph here.\n")
    with pytest.raises(BenchError, match="at least 2"):
        build_corpus(str(one), tokenizer)
    other = tmp_path / "data.csv"
    other.write_text("a,b\n")
    with pytest.raises(BenchError, match=r"\.jsonl"):
        build_corpus(str(other), tokenizer)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchError, match="no .txt or .jsonl"):
        build_corpus(str(empty), tokenizer)


def test_wikitext_without_datasets(monkeypatch: pytest.MonkeyPatch, tokenizer: Any, corpus_data_root: Path) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(BenchError, match="needs the `datasets` package"):
        build_corpus("wikitext-103", tokenizer)
    # a bare `datasets/` data folder (this repository has one) imports as an empty namespace package
    monkeypatch.setitem(sys.modules, "datasets", types.ModuleType("datasets"))
    with pytest.raises(BenchError, match="needs the `datasets` package"):
        build_corpus("wikitext-103", tokenizer)


def test_wikitext_network_failure(monkeypatch: pytest.MonkeyPatch, tokenizer: Any, corpus_data_root: Path) -> None:
    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Couldn't reach 'wikitext' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(BenchError, match="could not load 'wikitext-103'.*Couldn't reach"):
        build_corpus("wikitext-103", tokenizer)


def test_wikitext_with_fake_datasets(monkeypatch: pytest.MonkeyPatch, tokenizer: Any, corpus_data_root: Path) -> None:
    train = [
        "",
        " = Alpha = \n",
        "",
        " Alpha is the first letter . \n",
        " = = History = = \n",
        " It is old . \n",
        " = Beta = \n",
        " Beta comes second . \n",
    ]
    validation = [" = Gamma = \n", " Gamma is third . \n"]
    calls: list[tuple[Any, ...]] = []

    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return {"train": {"text": train}, "validation": {"text": validation}}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    corpus = build_corpus("wikitext-103", tokenizer, cache=False)
    assert calls == [("wikitext", "wikitext-103-raw-v1")]
    assert corpus.card["documents_train"] == 2 and corpus.card["documents_eval"] == 1
    assert "Gamma is third" in tokenizer.decode(corpus.eval.tolist())
    assert wikitext_articles(train)[0].startswith("= Alpha =") and "History" in wikitext_articles(train)[0]
