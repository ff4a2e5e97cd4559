"""What a trial does differently from the LaMo paper (and its official code), listed per trial.

A run's manifest and `bench run --dry-run --json` carry, for every trial, the union of:

1. budget: training steps, evaluation cadence, evaluation episodes and final-score window against the paper's
   (Appendix F; bench/tasks.py);
2. configuration: every agent config field that differs from the `paper` profile's config for the same cell
   (so a CPU profile's truncated LM or smaller batches show up), then the agent config's own
   `config.deviations()` (known differences of our implementation from the official one; agents/base.py);
3. harness checks that hold whatever the agent config says about itself: the LM backbone (the paper uses
   GPT-2 small, gpt2-medium on two Kitchen cells), the language corpus (WikiText-103), cached inference
   (the official evaluator re-encodes the last K steps, `window`), bf16 autocast (the official code runs fp32);
   a check is left out when `config.deviations()` already names its subject, so no difference is listed twice;
4. data: a dataset this project generated (`bench data build`) in place of the paper's;
5. environment: what the evaluation environment still does differently from the paper's (Kitchen: completion
   on the true state, gymnasium-robotics instead of D4RL's mujoco-py; bench/envs/kitchen.py);
6. protocol: the evaluation start states are seeded (the official evaluator calls `env.reset()` unseeded).

The `paper` profile is not exempt: it lists what still differs when everything configurable is the paper's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from bench.errors import BenchError
from bench.suites import PAPER_EVAL_EPISODES, PAPER_EVAL_EVERY, SEEDED_EVALUATION, Profile, load_profiles
from bench.tasks import Task, get_task
from bench.trial import TrialSpec

#: Config fields the harness checks below, or LaMoConfig.deviations() in its own words (truncated LM, language
#: batch shape), speak for; the field-by-field comparison skips them so no difference is listed twice.
_CHECKED_FIELDS = ("lm_source", "lm_corpus", "eval_mode", "amp", "lm_layers", "lm_batch_size", "lm_block_size")


def budget_deviations(
    task: Task, steps: int, eval_every: int, eval_episodes: int, report_window: int | None = None
) -> list[str]:
    """Steps, evaluation cadence, episodes and final-score window against the paper's for this task."""
    paper = task.paper
    out = []
    if steps != paper.train_steps:
        out.append(f"training steps {steps} instead of the paper's {paper.train_steps}")
    if eval_every != PAPER_EVAL_EVERY:
        out.append(f"evaluation every {eval_every} steps instead of {PAPER_EVAL_EVERY}")
    if eval_episodes != PAPER_EVAL_EPISODES:
        out.append(f"{eval_episodes} evaluation episodes instead of {PAPER_EVAL_EPISODES}")
    if report_window is not None and report_window != paper.report_window:
        out.append(f"final score over the last {report_window} steps instead of the last {paper.report_window}")
    return out


