"""`bench perf --compare`: regressions are caught on ratios always, on absolute figures only on one device."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.perf import check_threshold, compare, measure_sampler


def _doc(device: str, sampler_ratio: float, cached_ratio: float, dt_steps: float) -> dict[str, object]:
    return {
        "device": device,
        "sampler": {"ratio": sampler_ratio, "vectorised_windows_per_s": 1000.0 * sampler_ratio},
        "eval": {
            "ratio_batched_window": 2.0,
            "ratio_batched_cached": cached_ratio,
            "batched_cached": {"env_steps_per_s": 100.0 * cached_ratio},
        },
        "train": {"dt": {"steps_per_s": dt_steps}},
    }


def test_ratio_regression_detected_across_devices() -> None:
    rows, regressed = compare(_doc("gpu", 10.0, 4.0, 50.0), _doc("cpu", 10.0, 8.0, 10.0), threshold=0.3)
    assert regressed
    bad = [r["figure"] for r in rows if r["regression"]]
    assert bad == ["eval.ratio_batched_cached"]
    assert not any(r["figure"].startswith("train.") for r in rows)  # other device: absolutes not compared


def test_absolute_figures_compared_on_same_device() -> None:
    rows, regressed = compare(_doc("cpu", 10.0, 8.0, 5.0), _doc("cpu", 10.0, 8.0, 10.0), threshold=0.3)
    assert regressed
    assert [r["figure"] for r in rows if r["regression"]] == ["train.dt"]
    _, ok = compare(_doc("cpu", 9.0, 7.0, 9.0), _doc("cpu", 10.0, 8.0, 10.0), threshold=0.3)
    assert not ok  # drops of 10-13% are inside a 30% threshold


def test_threshold_validation() -> None:
    with pytest.raises(BenchError, match="threshold 1.5 is out of range"):
        check_threshold(1.5)


def test_sampler_measurement_reports_both_rates() -> None:
    # Functional only: whether the vectorised sampler is faster is `bench perf`'s job (a loaded machine can
    # make any speed assertion flaky in a unit test).
    result = measure_sampler(transitions=20_000, seconds=0.05)
    vec, loop = result["vectorised_windows_per_s"], result["reference_loop_windows_per_s"]
    assert vec > 0 and loop > 0 and result["ratio"] == pytest.approx(vec / loop)
    assert (result["transitions"], result["batch"], result["k"]) == (20_000, 64, 20)
