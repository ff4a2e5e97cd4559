"""Agent checkpoint files: written atomically, read back with one-line errors. Every agent uses these two
functions, so a killed save never leaves a torn file and a wrong or corrupt file never shows a stack trace.

Every checkpoint also carries the metadata `agents.loading.load_agent` needs to rebuild the agent from the file
alone (`REQUIRED_KEYS`: registry name, full config, `TaskSpec`, seed). `write_checkpoint` refuses a payload
without them, so an agent whose `save` forgets one fails its first save instead of writing a file nobody can
load later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.base import TRAINING_STATE_FILE
from bench.atomic import atomic_write
from bench.errors import BenchError

#: Payload keys every agent checkpoint holds: `agent` (registry name of the agent class), `config` (the full
#: config as `AgentConfig.to_dict()`), `spec` (`dataclasses.asdict(TaskSpec)`) and `seed` (the agent's seed).
REQUIRED_KEYS: tuple[str, ...] = ("agent", "config", "spec", "seed")


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_checkpoint(folder: Path, filename: str, payload: dict[str, Any], *, agent_checkpoint: bool = True) -> None:
    """`torch.save(payload)` as `folder/filename`, through a temporary file and a rename. An agent checkpoint
    (the default) must carry `REQUIRED_KEYS`; other files beside it (the training state) pass False."""
    import torch

    missing = [k for k in REQUIRED_KEYS if k not in payload] if agent_checkpoint else []
    if missing:
        # A programming error in an agent's `save`, not a user error: it must never reach a results folder.
        raise ValueError(
            f"checkpoint payload lacks {', '.join(missing)}; every agent checkpoint needs "
            f"{', '.join(REQUIRED_KEYS)} (see agents/checkpoint.py)"
        )
    atomic_write(Path(folder) / filename, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(folder: Path, filename: str, agent: str, map_location: str = "cpu") -> dict[str, Any]:
    """The payload of `folder/filename`, checked to be a readable checkpoint of agent `agent`."""
    import torch

    file = Path(folder) / filename
    if not file.is_file():
        raise BenchError(f"no checkpoint at {file}")
    try:
        payload = torch.load(file, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise BenchError(f"cannot read checkpoint {file}: {first_line(e)}") from None
    if not isinstance(payload, dict) or payload.get("agent") != agent:
        found = payload.get("agent") if isinstance(payload, dict) else type(payload).__name__
        raise BenchError(f"checkpoint {file} is for agent {found!r}, not {agent!r}")
    return payload


def find_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file at `path` and its payload, whichever agent wrote it.

    `path` may be the checkpoint file, the folder an agent saved into, or a trial folder holding `checkpoint/`
    (what `bench train` and `bench run` write). Anything else is a one-line error naming what was expected.
    """
    import torch

    path = Path(path)
    if path.is_dir() and not any(path.glob("*.pt")) and (path / "checkpoint").is_dir():  # a trial folder
        path = path / "checkpoint"
    if path.is_dir():
        # The training state (optimiser, RNG; for resuming a trial) is saved beside the agent: not an agent.
        files = sorted(p for p in path.glob("*.pt") if not p.name.startswith(".") and p.name != TRAINING_STATE_FILE)
        if len(files) != 1:
            found = "no .pt file" if not files else f"{len(files)} .pt files"
            raise BenchError(
                f"{path} holds {found}; expected one agent checkpoint (a folder written by "
                "`bench train`/`bench run` or by Agent.save)"
            )
        path = files[0]
    if not path.is_file():
        raise BenchError(f"no checkpoint at {path}; pass a checkpoint folder or file written by `bench train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors for a file that is not a checkpoint
        reason = first_line(e)
        reason = reason if len(reason) <= 120 else reason[:117] + "..."
        raise BenchError(f"{path} is not a readable agent checkpoint ({type(e).__name__}: {reason})") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        have = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise BenchError(
            f"{path} is not a lamo-bench agent checkpoint: it needs keys {', '.join(REQUIRED_KEYS)}, found {have}"
        )
    return path, payload
