"""Our LaMo and DT models against an independent re-statement of the official forward passes.

The reference below is written for this test from reading the official code (srzer/LaMo-2023 @ 3e4fcc8,
experiment-d4rl/): `decision_transformer/models/decision_transformer.py` (embeddings, `embed_ln` then the
timestep embedding, the (R, s, a) interleaving, the heads), `models/utils.py` (`ResidualBlock`, `MLPBlock`),
`models/trajectory_gpt2_LoRA.py` and `trajectory_gpt2.py` (GPT-2 blocks; position embeddings are only added
with `to_add_position_embeds`, which the decision pass never sets; causal mask by `masked_bias` -1e4 and
padding by an additive -10000), loralib's `MergedLinear(enable_lora=[True, True, True])` (microsoft/LoRA
loralib/layers.py: one rank-r adapter per Q, K, V, here applied as *merged* weights W + alpha/r * B A), and
`experiment.py` / loralib `mark_only_lora_as_trainable(bias='lora_only')` plus `adapt_embed` (names holding
"embed" or "predict") for what trains. It shares no code with `agents.models.trajectory` or `agents.lamo`: it
reads their weights by name, in double precision, and the outputs must agree to 1e-9.

Official parameters that never enter the action prediction are left out of the comparison and listed here:
`predict_state` and `predict_return` (built and trainable in the official model, no gradient ever reaches them),
and for DT the unused `wte` (vocabulary 50257) and `wpe` tables of its GPT-2.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

import agents.lamo as lamo
from agents.base import TaskSpec
from agents.dt import DTAgent
from agents.lamo import LaMoAgent
from bench.tasks import get_task

torch.set_num_threads(1)
TASK = get_task("reacher2d-medium")
SPEC = TaskSpec(
    task=TASK.name,
    observation_shape=(11,),
    action_dim=2,
    discrete=False,
    context_length=5,
    max_episode_steps=100,
    reward_scale=10.0,
    rtg_targets=(20.0,),
)
N_EMBD, N_HEAD, N_LAYER, RANK = 32, 4, 2, 4

# --- the reference ----------------------------------------------------------------------------------------


def _linear(w: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _conv1d(w: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    """transformers' Conv1D: weight stored (in, out)."""
    return x @ w[f"{name}.weight"] + w[f"{name}.bias"]


