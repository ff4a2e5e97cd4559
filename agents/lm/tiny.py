"""`tiny-lm`: a language model of the Decision Transformer baseline's size, pre-trained by this project.

Why it exists: on a 2-core CPU the quick profile cannot afford GPT-2 (124M parameters) or SmolLM2-135M, and a
SmolLM2 truncated to its first blocks has no language ability left (held-out perplexity 1e6-4e8;
benchmarks/lamo_language_retention.py), so "LaMo" there measured LoRA and the architecture, not pre-training.
Reid et al. 2022 ("Can Wikipedia Help Offline Reinforcement Learning?", arXiv 2201.12122) met the same cost
problem with ChibiT, a small GPT pre-trained on language. `tiny-lm` is that idea at DT's exact size:

- Architecture: transformers' GPT2LMHeadModel with DT's transformer shape (agents/dt.py DTConfig: 3 layers,
  width 128, **1 head**, ReLU MLP of width 512; the official DT for D4RL uses n_head=1 and ReLU, srzer/LaMo-2023
  experiment-d4rl/experiment.py). One head, not four, so that `lamo-random-init` on tiny-lm has exactly DT's
  transformer and the DT / LaMo-without-pre-training / LaMo comparison isolates pre-training. A context of 256
  positions, all trained (256-token blocks train 1.6x faster per token than 1024-token ones on this CPU:
  2.99 s per 32 x 256 step against 4.81 s per 8 x 1024); LaMo's language batches must then be at most 256
  tokens long (LaMoConfig.lm_block_size; a longer one is refused), and its decision windows (3 tokens per
  step, 20 steps) fit easily. Tied input/output embeddings (GPT-2's).
- Tokenizer: a byte-level BPE with 8,192 tokens trained here (the `tokenizers` library) on the corpus's train
  split, not SmolLM2's 49k-token tokenizer: with 49k tokens the embedding alone would be 6.3M parameters
  (four times the rest of the model) and the language loss's output layer would dominate every LaMo step on
  a CPU; with 8k it is 1M parameters and the language pass costs about as much as the decision pass.
  `<|endoftext|>` (id 0) separates documents, as in GPT-2.
- Corpus: `python-docs` (agents/lm/corpus.py: the English prose shipped with Python, pydoc topics and the
  standard library's docstrings), the project's offline corpus; its held-out split (the 5% of documents whose
  SHA-256 comes last) is never trained on and gives the perplexity in the card. The corpus depends on the
  Python version that collects it: the card records that version and the text's SHA-256.
- Training: AdamW (lr 2e-3, betas (0.9, 0.95), weight decay 0.1 on matrices only, gradient clipping at 1.0),
  linear warm-up then cosine decay to 10%, batches of random contiguous 1024-token blocks, dropout off while
  pre-training (short training on a small corpus, far from over-fitting); the saved config keeps GPT-2's 0.1
  dropouts, which LaMo overwrites with its own `dropout` anyway. Deterministic given the seed and the number of
  torch threads (run it with OMP_NUM_THREADS=1 to reproduce the shipped checkpoint bit for bit).
- Shipped at `agents/lm/tiny_lm/` inside the package (weights in float16, a few MB), so a fresh clone or an
  installed wheel finds it whatever LAMO_BENCH_DATA says; `lm_source = "tiny-lm"` loads it
  (agents/lm/backbone.py). `card.json` there has the corpus hash, token counts, perplexities (pre-trained and
  random init), samples and the command that rebuilt it; `heldout_sample.txt` is a slice of the held-out
  documents so tests can measure perplexity in seconds without collecting the corpus.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError

TINY_LM_SOURCE = "tiny-lm"
TINY_LM_DIR = Path(__file__).resolve().parent / "tiny_lm"
CARD_FILE = "card.json"
HELDOUT_FILE = "heldout_sample.txt"
EOS = "<|endoftext|>"
HELDOUT_SAMPLE_CHARS = 40_000


@dataclass(frozen=True)
class PretrainConfig:
    """Pre-training settings; the defaults rebuild the shipped checkpoint."""

    steps: int = 250  # about 30 min on one CPU thread of the busy shared 2-core machine (measured, see the card)
    seed: int = 0
    vocab_size: int = 8192  # see the module docstring: small output layer, cheap language loss
    n_layer: int = 3  # DT's (agents/dt.py DTConfig.n_layer)
    n_embd: int = 128  # DT's hidden_size
    n_head: int = 1  # DT's (official DT for D4RL: n_head=1)
    n_positions: int = 256  # context; LaMo's decision windows are at most a few dozen tokens
    activation: str = "relu"  # DT's (agents/dt.py DTConfig.activation)
    block_size: int = 256
    batch_size: int = 32  # 8,192 tokens per step
    learning_rate: float = 2e-3
    min_lr_fraction: float = 0.1
    warmup_steps: int = 25
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.vocab_size < 257:
            raise BenchError(
                f"pre-training needs steps >= 1, batch_size >= 1 and vocab_size >= 257 (the 256 bytes and "
                f"{EOS}), got steps={self.steps}, batch_size={self.batch_size}, vocab_size={self.vocab_size}"
            )
        if not 2 <= self.block_size <= self.n_positions:
            raise BenchError(f"block_size must be in [2, n_positions={self.n_positions}], got {self.block_size}")
        if self.n_embd % self.n_head:
            raise BenchError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")


def train_tokenizer(docs: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE (GPT-2 style pre-tokenization) trained on `docs`, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(docs), trainer=trainer, length=len(docs))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, model_max_length=256
    )


def gpt2_config(c: PretrainConfig, vocab_size: int) -> Any:
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=c.n_positions,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        n_inner=4 * c.n_embd,
        activation_function=c.activation,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
    )


def _lr(step: int, c: PretrainConfig) -> float:
    if step < c.warmup_steps:
        return c.learning_rate * (step + 1) / c.warmup_steps
    progress = (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return c.learning_rate * (c.min_lr_fraction + (1 - c.min_lr_fraction) * cosine)


def _set_dropout(model: torch.nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def pretrain(
    out: Path, config: PretrainConfig = PretrainConfig(), *, command: str = "", log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Build the tokenizer, pre-train the model and write the checkpoint folder `out` (via a temp folder)."""
    from transformers import GPT2LMHeadModel

    from agents.lm.backbone import perplexity
    from agents.lm.corpus import _docs_digest, python_docs_documents, split_documents, tokenize_documents

    start = time.perf_counter()
    c = config
    torch.manual_seed(c.seed)
    log("collecting the python-docs corpus ...")
    docs = python_docs_documents()
    train_docs, eval_docs = split_documents(docs)
    log(f"{len(train_docs)} train and {len(eval_docs)} held-out documents; training the tokenizer ...")
    tokenizer = train_tokenizer(train_docs, c.vocab_size)
    train_ids = tokenize_documents(train_docs, tokenizer).astype(np.int64)
    eval_ids = tokenize_documents(eval_docs, tokenizer).astype(np.int64)
    prep_s = time.perf_counter() - start
    log(f"{train_ids.size:,} train and {eval_ids.size:,} held-out tokens ({prep_s:.0f} s)")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(c.seed)
        model = GPT2LMHeadModel(gpt2_config(c, len(tokenizer)))
    random_model = GPT2LMHeadModel(model.config)
    random_model.load_state_dict(model.state_dict())  # the same initial weights, kept as the control
    _set_dropout(model, 0.0)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optim = torch.optim.AdamW(
        [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=c.learning_rate,
        betas=(0.9, 0.95),
    )
    rng = np.random.default_rng(c.seed)
    n = train_ids.size
    model.train()
    train_start = time.perf_counter()
    loss_value = float("nan")
    for step in range(c.steps):
        for group in optim.param_groups:
            group["lr"] = _lr(step, c)
        starts = rng.integers(0, n - c.block_size + 1, size=c.batch_size)
        batch = torch.from_numpy(train_ids[starts[:, None] + np.arange(c.block_size)[None, :]])
        loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        optim.step()
        loss_value = loss.detach().item()
        if not math.isfinite(loss_value):
            raise BenchError(f"tiny-lm pre-training diverged at step {step} (loss {loss_value})")
        if (step + 1) % c.log_every == 0 or step + 1 == c.steps:
            elapsed = time.perf_counter() - train_start
            rate = (step + 1) / elapsed
            log(f"step {step + 1}/{c.steps} loss {loss_value:.3f} lr {_lr(step, c):.2e} {rate:.3f} steps/s")
    train_s = time.perf_counter() - train_start

    _set_dropout(model, 0.1)  # GPT-2's dropouts, as saved in the config
    model.eval()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=_parent(out)))
    try:
        model.half().save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shipped = GPT2LMHeadModel.from_pretrained(tmp, dtype=torch.float32).eval()  # measure what ships
        ppl = perplexity(shipped, eval_ids, block_size=c.block_size)
        ppl_random = perplexity(random_model.eval(), eval_ids, block_size=c.block_size)
        heldout = _heldout_sample(eval_docs)
        (tmp / HELDOUT_FILE).write_text(heldout, encoding="utf-8")
        sample_ids = tokenize_documents([heldout], tokenizer).astype(np.int64)
        card = {
            "name": TINY_LM_SOURCE,
            "architecture": "GPT2LMHeadModel",
            "parameters": sum(p.numel() for p in shipped.parameters()),
            "config": asdict(c),
            "tokenizer": f"byte-level BPE, {len(tokenizer)} tokens, trained on the corpus's train split",
            "corpus": {
                "source": "python-docs",
                "python": platform.python_version(),
                "text_sha256": _docs_digest([*train_docs, *eval_docs]),
                "documents_train": len(train_docs),
                "documents_eval": len(eval_docs),
                "tokens_train": int(train_ids.size),
                "tokens_eval": int(eval_ids.size),
                "eval_rule": "last 5% of documents by SHA-256 of their text (agents/lm/corpus.py)",
            },
            "tokens_seen": c.steps * c.batch_size * c.block_size,
            "epochs": round(c.steps * c.batch_size * c.block_size / train_ids.size, 3),
            "final_train_loss": round(loss_value, 4),
            "heldout_perplexity": round(ppl, 3),
            "heldout_perplexity_random_init": round(ppl_random, 3),
            "heldout_sample_perplexity": round(perplexity(shipped, sample_ids, block_size=c.block_size), 3),
            "heldout_sample_perplexity_random_init": round(
                perplexity(random_model, sample_ids, block_size=c.block_size), 3
            ),
            "samples": generate_samples(shipped, tokenizer, seed=c.seed),
            "command": command,
            "torch_threads": torch.get_num_threads(),
            "wall_seconds": {
                "corpus_and_tokenizer": round(prep_s, 1),
                "training": round(train_s, 1),
                "total": round(time.perf_counter() - start, 1),
            },
            "steps_per_second": round(c.steps / train_s, 4),
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": _tf_version()},
        }
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {out}: held-out perplexity {ppl:.2f} (random init {ppl_random:.1f})")
    return card


