from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.tasks import TASKS, get_task

PAPER_TASKS = [
    "kitchen-complete",
    "kitchen-partial",
    "reacher2d-medium",
    *(
        f"{env}-{ds}"
        for env in ("hopper", "halfcheetah", "walker2d")
        for ds in ("medium", "medium-replay", "medium-expert")
    ),
    "breakout-medium",
    "qbert-medium",
    "pong-medium",
]


def test_every_paper_task_is_registered() -> None:
    for name in PAPER_TASKS:
        assert name in TASKS


@pytest.mark.parametrize(
    ("name", "random", "expert"),
    [
        ("kitchen-complete", 0, 4),
        ("reacher2d-medium", 0, 100),
        ("hopper-medium", -20.272305, 3234.3),
        ("halfcheetah-medium", -280.178953, 12135.0),
        ("walker2d-medium", 1.629008, 4592.3),
        ("breakout-medium", 1.7, 31.8),
        ("qbert-medium", 163.9, 13455.0),
        ("pong-medium", -20.7, 9.3),
    ],
)
def test_normalization_reference_scores(name: str, random: float, expert: float) -> None:
    task = get_task(name)
    assert task.normalize(random) == pytest.approx(0.0)
    assert task.normalize(expert) == pytest.approx(100.0)
    assert task.normalize((random + expert) / 2) == pytest.approx(50.0)


def test_paper_settings() -> None:
    assert get_task("reacher2d-medium").context_length == 5
    assert get_task("pong-medium").context_length == 30
    assert get_task("hopper-medium").context_length == 20
    assert get_task("hopper-medium").rtg_targets == (1800.0, 3600.0)
    assert get_task("kitchen-partial").sample_ratios == (0.01, 0.1, 1.0)
    assert get_task("hopper-medium").sample_ratios == (0.005, 0.01, 0.1, 1.0)
    assert not hasattr(get_task("hopper-medium").paper, "mlp_embedding")  # LaMo's own table, agents/lamo.py
    assert get_task("breakout-medium").paper.train_steps == 50_000
    for task in TASKS.values():
        assert task.reward_type in ("sparse", "dense")
        assert task.sources, task.name
        assert all(0 < r <= 1 for r in task.sample_ratios)


def test_reward_types() -> None:
    sparse = {t.name for t in TASKS.values() if t.reward_type == "sparse"}
    assert {"kitchen-complete", "kitchen-partial", "reacher2d-medium"} <= sparse
    assert "hopper-medium" not in sparse


def test_unknown_task_is_one_line_error() -> None:
    with pytest.raises(BenchError, match="unknown task 'hoper-medium'.*known tasks: .*hopper-medium"):
        get_task("hoper-medium")