def _layer_norm(w: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * w[f"{name}.weight"] + w[f"{name}.bias"]


def _gelu_exact(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _residual_block(w: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    hidden = _linear(w, f"{name}.fc1", x)
    return _linear(w, f"{name}.fc2", _gelu_exact(hidden)) + hidden


def _merged_c_attn(w: dict[str, torch.Tensor], name: str, scaling: float) -> torch.Tensor:
    """MergedLinear's weight with its three adapters folded in, (in, 3d) as Conv1D stores it."""
    weight = w[f"{name}.weight"]
    if f"{name}.lora_A" not in w:
        return weight
    a, b = w[f"{name}.lora_A"], w[f"{name}.lora_B"]
    r, d = a.shape[0] // 3, b.shape[0] // 3
    delta = torch.cat([b[g * d : (g + 1) * d] @ a[g * r : (g + 1) * r] for g in range(3)], dim=0)  # (3d, in)
    return weight + scaling * delta.T


def _gpt2(
    w: dict[str, torch.Tensor], x: torch.Tensor, mask: torch.Tensor, n_layer: int, n_head: int, act: str, scaling: float
) -> torch.Tensor:
    """GPT-2 blocks over inputs_embeds x (B, N, H) with a (B, N) 1/0 key mask, no position embeddings."""
    b, n, h = x.shape
    hd = h // n_head
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    pad = (1.0 - mask.to(x.dtype))[:, None, None, :] * -10000.0
    for i in range(n_layer):
        p = f"transformer_model.transformer.h.{i}"
        a = _layer_norm(w, f"{p}.ln_1", x)
        qkv = a @ _merged_c_attn(w, f"{p}.attn.c_attn", scaling) + w[f"{p}.attn.c_attn.bias"]
        q, k, v = (t.reshape(b, n, n_head, hd).transpose(1, 2) for t in qkv.split(h, dim=-1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = torch.where(causal, scores, torch.tensor(-1e4, dtype=x.dtype)) + pad
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, h)
        x = x + _conv1d(w, f"{p}.attn.c_proj", out)
        m = _conv1d(w, f"{p}.mlp.c_fc", _layer_norm(w, f"{p}.ln_2", x))
        m = torch.relu(m) if act == "relu" else _gelu_new(m)
        x = x + _conv1d(w, f"{p}.mlp.c_proj", m)
    return _layer_norm(w, "transformer_model.transformer.ln_f", x)


def official_forward(
    w: dict[str, torch.Tensor],
    states: torch.Tensor,
    actions: torch.Tensor,
    returns_to_go: torch.Tensor,
    timesteps: torch.Tensor,
    mask: torch.Tensor,
    *,
    mlp: bool,
    n_layer: int,
    n_head: int,
    act: str,
    scaling: float = 0.0,
) -> torch.Tensor:
    """DecisionTransformer.forward of experiment-d4rl, action predictions (B, T, act_dim)."""
    b, t = timesteps.shape
    embed = _residual_block if mlp else _linear
    r, s, a = (
        embed(w, f"embed_{k}", x) for k, x in (("return", returns_to_go), ("state", states), ("action", actions))
    )
    h = r.shape[-1]
    stacked = torch.stack((r, s, a), dim=1).permute(0, 2, 1, 3).reshape(b, 3 * t, h)
    time = w["embed_timestep.weight"][timesteps]
    x = _layer_norm(w, "embed_ln", stacked) + time.repeat_interleave(3, dim=1)
    mask3 = torch.stack((mask, mask, mask), dim=1).permute(0, 2, 1).reshape(b, 3 * t)
    x = _gpt2(w, x, mask3, n_layer, n_head, act, scaling)
    x = x.reshape(b, t, 3, h).permute(0, 2, 1, 3)
    if mlp:  # MLPBlock: fc1, GELU, fc2, no tanh
        return _linear(w, "predict_action.fc2", _gelu_exact(_linear(w, "predict_action.fc1", x[:, 1])))
    return torch.tanh(_linear(w, "predict_action.0", x[:, 1]))


def official_trainable(names: list[str], lora: bool) -> set[str]:
    """experiment.py: LaMo marks LoRA weights and the LoRA layers' biases (bias='lora_only'), then every name
    holding "embed" or "predict" (adapt_embed); DT (no adapt_mode) trains everything."""
    if not lora:
        return set(names)
    return {n for n in names if "lora_" in n or re.search(r"\.c_attn\.bias$", n) or "embed" in n or "predict" in n}


# --- name mapping ours -> official ------------------------------------------------------------------------


def official_name(ours: str, mlp_head: bool) -> str:
    n = re.sub(r"^trajectory\.", "", ours)
    n = re.sub(r"^backbone\.", "transformer_model.transformer.", n)
    n = n.replace(".wpe.table.", ".wpe.")
    n = re.sub(r"^lm\.lm_head\.", "transformer_model.lm_head.", n)
    if mlp_head:
        n = n.replace("predict_action.0.", "predict_action.fc1.").replace("predict_action.2.", "predict_action.fc2.")
    return n


def _inputs(t: int = 5, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    b = 3
    states = torch.randn(b, t, 11, generator=g, dtype=torch.float64)
    actions = torch.rand(b, t, 2, generator=g, dtype=torch.float64) * 2 - 1
    rtg = torch.randn(b, t, 1, generator=g, dtype=torch.float64)
    timesteps = torch.randint(0, 90, (b, 1), generator=g) + torch.arange(t)
    mask = torch.ones(b, t, dtype=torch.float64)
    mask[1, :2] = 0  # left padding, as the official evaluator pads short histories
    mask[2, :4] = 0
    return states, actions, rtg, timesteps, mask


def _tiny_gpt2(_spec: Any) -> tuple[GPT2LMHeadModel, None]:
    torch.manual_seed(123)
    config = GPT2Config(vocab_size=50, n_embd=N_EMBD, n_layer=N_LAYER, n_head=N_HEAD, n_positions=64)
    return GPT2LMHeadModel(config).eval(), None


@pytest.fixture()
def lamo_agent(monkeypatch: pytest.MonkeyPatch) -> LaMoAgent:
    monkeypatch.setattr(lamo, "load_backbone", _tiny_gpt2)
    config = LaMoAgent.default_config(TASK).with_overrides(
        {"lm_source": "gpt2", "lm_loss_weight": 0.0, "lora_rank": RANK, "lora_alpha": 2 * RANK, "amp": False}
    )
    agent = LaMoAgent(config, SPEC, seed=0)
    with torch.no_grad():  # LoRA's B starts at zero: give it (and the biases) values so the adapters matter
        for name, p in agent.named_weights():
            if "lora_B" in name or name.endswith("c_attn.bias"):
                p.copy_(torch.randn_like(p) * 0.3)
    return agent


def test_lamo_forward_equals_official(lamo_agent: LaMoAgent) -> None:
    model = lamo_agent.model.double().eval()
    w = {official_name(n, mlp_head=True): p.detach() for n, p in lamo_agent.named_weights()}
    states, actions, rtg, timesteps, mask = _inputs()
    with torch.no_grad():
        ours = model(states, actions, rtg, timesteps, mask)
        ref = official_forward(
            w,
            states,
            actions,
            rtg,
            timesteps,
            mask,
            mlp=True,
            n_layer=N_LAYER,
            n_head=N_HEAD,
            act="gelu_new",
            scaling=2.0,
        )
    real = mask.bool()
    assert ref.abs().max() > 0.1  # not trivially small
    torch.testing.assert_close(ours[real], ref[real], atol=1e-9, rtol=0)
    # and the prediction of the last step the evaluator uses (no padding, window mode)
    with torch.no_grad():
        last = model.predict_last(states[:1], actions[:1], rtg[:1], timesteps[:1])
    torch.testing.assert_close(last, ref[:1, -1], atol=1e-9, rtol=0)


def test_lamo_trainable_parameters_equal_official(lamo_agent: LaMoAgent) -> None:
    ours = {official_name(n, mlp_head=True): p for n, p in lamo_agent.named_weights()}
    ours_trainable = {n for n, p in ours.items() if p.requires_grad}
    official = official_trainable(list(ours), lora=True)
    assert ours_trainable == official
    per_layer = {n for n in official if ".h.0." in n}
    assert per_layer == {f"transformer_model.transformer.h.0.attn.c_attn.{k}" for k in ("lora_A", "lora_B", "bias")}
    count = sum(ours[n].numel() for n in ours_trainable if n.startswith("transformer_model"))
    assert count == N_LAYER * (3 * RANK * N_EMBD + 3 * N_EMBD * RANK + 3 * N_EMBD)  # A, B and the c_attn bias


def test_dt_forward_and_trainables_equal_official() -> None:
    config = DTAgent.default_config(TASK).with_overrides({"hidden_size": N_EMBD, "n_head": N_HEAD})
    agent = DTAgent(config, SPEC, seed=0)
    model = agent.model.double().eval()
    named = dict(model.named_parameters())
    w = {official_name(n, mlp_head=False): p.detach() for n, p in named.items()}
    states, actions, rtg, timesteps, mask = _inputs(seed=1)
    with torch.no_grad():
        ours = model(states, actions, rtg, timesteps, mask)
        ref = official_forward(
            w, states, actions, rtg, timesteps, mask, mlp=False, n_layer=config.n_layer, n_head=N_HEAD, act="relu"
        )
    real = mask.bool()
    torch.testing.assert_close(ours[real], ref[real], atol=1e-9, rtol=0)
    assert {n for n, p in named.items() if p.requires_grad} == official_trainable(list(named), lora=False)
    assert not any("wpe" in n for n in named)  # no position table at all; official's is never added


def test_reference_sees_the_details_it_pins(lamo_agent: LaMoAgent) -> None:
    """The comparison is not vacuous: without the adapters, with a tanh on the MLP head, or with one adapter over
    the fused Q/K/V matrix (what peft does to GPT-2) the outputs differ by far more than the tolerance."""
    w = {official_name(n, mlp_head=True): p.detach().double() for n, p in lamo_agent.named_weights()}
    states, actions, rtg, timesteps, mask = _inputs()
    kw: dict[str, Any] = {"mlp": True, "n_layer": N_LAYER, "n_head": N_HEAD, "act": "gelu_new", "scaling": 2.0}
    base = official_forward(w, states, actions, rtg, timesteps, mask, **kw)
    ours = lamo_agent.model.double().eval()(states, actions, rtg, timesteps, mask).detach()
    real = mask.bool()
    no_lora = official_forward(w, states, actions, rtg, timesteps, mask, **{**kw, "scaling": 0.0})
    assert (no_lora[real] - ours[real]).abs().max() > 1e-3
    assert (torch.tanh(base[real]) - ours[real]).abs().max() > 1e-3
    with torch.no_grad():  # one adapter over the fused matrix is a different map from three
        a = lamo_agent.model.backbone.h[0].attn.c_attn
        x = torch.randn(4, N_EMBD, dtype=torch.float64)
        fused = x @ a.weight + a.bias + 2.0 * F.linear(F.linear(x, a.lora_A[:RANK]), a.lora_B)  # A (r, d), B (3d, r)
        assert (fused - a(x)).abs().max() > 1e-3
