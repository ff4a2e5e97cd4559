"""The language corpus for LaMo's auxiliary language loss: English text, tokenized once and cached.

One option string picks the source:

- `python-docs` (the offline default): English prose that ships with Python itself, the library reference
  topics in `pydoc_data.topics` plus the docstrings (module, class, function and method) of the public,
  non-test standard-library modules and their submodules. It is collected in a separate, isolated Python
  process (`python -I`), so importing a few hundred modules cannot disturb the caller; modules that fail to
  import, GUI toolkits (their availability varies by machine) and modules with side effects are skipped.
  One document per pydoc topic and per module (its docstrings joined); identical docstrings kept once.
- a local `.txt` file (documents are paragraphs, separated by blank lines), a `.jsonl` file (one document per
  line, field "text"), or a folder of them (searched recursively, sorted by path).
- `wikitext-103` (`wikitext`, `wikitext-103-raw-v1` through Hugging Face `datasets`; one document per article).

The held-out split is deterministic: the 5% of documents whose SHA-256 comes last (wikitext-103 uses its own
validation split). Documents are tokenized with the backbone's tokenizer, each followed by the tokenizer's
EOS token, and concatenated into one uint32 stream per split. Both streams and a JSON card (words,
characters, documents, tokens, build seconds) are cached under
`data_root()/cache/corpus/<source>-<tokenizer>/`, written to a temp folder first and then renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.errors import BenchError
from bench.paths import data_root

if TYPE_CHECKING:
    from types import ModuleType

    import torch
    from transformers import PreTrainedTokenizerBase

DEFAULT_CORPUS = "python-docs"
WIKITEXT = "wikitext-103"
EVAL_FRACTION = 0.05
CORPUS_FORMAT = 1  # bump when collection, splitting or tokenization changes: older caches are rebuilt
LOCAL_SUFFIXES = (".txt", ".jsonl")
COLLECT_TIMEOUT_S = 600


@dataclass
class TokenCorpus:
    """Tokenized train and held-out streams of one corpus for one tokenizer."""

    source: str
    train: np.ndarray  # uint32 token ids, documents separated by the tokenizer's EOS token
    eval: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)  # words, characters, documents, tokens, build seconds
    path: Path | None = None  # the cache folder, when cached

    def sample_batch(self, batch_size: int, block_size: int, rng: np.random.Generator) -> torch.Tensor:
        """`batch_size` random contiguous blocks of `block_size` train tokens: a LongTensor (B, block_size)."""
        import torch

        if batch_size < 1 or block_size < 1:
            raise BenchError(f"sample_batch needs positive sizes, got batch_size={batch_size}, block_size={block_size}")
        n = int(self.train.shape[0])
        if n < block_size:
            raise BenchError(f"corpus {self.source!r} has {n} train tokens, fewer than block_size={block_size}")
        starts = rng.integers(0, n - block_size + 1, size=batch_size)
        index = starts[:, None] + np.arange(block_size)[None, :]
        return torch.from_numpy(np.asarray(self.train[index], dtype=np.int64))

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.card)


def build_corpus(
    source: str = DEFAULT_CORPUS, tokenizer: PreTrainedTokenizerBase | None = None, *, cache: bool = True
) -> TokenCorpus:
    """The tokenized corpus for `source`: from the cache when there, else built (and cached when `cache`)."""
    if tokenizer is None:
        raise BenchError("build_corpus needs the backbone's tokenizer (agents.lm.backbone.load_tokenizer)")
    start = time.perf_counter()
    kind, source_key = _source_key(source)
    tok_key = tokenizer_key(tokenizer)
    folder = data_root() / "cache" / "corpus" / f"{source_key}-{tok_key}"
    if cache:
        cached = _read_cache(folder, source)
        if cached is not None:
            return cached

    if kind == "wikitext":
        train_docs, eval_docs = _wikitext_documents()
        extra: dict[str, Any] = {"eval_rule": "the wikitext-103 validation split"}
    else:
        docs = python_docs_documents() if kind == "python-docs" else local_documents(Path(source).expanduser())
        train_docs, eval_docs = split_documents(docs)
        extra = {"eval_rule": f"last {EVAL_FRACTION:.0%} of documents by SHA-256 of their text"}
        if kind == "python-docs":
            extra["python"] = _python_version()
    separator = tokenizer.eos_token_id
    train = tokenize_documents(train_docs, tokenizer)
    held_out = tokenize_documents(eval_docs, tokenizer)
    all_docs = [*train_docs, *eval_docs]
    card = {
        "format": CORPUS_FORMAT,
        "source": source,
        "source_key": source_key,
        "tokenizer": tok_key,
        "separator_token_id": separator,
        "documents": len(all_docs),
        "documents_train": len(train_docs),
        "documents_eval": len(eval_docs),
        "words": sum(len(d.split()) for d in all_docs),
        "characters": sum(len(d) for d in all_docs),
        "tokens_train": int(train.shape[0]),
        "tokens_eval": int(held_out.shape[0]),
        "text_sha256": _docs_digest(all_docs),
        **extra,
        "build_seconds": round(time.perf_counter() - start, 2),
    }
    if cache:
        _write_cache(folder, train, held_out, card)
        return TokenCorpus(source, train, held_out, card, folder)
    return TokenCorpus(source, train, held_out, card, None)


# ------------------------------------------------------------------------------------------ source names


def _source_key(source: str) -> tuple[str, str]:
    """(kind, cache key) of a corpus source; a local source's key includes a hash of its content."""
    if source == DEFAULT_CORPUS:
        return "python-docs", f"python-docs-py{_python_version()}"
    if source in (WIKITEXT, "wikitext", "wikitext-103-raw-v1"):
        return "wikitext", WIKITEXT
    path = Path(source).expanduser()
    files = _local_files(path)
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        digest.update(f.read_bytes() + b"\0")
    return "local", f"{_slug(path.stem if path.is_file() else path.name)}-{digest.hexdigest()[:10]}"


