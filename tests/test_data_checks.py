"""Data that loads but is wrong is refused in one line: content that is not what its card says was built, and
NaN or infinite observations, actions or rewards (named with the episode and step)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.data.trajectories import TrajectoryDataset
from bench.errors import BenchError
from tests.conftest import bench_cli as _bench
from tests.conftest import cli_env as _env
from tests.conftest import make_episodes, random_reacher_episodes, write_minari

DATASET = "lamo-bench/reacher2d/medium-v0"


def _card(data_root: Path, content_hash: str) -> None:
    (data_root / "minari" / DATASET / "card.json").write_text(json.dumps({"content_hash": content_hash}))


def _loaded_hash(data_root: Path, tmp_path: Path) -> str:
    out = _bench("data", "info", "reacher2d-medium", "--json", env=_env(data_root, tmp_path / "results"))
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["content_hash"])


@pytest.mark.slow
def test_card_hash_is_checked_by_data_info_train_and_run(reacher_data_root: Path, tmp_path: Path) -> None:
    env = _env(reacher_data_root, tmp_path / "results")
    good = _loaded_hash(reacher_data_root, tmp_path)
    _card(reacher_data_root, good)
    assert _loaded_hash(reacher_data_root, tmp_path) == good  # a matching card is accepted
    _card(reacher_data_root, "0123456789abcdef")  # data edited after the build, as far as the card knows
    expected = (
        f"has content hash {good}, its card {reacher_data_root / 'minari' / DATASET / 'card.json'} says "
        f"0123456789abcdef"
    )
    for args in (
        ["data", "info", "reacher2d-medium"],
        ["train", "bc", "reacher2d-medium", "--steps", "2", "--eval-every", "2", "--episodes", "1"],
        ["run", "--suite", "smoke", "--agents", "bc", "--tasks", "reacher2d-medium", "--name", "x"],
    ):
        out = _bench(*args, env=env)
        assert out.returncode == 2, (args, out.stderr)
        assert expected in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    results = tmp_path / "results"
    assert not results.exists() or not list(results.iterdir())  # refused before anything was written


def test_corrupt_card_is_one_line(reacher_data_root: Path, tmp_path: Path) -> None:
    (reacher_data_root / "minari" / DATASET / "card.json").write_text("{not json")
    out = _bench("data", "info", "reacher2d-medium", env=_env(reacher_data_root, tmp_path / "results"))
    assert out.returncode == 2 and "corrupt dataset card" in out.stderr


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("observations", np.nan, "NaN"),
        ("actions", np.inf, "infinite value"),
        ("rewards", -np.inf, "infinite value"),
    ],
)
def test_non_finite_values_are_refused_naming_field_and_episode(
    data_root: Path, tmp_path: Path, field: str, value: float, kind: str
) -> None:
    episodes = random_reacher_episodes(5)
    episodes[3][field] = episodes[3][field].copy()
    episodes[3][field][7] = value
    write_minari(data_root / "minari", DATASET, episodes)
    out = _bench("data", "info", "reacher2d-medium", env=_env(data_root, tmp_path / "results"))
    assert out.returncode == 2, out.stderr
    assert f"{field} has a {kind} in episode 3 (step 7)" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_check_finite_accepts_finite_and_integer_data() -> None:
    ds = TrajectoryDataset.from_episodes(make_episodes(4), name="ok")
    ds.check_finite()
    episodes = make_episodes(3)
    episodes[1]["rewards"][0] = np.nan
    with pytest.raises(BenchError, match=r"'bad': rewards has a NaN in episode 1 \(step 0\)"):
        TrajectoryDataset.from_episodes(episodes, name="bad").check_finite()