def _official_lm() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paper's own LM sources (GPT-2 small; gpt2-medium on Kitchen Complete 0.3 / Partial 1) and corpus
    (WikiText-103), from LaMo's config module: one list for its deviations() and these checks. Imported only
    when a config has LM fields, i.e. when agents.lamo is already loaded."""
    from agents.lamo import OFFICIAL_CORPORA, OFFICIAL_LM_SOURCES

    return OFFICIAL_LM_SOURCES, OFFICIAL_CORPORA


def _mentions(config_deviations: list[str], *words: str) -> bool:
    text = " ".join(config_deviations).lower()
    return any(w.lower() in text for w in words)


def harness_checks(config: Any, config_deviations: list[str]) -> list[str]:
    """Known differences read off the config's fields (any agent that has them), unless the config names them."""
    out = []
    checks: list[tuple[str, tuple[str, ...], Callable[[Any], str | None]]] = [
        (
            "lm_source",
            ("lm_source", "backbone", "smollm", "gpt2"),
            lambda v: (
                None
                if v in _official_lm()[0]
                else (
                    f"LM backbone {v!r} instead of the paper's GPT-2 (gpt2; gpt2-medium on Kitchen Complete 0.3 and "
                    "Partial 1)" + ("; SmolLM2-135M is a different model family" if "smollm2" in str(v).lower() else "")
                )
            ),
        ),
        (
            "lm_corpus",
            ("lm_corpus", "corpus", "wikitext"),
            lambda v: (
                None
                if v in _official_lm()[1] or getattr(config, "lm_loss_weight", 0.0) == 0
                else (
                    f'language corpus {v!r} instead of WikiText-103 (lm_corpus = "wikitext-103" needs the `datasets` '
                    "package and the Hugging Face hub)"
                )
            ),
        ),
        (
            "eval_mode",
            ("eval_mode", "cached", "inference"),
            lambda v: (
                None
                if v == "window"
                else (
                    f"{v} inference (eval_mode = {v!r}): past the first K steps deeper layers see context beyond the "
                    "last K steps; the official evaluator re-encodes the last K steps every step (window)"
                )
            ),
        ),
        (
            "amp",
            ("autocast", "bf16", "bfloat16", "amp"),
            lambda v: (
                None
                if not v
                else ("bf16 autocast of the forward passes on CUDA (amp = true); the official code runs in fp32")
            ),
        ),
    ]
    for name, words, check in checks:
        if not hasattr(config, name) or _mentions(config_deviations, *words):
            continue
        line = check(getattr(config, name))
        if line:
            out.append(line)
    return out


def data_deviations(task: Task, source: str | None = None) -> list[str]:
    """A generated dataset in place of the paper's, when that is what the trial will load."""
    from bench.data.loaders import resolve_source

    try:
        chosen = resolve_source(task, source)
    except BenchError:
        return []  # no data yet: the grid skips the task, or the trial fails with the one-line error
    if chosen.kind != "generated":
        return []
    originals = [str(s) for s in task.sources if s.kind != "generated"]
    instead = f"the paper's {originals[0]}" if originals else "the authors' own data"
    return [
        f"dataset {chosen.id} generated by this project (`bench data build`) in place of {instead}; "
        "its behaviour policy and returns differ (see the dataset card)"
    ]


def env_deviations(task: Task) -> list[str]:
    """Known differences of the task's evaluation environment from the one the paper evaluated on."""
    if task.domain == "kitchen":
        from bench.envs.kitchen import eval_deviations

        return eval_deviations(task.env_kwargs)
    return []


def _paper_profile() -> Profile:
    return load_profiles()["paper"]


def config_differences(agent: str, base: str, task: Task, ratio: float, config: Any) -> list[str]:
    """Config fields that differ from what the paper profile would run on this cell (harness-checked ones aside)."""
    from agents.registry import make_config

    paper = make_config(agent, task, _paper_profile().overrides_for(agent, base, task.name, ratio))
    out = []
    for f in fields(config):
        if f.name in _CHECKED_FIELDS:
            continue
        ours, theirs = getattr(config, f.name), getattr(paper, f.name)
        if ours != theirs:
            out.append(f"{agent}: {f.name} = {ours!r} instead of {theirs!r} (paper profile)")
    return out


def trial_deviations(spec: TrialSpec) -> list[str]:
    """Every known difference of this trial from the paper's method and protocol (module docstring)."""
    from agents.registry import get_entry, make_config

    task = get_task(spec.task)
    entry = get_entry(spec.agent)
    base = entry.family
    config = make_config(spec.agent, task, spec.overrides)
    own = list(config.deviations())
    out = budget_deviations(task, spec.steps, spec.eval_every, spec.eval_episodes, spec.window())
    out += config_differences(spec.agent, base, task, spec.ratio, config)
    out += own
    out += harness_checks(config, own)
    out += data_deviations(task, spec.source)
    out += env_deviations(task)
    out.append(SEEDED_EVALUATION)
    return list(dict.fromkeys(out))
