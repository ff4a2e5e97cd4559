"""Where the harness keeps data, results and reports.

Defaults are the repository's own `datasets/`, `results/` and `reports/` folders (the package is installed
editable by `make`), so a fresh clone finds the committed Reacher2d dataset with no configuration. The
environment variables LAMO_BENCH_DATA, LAMO_BENCH_RESULTS and LAMO_BENCH_REPORTS move them.
Shipped behaviour policies (`policies_root`) are part of the project, not of the data cache, so they stay in the
repository whatever LAMO_BENCH_DATA says (LAMO_BENCH_POLICIES moves them, for tests).
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


def policies_root() -> Path:
    """Shipped behaviour policies (`datasets/policies/`, committed): found here even when LAMO_BENCH_DATA moves
    the data cache elsewhere, because they are project files that dataset cards name by hash, not cached data."""
    if os.environ.get("LAMO_BENCH_POLICIES"):
        return Path(os.environ["LAMO_BENCH_POLICIES"]).expanduser()
    base = REPO_ROOT if (REPO_ROOT / "datasets").is_dir() else Path.cwd()
    return base / "datasets" / "policies"
