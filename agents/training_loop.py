"""The one training-loop bookkeeping every agent shares: which steps evaluate, how logged metrics are averaged,
and in which order the callbacks run; plus the random-state snapshots a mid-trial checkpoint needs.

`DTAgent.fit` (and so LaMo) and `D3rlpyAgent.fit` differ only in what one gradient step is; everything around
it lives here, so eval points, metric means and checkpoint points cannot drift apart between agent families.

At every evaluation point the order is: `on_log(step, means)` -> `on_eval(step, agent)` ->
`on_checkpoint(step, agent)`. The checkpoint comes last so that it captures the state after the evaluation:
an interrupted trial resumed from it continues exactly where the uninterrupted one would.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agents.base import TRAINING_STATE_FILE, CheckpointCallback, eval_steps
from agents.checkpoint import read_checkpoint, write_checkpoint
from bench.errors import BenchError

if TYPE_CHECKING:
    from agents.base import Agent, EvalCallback, LogCallback

__all__ = ["CheckpointCallback", "MetricMeans", "TrainingState", "eval_steps", "run_loop"]

TRAINING_STATE_FORMAT = 1
#: One gradient step: takes the (1-based) step number, returns that step's scalar metrics.
StepFunction = Callable[[int], Mapping[str, float | torch.Tensor]]


class MetricMeans:
    """Running means of every metric since the last logging point, per key (a metric missing from some steps,
    like TD3's actor loss on non-actor steps, is averaged over the steps that reported it).

    Tensor values are summed as tensors, so a GPU step does not wait for a host copy of its loss."""

    def __init__(self) -> None:
        self._sums: dict[str, float | torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, metrics: Mapping[str, float | torch.Tensor]) -> None:
        for key, value in metrics.items():
            v: float | torch.Tensor = value.detach().float() if isinstance(value, torch.Tensor) else float(value)
            self._sums[key] = self._sums[key] + v if key in self._sums else v
            self._counts[key] = self._counts.get(key, 0) + 1

    def pop(self) -> dict[str, float]:
        """The means, and start over."""
        out = {key: float(total) / self._counts[key] for key, total in self._sums.items()}
        self._sums.clear()
        self._counts.clear()
        return out


def run_loop(
    step_fn: StepFunction,
    agent: Agent,
    steps: int,
    *,
    start: int = 0,
    eval_every: int = 0,
    on_log: LogCallback | None = None,
    on_eval: EvalCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    log_extras: Callable[[], Mapping[str, float]] | None = None,
    before_eval: Callable[[], object] | None = None,
    after_eval: Callable[[], object] | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Run steps `start + 1 .. steps` of a `steps`-long training, with the callbacks at every evaluation point.

    `start` > 0 continues an interrupted training: the evaluation points are those of the whole `steps` run
    (the metric means restart at the resumed step, which is itself always an evaluation point). `log_extras`
    adds values read at log time (the learning rate); `before_eval`/`after_eval` switch train/eval modes around
    the evaluation; `progress(step)` is told each finished step before the callbacks run, so an agent knows how
    far it is when a checkpoint is taken."""
    points = set(eval_steps(steps, eval_every))
    means = MetricMeans()
    for step in range(start + 1, steps + 1):
        means.add(step_fn(step))
        if progress is not None:
            progress(step)
        if step not in points:
            continue
        logged = means.pop()
        if on_log is not None:
            on_log(step, {**logged, **(log_extras() if log_extras is not None else {})})
        if on_eval is not None or on_checkpoint is not None:
            if before_eval is not None:
                before_eval()
            if on_eval is not None:
                on_eval(step, agent)
            if on_checkpoint is not None:
                on_checkpoint(step, agent)
            if after_eval is not None:
                after_eval()


# --- mid-training state ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingState:
    """What an agent adds to its weights so a killed `fit` can continue bit for bit: the step reached, the
    process-wide random states (`global_rng_states`), the agent's own NumPy generators by name, and the
    agent-specific rest (`extra`: optimiser and scheduler state for DT/LaMo; d3rlpy keeps those with its
    weights)."""

    step: int
    rng: dict[str, Any]
    generators: dict[str, dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path, agent: str) -> None:
        write_checkpoint(
            folder,
            TRAINING_STATE_FILE,
            {
                "format": TRAINING_STATE_FORMAT,
                "agent": agent,
                "step": self.step,
                "rng": self.rng,
                "generators": self.generators,
                "extra": self.extra,
            },
            agent_checkpoint=False,
        )

    @classmethod
    def read(cls, folder: Path, agent: str) -> TrainingState:
        """Read on the CPU whatever the agent's device: random states must be CPU byte tensors, and
        `Optimizer.load_state_dict` moves optimiser state to its parameters' device itself."""
        payload = read_checkpoint(folder, TRAINING_STATE_FILE, agent, "cpu")
        file = Path(folder) / TRAINING_STATE_FILE
        if payload.get("format") != TRAINING_STATE_FORMAT:
            raise BenchError(
                f"training state {file} has format {payload.get('format')!r}; this version reads "
                f"format {TRAINING_STATE_FORMAT}"
            )
        try:
            return cls(
                step=int(payload["step"]), rng=payload["rng"], generators=payload["generators"], extra=payload["extra"]
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BenchError(f"training state {file} is incomplete: {type(e).__name__} {e}") from None

    def restore_generators(self, generators: Mapping[str, np.random.Generator], file: Path) -> None:
        """Put the saved states into the agent's generators; a missing or extra name is a one-line error."""
        if set(generators) != set(self.generators):
            raise BenchError(
                f"training state {file} holds generators {sorted(self.generators)}, this agent has {sorted(generators)}"
            )
        for name, rng in generators.items():
            restore_generator(rng, self.generators[name])


# --- random states -----------------------------------------------------------------------------------------


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A NumPy generator's state as plain data (a dict of ints and strings), storable with `weights_only`."""
    return dict(rng.bit_generator.state)


def restore_generator(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    rng.bit_generator.state = dict(state)


def global_rng_states(cuda_devices: list[int]) -> dict[str, Any]:
    """Every process-wide random state a training step may draw from: torch (CPU and the given CUDA devices;
    d3rlpy's sampling draws here too), NumPy's legacy global generator and Python's `random`."""
    legacy = np.random.get_state()
    assert isinstance(legacy, tuple)
    return {
        "torch": torch.get_rng_state(),
        "torch_cuda": [torch.cuda.get_rng_state(i) for i in cuda_devices],
        "numpy": {
            "name": legacy[0],
            "keys": torch.from_numpy(np.asarray(legacy[1], np.int64)),
            "pos": int(legacy[2]),
            "has_gauss": int(legacy[3]),
            "cached_gaussian": float(legacy[4]),
        },
        "python": _python_state_to_data(random.getstate()),
    }


def restore_global_rng_states(states: Mapping[str, Any], cuda_devices: list[int]) -> None:
    torch.set_rng_state(states["torch"])
    for index, state in zip(cuda_devices, states["torch_cuda"], strict=True):
        torch.cuda.set_rng_state(state, index)
    n = states["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    random.setstate(_python_state_from_data(states["python"]))


def _python_state_to_data(state: tuple[Any, ...]) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": int(version), "internal": list(internal), "gauss": gauss}


def _python_state_from_data(data: Mapping[str, Any]) -> tuple[Any, ...]:
    return (data["version"], tuple(data["internal"]), data["gauss"])


def cuda_devices(device: str) -> list[int]:
    """The CUDA device indices whose RNG a model on `device` uses (none on CPU)."""
    dev = torch.device(device)
    return [dev.index or 0] if dev.type == "cuda" else []
