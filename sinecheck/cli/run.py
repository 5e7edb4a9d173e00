"""``sinecheck run``: train a preset (or your --model) and print its digests, error and time."""

from __future__ import annotations

import argparse

from sinecheck import options
from sinecheck._text import format_number, text_table
from sinecheck.cli._common import Progress, model_specs, prepare_outputs, quiet_tensorflow, validate_specs, write_json
from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.core.presets import PRESETS, Preset, get_preset
from sinecheck.core.result import RunResult
from sinecheck.core.specs import ModelSpec
from sinecheck.engines.base import refuse_custom
from sinecheck.engines.registry import train
from sinecheck.errors import ConfigError

HEADER = (
    "run",
    "config id",
    "initial weights",
    "final weights",
    "predictions",
    "MSE train",
    "MSE held-out",
    "max|err|",
    "fit s",
    "ms/epoch",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("preset", metavar="PRESET", nargs="?", help=f"one of: {', '.join(PRESETS)} (or give --model)")
    # type=int: TrainConfig checks the range, and its message names it ([1, 100000])
    options.add_epochs_option(p.add_argument, type=int, help="override the number of epochs")
    p.add_argument("--batch-size", type=int, help="override the batch size (on every config of the preset)")
    # absent (not None) when not given: --seed none asks for an unseeded run
    options.add_seed_option(p.add_argument, optional=True, default=argparse.SUPPRESS)
    p.add_argument("--initializer", help='kernel initializer, e.g. he_normal or "truncated_normal(stddev=0.02)"')
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None, help="shuffle each epoch")
    p.add_argument("--json", metavar="PATH", help="also write the results (config, digests, metrics) as JSON")
    options.add_engine_option(p.add_argument, default="keras")
    options.add_model_options(p.add_argument, what="train this model instead of a preset")
    options.add_fallback_engine_option(p.add_argument)


def run(args: argparse.Namespace) -> int:
    models = model_specs(args)
    preset = _preset(args, models)
    configs = _configs(args, preset)
    prepare_outputs(args)
    if models and args.fallback_engine is None:
        refuse_custom(configs[0], args.engine)  # before any training
    validate_specs(models)  # each model built once on its data: a bad spec is one line before anything trains
    quiet_tensorflow()
    with Progress() as progress:
        results = []
        for i, (cfg, label) in enumerate(zip(configs, preset.labels, strict=True), 1):
            progress.step(i, len(configs), f"{preset.name} {label} ({cfg.config_id})")
            results.append(train(cfg, engine=args.engine, progress=progress.epoch, fallback=args.fallback_engine))
    for r in results:
        if "fallback_from" in r.options:
            print(
                f"engine {r.options['fallback_from']} cannot train {r.config.model}; trained with {r.engine} "
                "(--fallback-engine)"
            )
    _check_rate(args, results)
    compiled = _compiled_names(results)
    header = (*HEADER, *(f"{name} train / held-out" for name in compiled))
    rows = [_row(preset.name, label, r, compiled) for label, r in zip(preset.labels, results, strict=True)]
    print(text_table(header, rows))
    if models:  # what really trained: each model as compiled (by its factory, or by sinecheck)
        print()
        for label, r in zip(preset.labels, results, strict=True):
            print(f"{label}: {r.describe()}")
    else:
        print(f"\n{results[0].config.describe()}")
    for line in _spec_notes(results[0]):
        print(line)
    if args.json:
        write_json(args.json, [r.to_dict() for r in results])
        print(f"wrote {args.json}")
    return 0


def _spec_notes(result: RunResult) -> list[str]:
    """What a model or data spec changed about the run: its pipeline (the config's batch size and shuffle unused),
    its FitSpec's callbacks and fit arguments."""
    notes = [f"data: {result.options['data']}"] if "data" in result.options else []
    fit_spec = result.options.get("fit_spec")
    if fit_spec:
        notes.append(
            f"FitSpec: callbacks {', '.join(fit_spec['callbacks']) or 'none'}; fit arguments "
            f"{', '.join(fit_spec['fit_kwargs']) or 'none'} (epochs run: {result.epochs_run})"
        )
    return notes


def _preset(args: argparse.Namespace, models: list[ModelSpec]) -> Preset:
    """The preset named on the command line, or one made of the --model specs, with the overrides applied."""
    if args.preset is None and not models:
        raise ConfigError("PRESET: missing; allowed: one of " + ", ".join(PRESETS) + ", or --model SPEC")
    if args.preset is not None and models:
        raise ConfigError(f"PRESET: {args.preset!r} given with --model; allowed: one of them")
    initializer = None
    if args.initializer is not None:
        if models:
            raise ConfigError("--initializer: not with --model (the model's factory builds its own layers)")
        initializer = InitializerSpec.parse(args.initializer)
    if models:
        base = Preset("model", "your model", tuple(m.config() for m in models), tuple(m.label for m in models))
    else:
        base = get_preset(args.preset)
    return base.with_overrides(
        epochs=args.epochs, batch_size=args.batch_size, shuffle=args.shuffle, kernel_initializer=initializer
    )


def _configs(args: argparse.Namespace, preset: Preset) -> list[TrainConfig]:
    """The preset's configs with --lr and --seed applied."""
    configs = list(preset.configs)
    if args.lr is not None:
        configs = [c.replace(optimizer=OptimizerSpec(c.optimizer.name, args.lr, c.optimizer.params)) for c in configs]
    if "seed" in args:  # --seed none means unseeded, so "not given" is told apart by the option's absence
        configs = [c.replace(seed=args.seed) for c in configs]
    return configs


def _check_rate(args: argparse.Namespace, results: list[RunResult]) -> None:
    """--lr equal to the optimizer's default means "the factory's own rate" on a model its factory compiled: say so
    (a one-line error) where that rate was another, rather than print a rate that did not run."""
    if args.lr is None:
        return
    for r in results:
        record = r.compile_record
        if record is None or record.learning_rate is None or abs(record.learning_rate - args.lr) <= 1e-6 * args.lr:
            continue
        raise ConfigError(
            f"--lr: {args.lr:g} is {r.config.optimizer.name}'s default, which on model {r.config.model} (its factory "
            f"compiled {record.optimizer} with learning_rate {record.learning_rate:g}) means the factory's own rate; "
            "allowed: another rate, or set this one in the factory"
        )


def _compiled_names(results: list[RunResult]) -> list[str]:
    """The compiled loss and metric names of the runs (a user's model's), in first-seen order."""
    names: list[str] = []
    for r in results:
        names += [n for n in r.metrics.compiled.names() if n not in names]
    return names


def _row(preset: str, label: str, r: RunResult, compiled: list[str]) -> list[str]:
    own = r.metrics.compiled
    missing = "—" if own else "nan"  # a user's model whose outputs are not shaped like y has no MSE against it
    return [
        f"{preset} {label}" + (" DIVERGED" if r.diverged else ""),
        r.config.config_id,
        r.digests["initial_weights"][:16],
        r.digests["final_weights"][:16],
        r.digests["predictions"][:16],
        format_number(r.metrics.mse_train, ".5f", missing=missing),
        format_number(r.metrics.mse_test, ".5f", missing=missing),
        format_number(r.metrics.max_err_test, ".4f", missing=missing),
        f"{r.timings.fit_s:.2f}",
        f"{r.timings.epoch_ms_median:.1f}",
        *(
            f"{format_number(own.get(n, held_out=False), '.4f', missing='—')} / "
            f"{format_number(own.get(n), '.4f', missing='—')}"
            for n in compiled
        ),
    ]