PROMPTS = ("The", "Return a new list", "This module provides", "If the file")


@torch.no_grad()
def generate_samples(model: Any, tokenizer: Any, *, seed: int, max_new_tokens: int = 40) -> list[dict[str, str]]:
    """Greedy and seeded (top-k 40, temperature 0.8) continuations of a few prompts, for the card."""
    out: list[dict[str, str]] = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        greedy = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sampled = model.generate(
                ids, max_new_tokens=max_new_tokens, do_sample=True, top_k=40, temperature=0.8, pad_token_id=0
            )
        out.append(
            {
                "prompt": prompt,
                "greedy": tokenizer.decode(greedy[0], skip_special_tokens=False),
                "sampled": tokenizer.decode(sampled[0], skip_special_tokens=False),
            }
        )
    return out


def _heldout_sample(eval_docs: Sequence[str]) -> str:
    """The first held-out documents up to about HELDOUT_SAMPLE_CHARS characters, blank-line separated."""
    parts: list[str] = []
    total = 0
    for doc in eval_docs:
        parts.append(doc)
        total += len(doc)
        if total >= HELDOUT_SAMPLE_CHARS:
            break
    return "\n\n".join(parts)[:HELDOUT_SAMPLE_CHARS] + "\n"


def _parent(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent


def _tf_version() -> str:
    import transformers

    return str(transformers.__version__)
