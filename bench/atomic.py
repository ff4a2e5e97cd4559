"""Atomic file writes: the one helper every writer in the project goes through.

Results, dataset builds, DQN-replay files, agent checkpoints and reports are all written to a temporary file
beside the target, flushed to disk, given the mode a plain `open()` would give (0o666 minus the umask; `mkstemp`
would leave 0600, and these files are meant to be shared and committed), then renamed over the target. A reader
(or a resumed run after a kill) sees the old file or the new one, never a torn one, and a failed write leaves no
temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)
#: The mode of every file written here.
FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` on a temporary path beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        sync = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(sync)
        finally:
            os.close(sync)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: Path, doc: Any) -> None:
    atomic_write_bytes(path, (json.dumps(doc, indent=2, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())
