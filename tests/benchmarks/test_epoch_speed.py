"""Per-epoch cost of training, Keras ``fit`` against the fused engine, measured in the same run.

Run for real with ``pytest tests/benchmarks --benchmark-enable`` (the project's addopts disable timing, so
plain ``pytest`` runs each benchmark once as an ordinary test).  One-time costs (tracing) are warmed up
before timing: each round is one epoch of an already-built model.  A one-epoch ``fit`` call also pays fit's
per-call setup (data adapter, callbacks; about 25 ms here), which an epoch inside a long ``fit`` does not:
compare with the ``epoch_ms_median`` of a 100-epoch ``sinecheck run`` for that figure.
"""

from __future__ import annotations

import pytest

from sinecheck.config import get_preset

pytest.importorskip("tensorflow")

CASES = [("keras-default", 0), ("batch-sweep", 0), ("batch-sweep", 2)]
IDS = ["keras-default", "batch-sweep-32", "batch-sweep-128"]


def _epoch_fit(preset: str, index: int):
    from sinecheck.engines.common import fresh_start

    cfg = get_preset(preset).configs[index]
    start = fresh_start(cfg)
    x, y = start.data.x_train, start.data.y_train

    def one_epoch() -> None:
        start.model.fit(x, y, batch_size=cfg.batch_size, epochs=1, shuffle=cfg.shuffle, verbose=0)

    one_epoch()  # trace once, as fit's first epoch does
    return one_epoch


def _epoch_fused(preset: str, index: int):
    from sinecheck.engines.fused import epoch_orders_from_keras, prepare_fused

    cfg = get_preset(preset).configs[index].replace(epochs=1)
    start, run_epochs = prepare_fused(cfg)
    order = epoch_orders_from_keras(cfg, start.data.y_train)

    def one_epoch() -> None:
        run_epochs(order).numpy()

    one_epoch()  # trace once
    return one_epoch


@pytest.mark.parametrize(("preset", "index"), CASES, ids=IDS)
@pytest.mark.parametrize("engine", ["keras", "fused"])
def test_epoch(benchmark, engine: str, preset: str, index: int) -> None:
    benchmark.group = f"epoch/{IDS[CASES.index((preset, index))]}"
    benchmark.extra_info.update({"engine": engine, "unit": "one epoch"})
    one_epoch = (_epoch_fit if engine == "keras" else _epoch_fused)(preset, index)
    benchmark.pedantic(one_epoch, rounds=5 if engine == "keras" else 30, iterations=1, warmup_rounds=1)
