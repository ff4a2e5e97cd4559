"""LaMo (Shi et al., ICLR 2024): a Decision Transformer whose decoder is a pre-trained causal language model.

Four parts, each behind a config switch so the paper's ablations are plain config overrides:

1. Pre-trained initialisation: the decoder is the inner model of a causal LM from `agents.lm.backbone`
   (`lm_source`, default the offline `smollm2-135m`; the paper's `gpt2`, hub ids or local folders also work).
   `random_init` keeps the architecture and draws fresh weights; `lm_layers` keeps only the first N blocks.
2. LoRA on the attention input projections Q, K and V, one rank-r adapter each, plus their biases; everything
   else of the LM frozen (official: loralib `MergedLinear(enable_lora=[True, True, True])` over GPT-2's fused
   `c_attn` and `mark_only_lora_as_trainable(bias='lora_only')`; srzer/LaMo-2023 @ 3e4fcc8, experiment-d4rl/
   decision_transformer/models/trajectory_gpt2_LoRA.py and experiment.py). GPT-2 gets `QKVLoRA` (below), a
   Llama-style model peft adapters on its separate q_proj/k_proj/v_proj. `full_finetune` trains all LM weights
   instead and adds no adapters (the Wiki-RL recipe).
3. MLP embeddings and action head (`mlp_embedding`, `mlp_head`, from `agents.models.trajectory`).
4. An auxiliary next-token loss of the *same* LM (token embeddings, LoRA-adapted blocks, LM head) on text from
   `agents.lm.corpus`: total = decision loss + `lm_loss_weight` * language loss. With a weight of 0 the language
   pass is never run and the corpus never built.

The agent reuses `DTAgent`'s training loop, window sampler, evaluation policy and optimiser, and overrides only
the model construction, the loss and the checkpoints (which hold the trainable weights alone: the frozen LM is
rebuilt from the config, so a LoRA checkpoint is a few MB instead of the LM's 500).

Positions: RoPE backbones (Llama-style) get explicit `position_ids` from the trajectory model, which only ever
matter through differences, so training, window and cached evaluation agree. GPT-2's learned absolute table
would make cached inference (positions that grow with the episode) disagree with the window, so in decision
passes it is switched off (the timestep embedding carries time, as in the LaMo/DT reference models) and switched
back on only for the language pass, where the LM needs the positions it was pre-trained with.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.base import AgentConfig, TaskSpec
from agents.checkpoint import read_checkpoint, write_checkpoint
from agents.dt import CHECKPOINT_FILE, DTAgent, TrajectoryAgentConfig, check_checkpoint_format
from agents.lm.backbone import DEFAULT_SOURCE, BackboneSpec, decoder_of, load_backbone, perplexity
from agents.lm.corpus import DEFAULT_CORPUS, TokenCorpus, build_corpus
from agents.models.trajectory import InferenceMode, TrajectoryModel
from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from bench.tasks import Task

LAMO_CHECKPOINT_FORMAT = 2  # 2: the official model (see agents.dt.CHECKPOINT_FORMAT), split Q/K/V LoRA
# The official LaMo adapts the attention's Q, K and V projections and nothing else. GPT-2 fuses them into one
# `c_attn` matrix (QKVLoRA splits it into three adapters); a Llama-style model (SmolLM2) has them separate, so
# peft puts one adapter on each. The attention output projection (`c_proj` / `o_proj`) and the MLPs stay frozen on
# both, so the two backbone families get the same adapted maps. Llama has no attention biases (SmolLM2:
# attention_bias=False), so there the official trainable biases have no counterpart; a model that has q/k/v
# biases (Qwen2) gets them trained, as bias='lora_only' would.
GPT2_LORA_TARGETS: tuple[str, ...] = ("c_attn",)
LLAMA_LORA_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")
# The official backbones (GPT-2 small; gpt2-medium on two Kitchen cells) and corpus (WikiText-103), under the
# names this project accepts for them.
OFFICIAL_LM_SOURCES: tuple[str, ...] = (
    "gpt2",
    "gpt2-medium",
    "hf:gpt2",
    "hf:gpt2-medium",
    "hf:openai-community/gpt2",
    "hf:openai-community/gpt2-medium",
)
OFFICIAL_CORPORA: tuple[str, ...] = ("wikitext-103", "wikitext", "wikitext-103-raw-v1")
# Config fields that decide which frozen weights a checkpoint's trainable weights were trained against.
_BACKBONE_FIELDS: tuple[str, ...] = (
    "lm_source",
    "lm_layers",
    "random_init",
    "full_finetune",
    "lora_rank",
    "lora_alpha",
    "mlp_embedding",
    "mlp_head",
    "context_length",
    "max_timestep",
)


@dataclass(frozen=True)
class LaMoTaskSettings:
    """LaMo's own per-task settings (the agent's counterpart of CORL's configs/offline/<algo>/<dataset>.yaml):
    the task registry describes tasks only, and what LaMo changes per task lives here, beside its config."""

    lora_rank: int = 16  # paper Appendix F / Table 6: rank 16 for continuous control
    mlp_embedding: bool = True  # MLP embeddings and MLP action head (paper Sec. 4)


#: Per task domain. Hopper is the paper's one task with linear embeddings ("except for the simplest task",
#: Sec. 4 / Appendix F); Atari uses LoRA rank 32 (Table 6). Every registered domain has an entry
#: (tests/test_lamo.py), so a new task must say what LaMo does on it.
LAMO_TASK_SETTINGS: dict[str, LaMoTaskSettings] = {
    "hopper": LaMoTaskSettings(mlp_embedding=False),
    "halfcheetah": LaMoTaskSettings(),
    "walker2d": LaMoTaskSettings(),
    "kitchen": LaMoTaskSettings(),
    "reacher2d": LaMoTaskSettings(),
    "pointmaze": LaMoTaskSettings(),
    "pong": LaMoTaskSettings(lora_rank=32),
    "breakout": LaMoTaskSettings(lora_rank=32),
    "qbert": LaMoTaskSettings(lora_rank=32),
}


def lamo_task_settings(task: Task) -> LaMoTaskSettings:
    try:
        return LAMO_TASK_SETTINGS[task.domain]
    except KeyError:
        raise BenchError(
            f"LaMo has no settings for task domain {task.domain!r} ({task.name}); add it to "
            f"agents.lamo.LAMO_TASK_SETTINGS (accepted: {', '.join(LAMO_TASK_SETTINGS)})"
        ) from None


@dataclass(frozen=True)
class LaMoConfig(TrajectoryAgentConfig):
    """LaMo's settings with the paper's defaults (Appendix F, Table 6); `default_config(task)` adds the task's.

    The LM decides width, depth and heads, so DT's GPT-2 size fields are not here (checkpoints written while
    LaMoConfig still carried them load: `retired_fields`). `dropout` is written into the LM's own dropouts
    (attention dropout of Llama-style models; all of GPT-2's dropouts, which are 0.1 as pre-trained).

    `lm_block_size` is the paper's 1024 tokens per text sequence (batch 2). With the full 49k-token SmolLM2 head
    that language pass costs about as much as the decision pass on a CPU; CPU profiles may lower it.

    `eval_mode` is "window", as trained and as the official evaluation runs (it re-encodes the last K steps every
    step). "cached" is an explicit speed option: with a 135M-parameter decoder re-encoding 3K tokens per step is
    roughly K times the arithmetic of feeding the 3 new ones (benchmarks/lamo_train_speed.py); it equals the
    window for the first K steps and differs after (agents.models.trajectory), so it is listed as a deviation.

    `deviations()` lists every known difference of a configuration from the official LaMo run.
    """

    retired_fields: ClassVar[tuple[str, ...]] = ("hidden_size", "n_layer", "n_head", "activation")

    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    # experiment-d4rl/utils.py get_optimizer: AdamW(..., eps=1e-6) whenever pretrained_lm is set. (Its separate
    # lm_learning_rate group never takes effect: no child module's type name contains "transformers".)
    adam_eps: float = 1e-6
    mlp_embedding: bool = True
    mlp_head: bool = True
    eval_mode: InferenceMode = "window"
    lm_source: str = DEFAULT_SOURCE
    lm_layers: int | None = None  # keep the first N transformer blocks (CPU budgets); None keeps all
    random_init: bool = False  # same architecture, no pre-training (ablation)
    full_finetune: bool = False  # train every LM weight, no LoRA (ablation; Wiki-RL)
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lm_loss_weight: float = 0.1  # lambda of the auxiliary language loss; 0 skips the language pass
    lm_corpus: str = DEFAULT_CORPUS
    lm_batch_size: int = 2
    lm_block_size: int = 1024
    amp: bool = True  # bf16 autocast for the forward passes, used only on CUDA
    compile: bool = False  # torch.compile the two loss functions (worth it on a GPU only)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lm_layers is not None and self.lm_layers < 1:
            raise BenchError(f"lm_layers must be at least 1 (or None for all), got {self.lm_layers}")
        if not self.full_finetune and (self.lora_rank < 1 or self.lora_alpha < 1):
            raise BenchError(f"lora_rank and lora_alpha must be positive, got {self.lora_rank}, {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise BenchError("dropout and lora_dropout must be in [0, 1)")
        if not (self.lm_loss_weight >= 0.0 and math.isfinite(self.lm_loss_weight)):
            raise BenchError(f"lm_loss_weight must be a finite number >= 0, got {self.lm_loss_weight}")
        if self.lm_batch_size < 1 or self.lm_block_size < 2:
            raise BenchError(
                f"lm_batch_size must be >= 1 and lm_block_size >= 2, got {self.lm_batch_size}, {self.lm_block_size}"
            )

    def deviations(self) -> list[str]:
        """Differences from the official LaMo run (srzer/LaMo-2023 @ 3e4fcc8: run.sh / run_cotrain.sh, GPT-2
        small, LoRA rank 16, WikiText-103 language pass in 1024-token blocks of batch 2, window evaluation)."""
        out = super().deviations()
        if self.lm_source not in OFFICIAL_LM_SOURCES:
            out.append(f"backbone {self.lm_source} instead of GPT-2 (gpt2 / gpt2-medium)")
        if self.lm_layers is not None:
            out.append(f"LM truncated to its first {self.lm_layers} blocks")
        if self.random_init:
            out.append("LM weights randomly initialised (ablation)")
        if self.full_finetune:
            out.append("full fine-tuning of the LM instead of LoRA (ablation)")
        if self.lm_loss_weight not in (0.0, 0.1):
            out.append(f"language-loss weight {self.lm_loss_weight} (official: 0.1 run_cotrain.sh, 0 run.sh)")
        if self.lm_loss_weight > 0:
            if self.lm_corpus not in OFFICIAL_CORPORA:
                out.append(f"language corpus {self.lm_corpus} instead of WikiText-103")
            if (self.lm_block_size, self.lm_batch_size) != (1024, 2):
                out.append(
                    f"language batches of {self.lm_batch_size} x {self.lm_block_size} tokens instead of 2 x 1024"
                )
            if self.lm_source in OFFICIAL_LM_SOURCES:
                out.append(
                    "the language pass adds GPT-2's position embeddings (official GPT2Model_LoRA "
                    "leaves them out: to_add_position_embeds=False)"
                )
        if self.lr_schedule == "atari_tokens":  # what default_config gives Atari tasks
            out.append(
                "Atari LaMo vs experiment-atari/model.py: theirs puts one peft adapter over GPT-2's fused "
                "c_attn (alpha = r, biases frozen), adds GPT-2 position embeddings, ends the action head "
                "in Linear + tanh and follows the CNN with a residual block; ours uses the d4rl model's "
                "split Q/K/V LoRA and MLP head, no position embeddings, a CNN ending in tanh"
            )
        if self.amp:
            out.append("bf16 autocast of the forward passes on CUDA (official: float32)")
        if self.compile:
            out.append("torch.compile of the loss functions")
        return out

    def backbone_spec(self, seed: int) -> BackboneSpec:
        return BackboneSpec(source=self.lm_source, n_layers=self.lm_layers, random_init=self.random_init, seed=seed)


class LanguageOnlyPositions(nn.Module):
    """Replaces GPT-2's `wpe`: zeros in decision passes (see the module docstring), the pre-trained table
    inside `LaMoAgent.language_positions()`. Zeros are built without indexing the table, so decision passes
    may use positions past its 1024 rows (cached evaluation of long episodes)."""

    def __init__(self, table: nn.Embedding) -> None:
        super().__init__()
        self.table = table
        self.enabled = False

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            out: torch.Tensor = self.table(position_ids)
            return out
        weight = self.table.weight
        return torch.zeros((*position_ids.shape, weight.shape[1]), dtype=weight.dtype, device=position_ids.device)


def lora_targets(model: nn.Module) -> tuple[str, ...]:
    """The attention projections LoRA goes into, by backbone family (see GPT2_LORA_TARGETS)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if set(GPT2_LORA_TARGETS) <= names:
        return GPT2_LORA_TARGETS
    if set(LLAMA_LORA_TARGETS) <= names:
        return LLAMA_LORA_TARGETS
    raise BenchError(
        f"no known attention projections in {type(model).__name__} for LoRA (expected "
        f"{'/'.join(GPT2_LORA_TARGETS)} or {'/'.join(LLAMA_LORA_TARGETS)}); use full_finetune"
    )


def _set_dropout(decoder: nn.Module, p: float) -> None:
    """Write the config's dropout into the LM (before LoRA is injected, so LoRA's own dropout is untouched)."""
    for module in decoder.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
        elif isinstance(getattr(module, "attention_dropout", None), float):
            # Llama-style attention reads this float at every forward (setattr: nn.Module's typing forbids floats)
            setattr(module, "attention_dropout", p)  # noqa: B010


class QKVLoRA(nn.Module):
    """GPT-2's fused attention input map `c_attn` (x @ W + b, W of shape (d, 3d)) with three rank-r adapters,
    one each for Q, K and V: out = x W + b + (alpha / r) [dropout(x) A_q^T B_q^T | ... K ... | ... V ...].

    The semantics of loralib's `MergedLinear(enable_lora=[True, True, True], fan_in_fan_out=True)` as the official
    LaMo builds it (microsoft/LoRA loralib/layers.py; srzer/LaMo-2023 experiment-d4rl/.../trajectory_gpt2_LoRA.py),
    written here because peft puts one adapter over the whole fused matrix. Parameters are laid out as loralib's:
    `lora_A` (3r, d) stacks A_q, A_k, A_v; `lora_B` (3d, r) stacks B_q, B_k, B_v; A is drawn like an nn.Linear
    weight (kaiming uniform, a=sqrt(5)), B starts at zero, so the adapted model starts as the pre-trained one.
    `weight` and `bias` are the original Conv1D's own parameters (not copies).
    """

    def __init__(self, c_attn: nn.Module, rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        weight, bias = getattr(c_attn, "weight"), getattr(c_attn, "bias")  # noqa: B009
        d_in, d_out = weight.shape
        if d_out % 3:
            raise BenchError(f"c_attn of width {d_out} is not a fused Q/K/V map (not divisible by 3)")
        self.weight: nn.Parameter = weight
        self.bias: nn.Parameter = bias
        self.rank, self.scaling = rank, alpha / rank
        self.lora_A = nn.Parameter(weight.new_empty(3 * rank, d_in))
        self.lora_B = nn.Parameter(weight.new_zeros(d_out, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = torch.matmul(x, self.weight) + self.bias
        low = F.linear(self.lora_dropout(x), self.lora_A).unflatten(-1, (3, self.rank))  # (..., 3, r)
        up = self.lora_B.unflatten(0, (3, -1))  # (3, d, r)
        delta = torch.einsum("...gr,gdr->...gd", low, up).flatten(-2)
        out: torch.Tensor = base + self.scaling * delta
        return out


def _inject_lora(lm: nn.Module, config: LaMoConfig) -> tuple[tuple[str, ...], list[nn.Parameter]]:
    """Put LoRA into the LM; returns the target names and the biases of the adapted projections (trainable,
    as the official bias='lora_only')."""
    targets = lora_targets(lm)
    biases: list[nn.Parameter] = []
    if targets == GPT2_LORA_TARGETS:
        for module in list(lm.modules()):
            c_attn = getattr(module, "c_attn", None)
            if isinstance(c_attn, nn.Module) and not isinstance(c_attn, QKVLoRA):
                wrapped = QKVLoRA(c_attn, config.lora_rank, config.lora_alpha, config.lora_dropout)
                module.c_attn = wrapped
                biases.append(wrapped.bias)
        return targets, biases
    from peft import LoraConfig, inject_adapter_in_model

    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(targets),
        bias="lora_only",
    )
    inject_adapter_in_model(lora, lm)
    for name, module in lm.named_modules():
        base = getattr(module, "base_layer", None)
        if name.rsplit(".", 1)[-1] in targets and isinstance(getattr(base, "bias", None), nn.Parameter):
            biases.append(getattr(base, "bias"))  # noqa: B009
    return targets, biases


class LaMoAgent(DTAgent):
    """LaMo agent; see the module docstring."""

    name: ClassVar[str] = "lamo"
    config_class: ClassVar[type[TrajectoryAgentConfig]] = LaMoConfig
    config: LaMoConfig

    @classmethod
    def default_config(cls, task: Task) -> LaMoConfig:
        p, own = task.paper, lamo_task_settings(task)
        config = LaMoConfig(
            batch_size=p.batch_size,
            learning_rate=p.learning_rate,
            weight_decay=p.weight_decay,
            grad_clip=p.grad_clip,
            warmup_steps=p.warmup_steps,
            dropout=p.dropout,
            context_length=task.context_length,
            reward_scale=p.reward_scale,
            max_timestep=task.max_episode_steps,
            lora_rank=own.lora_rank,
            mlp_embedding=own.mlp_embedding,
            mlp_head=own.mlp_embedding,
        )
        if task.action_kind == "discrete":
            # LaMo's Atari code (experiment-atari/core.py): plain AdamW (eps 1e-8) and the token-counted
            # warm-up + cosine schedule (agents.dt.AtariTokenSchedule).
            config = replace(config, adam_eps=1e-8, lr_schedule="atari_tokens")
        return config

    def __init__(self, config: AgentConfig, spec: TaskSpec, device: str = "cpu", seed: int = 0) -> None:
        if not isinstance(config, LaMoConfig):
            raise BenchError(f"{type(self).__name__} needs a LaMoConfig, got {type(config).__name__}")
        self.lm: nn.Module = nn.Module()  # set by build_model, called from DTAgent.__init__
        self.tokenizer: Any = None
        self.lora_target_names: tuple[str, ...] = ()
        self._position_switches: list[LanguageOnlyPositions] = []
        super().__init__(config, spec, device=device, seed=seed)
        self.lm.to(device)  # the decoder moved with the model; an untied LM head has not
        self.parts = nn.ModuleDict({"trajectory": self.model, "lm": self.lm})
        self._corpus: TokenCorpus | None = None
        # Text batches get their own stream, so the decision batches are the same with and without the LM loss.
        self._text_rng = np.random.default_rng([seed, 0x1A40])
        self._compiled: dict[str, Callable[..., torch.Tensor]] = {}

    # --- model --------------------------------------------------------------------------------------------

    def build_model(self) -> TrajectoryModel:
        c = self.config
        lm, self.tokenizer = load_backbone(c.backbone_spec(self.seed))
        decoder, _ = decoder_of(lm)
        _set_dropout(decoder, c.dropout)
        wpe = getattr(decoder, "wpe", None)
        if c.lm_loss_weight > 0 and isinstance(wpe, nn.Embedding) and c.lm_block_size > wpe.num_embeddings:
            raise BenchError(
                f"lm_block_size={c.lm_block_size} is longer than the context of LM backbone {c.lm_source!r} "
                f"({wpe.num_embeddings} positions); set lm_block_size to at most {wpe.num_embeddings}"
            )
        if isinstance(wpe, nn.Embedding):
            switch = LanguageOnlyPositions(wpe)
            decoder.wpe = switch
            self._position_switches = [switch]
        for p in lm.parameters():
            p.requires_grad_(c.full_finetune)
        if not c.full_finetune:
            self.lora_target_names, biases = _inject_lora(lm, c)
            for name, p in lm.named_parameters():
                p.requires_grad_("lora_" in name)
            for p in biases:
                p.requires_grad_(True)
        self.lm = lm
        return TrajectoryModel(self.model_config(), backbone=decoder)

    def named_weights(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Every distinct parameter of the agent: the trajectory model (which holds the LM's decoder) first,
        then what only the LM has (an untied LM head). Tied or shared weights appear once."""
        yield from self.parts.named_parameters()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for _, p in self.named_weights() if p.requires_grad]

    def num_params(self) -> tuple[int, int]:
        params = [p for _, p in self.named_weights()]
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

    @contextlib.contextmanager
    def language_positions(self) -> Iterator[None]:
        """Inside: the LM sees its pre-trained absolute positions (GPT-2); a no-op for RoPE backbones."""
        for switch in self._position_switches:
            switch.enabled = True
        try:
            yield
        finally:
            for switch in self._position_switches:
                switch.enabled = False

    # --- losses -------------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp and torch.device(self.device).type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _fn(self, name: str, fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if not self.config.compile:
            return fn
        if name not in self._compiled:
            self._compiled[name] = torch.compile(fn)
        return self._compiled[name]

    @property
    def corpus(self) -> TokenCorpus:
        """The language corpus, built (or read from its cache) on first use only."""
        if self._corpus is None:
            self._corpus = build_corpus(self.config.lm_corpus, self.tokenizer)
        return self._corpus

    def _language_loss(self, token_ids: torch.Tensor) -> torch.Tensor:
        with self.language_positions():
            logits = self.lm(input_ids=token_ids, use_cache=False).logits
        # Targets shifted left, the last position ignored: the (B*T, V) logits stay a view, never a copy.
        ignore = torch.full_like(token_ids[:, :1], -100)
        targets = torch.cat((token_ids[:, 1:], ignore), dim=1)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)

    def language_loss(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of the LM (with the shared LoRA adapters) on (B, T) token ids."""
        with self._autocast():
            return self._fn("language", self._language_loss)(token_ids.to(self.device))

    def text_batch(self) -> torch.Tensor:
        c = self.config
        return self.corpus.sample_batch(c.lm_batch_size, c.lm_block_size, self._text_rng)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.count_tokens(batch)
        with self._autocast():
            decision = self._fn("decision", self.model.loss)(
                batch["observations"], batch["actions"], batch["returns_to_go"], batch["timesteps"], batch["mask"]
            )
        extras = {"decision_loss": decision.detach()}
        weight = self.config.lm_loss_weight
        if weight == 0:
            return decision, extras
        language = self.language_loss(self.text_batch())
        extras["lm_loss"] = language.detach()
        return decision + weight * language, extras

    def language_perplexity(
        self, token_ids: np.ndarray | torch.Tensor, block_size: int = 256, max_blocks: int | None = 20
    ) -> float:
        """Perplexity of the agent's LM (LoRA included) on a token stream; the retention measurement."""
        with self.language_positions():
            return perplexity(self.lm, token_ids, block_size=block_size, max_blocks=max_blocks)

    # --- checkpoints --------------------------------------------------------------------------------------

    def generators(self) -> dict[str, np.random.Generator]:
        """The text-batch stream too: a resumed training must draw the same language batches."""
        return {**super().generators(), "text": self._text_rng}

    def save(self, path: Path) -> None:
        """Only trainable weights (LoRA, embeddings, head; all LM weights under full_finetune) are written."""
        write_checkpoint(
            path,
            CHECKPOINT_FILE,
            {
                "format": LAMO_CHECKPOINT_FORMAT,
                "agent": self.name,
                "config": self.config.to_dict(),
                "spec": asdict(self.spec),
                "seed": self.seed,
                "backbone": asdict(self.config.backbone_spec(self.seed)),
                "lora_targets": list(self.lora_target_names),
                "trainable": {n: p.detach().cpu() for n, p in self.named_weights() if p.requires_grad},
                "obs_mean": torch.from_numpy(self.obs_mean),
                "obs_std": torch.from_numpy(self.obs_std),
            },
        )

    def load(self, path: Path) -> None:
        file = Path(path) / CHECKPOINT_FILE
        payload = read_checkpoint(path, CHECKPOINT_FILE, self.name, self.device)
        check_checkpoint_format(payload, file, LAMO_CHECKPOINT_FORMAT)
        saved_config = payload.get("config", {})
        mine = self.config.to_dict()
        differ = [k for k in _BACKBONE_FIELDS if saved_config.get(k) != mine[k]]
        if self.config.random_init and payload.get("seed") != self.seed:
            differ.append("seed (the random backbone is drawn from it)")
        if differ:
            raise BenchError(f"checkpoint {file} was trained with a different backbone setup: {', '.join(differ)}")
        params = {n: p for n, p in self.named_weights() if p.requires_grad}
        saved: dict[str, torch.Tensor] = payload["trainable"]
        missing, unexpected = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
        if missing or unexpected:
            raise BenchError(
                f"checkpoint {file} does not fit this agent: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        with torch.no_grad():
            for name, p in params.items():
                if saved[name].shape != p.shape:
                    raise BenchError(
                        f"checkpoint {file}: {name} has shape {tuple(saved[name].shape)}, this agent {tuple(p.shape)}"
                    )
                p.copy_(saved[name])
        self.obs_mean = payload["obs_mean"].cpu().numpy().astype(np.float32)
        self.obs_std = payload["obs_std"].cpu().numpy().astype(np.float32)
        self.model.eval()


# --- the language-retention measurement -------------------------------------------------------------------


def language_retention(
    task: Task,
    dataset: TrajectoryDataset,
    *,
    steps: int = 300,
    lm_loss_weights: Sequence[float] = (0.1, 0.0),
    overrides: dict[str, Any] | None = None,
    eval_blocks: int = 20,
    block_size: int = 256,
    seed: int = 0,
    device: str = "cpu",
    log_every: int = 50,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Held-out language perplexity of LaMo's LM before and after decision training, for each LM-loss weight.

    Tests the paper's claim that the auxiliary language loss keeps the LM's language ability. Every run starts
    from the same LM (LoRA's B matrices start at zero, so the adapted LM *is* the loaded one: its perplexity is
    measured once) and sees the same decision batches (same seed; text batches have their own random stream);
    only `lm_loss_weight` differs. Perplexity is over the first `eval_blocks` blocks of `block_size` tokens of
    the corpus's held-out split, which the language loss never trains on.
    """
    say = progress or (lambda _msg: None)
    base = LaMoAgent.default_config(task).with_overrides(dict(overrides or {}))
    spec = TaskSpec.from_task(task, dataset)
    runs: list[dict[str, Any]] = []
    eval_tokens: np.ndarray | None = None
    corpus_card: dict[str, Any] = {}
    before = float("nan")
    params: tuple[int, int] = (0, 0)
    for weight in lm_loss_weights:
        agent = LaMoAgent(base.with_overrides({"lm_loss_weight": float(weight)}), spec, device=device, seed=seed)
        if eval_tokens is None:
            corpus = build_corpus(base.lm_corpus, agent.tokenizer)
            eval_tokens, corpus_card = corpus.eval, corpus.stats
            start = time.perf_counter()
            before = agent.language_perplexity(eval_tokens, block_size, eval_blocks)
            params = agent.num_params()
            say(f"perplexity before training: {before:.3f} ({time.perf_counter() - start:.0f} s)")
        say(f"lm_loss_weight={weight}: training {steps} steps")
        history: list[dict[str, float]] = []

        def log(step: int, metrics: dict[str, float], _history: list[dict[str, float]] = history) -> None:
            _history.append({"step": step, **metrics})
            say(f"  step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

        start = time.perf_counter()
        agent.fit(dataset, steps, eval_every=log_every, on_log=log)
        seconds = time.perf_counter() - start
        after = agent.language_perplexity(eval_tokens, block_size, eval_blocks)
        say(f"lm_loss_weight={weight}: perplexity after {after:.3f} ({after / before:.3f}x)")
        runs.append(
            {
                "lm_loss_weight": float(weight),
                "perplexity_after": after,
                "perplexity_ratio": after / before,
                "train_seconds": round(seconds, 1),
                "decision_loss_first": history[0].get("decision_loss"),
                "decision_loss_last": history[-1].get("decision_loss"),
                "lm_loss_first": history[0].get("lm_loss"),
                "lm_loss_last": history[-1].get("lm_loss"),
                "history": history,
            }
        )
        del agent
    return {
        "task": task.name,
        "dataset": dataset.name,
        "transitions": dataset.num_transitions,
        "steps": steps,
        "seed": seed,
        "device": device,
        "eval_blocks": eval_blocks,
        "block_size": block_size,
        "perplexity_before": before,
        "params_total": params[0],
        "params_trainable": params[1],
        "config": base.to_dict(),
        "corpus": {k: corpus_card.get(k) for k in ("source", "tokenizer", "tokens_eval")},
        "runs": runs,
    }
