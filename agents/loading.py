"""Rebuild any agent from its checkpoint alone, so a saved agent can be re-evaluated (`bench eval`) without
knowing which agent, task, config or seed produced it.

The checkpoint's metadata (see `agents.checkpoint.REQUIRED_KEYS`) names the registry agent, its full config,
its `TaskSpec` and its seed; the agent is built from those exactly as `agents.registry.make_agent` would, then
its own `load` restores the weights and checks they fit.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from agents.base import Agent, AgentConfig, TaskSpec
from agents.checkpoint import find_checkpoint
from agents.registry import AGENTS, get_entry
from bench.errors import BenchError
from bench.tasks import get_task


def _as_saved(default: Any, value: Any) -> Any:
    """torch's safe loader gives lists where the config held tuples; restore the field's own type."""
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def _config_from(cls: type[Agent], saved: dict[str, Any], spec: TaskSpec, payload: dict[str, Any]) -> AgentConfig:
    config: AgentConfig = cls.default_config(get_task(spec.task))
    saved_type = payload.get("config_type")
    if saved_type is not None and saved_type != type(config).__name__:
        raise BenchError(
            f"checkpoint config is a {saved_type}, but {cls.__name__} on {spec.task} uses a {type(config).__name__}"
        )
    defaults = {f.name: getattr(config, f.name) for f in fields(config)}
    kept = {k: v for k, v in saved.items() if k not in config.retired_fields}
    return config.with_overrides({k: _as_saved(defaults.get(k), v) for k, v in kept.items()})


def variant_of(agent: str, config: dict[str, Any]) -> str:
    """The registry variant a saved config is: the entry of this agent's family whose overrides the config
    matches, the most specific one if several do (plain `agent` when none does). A checkpoint stores the agent
    class's name and its full config, so `lamo-no-lm-loss` is recognised by `lm_loss_weight == 0`."""
    matches = [
        e for e in AGENTS.values() if e.family == agent and all(config.get(k) == v for k, v in e.overrides.items())
    ]
    return max(matches, key=lambda e: len(e.overrides)).name if matches else agent


def read_checkpoint_info(path: Path) -> dict[str, Any]:
    """The checkpoint's metadata (agent, variant, config, spec, seed, file) without building the agent."""
    file, payload = find_checkpoint(path)
    config = dict(payload["config"])
    return {
        "file": str(file),
        "agent": payload["agent"],
        "variant": variant_of(str(payload["agent"]), config),
        "config": config,
        "spec": dict(payload["spec"]),
        "seed": int(payload["seed"]),
    }


def load_agent(path: Path, device: str = "cpu") -> Agent:
    """The agent saved at `path` (a checkpoint file, its folder, or a trial folder), ready to act."""
    file, payload = find_checkpoint(path)
    entry = get_entry(str(payload["agent"]))
    cls = entry.agent_class()
    try:
        raw = dict(payload["spec"])
        raw["observation_shape"] = tuple(raw["observation_shape"])
        raw["rtg_targets"] = tuple(float(t) for t in raw["rtg_targets"])
        spec = TaskSpec(**raw)
    except (TypeError, KeyError) as e:
        raise BenchError(f"checkpoint {file} has a task spec this version cannot read: {e}") from None
    config = _config_from(cls, dict(payload["config"]), spec, payload)
    agent = cls(config, spec, device=device, seed=int(payload["seed"]))
    agent.load(file.parent)
    return agent