def tokenizer_key(tokenizer: PreTrainedTokenizerBase) -> str:
    """A file-name-safe key for a tokenizer: its name plus a hash of its full definition (or vocabulary)."""
    name = _slug(Path(str(getattr(tokenizer, "name_or_path", "") or "tokenizer")).name)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return f"{name}-{hashlib.sha256(definition.encode()).hexdigest()[:8]}"


def _python_version() -> str:
    return ".".join(str(v) for v in sys.version_info[:3])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "corpus"


# ---------------------------------------------------------------------------------------------- splitting


def split_documents(docs: Sequence[str], fraction: float = EVAL_FRACTION) -> tuple[list[str], list[str]]:
    """(train, eval): identical documents kept once, then the `fraction` whose SHA-256 comes last held out.

    Both keep the documents' original order. Needs at least two distinct documents.
    """
    unique = list(dict.fromkeys(d for d in docs if d.strip()))
    if len(unique) < 2:
        raise BenchError(
            f"a corpus needs at least 2 distinct non-empty documents for a held-out split, got {len(unique)}"
        )
    n_eval = min(len(unique) - 1, max(1, math.ceil(fraction * len(unique))))
    by_hash = sorted(range(len(unique)), key=lambda i: hashlib.sha256(unique[i].encode()).hexdigest())
    held_out = set(by_hash[-n_eval:])
    train = [d for i, d in enumerate(unique) if i not in held_out]
    evals = [d for i, d in enumerate(unique) if i in held_out]
    return train, evals


