"""Agent checkpoint files: written atomically, read back with one-line errors. Every agent uses these two
functions, so a killed save never leaves a torn file and a wrong or corrupt file never shows a stack trace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.errors import BenchError


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_checkpoint(folder: Path, filename: str, payload: dict[str, Any]) -> None:
    """`torch.save(payload)` as `folder/filename`, through a temporary file and a rename."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{filename}.tmp-{os.getpid()}"
    try:
        torch.save(payload, tmp)
        os.replace(tmp, folder / filename)
    finally:
        tmp.unlink(missing_ok=True)


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
