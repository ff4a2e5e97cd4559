"""Suites (what to run) and profiles (how much), read from the TOML files in this folder.

A suite lists agents, tasks, sample ratios and seeds; `ratios = "paper"` means each task's own paper ratios
(bench/tasks.py). A profile scales the budget (steps, evaluation cadence, episodes) and carries per-agent
config overrides; everything a profile changes relative to the paper is reported as a deviation.
Users can pass their own suite as a path to a TOML file of the same shape.

Both a profile and a suite may carry per-task or per-cell agent overrides (the paper trains LaMo on GPT-2
small, but on gpt2-medium for Kitchen Complete at 0.3 and Kitchen Partial at 1):

    [[paper.cell_overrides]]          # in a suite file: [[cell_overrides]]
    agent = "lamo"                    # a variant (lamo-no-lm-loss) inherits its base agent's overrides
    task = "kitchen-complete"
    ratio = 0.3                       # optional; absent = every ratio of the task
    set = { lm_source = "gpt2-medium" }

A trial's overrides are applied in this order, later ones winning: the profile's agent table for the base agent,
then for the variant, then the profile's matching cell overrides (base agent first, then variant, each in file
order), then the suite's matching cell overrides (same order). `cell_overrides_for` computes them.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.tasks import get_task

SUITES_DIR = Path(__file__).resolve().parent
PAPER_EVAL_EVERY = 2500
PAPER_EVAL_EPISODES = 20
#: A deliberate protocol difference every trial shares (bench/evaluate.py explains it).
SEEDED_EVALUATION = ("evaluation start states are seeded per (trial seed, evaluation, episode), identical for "
                     "every agent and target; the official evaluator resets its environments unseeded")


@dataclass(frozen=True)
class CellOverride:
    """Agent config overrides for one task (every ratio) or one task x ratio cell; TOML key `set` = `values`."""

    agent: str
    task: str
    ratio: float | None
    values: dict[str, Any]

    def matches(self, agent: str, task: str, ratio: float) -> bool:
        return self.agent == agent and self.task == task and (
            self.ratio is None or math.isclose(self.ratio, ratio, rel_tol=1e-9, abs_tol=1e-12))


def cell_overrides_for(overrides: Sequence[CellOverride], agent: str, base: str, task: str,
                       ratio: float) -> dict[str, Any]:
    """The merged `set` tables that apply to (agent, task, ratio): base agent's first, then the variant's."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys((base, agent)):
        for o in overrides:
            if o.matches(name, task, ratio):
                out.update(o.values)
    return out


def parse_cell_overrides(raw: Any, key: str) -> tuple[CellOverride, ...]:
    """`[[<key>]]` tables (key "paper.cell_overrides" in profiles.toml, "cell_overrides" in a suite) as
    `CellOverride`s; a malformed entry is a one-line error naming it."""
    from agents.registry import get_entry

    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BenchError(f"{key} must be an array of tables ([[{key}]]), got {type(raw).__name__}")
    out = []
    for i, entry in enumerate(raw):
        label = f"[[{key}]] entry {i + 1}"
        if not isinstance(entry, dict):
            raise BenchError(f"{label} must be a table with agent, task, optional ratio and set")
        agent, task, ratio, values = entry.get("agent"), entry.get("task"), entry.get("ratio"), entry.get("set")
        if not isinstance(agent, str) or not isinstance(task, str):
            raise BenchError(f'{label} needs agent and task as strings, e.g. agent = "lamo", '
                             'task = "kitchen-complete"')
        if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, int | float)):
            raise BenchError(f"{label}: ratio {ratio!r} is not a number; accepted: a sample ratio such as 0.3, "
                             "or no ratio for every ratio of the task")
        if not isinstance(values, dict) or not values:
            raise BenchError(f"{label} needs set = {{ field = value, ... }} with at least one agent config field")
        get_entry(agent)  # one-line errors for an unknown agent or task
        get_task(task)
        out.append(CellOverride(agent=agent, task=task, ratio=None if ratio is None else float(ratio),
                                values=dict(values)))
    return tuple(out)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    steps: int | None  # None: each task's paper steps
    eval_every: int
    eval_episodes: int
    agent_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    cell_overrides: tuple[CellOverride, ...] = ()

    def steps_for(self, task: str) -> int:
        return get_task(task).paper.train_steps if self.steps is None else self.steps

    def overrides_for(self, agent: str, base: str, task: str | None = None,
                      ratio: float | None = None) -> dict[str, Any]:
        """Overrides for an agent (on a task x ratio cell when given); a variant gets its base agent's first."""
        out = {**self.agent_overrides.get(base, {}), **self.agent_overrides.get(agent, {})}
        if task is not None and ratio is not None:
            out.update(cell_overrides_for(self.cell_overrides, agent, base, task, ratio))
        return out

    def deviations(self) -> list[str]:
        """Run-level differences from the paper: budget, overrides the paper profile does not make, and the
        seeded evaluation. Each trial's full list (its agent config's own deviations, the LM, corpus, inference
        mode, autocast and generated data) is `bench.deviations.trial_deviations`, in the run's manifest."""
        out = []
        if self.steps is not None:
            out.append(f"training steps {self.steps} instead of the paper's per-task steps (100K; Reacher2d 37.5K)")
        if self.eval_every != PAPER_EVAL_EVERY:
            out.append(f"evaluation every {self.eval_every} steps instead of {PAPER_EVAL_EVERY}")
        if self.eval_episodes != PAPER_EVAL_EPISODES:
            out.append(f"{self.eval_episodes} evaluation episodes instead of {PAPER_EVAL_EPISODES}")
        paper = load_profiles()["paper"]  # settings the paper profile spells out are the paper's
        for agent, overrides in self.agent_overrides.items():
            for key, value in overrides.items():
                if paper.agent_overrides.get(agent, {}).get(key, object()) != value:
                    out.append(f"{agent}: {key} = {value!r}")
        for agent, overrides in paper.agent_overrides.items():
            for key, value in overrides.items():
                if key not in self.agent_overrides.get(agent, {}):
                    out.append(f"{agent}: {key} left at its default instead of the paper's {value!r}")
        for o in self.cell_overrides:
            if o not in paper.cell_overrides:
                where = o.task if o.ratio is None else f"{o.task} at ratio {o.ratio:g}"
                out.append(f"{o.agent} on {where}: " + ", ".join(f"{k} = {v!r}" for k, v in o.values.items()))
        for o in paper.cell_overrides:
            if o not in self.cell_overrides:
                where = o.task if o.ratio is None else f"{o.task} at ratio {o.ratio:g}"
                out.append(f"{o.agent} on {where}: not the paper's " + ", ".join(
                    f"{k} = {v!r}" for k, v in o.values.items()))
        out.append(SEEDED_EVALUATION)
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
    cell_overrides: tuple[CellOverride, ...] = ()  # applied after the profile's (module docstring)


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
            cell_overrides=parse_cell_overrides(d.get("cell_overrides"), f"{name}.cell_overrides"),
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
                 default_profile=raw.get("default_profile", "paper"),
                 cell_overrides=parse_cell_overrides(raw.get("cell_overrides"), "cell_overrides"))
