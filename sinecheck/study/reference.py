"""The three reference experiments trained with Keras `fit`, seed after seed, each config from a fresh model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sinecheck.core.config import InitializerSpec, TrainConfig
from sinecheck.core.presets import PRESETS
from sinecheck.core.result import MetricName, RunResult
from sinecheck.engines import registry

#: Called before each run with (index from 1, total, label).
RunProgress = Callable[[int, int, str], None]


@dataclass
class ExperimentRuns:
    """All seeds of one config of one preset."""

    preset: str
    label: str
    config: TrainConfig  # the seed-0 (first seed) config
    runs: list[RunResult]

    def values(self, metric: MetricName) -> np.ndarray:
        """`metric` of each seed (NaN where it is None)."""
        return np.array([np.nan if (v := r.metrics.get(metric)) is None else v for r in self.runs])


def run_reference(
    *,
    presets: Sequence[str] = tuple(PRESETS),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    progress: RunProgress | None = None,
    train: Callable[[TrainConfig], RunResult] | None = None,
) -> list[ExperimentRuns]:
    """Train every config of the named presets once per seed, each from a fresh, freshly seeded model."""
    if train is None:
        train = registry.train
    plan: list[tuple[str, str, list[TrainConfig]]] = []
    for name in presets:
        preset = PRESETS[name].with_overrides(epochs=epochs)
        for cfg, label in zip(preset.configs, preset.labels, strict=True):
            plan.append((name, label, [cfg.replace(seed=s) for s in seeds]))
    total = sum(len(cfgs) for _, _, cfgs in plan)
    done = 0
    out: list[ExperimentRuns] = []
    for name, label, cfgs in plan:
        runs = []
        for cfg in cfgs:
            done += 1
            if progress is not None:
                progress(done, total, f"{name} {label} seed {cfg.seed}")
            runs.append(train(cfg))
        out.append(ExperimentRuns(name, label, cfgs[0], runs))
    return out


def check_fresh_starts(runs: Sequence[RunResult]) -> list[str]:
    """Problems with a sweep that should train each setting on a fresh model from the same seeded start.

    Runs of one seed and one architecture/initializer must share their initial-weight digest, and no run
    may start from the weights another run ended with: the classic mistake of re-compiling one model
    and calling ``fit`` again only continues training it.
    """
    problems: list[str] = []
    finals = {r.digests["final_weights"]: r for r in runs}
    for r in runs:
        source = finals.get(r.digests["initial_weights"])
        if source is not None and source is not r:
            problems.append(
                f"batch {r.config.batch_size} started from the final weights of batch "
                f"{source.config.batch_size} (it continued training that model)"
            )
    starts: dict[tuple[int | None, tuple[int, ...], InitializerSpec, InitializerSpec], str] = {}
    for r in runs:
        key = (r.config.seed, r.config.hidden_units, r.config.kernel_initializer, r.config.bias_initializer)
        starts.setdefault(key, r.digests["initial_weights"])
        if r.config.seed is not None and r.digests["initial_weights"] != starts[key]:
            problems.append(
                f"batch {r.config.batch_size} started from other initial weights than its "
                f"same-seed siblings ({r.digests['initial_weights'][:12]} vs {starts[key][:12]})"
            )
    return problems
