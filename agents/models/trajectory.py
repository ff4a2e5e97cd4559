"""The trajectory transformer shared by Decision Transformer and LaMo.

A trajectory is read as interleaved tokens (R_1, s_1, a_1, R_2, s_2, a_2, ...): return-to-go, state and action
of each step, each embedded on its own (linear for DT; for LaMo the official residual MLP
`fc2(GELU(fc1 x)) + fc1 x`), LayerNorm over the tokens, then a learned timestep embedding added. A causal
decoder reads the tokens and the action a_t is predicted from the hidden state of the s_t token (LaMo: the
official `MLPBlock` hidden -> GELU -> act with no tanh; DT: Linear + Tanh).

Token order. The LaMo code (srzer/LaMo-2023 @ 3e4fcc8, experiment-d4rl/decision_transformer/models/
decision_transformer.py, `forward`) normalises first and adds time after: `embed_ln(stack(R, s, a)) +
time.repeat_interleave(3)`. Its DT baseline is the very same class (`model_type=dt` without `pretrained_lm`,
experiment.py), so the paper's DT numbers come from that order too, and DT follows it here. The original DT code
(kzl/decision-transformer, gym/decision_transformer/models/decision_transformer.py) adds time *before* embed_ln;
LaMo's Atari code (experiment-atari/model.py) does the same, so pixel tasks keep that order
(`TrajectoryModelConfig.time_before_ln`, set by the agents for pixel observations).

The decoder is pluggable: by default a randomly initialised GPT-2 (DT), or any transformers decoder *inner*
model (GPT-2, Llama-style) taking `inputs_embeds`, a 4-D attention mask, `position_ids` and a cache, so LaMo
can pass a pre-trained language model of another width.

Absolute position embeddings are not used: the timestep embedding carries time, as in the DT reference. For the
GPT-2 built here `wpe` is replaced by a module returning zeros (`disable_position_embeddings`); RoPE backbones
still get explicit `position_ids`, and since RoPE only sees position differences, every inference mode below
gives the same relative positions to the same pair of tokens.

Three inference modes (`InferenceMode`):

- ``window`` (the paper's protocol, and the one training matches): every step re-encodes the last K steps
  with plain causal attention inside the window. The reference evaluators of DT and LaMo do exactly this, one
  episode at a time, left-padding early windows to K; here it is batched over all parallel episodes, which run
  in lock step and so need no padding (`predict_last`; masked padding changes nothing, as a test checks).
- ``cached``: a key/value cache so a step only encodes its new tokens (a_{t-1}, R_t, s_t). A multi-layer
  transformer cannot reproduce ``window`` with a cache once the window slides (t >= K): in ``window`` the
  older tokens are re-encoded with the shorter context the window leaves them, while cached keys/values were
  computed once, with the context they had then. So ``cached`` uses sliding-window attention instead: every
  token attends to itself and the 3K-2 tokens before it (3K-1 in all, what the s_t token sees in a full
  window), and the cache drops tokens older than that. It equals ``window`` while t < K and differs after.
- ``banded``: the uncached reference of ``cached``: the whole history re-encoded every step with the same
  banded mask. Slow (quadratic in episode length); it exists to test ``cached``.

Speed (benchmarks/eval_throughput.py: Hopper-v5, K=20, 20 episodes of 300 steps, one CPU thread): batched
``window`` is about 2x the one-episode-at-a-time reference (same arithmetic; batching only removes per-call
overhead, and a CPU forward pass is compute-bound), batched ``cached`` about 8x.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, GPT2Config, GPT2Model
from transformers.cache_utils import DynamicLayer

InferenceMode = Literal["window", "cached", "banded"]
INFERENCE_MODES: tuple[str, ...] = ("window", "cached", "banded")
TOKENS_PER_STEP = 3


@dataclass(frozen=True)
class TrajectoryModelConfig:
    """Shape of the sequence model. `hidden_size` etc. only describe the default GPT-2 backbone."""

    obs_dim: int
    act_dim: int  # width of a continuous action, or number of discrete actions
    discrete: bool = False
    context_length: int = 20
    max_timestep: int = 1000
    hidden_size: int = 128
    n_layer: int = 3
    n_head: int = 1
    activation: str = "relu"  # GPT-2 MLP activation; the DT reference uses ReLU
    dropout: float = 0.1
    # LaMo: u(x) = W1 GELU(W0 x) + W0 x (official ResidualBlock, experiment-d4rl .../models/utils.py)
    mlp_embedding: bool = False
    # LaMo: hidden -> GELU -> act_dim, no tanh (official MLPBlock); otherwise one Linear (+ Tanh, `action_tanh`)
    mlp_head: bool = False
    action_tanh: bool = True  # squash continuous actions of the *linear* head into [-1, 1] (official DT path)
    # Add the timestep embedding before embed_ln (original DT, LaMo's Atari code) instead of after it (LaMo d4rl).
    time_before_ln: bool = False
    # Full observation shape; a 3-D one (frames, height, width) of uint8 pixels gets the CNN state encoder.
    obs_shape: tuple[int, ...] = ()

    @property
    def pixels(self) -> bool:
        return len(self.obs_shape) == 3


# --- backbone -------------------------------------------------------------------------------------------


class NoPositionEmbedding(nn.Module):
    """Stands in for GPT-2's `wpe`: the timestep embedding replaces absolute positions, and without a table
    there is no limit on positions, which the cached mode needs (its positions grow with the episode)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        # Follows the model's dtype through .to(), so the zeros never up-cast a half-precision backbone.
        self.register_buffer("dtype_probe", torch.zeros(0), persistent=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        probe = self.get_buffer("dtype_probe")
        return torch.zeros((*position_ids.shape, self.hidden_size), dtype=probe.dtype, device=position_ids.device)


def disable_position_embeddings(model: GPT2Model) -> None:
    """Remove a GPT-2's absolute position embeddings (also meant for a pre-trained GPT-2 given to LaMo)."""
    model.wpe = NoPositionEmbedding(model.config.hidden_size)  # type: ignore[assignment]


def build_gpt2_backbone(config: TrajectoryModelConfig) -> GPT2Model:
    """A randomly initialised GPT-2 decoder as in the DT reference (vocabulary of 1: inputs are embeddings)."""
    gpt_config = GPT2Config(
        vocab_size=1,
        n_embd=config.hidden_size,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=4 * config.hidden_size,
        activation_function=config.activation,
        n_positions=TOKENS_PER_STEP * config.context_length,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        use_cache=False,
        bos_token_id=None,
        eos_token_id=None,
    )
    gpt_config._attn_implementation = "sdpa"
    model = GPT2Model(gpt_config)
    disable_position_embeddings(model)
    return model


def _cache_kwarg(backbone: nn.Module) -> str:
    """transformers renamed `past_key_values` to `cache` during 5.x; use whichever this backbone takes."""
    params = inspect.signature(backbone.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


# --- embeddings and heads ---------------------------------------------------------------------------------


class ResidualMLP(nn.Module):
    """LaMo's MLP embedding: `fc2(GELU(h)) + h` with `h = fc1(x)`.

    The residual is the official one (srzer/LaMo-2023 @ 3e4fcc8, experiment-d4rl/decision_transformer/models/
    utils.py `ResidualBlock`; experiment-atari/model.py `ResidualEmbedBlock` uses an nn.Embedding as fc1 for
    discrete actions). The paper's formula u(x) = W1 GELU(W0 x) leaves it out; the code decides.
    """

    def __init__(self, fc1: nn.Module, hidden: int) -> None:
        super().__init__()
        self.fc1 = fc1
        self.activation = nn.GELU()
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        out: torch.Tensor = self.fc2(self.activation(h)) + h
        return out


def _vector_embedding(in_dim: int, hidden: int, mlp: bool) -> nn.Module:
    if mlp:
        return ResidualMLP(nn.Linear(in_dim, hidden), hidden)
    return nn.Linear(in_dim, hidden)


class PixelStateEncoder(nn.Module):
    """Frame stacks (N, C, 84, 84) of 0-255 values -> (N, hidden): the DT and LaMo Atari state encoder.

    Three convolutions (32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1, ReLU), flattened, then a linear
    map and tanh, as in the Decision Transformer's Atari model that LaMo's Atari code builds on.
    """

    def __init__(self, obs_shape: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        channels, height, width = obs_shape
        self.obs_shape = tuple(obs_shape)
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            features = int(self.convs(torch.zeros(1, channels, height, width)).shape[1])
        self.project = nn.Sequential(nn.Linear(features, hidden), nn.Tanh())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        lead = pixels.shape[:-1]
        x = pixels.reshape(-1, *self.obs_shape) / 255.0
        out: torch.Tensor = self.project(self.convs(x))
        return out.reshape(*lead, -1)


def _discrete_embedding(num: int, hidden: int, mlp: bool) -> nn.Module:
    if mlp:
        return ResidualMLP(nn.Embedding(num, hidden), hidden)
    return nn.Embedding(num, hidden)


def action_head(hidden: int, act_dim: int, mlp: bool, tanh: bool) -> nn.Sequential:
    """The action head. LaMo's MLP head is the official `MLPBlock(hidden, act, hidden)`: Linear, GELU, Linear,
    and no tanh (experiment-d4rl decision_transformer.py builds it without one whenever mlp_embedding is on).
    The linear head is DT's Linear + Tanh (continuous) or plain logits (discrete)."""
    if mlp:
        return nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, act_dim))
    return nn.Sequential(nn.Linear(hidden, act_dim), *([nn.Tanh()] if tanh else []))


def attention_bias(
    query_pos: torch.Tensor, key_pos: torch.Tensor, band: int, dtype: torch.dtype, key_valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Additive 4-D mask (B or 1, 1, Q, Kv): query i sees key j when i - band < j <= i and j is valid.

    A query always sees itself, so padding queries (which see no valid key) get a finite softmax rather than
    NaN; real queries never see padding keys, so padding cannot leak into real tokens.
    """
    q = query_pos[:, None]
    k = key_pos[None, :]
    allowed = (k <= q) & (k > q - band)
    allowed = allowed[None, None] if key_valid is None else allowed[None, None] & key_valid[:, None, None, :]
    allowed = allowed | (q == k)[None, None]
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


# --- the model --------------------------------------------------------------------------------------------


@dataclass
class SlidingKVCache:
    """Per-episode-batch state of the cached mode: the decoder's cache and how many tokens were fed so far."""

    cache: DynamicCache
    band: int
    length: int = 0

    def evict(self) -> None:
        """Keep the newest band-1 tokens: the most any later token may attend to besides itself."""
        keep = self.band - 1
        for layer in self.cache.layers:
            if not isinstance(layer, DynamicLayer) or layer.keys is None or layer.values is None:
                raise TypeError(f"cached inference needs plain DynamicLayer caches, got {type(layer).__name__}")
            if layer.keys.dim() == 4 and layer.keys.shape[-2] > keep:
                layer.keys = layer.keys[..., -keep:, :]
                layer.values = layer.values[..., -keep:, :]

    def cached_tokens(self) -> int:
        return int(self.cache.get_seq_length())


class TrajectoryModel(nn.Module):
    """Decision-Transformer sequence model over (R, s, a) tokens; see the module docstring."""

    def __init__(self, config: TrajectoryModelConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone if backbone is not None else build_gpt2_backbone(config)
        backbone_config: Any = getattr(self.backbone, "config")  # noqa: B009  (nn.Module hides it from mypy)
        hidden = int(backbone_config.hidden_size)
        self.hidden_size = hidden
        self._cache_kwarg = _cache_kwarg(self.backbone)
        mlp = config.mlp_embedding
        self.embed_timestep = nn.Embedding(config.max_timestep, hidden)
        self.embed_return = _vector_embedding(1, hidden, mlp)
        self.embed_state = (
            PixelStateEncoder(config.obs_shape, hidden)
            if config.pixels
            else _vector_embedding(config.obs_dim, hidden, mlp)
        )
        if config.discrete:
            self.embed_action = _discrete_embedding(config.act_dim, hidden, mlp)
        else:
            self.embed_action = _vector_embedding(config.act_dim, hidden, mlp)
        self.embed_ln = nn.LayerNorm(hidden)
        self.predict_action = action_head(
            hidden, config.act_dim, config.mlp_head, config.action_tanh and not config.discrete
        )

    @property
    def band(self) -> int:
        """Tokens the s_t token sees in a full window, itself included; the sliding window of `cached`."""
        return TOKENS_PER_STEP * self.config.context_length - 1

    # --- embedding --------------------------------------------------------------------------------------

    def _float(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs come as float32 from numpy; match the model's dtype (LaMo may run in bf16)."""
        return x.to(self.embed_timestep.weight.dtype)

    def _action(self, actions: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.embed_action(actions.long() if self.config.discrete else self._float(actions))
        return out

    def _time(self, timesteps: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.embed_timestep(timesteps.clamp(0, self.config.max_timestep - 1))
        return out

    def embed_steps(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        states_embedded: bool = False,
    ) -> torch.Tensor:
        """(B, T, ...) step inputs -> (B, 3T, H) interleaved R, s, a token embeddings.

        With `states_embedded`, `observations` are already `embed_state` outputs (B, T, H): the window-mode
        evaluator keeps those for pixel tasks instead of re-running the CNN on K frame stacks every step.
        """
        b, t = timesteps.shape
        r = self.embed_return(self._float(returns_to_go))
        s = (
            self._float(observations)
            if states_embedded
            else self.embed_state(self._float(observations.reshape(b, t, -1)))
        )
        a = self._action(actions)
        tokens = torch.stack((r, s, a), dim=2).reshape(b, TOKENS_PER_STEP * t, self.hidden_size)
        return self._with_time(tokens, self._time(timesteps).repeat_interleave(TOKENS_PER_STEP, dim=1))

    def _with_time(self, tokens: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, N, H) and each token's timestep embedding -> the decoder's input (module doc)."""
        if self.config.time_before_ln:
            out: torch.Tensor = self.embed_ln(tokens + time)
            return out
        after: torch.Tensor = self.embed_ln(tokens) + time
        return after

    def _decode(
        self,
        tokens: torch.Tensor,
        bias: torch.Tensor | None,
        positions: torch.Tensor,
        cache: DynamicCache | None = None,
    ) -> torch.Tensor:
        """Run the backbone; `bias` None means plain causal attention (the backbone's own, fastest path)."""
        b = tokens.shape[0]
        if bias is not None:
            bias = bias.to(tokens.dtype).expand(b, -1, -1, -1)
        kwargs = {self._cache_kwarg: cache, "use_cache": cache is not None}
        out = self.backbone(
            inputs_embeds=tokens, attention_mask=bias, position_ids=positions[None].expand(b, -1), **kwargs
        )
        hidden: torch.Tensor = out.last_hidden_state
        return hidden

    # --- window mode (training and the paper's evaluation) -------------------------------------------------

    def forward(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Action predictions (B, T, act_dim) (tanh-squashed actions, or logits) for every step of a window.

        `mask` (B, T) is 1 on real steps and 0 on left padding; padding tokens are hidden from real ones.
        """
        b, t = timesteps.shape
        tokens = self.embed_steps(observations, actions, returns_to_go, timesteps)
        n = TOKENS_PER_STEP * t
        positions = torch.arange(n, device=tokens.device)
        valid = None if mask is None else mask.bool().repeat_interleave(TOKENS_PER_STEP, dim=1)
        hidden = self._decode(tokens, attention_bias(positions, positions, n, tokens.dtype, valid), positions)
        state_hidden = hidden.reshape(b, t, TOKENS_PER_STEP, -1)[:, :, 1]
        preds: torch.Tensor = self.predict_action(state_hidden)
        return preds

    def predict_last(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        states_embedded: bool = False,
    ) -> torch.Tensor:
        """Prediction (B, act_dim) for the last step of an unpadded window (every row equally long).

        Same result as `forward(...)[:, -1]` on the left-padded window, cheaper: no padding, plain causal
        attention, and the last step's action token (after s_t, so it cannot change the prediction) is left out.
        """
        tokens = self.embed_steps(observations, actions, returns_to_go, timesteps, states_embedded)[:, :-1]
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        pred: torch.Tensor = self.predict_action(self._decode(tokens, None, positions)[:, -1])
        return pred

    def loss(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Action loss on real steps: MSE for continuous actions, cross-entropy for discrete ones."""
        preds = self.forward(observations, actions, returns_to_go, timesteps, mask)
        weight = mask.to(preds.dtype)
        if self.config.discrete:
            ce = F.cross_entropy(preds.reshape(-1, preds.shape[-1]), actions.reshape(-1).long(), reduction="none")
            return (ce * weight.reshape(-1)).sum() / weight.sum().clamp_min(1.0)
        se = ((preds - actions) ** 2).mean(-1)
        return (se * weight).sum() / weight.sum().clamp_min(1.0)

    # --- banded mode (uncached reference of the cached mode) ---------------------------------------------

    def forward_banded(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        states_embedded: bool = False,
    ) -> torch.Tensor:
        """Action predictions (B, T, act_dim) over a whole history under sliding-window attention."""
        b, t = timesteps.shape
        tokens = self.embed_steps(observations, actions, returns_to_go, timesteps, states_embedded)
        positions = torch.arange(TOKENS_PER_STEP * t, device=tokens.device)
        hidden = self._decode(tokens, attention_bias(positions, positions, self.band, tokens.dtype), positions)
        preds: torch.Tensor = self.predict_action(hidden.reshape(b, t, TOKENS_PER_STEP, -1)[:, :, 1])
        return preds

    # --- cached mode --------------------------------------------------------------------------------------

    def new_cache(self) -> SlidingKVCache:
        return SlidingKVCache(cache=DynamicCache(), band=self.band)

    def step_cached(
        self,
        state: SlidingKVCache,
        observation: torch.Tensor,
        return_to_go: torch.Tensor,
        timestep: torch.Tensor,
        previous_action: torch.Tensor | None,
    ) -> torch.Tensor:
        """Feed one step's new tokens (a_{t-1} if any, R_t, s_t) and return the a_t prediction (B, act_dim).

        `observation` (B, obs...), `return_to_go` (B, 1), `timestep` (B,), `previous_action` (B, act_dim) or
        (B,) for discrete actions.
        """
        b = timestep.shape[0]
        time = self._time(timestep)
        parts, times = [], []
        if previous_action is not None:
            # a_{t-1} carries the timestep of its own step, as in the window.
            parts.append(self._action(previous_action))
            times.append(self._time(timestep - 1))
        parts.append(self.embed_return(self._float(return_to_go)))
        parts.append(self.embed_state(self._float(observation.reshape(b, -1))))
        times += [time, time]
        tokens = self._with_time(torch.stack(parts, dim=1), torch.stack(times, dim=1))
        n = tokens.shape[1]
        past = state.cached_tokens()
        positions = torch.arange(state.length, state.length + n, device=tokens.device)
        key_positions = torch.arange(state.length - past, state.length + n, device=tokens.device)
        bias = attention_bias(positions, key_positions, self.band, tokens.dtype)
        hidden = self._decode(tokens, bias, positions, cache=state.cache)
        state.length += n
        state.evict()
        pred: torch.Tensor = self.predict_action(hidden[:, -1])
        return pred
