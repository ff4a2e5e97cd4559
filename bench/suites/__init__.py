"""Suites (what to run) and profiles (how much), read from the TOML files in this folder.

A suite lists agents, tasks, sample ratios and seeds; `ratios = "paper"` means each task's own paper ratios
(bench/tasks.py). A profile scales the budget (steps, evaluation cadence, episodes), may thin the suite's grid
(`max_ratios`: keep each task's N lowest sample ratios; `max_seeds`: keep the suite's first N seeds) and carries
per-agent config overrides; everything a profile changes relative to the paper is reported as a deviation.
Ratios and seeds given on the command line (`bench run --ratios/--seeds`) are taken as they are.
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

import functools
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
PAPER_SEEDS = 3  # "3 seeds 0,1,2" (camera-ready; paper notes), as every packaged suite lists
#: A deliberate protocol difference every trial shares (bench/evaluate.py explains it).
SEEDED_EVALUATION = (
    "evaluation start states are seeded per (trial seed, evaluation, episode), identical for "
    "every agent and target; the official evaluator resets its environments unseeded"
)


@dataclass(frozen=True)
class CellOverride:
    """Agent config overrides for one task (every ratio) or one task x ratio cell; TOML key `set` = `values`."""

    agent: str
    task: str
    ratio: float | None
    values: dict[str, Any]

    def matches(self, agent: str, task: str, ratio: float) -> bool:
        return (
            self.agent == agent
            and self.task == task
            and (self.ratio is None or math.isclose(self.ratio, ratio, rel_tol=1e-9, abs_tol=1e-12))
        )


def cell_overrides_for(
    overrides: Sequence[CellOverride], agent: str, base: str, task: str, ratio: float
) -> dict[str, Any]:
    """The merged `set` tables that apply to (agent, task, ratio): base agent's first, then the variant's."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys((base, agent)):
        for o in overrides:
            if o.matches(name, task, ratio):
                out.update(o.values)
    return out


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    steps: int | None  # None: each task's paper steps
    eval_every: int
    eval_episodes: int
    agent_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    cell_overrides: tuple[CellOverride, ...] = ()
    # Grid thinning for small budgets; None keeps the suite's every ratio / seed (the paper's grid).
    max_ratios: int | None = None  # keep each task's N lowest ratios: the low-data regime is the paper's claim
    max_seeds: int | None = None  # keep the suite's first N seeds

    def steps_for(self, task: str) -> int:
        return get_task(task).paper.train_steps if self.steps is None else self.steps

    def pick_ratios(self, ratios: Sequence[float]) -> tuple[float, ...]:
        """The suite's ratios for one task, thinned to the `max_ratios` lowest (then in ascending order)."""
        return tuple(ratios) if self.max_ratios is None else tuple(sorted(ratios)[: self.max_ratios])

    def pick_seeds(self, seeds: Sequence[int]) -> tuple[int, ...]:
        """The suite's seeds, thinned to the first `max_seeds` (in the suite's order)."""
        return tuple(seeds if self.max_seeds is None else seeds[: self.max_seeds])

    def overrides_for(
        self, agent: str, base: str, task: str | None = None, ratio: float | None = None
    ) -> dict[str, Any]:
        """Overrides for an agent (on a task x ratio cell when given); a variant gets its base agent's first."""
        out = {**self.agent_overrides.get(base, {}), **self.agent_overrides.get(agent, {})}
        if task is not None and ratio is not None:
            out.update(cell_overrides_for(self.cell_overrides, agent, base, task, ratio))
        return out

    def deviations(self) -> list[str]:
        """Run-level differences from the paper: budget, overrides the paper profile does not make, and the
        seeded evaluation. Each trial's full list (its agent config's own deviations, the LM, corpus, inference
        mode, autocast and generated data) is `bench.deviations.trial_deviations`, in the run's manifest."""
        out = self._budget_deviations()
        out += self._override_deviations()
        out.append(SEEDED_EVALUATION)
        return out

    def _budget_deviations(self) -> list[str]:
        """How much less this profile trains, evaluates and runs than the paper."""
        out = []
        if self.steps is not None:
            out.append(f"training steps {self.steps} instead of the paper's per-task steps (100K; Reacher2d 37.5K)")
        if self.eval_every != PAPER_EVAL_EVERY:
            out.append(f"evaluation every {self.eval_every} steps instead of {PAPER_EVAL_EVERY}")
        if self.eval_episodes != PAPER_EVAL_EPISODES:
            out.append(f"{self.eval_episodes} evaluation episodes instead of {PAPER_EVAL_EPISODES}")
        if self.max_ratios is not None:
            out.append(
                f"at most {self.max_ratios} sample ratio(s) per task, the suite's lowest, instead of every ratio "
                "of the paper's tables"
            )
        if self.max_seeds is not None and self.max_seeds < PAPER_SEEDS:
            out.append(f"at most {self.max_seeds} seed(s) per cell instead of the paper's {PAPER_SEEDS}")
        return out

    def _override_deviations(self) -> list[str]:
        """Agent and cell settings this profile changes, or leaves out, relative to the paper profile."""
        out = []
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
                out.append(
                    f"{o.agent} on {where}: not the paper's " + ", ".join(f"{k} = {v!r}" for k, v in o.values.items())
                )
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
    if path.is_dir():
        raise BenchError(f"{path} is a folder; expected a suite .toml file (or a packaged suite name)")
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"file {path} does not exist") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path} is not a text file; expected a suite .toml file") from None
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"{path} is not valid TOML: {e}") from None