def tokenize_documents(docs: Sequence[str], tokenizer: PreTrainedTokenizerBase, chunk: int = 256) -> np.ndarray:
    """Each document's tokens followed by the EOS token (when the tokenizer has one), as one uint32 array."""
    separator = tokenizer.eos_token_id
    parts: list[np.ndarray] = []
    with _quiet_transformers():
        for i in range(0, len(docs), chunk):
            batch = list(docs[i : i + chunk])
            encoded = tokenizer(batch, add_special_tokens=False)["input_ids"]
            for ids in encoded:
                parts.append(np.asarray(ids, dtype=np.uint32))
                if separator is not None:
                    parts.append(np.asarray([separator], dtype=np.uint32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence 'sequence longer than model_max_length' warnings: documents are cut into blocks later."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _docs_digest(docs: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for d in docs:
        digest.update(d.encode() + b"\0")
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------- cache


_ARRAYS = ("train.npy", "eval.npy")


def _read_cache(folder: Path, source: str) -> TokenCorpus | None:
    try:
        card = json.loads((folder / "card.json").read_text())
        if card.get("format") != CORPUS_FORMAT:
            return None
        train = np.load(folder / "train.npy", mmap_mode="r")
        held_out = np.load(folder / "eval.npy", mmap_mode="r")
    except (OSError, ValueError):
        return None
    if train.shape[0] != card.get("tokens_train") or held_out.shape[0] != card.get("tokens_eval"):
        return None
    return TokenCorpus(source, train, held_out, card, folder)


def _write_cache(folder: Path, train: np.ndarray, held_out: np.ndarray, card: dict[str, Any]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        np.save(tmp / "train.npy", train.astype(np.uint32, copy=False))
        np.save(tmp / "eval.npy", held_out.astype(np.uint32, copy=False))
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        if folder.exists():
            stale = folder.with_name(f".{folder.name}.stale-{os.getpid()}-{time.time_ns()}")
            with contextlib.suppress(OSError):
                folder.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
        with contextlib.suppress(OSError):  # a concurrent builder got there first: same content, keep theirs
            tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------ local sources


def _local_files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix not in LOCAL_SUFFIXES:
            raise BenchError(
                f"corpus file {path} is neither .txt nor .jsonl; accepted corpus sources: "
                f"{DEFAULT_CORPUS}, {WIKITEXT}, a .txt/.jsonl file or a folder of them"
            )
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in LOCAL_SUFFIXES)
        if not files:
            raise BenchError(f"corpus folder {path} holds no .txt or .jsonl files")
        return files
    raise BenchError(
        f"unknown corpus source {str(path)!r}: no such file or folder; accepted: {DEFAULT_CORPUS}, "
        f"{WIKITEXT}, a .txt/.jsonl file or a folder of them"
    )


def local_documents(path: Path) -> list[str]:
    """Documents of a local .txt (paragraphs), .jsonl (field "text") or folder of them."""
    docs: list[str] = []
    for f in _local_files(path):
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise BenchError(f"corpus file {f} is not UTF-8 text ({err.reason} at byte {err.start})") from err
        if f.suffix == ".txt":
            docs.extend(p.strip() for p in re.split(r"\n\s*\n", text) if p.strip())
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise BenchError(f"corpus file {f} line {number} is not JSON ({err})") from err
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise BenchError(f'corpus file {f} line {number} has no string field "text"')
            if record["text"].strip():
                docs.append(record["text"].strip())
    return docs


# -------------------------------------------------------------------------------------------- wikitext


def _wikitext_documents() -> tuple[list[str], list[str]]:
    """(train, validation) articles of wikitext-103-raw-v1 through Hugging Face `datasets`."""
    hint = f"use the offline default {DEFAULT_CORPUS!r} or a local .txt/.jsonl corpus"
    try:
        import datasets

        # a bare `datasets/` folder (this repository has one) imports as a namespace package without it
        load_dataset = getattr(datasets, "load_dataset", None)
    except ImportError:
        load_dataset = None
    if load_dataset is None:
        raise BenchError(
            f"corpus {WIKITEXT!r} needs the `datasets` package (pip install datasets) and network access; {hint}"
        )
    try:
        data = load_dataset("wikitext", "wikitext-103-raw-v1")
        train, validation = data["train"]["text"], data["validation"]["text"]
    except Exception as err:  # network, hub and cache errors come in many types
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BenchError(
            f"could not load {WIKITEXT!r} (wikitext, wikitext-103-raw-v1) through datasets ({first}); {hint}"
        ) from err
    return wikitext_articles(train), wikitext_articles(validation)


_HEADING = re.compile(r"^ = [^=].* = $")


def wikitext_articles(lines: Sequence[str]) -> list[str]:
    """Group wikitext's raw lines into articles: a new one starts at each top-level ' = Title = ' heading."""
    articles: list[list[str]] = []
    for line in lines:
        if _HEADING.match(line.rstrip("\n")) or not articles:
            articles.append([])
        articles[-1].append(line)
    return [text for text in ("".join(a).strip() for a in articles) if text]


# ----------------------------------------------------------------------------------------- python-docs


def python_docs_documents() -> list[str]:
    """The `python-docs` documents, collected in an isolated child Python (`-I`) with no display and no stdin."""
    # The child evaluates no annotations (they name types it never imports) and defines every collector part.
    source = "\n\n".join(
        ["from __future__ import annotations"]
        + [inspect.getsource(f) for f in _PYDOCS_COLLECTOR]
        + ["_collect_python_docs(__import__('sys').argv[1])\n"]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    with tempfile.TemporaryDirectory(prefix="lamo-pydocs-") as tmp:
        out = Path(tmp) / "docs.json"
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", source, str(out)],
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COLLECT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"collecting the python-docs corpus took over {COLLECT_TIMEOUT_S} s") from err
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"collecting the python-docs corpus failed (exit {done.returncode}: {tail})")
        result = json.loads(out.read_text(encoding="utf-8"))
    docs = [str(d) for d in result["documents"]]
    if not docs:
        raise BenchError("the python-docs corpus came out empty: this Python ships no pydoc topics or docstrings")
    return docs


# The collector runs in a child Python that receives these functions' source (`_PYDOCS_COLLECTOR`), so each
# imports only the standard library, inside its body.


def _pydocs_stdlib_modules() -> list[ModuleType]:
    """Every importable standard-library module, sorted and depth first into packages, its output swallowed."""
    import contextlib
    import importlib
    import io
    import pkgutil
    import sys
    import warnings

    skip = {  # side effects on import, or GUI toolkits whose availability depends on the machine
        "antigravity",
        "this",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "lib2to3",
        "pydoc_data",
    }

    def excluded(name: str) -> bool:
        parts = name.split(".")
        return (
            parts[0] in skip
            or any(p.startswith("_") for p in parts)
            or any(p in ("test", "tests", "idle_test") or p.startswith("test_") for p in parts)
        )

    modules: list[ModuleType] = []

    def visit(name: str) -> None:
        if excluded(name):
            return
        try:
            module = importlib.import_module(name)
        except BaseException:  # a module may raise anything on import, SystemExit included
            return
        modules.append(module)
        path = getattr(module, "__path__", None)
        if path:
            for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
                visit(f"{name}.{info.name}")

    warnings.simplefilter("ignore")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for top in sorted(sys.stdlib_module_names):
            visit(top)
    return modules


def _pydocs_add(parts: list[str], doc: object, seen: set[str]) -> None:
    """Append a docstring, cleaned, unless it is empty or already kept somewhere earlier in the corpus."""
    import inspect

    if isinstance(doc, str):
        text = inspect.cleandoc(doc).strip()
        if text and text not in seen:
            seen.add(text)
            parts.append(text)


def _pydocs_callable_doc(obj: object) -> object:
    """A function's, builtin's or method descriptor's docstring (through classmethod / staticmethod), else None."""
    import inspect

    func = getattr(obj, "__func__", obj)
    if inspect.isfunction(func) or inspect.isbuiltin(func) or inspect.ismethoddescriptor(func):
        return getattr(func, "__doc__", None)
    return None


def _pydocs_module_document(module: ModuleType, seen: set[str]) -> str:
    """One module's docstrings joined: the module's, then each public class (and its public members and
    `__init__`) or callable, by name; empty when nothing new was found."""
    import inspect

    parts: list[str] = []
    _pydocs_add(parts, module.__doc__, seen)
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        if inspect.isclass(obj):
            _pydocs_add(parts, obj.__doc__, seen)
            for member, value in sorted(vars(obj).items()):
                if member.startswith("_") and member != "__init__":
                    continue
                _pydocs_add(parts, _pydocs_callable_doc(value), seen)
        else:
            _pydocs_add(parts, _pydocs_callable_doc(obj), seen)
    return "\n\n".join(parts)


def _collect_python_docs(out_path: str) -> None:
    """Runs in the child process (source sent with `python -I -c`), so it imports only the standard library.

    Writes {"documents": [...], "modules": [...]} as JSON to `out_path`. Documents: each pydoc topic (sorted by
    name), then one per module (sorted, depth first into packages) joining its docstrings, each distinct
    docstring kept only where first seen.
    """
    import json

    modules = _pydocs_stdlib_modules()
    from pydoc_data.topics import topics

    seen: set[str] = set()
    documents: list[str] = []
    for key in sorted(topics):
        parts: list[str] = []
        _pydocs_add(parts, topics[key], seen)
        documents.extend(parts)
    for module in modules:
        document = _pydocs_module_document(module, seen)
        if document:
            documents.append(document)
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump({"documents": documents, "modules": [m.__name__ for m in modules]}, handle)


# Everything the child needs, sent as source: the entry point last.
_PYDOCS_COLLECTOR = (
    _pydocs_stdlib_modules,
    _pydocs_add,
    _pydocs_callable_doc,
    _pydocs_module_document,
    _collect_python_docs,
)
