"""The build work directory: where a resumable build keeps its checkpoints and its small state file.

Every write goes to a temporary name first and is then renamed into place, so a build killed at any moment
leaves either the previous consistent state or the new one, never a torn file. The state JSON is written
last and is the only thing a resumed build trusts: files newer than it are ignored and overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bench.atomic import atomic_write
from bench.paths import data_root
from bench.tasks import Task

STATE_FILE = "state.json"


def default_workdir(task: Task, seed: int) -> Path:
    """One work dir per environment and seed, so the datasets of one environment share trained policies."""
    return data_root() / "build" / f"{task.domain}-seed{seed}"


def write_json(path: Path, doc: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n"))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def replace_dir(staged: Path, final: Path) -> None:
    """Move a fully written directory to `final`, replacing what was there with two renames."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)


class WorkDir:
    """Paths and the state file of one build work dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def load_state(self) -> dict[str, Any] | None:
        return read_json(self.state_path) if self.state_path.is_file() else None

    def save_state(self, state: dict[str, Any]) -> None:
        write_json(self.state_path, state)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)
