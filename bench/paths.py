"""Where the harness keeps data, results and reports.

Defaults are the repository's own `datasets/`, `results/` and `reports/` folders (the package is installed
editable by `make`), so a fresh clone finds the committed Reacher2d dataset with no configuration. The
environment variables LAMO_BENCH_DATA, LAMO_BENCH_RESULTS and LAMO_BENCH_REPORTS move them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _root(env_var: str, folder: str) -> Path:
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    if (REPO_ROOT / folder).is_dir():
        return REPO_ROOT / folder
    return Path.cwd() / folder


def data_root() -> Path:
    return _root("LAMO_BENCH_DATA", "datasets")


def results_root() -> Path:
    return _root("LAMO_BENCH_RESULTS", "results")


def reports_root() -> Path:
    return _root("LAMO_BENCH_REPORTS", "reports")


def minari_root() -> Path:
    """Minari root inside the data root: downloaded Minari datasets and the ones this project generates."""
    return data_root() / "minari"


def d4rl_root() -> Path:
    return data_root() / "d4rl"