# --- validation: every key of a suite or profile file, one line naming the file, the key and what is accepted --


def _refuse(path: Path, key: str, value: Any, accepted: str) -> BenchError:
    return BenchError(f"{path}: {key} = {value!r} is not accepted; expected {accepted}")


def _check_keys(
    path: Path, where: str, table: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise BenchError(
            f"{path}: unknown key(s) {', '.join(unknown)}{f' in [{where}]' if where else ''}; "
            f"accepted: {', '.join(allowed)}"
        )
    missing = [k for k in required if k not in table]
    if missing:
        raise BenchError(
            f"{path}: {f'[{where}] ' if where else ''}lacks {', '.join(missing)}; required: {', '.join(required)}"
        )


def _table(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(path, key, value, "a table")
    return value


def _str(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _refuse(path, key, value, "a string")
    return value


def _positive_int(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _refuse(path, key, value, "an integer >= 1")
    return value


def _str_list(path: Path, key: str, value: Any) -> list[str]:
    """A list of strings; a bare string is refused (iterating it would give characters)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _refuse(path, key, value, 'a non-empty list of strings, e.g. ["dt", "lamo"]')
    return value


def _ratio(path: Path, key: str, value: Any) -> float:
    from bench.data.subsample import check_ratio

    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(path, key, value, "a number in (0, 1]")
    try:
        return check_ratio(value)
    except BenchError:
        raise _refuse(path, key, value, "a number in (0, 1]") from None


def _ratios(path: Path, key: str, value: Any, task: str) -> tuple[float, ...]:
    if value == "paper":
        return get_task(task).sample_ratios
    if not isinstance(value, list) or not value:
        raise _refuse(path, key, value, '"paper" or a non-empty list of numbers in (0, 1], e.g. [0.1, 1.0]')
    return tuple(_ratio(path, key, r) for r in value)


def _known(path: Path, key: str, value: str, check: Any) -> None:
    """Run a registry lookup (get_task, get_entry) and prefix its one-line error with the file and key."""
    try:
        check(value)
    except BenchError as e:
        raise BenchError(f"{path}: {key}: {e}") from None


def _agent_config_defaults(agent: str) -> list[Any]:
    """The agent's default configs for one continuous and one discrete task: a profile's overrides for the
    agent must fit its config for some task kind (CQL and BC switch config class on discrete actions)."""
    from agents.registry import make_config
    from bench.tasks import TASKS

    out = []
    for kind in ("continuous", "discrete"):
        task = next((t for t in TASKS.values() if t.action_kind == kind), None)
        if task is None:
            continue
        try:
            out.append(make_config(agent, task))
        except BenchError:
            continue  # e.g. iql has no discrete config
    return out


def _check_agent_overrides(
    path: Path, where: str, agent: str, overrides: dict[str, Any], task: str | None = None
) -> dict[str, Any]:
    """Override keys, types and ranges checked against the agent's config; returns the typed values."""
    from agents.registry import make_config

    try:
        if task is not None:
            config = make_config(agent, get_task(task), overrides)
            return {k: getattr(config, k) for k in overrides}
        defaults = _agent_config_defaults(agent)
        errors = []
        for default in defaults:
            try:
                config = default.with_overrides(overrides)
            except BenchError as e:
                errors.append(e)
                continue
            return {k: getattr(config, k) for k in overrides}
        if errors:
            raise errors[0]
        return dict(overrides)
    except BenchError as e:
        raise BenchError(f"{path}: [{where}] {e}") from None


def _cell_overrides(path: Path, where: str, value: Any) -> tuple[CellOverride, ...]:
    from agents.registry import get_entry

    key = f"{where}.cell_overrides" if where else "cell_overrides"
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _refuse(
            path,
            key,
            value,
            "an array of tables ([[cell_overrides]] with agent, task, optional ratio, set = { field = value })",
        )
    out = []
    for i, entry in enumerate(value):
        here = f"{key}[{i}]"
        _check_keys(path, here, entry, ("agent", "task", "ratio", "set"), required=("agent", "task", "set"))
        agent = _str(path, f"{here}.agent", entry["agent"])
        _known(path, f"{here}.agent", agent, get_entry)
        task = _str(path, f"{here}.task", entry["task"])
        _known(path, f"{here}.task", task, get_task)
        ratio = _ratio(path, f"{here}.ratio", entry["ratio"]) if "ratio" in entry else None
        values = _table(path, f"{here}.set", entry["set"])
        if not values:
            raise _refuse(
                path,
                f"{here}.set",
                values,
                'a table of at least one agent config field, e.g. set = { lm_source = "gpt2-medium" }',
            )
        changes = _check_agent_overrides(path, here, agent, values, task=task)
        out.append(CellOverride(agent=agent, task=task, ratio=ratio, values=changes))
    return tuple(out)


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml") if p.stem != "profiles")


PROFILE_KEYS = (
    "description",
    "steps",
    "eval_every",
    "eval_episodes",
    "max_ratios",
    "max_seeds",
    "agents",
    "cell_overrides",
)
SUITE_KEYS = ("description", "agents", "tasks", "seeds", "ratios", "task_ratios", "default_profile", "cell_overrides")


def parse_profiles(path: Path) -> dict[str, Profile]:
    """Every profile of a profiles TOML file, each key validated (see PROFILE_KEYS)."""
    from agents.registry import get_entry

    raw = _read_toml(path)
    out = {}
    for name, d in raw.items():
        d = _table(path, name, d)
        _check_keys(path, name, d, PROFILE_KEYS, required=("eval_every", "eval_episodes"))
        steps = d.get("steps", "paper")
        if steps != "paper":
            steps = _positive_int(path, f"{name}.steps", steps)
        overrides: dict[str, dict[str, Any]] = {}
        for agent, table in _table(path, f"{name}.agents", d.get("agents", {})).items():
            _known(path, f"{name}.agents.{agent}", agent, get_entry)
            where = f"{name}.agents.{agent}"
            overrides[agent] = _check_agent_overrides(path, where, agent, _table(path, where, table))
        out[name] = Profile(
            name=name,
            description=_str(path, f"{name}.description", d.get("description", "")),
            steps=None if steps == "paper" else steps,
            eval_every=_positive_int(path, f"{name}.eval_every", d["eval_every"]),
            eval_episodes=_positive_int(path, f"{name}.eval_episodes", d["eval_episodes"]),
            agent_overrides=overrides,
            max_ratios=_positive_int(path, f"{name}.max_ratios", d["max_ratios"]) if "max_ratios" in d else None,
            max_seeds=_positive_int(path, f"{name}.max_seeds", d["max_seeds"]) if "max_seeds" in d else None,
            cell_overrides=_cell_overrides(path, name, d.get("cell_overrides", [])),
        )
    return out


@functools.cache
def _packaged_profiles() -> dict[str, Profile]:
    return parse_profiles(SUITES_DIR / "profiles.toml")


def load_profiles() -> dict[str, Profile]:
    return dict(_packaged_profiles())


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise BenchError(f"unknown profile {name!r}; accepted: {', '.join(profiles)}")
    return profiles[name]


def load_suite(name_or_path: str) -> Suite:
    """A packaged suite by name, or a user's TOML file by path; every key is validated (see SUITE_KEYS)."""
    from agents.registry import get_entry

    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        raw = _read_toml(path)
        name = path.stem
    else:
        if name_or_path not in available_suites():
            raise BenchError(
                f"unknown suite {name_or_path!r}; accepted: {', '.join(available_suites())} or a path to a .toml file"
            )
        path = SUITES_DIR / f"{name_or_path}.toml"
        raw = _read_toml(path)
        name = name_or_path
    _check_keys(path, "", raw, SUITE_KEYS, required=("agents", "tasks", "seeds"))
    agents = _str_list(path, "agents", raw["agents"])
    for a in agents:
        _known(path, "agents", a, get_entry)
    tasks = _str_list(path, "tasks", raw["tasks"])
    for t in tasks:
        _known(path, "tasks", t, get_task)
    seeds = raw["seeds"]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)
    ):
        raise _refuse(path, "seeds", seeds, "a non-empty list of integers >= 0, e.g. [0, 1, 2]")
    ratios_spec = raw.get("ratios", "paper")
    per_task = _table(path, "task_ratios", raw.get("task_ratios", {}))
    stray = sorted(set(per_task) - set(tasks))
    if stray:
        raise BenchError(f"{path}: task_ratios names {', '.join(stray)}, not in tasks; accepted: {', '.join(tasks)}")
    ratios: dict[str, tuple[float, ...]] = {}
    for t in tasks:
        if t in per_task:
            ratios[t] = _ratios(path, f"task_ratios.{t}", per_task[t], t)
        else:
            ratios[t] = _ratios(path, "ratios", ratios_spec, t)
    default_profile = _str(path, "default_profile", raw.get("default_profile", "paper"))
    if default_profile not in load_profiles():
        raise _refuse(path, "default_profile", default_profile, f"one of {', '.join(load_profiles())}")
    return Suite(
        name=name,
        description=_str(path, "description", raw.get("description", "")),
        agents=tuple(agents),
        tasks=tuple(tasks),
        seeds=tuple(seeds),
        ratios=ratios,
        default_profile=default_profile,
        cell_overrides=_cell_overrides(path, "", raw.get("cell_overrides", [])),
    )
