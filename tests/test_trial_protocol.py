"""A trial's evaluations use fresh, seeded start states each, and its final row keeps every target's score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.trial import TrialSpec, run_trial


def test_trial_evaluations_use_their_index_and_keep_every_target(
    reacher_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.evaluate

    calls: list[tuple[int, int]] = []
    real = bench.evaluate.evaluate

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((kwargs["seed"], kwargs["eval_index"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(bench.evaluate, "evaluate", spy)
    spec = TrialSpec(
        agent="dt",
        task="reacher2d-medium",
        ratio=1.0,
        seed=3,
        steps=4,
        eval_every=2,
        eval_episodes=2,
        overrides={"batch_size": 4, "warmup_steps": 1},
        report_window=4,
    )
    result = run_trial(spec)
    assert calls == [(3, 0), (3, 1)]  # evaluations at steps 2 and 4 are evaluations 0 and 1
    final = result.final
    targets = [e["target"] for e in final.target_scores]
    assert targets == [40.0, 76.0]  # the task's targets, in order, each with its own final score
    best = max(final.target_scores, key=lambda e: e["final"])  # type: ignore[arg-type, return-value]
    assert (final.rtg_target, final.final_score) == (best["target"], best["final"])
