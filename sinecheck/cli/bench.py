"""``sinecheck bench``: per-epoch time of every engine vs Keras fit, measured in one run."""

from __future__ import annotations

import argparse

from sinecheck import options
from sinecheck.checks.bench import BENCH_ENGINES, BenchRow, EngineTiming, render_bench, run_bench, time_backend_fit
from sinecheck.checks.breakdown import measure_breakdown
from sinecheck.checks.matrix import DEFAULT_EPOCHS
from sinecheck.cli._common import (
    Progress,
    model_specs,
    paired_specs,
    prepare_outputs,
    quiet_tensorflow,
    validate_specs,
    write_json,
)
from sinecheck.core.config import TrainConfig
from sinecheck.core.environment import Fingerprint, format_fingerprint
from sinecheck.core.presets import PRESETS, get_preset
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import ConfigError
from sinecheck.isolation.pool import WorkerPool, validate_isolated
from sinecheck.keras.runtime import probed_fingerprint

#: The Keras 3 backends whose `fit` --backends times, each in its own process.
BACKENDS = ("tensorflow", "jax", "torch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--quick", action="store_true", help="keras-default only, fewer rounds (~1 min)")
    p.add_argument(
        "--backends",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time fit on each Keras 3 backend (tensorflow, jax, torch) in its own process "
        "(default: on unless --quick)",
    )
    p.add_argument(
        "--rounds",
        type=options.positive_int,
        default=None,
        metavar="N",
        help="timed calls per engine (default 5; 3 quick)",
    )
    p.add_argument(
        "--epochs-per-call",
        type=options.positive_int,
        default=20,
        metavar="N",
        help="epochs each timed call trains (default 20: spreads every engine's per-call set-up)",
    )
    p.add_argument("--json", metavar="PATH", help="also write every timing, the ratios and the fingerprint as JSON")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="instead of the engines: where a check's time goes on each --model (else keras-default) — process "
        "start and import, fork, set-up, tracing, epochs, predictions, file I/O, comparison, exit — measured once "
        "each and multiplied by what a matrix pays (--epochs, default 5 as the matrix)",
    )
    options.add_epochs_option(
        p.add_argument, default=None, help="with --breakdown: epochs per run (default 5, the matrix's)"
    )
    options.add_model_options(
        p.add_argument, what="benchmark this model instead of the presets (engines that cannot train it say so)"
    )


def run(args: argparse.Namespace) -> int:
    if args.breakdown:
        return _breakdown(args)
    if args.epochs is not None:
        raise ConfigError(f"--epochs: invalid value {args.epochs}; allowed: only with --breakdown")
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 5)
    prepare_outputs(args)
    quiet_tensorflow()
    models = model_specs(args)
    cases = _cases(args, models)
    validate_specs(models)  # each model built once on its data: a bad spec is one line before anything trains
    with_backends = bool(args.backends) or (args.backends is None and not args.quick)
    total = len(cases) * len(BENCH_ENGINES) + (len(BACKENDS) if with_backends else 0)
    with Progress(total) as progress:
        rows = run_bench(cases, epochs_per_call=args.epochs_per_call, rounds=rounds, progress=progress.advance)
        backends = _time_backends(cases[0][1], args.epochs_per_call, rounds, progress) if with_backends else []
    info = probed_fingerprint(probe_tensorflow=True)
    print(render_bench(rows, backends=backends))
    print(
        f"\n{rounds} timed calls of {args.epochs_per_call} epochs per engine, after one untimed first call "
        f"(its time: 'first call'); × fit = ratio of medians, measured in this run.\n{format_fingerprint(info)}"
    )
    if args.json:
        write_json(args.json, _payload(rows, backends, rounds, args.epochs_per_call, info))
        print(f"wrote {args.json}")
    return 0


def _breakdown(args: argparse.Namespace) -> int:
    """``--breakdown``: measure where a check's time goes (see `sinecheck.checks.breakdown`), per case."""
    prepare_outputs(args)
    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    models = paired_specs(args)
    cases = [(m.label, m.config(epochs=epochs)) for m in models] or [
        ("keras-default", get_preset("keras-default").configs[0].replace(epochs=epochs))
    ]
    with WorkerPool() as pool:
        validate_isolated(pool, models)  # a bad spec is one line before anything is timed
    results = []
    for label, config in cases:
        breakdown = measure_breakdown(label, config)
        results.append(breakdown)
        print(breakdown.render() + "\n")
    info = probed_fingerprint(probe_tensorflow=False)
    print(
        "Each part measured once in this sitting (wall seconds); '× per matrix' is how often `sinecheck matrix` with "
        "every factor pays it.\n" + format_fingerprint(info)
    )
    if args.json:
        write_json(args.json, {"breakdowns": [b.to_dict() for b in results], "fingerprint": info})
        print(f"wrote {args.json}")
    return 0


def _cases(args: argparse.Namespace, models: list[ModelSpec]) -> list[tuple[str, TrainConfig]]:
    """(label, config) to time: the --model specs, else keras-default (--quick) or every preset's configs."""
    names = [] if models else ["keras-default"] if args.quick else list(PRESETS)
    cases = [(m.label, m.config()) for m in models]
    for name in names:
        preset = get_preset(name)
        cases += [
            (name if len(preset.configs) == 1 else f"{name} {label}", cfg)
            for cfg, label in zip(preset.configs, preset.labels, strict=True)
        ]
    return cases


def _time_backends(config: TrainConfig, epochs_per_call: int, rounds: int, progress: Progress) -> list[EngineTiming]:
    timings = []
    for backend in BACKENDS:
        progress.advance(f"keras-default: fit on the {backend} backend (own process)")
        timings.append(time_backend_fit(backend, config, epochs_per_call=epochs_per_call, rounds=rounds))
    return timings


def _payload(
    rows: list[BenchRow], backends: list[EngineTiming], rounds: int, epochs_per_call: int, info: Fingerprint
) -> dict[str, object]:
    return {
        "rows": [r.to_dict() for r in rows],
        "backends": [b.to_dict() for b in backends],
        "rounds": rounds,
        "epochs_per_call": epochs_per_call,
        "fingerprint": info,
    }
