"""Agent registry: names (and named variants) to agent classes, so callers never import a concrete agent.

Entries are "module:Class" strings resolved on first use: listing agents does not import torch or d3rlpy.
A variant is a base agent plus config overrides (the paper's LaMo ablations are variants of `lamo`), so a
suite can list `lamo-no-lm-loss` like any other agent.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from agents.base import Agent, AgentConfig, TaskSpec
from bench.errors import BenchError
from bench.tasks import Task


@dataclass(frozen=True)
class AgentEntry:
    name: str
    target: str  # "module:Class" of the Agent subclass
    overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    base: str = ""  # for a variant: the agent it varies (results group variants under it)
    #: Whether the agent's policy takes a return-to-go target (DT, LaMo). It mirrors the class attribute
    #: `Agent.return_conditioned` so callers that only plan (cost estimates, dry runs) need not import torch;
    #: the agent contract test checks that the two agree.
    return_conditioned: bool = False

    @property
    def family(self) -> str:
        """The method this entry belongs to: its base agent for a variant, else itself. Callers ask
        `entry.family == "lamo"` instead of matching name prefixes, so a new variant needs no edits elsewhere."""
        return self.base or self.name

    def agent_class(self) -> type[Agent]:
        module, cls = self.target.split(":")
        out: type[Agent] = getattr(importlib.import_module(module), cls)
        return out


AGENTS: dict[str, AgentEntry] = {}


def register(entry: AgentEntry) -> None:
    AGENTS[entry.name] = entry


for _entry in (
    AgentEntry(
        "lamo",
        "agents.lamo:LaMoAgent",
        return_conditioned=True,
        description="LaMo: pre-trained LM + LoRA + MLP embeddings + language loss",
    ),
    # The paper's ablations (Section 5.5), each switching off exactly one part of LaMo.
    AgentEntry(
        "lamo-full-finetune",
        "agents.lamo:LaMoAgent",
        {"full_finetune": True},
        base="lamo",
        return_conditioned=True,
        description="LaMo with every backbone weight trained instead of LoRA (Wiki-RL-style fine-tuning)",
    ),
    AgentEntry(
        "lamo-linear-embeddings",
        "agents.lamo:LaMoAgent",
        {"mlp_embedding": False, "mlp_head": False},
        base="lamo",
        return_conditioned=True,
        description="LaMo with linear embeddings and action head instead of MLPs",
    ),
    AgentEntry(
        "lamo-no-lm-loss",
        "agents.lamo:LaMoAgent",
        {"lm_loss_weight": 0.0},
        base="lamo",
        return_conditioned=True,
        description="LaMo without the auxiliary language loss (lambda = 0)",
    ),
    AgentEntry(
        "lamo-random-init",
        "agents.lamo:LaMoAgent",
        {"random_init": True},
        base="lamo",
        return_conditioned=True,
        description="LaMo's architecture with random weights instead of pre-training (LaMo w/o PT)",
    ),
    AgentEntry(
        "dt",
        "agents.dt:DTAgent",
        return_conditioned=True,
        description="Decision Transformer (GPT-2, 3 layers, 128 hidden)",
    ),
    AgentEntry("cql", "agents.d3rlpy_agents:CQLAgent", description="Conservative Q-Learning (d3rlpy)"),
    AgentEntry("bc", "agents.d3rlpy_agents:BCAgent", description="Behaviour cloning (d3rlpy)"),
    AgentEntry("iql", "agents.d3rlpy_agents:IQLAgent", description="Implicit Q-Learning (d3rlpy)"),
    AgentEntry("td3+bc", "agents.d3rlpy_agents:TD3PlusBCAgent", description="TD3+BC (d3rlpy)"),
):
    register(_entry)


def get_entry(name: str) -> AgentEntry:
    try:
        return AGENTS[name]
    except KeyError:
        raise BenchError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}") from None


def make_config(name: str, task: Task, overrides: dict[str, Any] | None = None) -> AgentConfig:
    """The agent's config for this task: paper defaults, then the task's paper settings, then overrides."""
    entry = get_entry(name)
    cls = entry.agent_class()
    config: AgentConfig = cls.default_config(task)
    config = config.with_overrides(entry.overrides)
    return config.with_overrides(dict(overrides or {}))


def make_agent(
    name: str, task: Task, spec: TaskSpec, overrides: dict[str, Any] | None = None, device: str = "cpu", seed: int = 0
) -> Agent:
    cls = get_entry(name).agent_class()
    return cls(make_config(name, task, overrides), spec, device=device, seed=seed)
