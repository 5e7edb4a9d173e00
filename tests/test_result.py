"""Metrics and Timings: typed, and their JSON exactly what result files and baselines have always held."""

from __future__ import annotations

import json
import math

import pytest

from sinecheck.core.result import MetricName, Metrics, Timings

#: A result file's metrics and timings as sinecheck wrote them before they were typed (keys in this order).
LEGACY_METRICS = {
    "mse_train": 0.45,
    "max_err_train": 1.25,
    "mse_test": "nan",
    "max_err_test": "inf",
    "final_loss": None,
}
LEGACY_TIMINGS = {"total_s": 2.5, "setup_s": 0.5, "fit_s": 1.75, "first_epoch_s": 0.25, "epoch_ms_median": 30.0}


def test_metrics_json_round_trips_keys_order_and_non_finite_values() -> None:
    metrics = Metrics.from_json(LEGACY_METRICS)
    assert metrics.mse_train == 0.45 and math.isnan(metrics.mse_test) and metrics.max_err_test == math.inf
    assert metrics.final_loss is None
    assert json.dumps(metrics.to_json()) == json.dumps(LEGACY_METRICS)
    assert [name.value for name, _ in metrics.items()] == list(LEGACY_METRICS)


def test_metrics_read_plain_json_nan_and_pick_a_metric_by_name() -> None:
    metrics = Metrics.from_json(
        json.loads('{"mse_test": NaN, "mse_train": 1, "max_err_test": 2.0, "max_err_train": 3.0, "final_loss": 0.5}')
    )
    assert math.isnan(metrics.get(MetricName.MSE_TEST) or 0.0)
    assert metrics.get(MetricName("max_err_train")) == 3.0 and metrics.get(MetricName.FINAL_LOSS) == 0.5
    assert isinstance(metrics.mse_train, float)


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in LEGACY_METRICS.items() if k != "mse_test"},
        {**LEGACY_METRICS, "mse_train": None},
        {**LEGACY_METRICS, "mse_train": "much"},
        {**LEGACY_METRICS, "mse_train": True},
    ],
    ids=["missing", "null", "text", "bool"],
)
def test_malformed_metrics_raise(broken: dict[str, object]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        Metrics.from_json(broken)


def test_timings_json_round_trips_with_and_without_trace_time() -> None:
    timings = Timings.from_json(LEGACY_TIMINGS)
    assert timings.trace_s is None and timings.fit_s == 1.75
    assert json.dumps(timings.to_json()) == json.dumps(LEGACY_TIMINGS)
    fused = {
        "total_s": 2.5,
        "setup_s": 0.5,
        "trace_s": 0.2,
        "fit_s": 1.75,
        "first_epoch_s": 0.25,
        "epoch_ms_median": 3.0,
    }
    assert json.dumps(Timings.from_json(fused).to_json()) == json.dumps(fused)


def test_metrics_and_timings_are_frozen() -> None:
    metrics = Metrics.from_json(LEGACY_METRICS)
    timings = Timings.from_json(LEGACY_TIMINGS)
    with pytest.raises(AttributeError):
        metrics.mse_train = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        timings.fit_s = 0.0  # type: ignore[misc]
