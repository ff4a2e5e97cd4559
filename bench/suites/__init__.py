"""Suites (what to run) and profiles (how much), read from the TOML files in this folder.

A suite lists agents, tasks, sample ratios and seeds; `ratios = "paper"` means each task's own paper ratios
(bench/tasks.py). A profile scales the budget (steps, evaluation cadence, episodes) and carries per-agent
config overrides; everything a profile changes relative to the paper is reported as a deviation.
Users can pass their own suite as a path to a TOML file of the same shape.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.tasks import get_task

SUITES_DIR = Path(__file__).resolve().parent
PAPER_EVAL_EVERY = 2500
PAPER_EVAL_EPISODES = 20


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    steps: int | None  # None: each task's paper steps
    eval_every: int
    eval_episodes: int
    agent_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def steps_for(self, task: str) -> int:
        return get_task(task).paper.train_steps if self.steps is None else self.steps

    def overrides_for(self, agent: str, base: str) -> dict[str, Any]:
        """Overrides for an agent; a variant (lamo-no-lm-loss) gets its base agent's (lamo) first."""
        return {**self.agent_overrides.get(base, {}), **self.agent_overrides.get(agent, {})}

    def deviations(self) -> list[str]:
        out = []
        if self.steps is not None:
            out.append(f"training steps {self.steps} instead of the paper's per-task steps (100K; Reacher2d 37.5K)")
        if self.eval_every != PAPER_EVAL_EVERY:
            out.append(f"evaluation every {self.eval_every} steps instead of {PAPER_EVAL_EVERY}")
        if self.eval_episodes != PAPER_EVAL_EPISODES:
            out.append(f"{self.eval_episodes} evaluation episodes instead of {PAPER_EVAL_EPISODES}")
        paper = load_profiles()["paper"].agent_overrides  # settings the paper profile spells out are the paper's
        for agent, overrides in self.agent_overrides.items():
            for key, value in overrides.items():
                if paper.get(agent, {}).get(key, object()) != value:
                    out.append(f"{agent}: {key} = {value!r}")
        return out


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    agents: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    ratios: dict[str, tuple[float, ...]]  # per task
    default_profile: str = "paper"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"{path} is not valid TOML: {e}") from None


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml") if p.stem != "profiles")


def load_profiles() -> dict[str, Profile]:
    raw = _read_toml(SUITES_DIR / "profiles.toml")
    out = {}
    for name, d in raw.items():
        steps = d.get("steps", "paper")
        out[name] = Profile(
            name=name, description=d.get("description", ""), steps=None if steps == "paper" else int(steps),
            eval_every=int(d["eval_every"]), eval_episodes=int(d["eval_episodes"]),
            agent_overrides={k: dict(v) for k, v in d.get("agents", {}).items()},
        )
    return out


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise BenchError(f"unknown profile {name!r}; accepted: {', '.join(profiles)}")
    return profiles[name]


def load_suite(name_or_path: str) -> Suite:
    """A packaged suite by name, or a user's TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        raw = _read_toml(path)
        name = path.stem
    else:
        if name_or_path not in available_suites():
            raise BenchError(
                f"unknown suite {name_or_path!r}; accepted: {', '.join(available_suites())} or a path to a .toml file"
            )
        raw = _read_toml(SUITES_DIR / f"{name_or_path}.toml")
        name = name_or_path
    missing = [k for k in ("agents", "tasks", "seeds") if k not in raw]
    if missing:
        raise BenchError(f"suite {name} lacks {', '.join(missing)}; a suite needs agents, tasks, seeds (and ratios)")
    tasks = tuple(raw["tasks"])
    for t in tasks:
        get_task(t)  # one-line error for an unknown task
    ratios_spec = raw.get("ratios", "paper")
    per_task = raw.get("task_ratios", {})
    ratios: dict[str, tuple[float, ...]] = {}
    for t in tasks:
        spec = per_task.get(t, ratios_spec)
        ratios[t] = get_task(t).sample_ratios if spec == "paper" else tuple(float(r) for r in spec)
    return Suite(name=name, description=raw.get("description", ""), agents=tuple(raw["agents"]), tasks=tasks,
                 seeds=tuple(int(s) for s in raw["seeds"]), ratios=ratios,
                 default_profile=raw.get("default_profile", "paper"))
