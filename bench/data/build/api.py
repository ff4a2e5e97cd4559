"""`build_dataset`: the library entry point behind `bench data build TASK`.

It picks the recipe for the task's domain, applies budget overrides, and runs single-threaded torch: the
networks are small enough that more threads barely help, and a fixed thread count is what makes float
reductions, and so the trained policy and the dataset, repeat bit for bit on a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from bench.data.build.config import AtariRecipe, LocomotionRecipe, MazeRecipe, ReacherRecipe, with_overrides
from bench.data.loaders import how_to_get
from bench.errors import BenchError
from bench.tasks import DataSource, Task

LOCOMOTION = ("hopper", "halfcheetah", "walker2d")


@contextmanager
def _single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _generated_source(task: Task) -> DataSource:
    for source in task.sources:
        if source.kind == "generated":
            return source
    raise BenchError(
        f"task {task.name} has no generated data source; its sources: {', '.join(str(s) for s in task.sources)}"
    )


def _not_built_here(task: Task) -> BenchError:
    others = [s for s in task.sources if s.kind != "generated"]
    hints = "; ".join(f"{s}: {how_to_get(task, s)}" for s in others)
    return BenchError(f"`bench data build` has no recipe for {task.name}; get its data from {hints}")


def build_dataset(
    task: Task,
    seed: int = 0,
    transitions: int | None = None,
    progress: bool = True,
    workdir: Path | None = None,
    *,
    on_checkpoint: Callable[[int], None] | None = None,
    retrain: bool = False,
    **budget_overrides: Any,
) -> Path:
    """Build the task's generated dataset and return its Minari dataset folder (the one holding `data/`).

    Resumable: training state lives in `workdir` (default `<data root>/build/<domain>-seed<S>/`), shared by
    the datasets of one environment. `budget_overrides` set recipe fields (see `bench.data.build.config`,
    e.g. `medium_max_steps=3000`, `sac_hidden_units=(64, 64)`); `on_checkpoint(step)` is called after
    every training checkpoint (tests use it to simulate a killed build).

    Locomotion medium and medium-expert roll out the policies shipped in `datasets/policies/` unless
    `retrain` (then the behaviour policy is trained in the work dir, as the other recipes always do);
    medium-replay is a training buffer, so it needs a trained work dir (see `_locomotion`).
    """
    source = _generated_source(task)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BenchError(f"seed {seed!r} is not accepted; use an integer >= 0")
    if transitions is not None and (
        isinstance(transitions, bool) or not isinstance(transitions, int) or transitions <= 0
    ):
        raise BenchError(f"transitions {transitions!r} is not accepted; use a positive integer")
    with _single_thread():
        if retrain and task.domain not in LOCOMOTION:
            raise BenchError(f"--retrain applies to the MuJoCo locomotion tasks only, not {task.name}")
        if task.domain == "reacher2d":
            from bench.data.build.reacher import build_reacher

            return build_reacher(
                task,
                source.id,
                seed,
                transitions,
                progress,
                workdir,
                with_overrides(ReacherRecipe(), budget_overrides),
                on_checkpoint,
            )
        if task.domain in LOCOMOTION:
            return _locomotion(
                task, source.id, seed, transitions, progress, workdir, on_checkpoint, retrain, budget_overrides
            )
        if task.domain == "pointmaze":
            from bench.data.build.maze import build_maze

            return build_maze(
                task, source.id, seed, transitions, progress, with_overrides(MazeRecipe(), budget_overrides)
            )
        if task.domain == "kitchen":
            from bench.data.build.kitchen import build_kitchen, kitchen_recipe

            return build_kitchen(task, source.id, seed, transitions, progress, kitchen_recipe(budget_overrides))
        if task.env_id.startswith("ALE/"):
            from bench.data.build.atari import build_atari

            return build_atari(
                task,
                source.id,
                seed,
                transitions,
                progress,
                with_overrides(AtariRecipe(), budget_overrides),
                workdir,
                on_checkpoint,
            )
    raise _not_built_here(task)


def _locomotion(
    task: Task,
    dataset_id: str,
    seed: int,
    transitions: int | None,
    progress: bool,
    workdir: Path | None,
    on_checkpoint: Callable[[int], None] | None,
    retrain: bool,
    overrides: dict[str, Any],
) -> Path:
    """Shipped policy (medium, medium-expert) or training in the work dir (--retrain, and medium-replay)."""
    from bench.data.build.locomotion import build_locomotion
    from bench.data.build.shipped import SHIPPED_OVERRIDES, build_from_shipped, replay_needs_training
    from bench.data.build.workdir import default_workdir

    recipe = with_overrides(LocomotionRecipe.for_env(task.domain), overrides)
    if retrain:
        return build_locomotion(task, dataset_id, seed, transitions, progress, workdir, recipe, on_checkpoint)
    if task.dataset == "medium-replay":
        # The buffer of a finished training run is reused when it is there (no training happens then).
        state_path = (workdir or default_workdir(task, seed)) / "state.json"
        trained = state_path.is_file() and bool(
            json.loads(state_path.read_text()).get("phases", {}).get("medium", {}).get("done")
        )
        if not trained:
            raise replay_needs_training(task)
        return build_locomotion(task, dataset_id, seed, transitions, progress, workdir, recipe, on_checkpoint)
    training_only = sorted(k for k in overrides if k not in SHIPPED_OVERRIDES)
    if training_only:
        raise BenchError(
            f"settings {', '.join(training_only)} only apply when training the behaviour policy; add --retrain, "
            f"or drop them to roll out the shipped policy (settings accepted then: {', '.join(SHIPPED_OVERRIDES[:2])})"
        )
    return build_from_shipped(task, dataset_id, seed, transitions, progress, recipe)
