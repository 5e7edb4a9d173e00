"""The ``sinecheck`` command: presets, env, run, matrix, bench, study, explain, baseline, report.

Bad arguments exit with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sinecheck.checks.baseline import STRICT_LEVELS
from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig, changed_fields
from sinecheck.core.presets import PRESETS, get_preset
from sinecheck.errors import ConfigError
from sinecheck.study.grid import DEFAULT_BATCH_SIZES, DEFAULT_INITIALIZERS


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``sinecheck run: error: ... (see sinecheck run --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seed(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer or 'none'") from None


def _add_model_options(p: argparse.ArgumentParser, what: str, *, repeatable: bool = True) -> None:
    action = "append" if repeatable else "store"
    again = " (repeatable)" if repeatable else ""
    p.add_argument(
        "--model",
        action=action,
        default=None,
        metavar="SPEC",
        help=f"package.module:factory or path/to/file.py:factory returning a Keras model: {what}{again}",
    )
    p.add_argument(
        "--data",
        action=action,
        default=None,
        metavar="SPEC",
        help="with --model: a function returning (x, y) [, x_held_out, y_held_out] (default: the sine "
        "data); one for every model, or one per model",
    )


def _add_fallback_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fallback-engine",
        default=None,
        metavar="NAME",
        help="when --engine cannot train a --model (fused and numpy build Dense stacks only), train with "
        "this engine instead (e.g. keras) rather than refusing",
    )


def _model_specs(args: argparse.Namespace) -> list[Any]:
    """The --model/--data options as checked ModelSpecs (each callable imported: a bad spec fails up front)."""
    from sinecheck.core.specs import load_specs

    models = args.model if isinstance(args.model, list) else [args.model] if args.model else []
    data = args.data if isinstance(args.data, list) else [args.data] if args.data else []
    return load_specs(models, data)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sinecheck", description="Which differences between runs of a Keras sine model are real?")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("presets", help="list the reference experiments")
    p.add_argument("--json", action="store_true", help="print the full configs as JSON")

    p = sub.add_parser("env", help="print the environment fingerprint (versions, backend, oneDNN, CPU, threads)")
    p.add_argument("--json", action="store_true", help="print it as JSON")

    p = sub.add_parser("run", help="train a preset (or your --model) and print its digests, error and time")
    p.add_argument("preset", metavar="PRESET", nargs="?", help=f"one of: {', '.join(PRESETS)} (or give --model)")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--batch-size", type=int, help="override the batch size (on every config of the preset)")
    p.add_argument("--seed", type=_seed, default=argparse.SUPPRESS, help="training seed, or 'none' for unseeded")
    p.add_argument("--initializer", help='kernel initializer, e.g. he_normal or "truncated_normal(stddev=0.02)"')
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None, help="shuffle each epoch")
    p.add_argument("--json", metavar="PATH", help="also write the results (config, digests, metrics) as JSON")
    p.add_argument(
        "--engine",
        default="keras",
        metavar="NAME",
        help="keras (Keras fit, the reference); fused (the same training in one TF graph, bitwise "
        "equal to fit); fused-xla (that graph under XLA, equal within rounding); numpy or "
        "numpy-float64 (an independent NumPy implementation)",
    )
    _add_model_options(p, "train this model instead of a preset")
    _add_fallback_option(p)

    p = sub.add_parser("bench", help="per-epoch time of every engine vs Keras fit, measured in one run")
    p.add_argument("--quick", action="store_true", help="keras-default only, fewer rounds (~1 min)")
    p.add_argument(
        "--backends",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time fit on each Keras 3 backend (tensorflow, jax, torch) in its own process "
        "(default: on unless --quick)",
    )
    p.add_argument("--rounds", type=int, default=None, metavar="N", help="timed calls per engine (default 5; 3 quick)")
    p.add_argument(
        "--epochs-per-call",
        type=int,
        default=20,
        metavar="N",
        help="epochs each timed call trains (default 20: spreads every engine's per-call set-up)",
    )
    p.add_argument("--json", metavar="PATH", help="also write every timing, the ratios and the fingerprint as JSON")
    _add_model_options(p, "benchmark this model instead of the presets (engines that cannot train it say so)")

    p = sub.add_parser("matrix", help="which factors change the bits: factor × preset → verdict, in isolated processes")
    p.add_argument(
        "--preset",
        action="append",
        choices=list(PRESETS),
        metavar="PRESET",
        help=f"rows from this preset (repeatable; default all: {', '.join(PRESETS)})",
    )
    p.add_argument(
        "--factor",
        action="append",
        metavar="FACTOR",
        help="factors to run (repeatable; default all; see --list-factors)",
    )
    p.add_argument("--list-factors", action="store_true", help="list the factors and what each compares, then exit")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="epochs per run (default 5: identity shows after a few steps; drift grows with epochs)",
    )
    p.add_argument("--no-small", action="store_true", help="leave out the small Dense(32) row")
    p.add_argument("--parallel", type=int, default=2, metavar="N", help="worker processes at once (default 2)")
    p.add_argument("--max-ulp", type=int, default=None, metavar="K", help="ULP distance still graded ULP (default 16)")
    p.add_argument("--json", metavar="PATH", help="write every cell (verdict, max |Δ|, max ULP, digests) as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the table and findings as Markdown")
    _add_model_options(p, "add a row for this model (without --preset: only the model rows)")
    p.add_argument(
        "--locate",
        default="broken",
        choices=("broken", "all", "none"),
        help="replay cells step by step to print where the two runs first parted: cells that break "
        "their expectation (default), every non-identical cell (slower), or none",
    )

    p = sub.add_parser("study", help="error study: initializers × batch sizes × seeds, sweeps, explanation, claims")
    p.add_argument(
        "--preset",
        default="keras-default",
        choices=list(PRESETS),
        metavar="PRESET",
        help="base config of the grid (default keras-default; the sweeps use tf-explicit)",
    )
    p.add_argument("--seeds", type=int, default=10, metavar="N", help="seeds per cell (default 10)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs per run (default: the preset's, 100)")
    p.add_argument(
        "--initializers",
        metavar="LIST",
        help=f"comma-separated kernel initializers (default: {', '.join(DEFAULT_INITIALIZERS)})",
    )
    p.add_argument(
        "--batch-sizes",
        metavar="LIST",
        help=f"comma-separated batch sizes, 'full' = one batch (default: {', '.join(DEFAULT_BATCH_SIZES)})",
    )
    p.add_argument(
        "--axis",
        action="append",
        metavar="NAME=V1,V2",
        help="a grid axis instead of initializer × batch size (repeatable; any TrainConfig field or "
        "initializer, batch_size, learning_rate, stddev, optimizer, units)",
    )
    p.add_argument("--no-sweeps", action="store_true", help="skip the stddev, learning-rate and optimizer sweeps")
    p.add_argument("--no-explain", action="store_true", help="skip explaining keras-default vs tf-explicit")
    p.add_argument("--no-claims", action="store_true", help="skip judging the claims")
    p.add_argument(
        "--engine",
        default="fused",
        metavar="NAME",
        help="training engine (default fused: bitwise equal to Keras fit, ~35× faster)",
    )
    p.add_argument(
        "--workers", type=int, default=2, metavar="N", help="processes to run cells in (default 2; 1 = in this process)"
    )
    p.add_argument("--scheduler", metavar="ADDR", help="a Dask scheduler address (tcp://host:port) to run cells on")
    p.add_argument(
        "--out",
        default="study",
        metavar="DIR",
        help="directory for runs, tables and figures (default: study); rerunning resumes",
    )
    p.add_argument("--json", metavar="PATH", help="also write statistics, explanation and claims as JSON")

    p = sub.add_parser("explain", help="why two configs predict different waves: Shapley attribution over seeds")
    p.add_argument("a", metavar="A", help="a preset name (its first config) or a TrainConfig JSON file")
    p.add_argument("b", metavar="B", help="the same, for the other side")
    p.add_argument("--seeds", type=int, default=10, metavar="N", help="seeds per subset of swaps (default 10)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs per run (default: A's)")
    p.add_argument("--engine", default="fused", metavar="NAME", help="training engine (default fused)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write explain.png (the attribution chart) there")
    p.add_argument("--json", metavar="PATH", help="write the attribution, per-seed values and noise floor as JSON")

    p = sub.add_parser("diverge", help="where two runs part: first (epoch, batch) and stage, step by step")
    p.add_argument(
        "a",
        metavar="A",
        nargs="?",
        help=f"a preset ({', '.join(PRESETS)}: its first config) or a TrainConfig JSON file (or give --model)",
    )
    p.add_argument("b", metavar="B", nargs="?", help="the other side, the same way (default: A again)")
    p.add_argument(
        "--factor",
        metavar="NAME",
        help="compare the two sides of this matrix factor on A (e.g. onednn-off, xla, tf-keras, "
        "shuffle-off; `sinecheck matrix --list-factors`) instead of A with B",
    )
    for side in ("a", "b"):
        p.add_argument(
            f"--env-{side}",
            action="append",
            default=[],
            metavar="VAR=VALUE",
            help=f"an environment variable for side {side.upper()}'s process (repeatable), e.g. "
            "TF_ENABLE_ONEDNN_OPTS=0",
        )
        p.add_argument(
            f"--python-{side}",
            metavar="PATH",
            help=f"run side {side.upper()} with this interpreter (a venv with other TF/Keras versions "
            "and sinecheck installed, e.g. one of .nox/)",
        )
    _add_model_options(p, "A is this model (its default config)", repeatable=False)
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs per run (default 5)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write diverge.png (max |Δw| per step) there")
    p.add_argument("--json", metavar="PATH", help="write the divergence and the per-step growth as JSON")

    p = sub.add_parser("baseline", help="golden baselines per environment: record, check, list, diff")
    bsub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    bsub.required = True
    for action, text in (
        ("record", "train the baseline set here and store it under this environment's key"),
        ("check", "train the baseline set here and compare with the stored baselines"),
        ("list", "list the stored baselines"),
        ("diff", "compare two stored baselines (e.g. old and new TF/Keras)"),
    ):
        q = bsub.add_parser(action, help=text)
        if action == "diff":
            q.add_argument("old", metavar="OLD", help="a baseline JSON file, or its name in --dir")
            q.add_argument("new", metavar="NEW", help="the same, for the newer environment")
        q.add_argument(
            "--dir", default="tests/baselines", metavar="PATH", help="baseline directory (default: tests/baselines)"
        )
        if action in ("check", "diff"):
            q.add_argument(
                "--strict",
                default="material",
                choices=STRICT_LEVELS,
                help="what fails (exit 1): any bit, worse than ULP, or a material change (default)",
            )
        if action == "record":
            q.add_argument("--force", action="store_true", help="replace this environment's baseline if it exists")
        if action in ("record", "check"):
            q.add_argument(
                "--short-only",
                action="store_true",
                help="only the short runs (not the presets' full epochs): a quick look",
            )
        if action != "list":
            q.add_argument("--json", metavar="PATH", help="also write the result as JSON")
        if action != "diff":
            _add_model_options(
                q,
                "this model's baselines (in a subdirectory of --dir named after the spec) instead of the presets'",
                repeatable=False,
            )

    p = sub.add_parser("report", help="the reference experiments and the error study, as Markdown with plots")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default: report)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per reference configuration (default 3)")
    p.add_argument("--epochs", type=int, help="override the number of epochs (default: each preset's, 100)")
    p.add_argument("--study-seeds", type=int, default=10, metavar="N", help="seeds per study cell (default 10)")
    p.add_argument("--no-study", action="store_true", help="only the reference experiments")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="processes for the study (default 2)")
    return parser


class _Progress:
    """Progress on stderr: a live line on a terminal, one line per step otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()
        self.label = ""

    def step(self, index: int, total: int, label: str) -> None:
        self.label = f"[{index}/{total}] {label}"
        elapsed = time.perf_counter() - self.start
        if self.tty:
            sys.stderr.write(f"\r\033[K{self.label}  ({elapsed:.0f} s)")
        else:
            sys.stderr.write(f"{self.label}  ({elapsed:.0f} s elapsed)\n")
        sys.stderr.flush()

    def epoch(self, done: int, total: int) -> None:
        if self.tty and (done % 5 == 0 or done == total):
            sys.stderr.write(f"\r\033[K{self.label}: epoch {done}/{total}")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_presets(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: [c.to_dict() for c in p.configs] for name, p in PRESETS.items()}, indent=2))
        return 0
    for name, preset in PRESETS.items():
        ids = ", ".join(f"{label}: {c.config_id}" for c, label in zip(preset.configs, preset.labels, strict=True))
        print(f"{name:14} {preset.summary}\n{'':14} config ids: {ids}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from sinecheck.core.environment import fingerprint, format_fingerprint

    info = fingerprint(probe_tensorflow=True)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:{width}}  {' '.join(value) if isinstance(value, list) else value}")
        print(f"\n{format_fingerprint(info)}")
    return 0


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "nan" if value is None else format(value, spec)


def _prepare_output(option: str, path: Path, *, is_dir: bool) -> None:
    """Create the directory `path` (or its parent) now, so a bad output path fails before any training."""
    if not is_dir and path.is_dir():
        raise ConfigError(f"{option}: invalid value {str(path)!r}; allowed: a file path (this is a directory)")
    try:
        (path if is_dir else path.parent).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{option}: cannot write to {str(path)!r} ({reason}); allowed: a writable path") from None


def _cmd_run(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size, "shuffle": args.shuffle}
    models = _model_specs(args)
    if args.preset is None and not models:
        raise ConfigError("PRESET: missing; allowed: one of " + ", ".join(PRESETS) + ", or --model SPEC")
    if args.preset is not None and models:
        raise ConfigError(f"PRESET: {args.preset!r} given with --model; allowed: one of them")
    if args.initializer is not None:
        if models:
            raise ConfigError("--initializer: not with --model (the model's factory builds its own layers)")
        changes["kernel_initializer"] = InitializerSpec.parse(args.initializer)
    if models:
        from sinecheck.core.presets import Preset

        base = Preset("model", "your model", tuple(m.config() for m in models), tuple(m.label for m in models))
        preset = base.with_overrides(**changes)
    else:
        preset = get_preset(args.preset).with_overrides(**changes)
    configs = list(preset.configs)
    if args.lr is not None:
        configs = [c.replace(optimizer=OptimizerSpec(c.optimizer.name, args.lr, c.optimizer.params)) for c in configs]
    if "seed" in args:
        configs = [c.replace(seed=args.seed) for c in configs]
    if args.json:
        _prepare_output("--json", Path(args.json), is_dir=False)
    from sinecheck.engines.registry import ENGINES, train

    for option, name in (("--engine", args.engine), ("--fallback-engine", args.fallback_engine)):
        if name is not None and name not in ENGINES:
            raise ConfigError(f"{option}: invalid value {name!r}; allowed: {', '.join(ENGINES)}")
    if models and args.fallback_engine is None:
        from sinecheck.engines.base import refuse_custom

        refuse_custom(configs[0], args.engine)  # before any training
    _quiet_tensorflow()
    progress = _Progress()
    results = []
    for i, (cfg, label) in enumerate(zip(configs, preset.labels, strict=True), 1):
        progress.step(i, len(configs), f"{preset.name} {label} ({cfg.config_id})")
        results.append(train(cfg, engine=args.engine, progress=progress.epoch, fallback=args.fallback_engine))
    progress.finish()
    for r in results:
        if "fallback_from" in r.options:
            print(
                f"engine {r.options['fallback_from']} cannot train {r.config.model}; trained with {r.engine} "
                "(--fallback-engine)"
            )
    rows = [
        [
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
        ]
    ]
    for label, r in zip(preset.labels, results, strict=True):
        rows.append(
            [
                f"{preset.name} {label}" + (" DIVERGED" if r.diverged else ""),
                r.config.config_id,
                r.digests["initial_weights"][:16],
                r.digests["final_weights"][:16],
                r.digests["predictions"][:16],
                _fmt(r.metrics["mse_train"], ".5f"),
                _fmt(r.metrics["mse_test"], ".5f"),
                _fmt(r.metrics["max_err_test"], ".4f"),
                f"{r.timings['fit_s']:.2f}",
                f"{r.timings['epoch_ms_median']:.1f}",
            ]
        )
    print(_table(rows))
    print(f"\n{results[0].config.describe()}")
    if args.json:
        from sinecheck._io import atomic_write

        payload = [r.to_dict() for r in results]
        atomic_write(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _positive(option: str, value: int | None, low: int = 1) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{option}: invalid value {value}; allowed: an integer >= {low}")


def _study_progress(progress: _Progress) -> Any:
    def report(stage: str, done: int, total: int, elapsed: float, eta: float | None) -> None:
        eta_text = f", ETA {eta:.0f} s" if eta is not None else ""
        progress.step(done, total, f"{stage}{eta_text}") if total else progress.step(0, 0, stage)

    return report


def _cmd_study(args: argparse.Namespace) -> int:
    from sinecheck.study.analysis import default_plan, run_analysis, write_study_outputs
    from sinecheck.study.grid import Axis, split_values

    _positive("--seeds", args.seeds, 2)
    _positive("--epochs", args.epochs)
    _positive("--workers", args.workers)
    plan = default_plan(
        preset=args.preset,
        seeds=args.seeds,
        epochs=args.epochs,
        initializers=split_values(args.initializers) if args.initializers else DEFAULT_INITIALIZERS,
        batch_sizes=split_values(args.batch_sizes) if args.batch_sizes else DEFAULT_BATCH_SIZES,
        axes=[Axis.parse(a) for a in args.axis or []],
        sweeps=not args.no_sweeps,
        engine=args.engine,
    )
    if args.no_explain:
        plan.explain_pair = None
    plan.claims = not args.no_claims
    _prepare_output("--out", Path(args.out), is_dir=True)
    if args.json:
        _prepare_output("--json", Path(args.json), is_dir=False)
    _quiet_tensorflow()
    progress = _Progress()
    analysis = run_analysis(
        plan, args.out, workers=args.workers, scheduler=args.scheduler, progress=_study_progress(progress)
    )
    progress.finish()
    path = write_study_outputs(analysis, args.out, json_path=args.json)
    from sinecheck.study.analysis import decomposition_table, study_table
    from sinecheck.study.claims import render_claims
    from sinecheck.study.explain import render_explanation

    print(f"{analysis.grid.spec.name}: held-out MSE over {args.seeds} seeds\n")
    print(study_table(analysis.grid))
    print()
    print(decomposition_table(analysis.grid))
    for sweep in analysis.sweeps:
        print(f"\n{sweep.spec.name}\n")
        print(study_table(sweep))
    if analysis.explanation is not None:
        print()
        print(render_explanation(analysis.explanation))
    if analysis.claims:
        print()
        print(render_claims(analysis.claims))
    print(
        f"\n{analysis.runs} trainings in {analysis.elapsed_s:.0f} s; wrote {path} (+ figures, study.json)"
        + (f" and {args.json}" if args.json else "")
    )
    return 0


def _load_side(text: str, option: str) -> tuple[str, TrainConfig]:
    """A preset name (its first config) or a TrainConfig JSON file."""
    if text in PRESETS:
        return text, get_preset(text).configs[0]
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        try:
            return path.stem, TrainConfig.from_json(path.read_text())
        except OSError as exc:
            raise ConfigError(
                f"{option}: cannot read {text!r} ({exc.strerror}); allowed: a preset name or a TrainConfig JSON file"
            ) from None
    raise ConfigError(f"{option}: invalid value {text!r}; allowed: {', '.join(PRESETS)} or a TrainConfig JSON file")


def _cmd_explain(args: argparse.Namespace) -> int:
    from sinecheck.study.explain import explain, render_explanation

    _positive("--seeds", args.seeds, 2)
    _positive("--epochs", args.epochs)
    (a_name, a), (b_name, b) = _load_side(args.a, "A"), _load_side(args.b, "B")
    if args.epochs is not None:
        a, b = a.replace(epochs=args.epochs), b.replace(epochs=args.epochs)
    from sinecheck.engines.registry import ENGINES

    if args.engine not in ENGINES:
        raise ConfigError(f"--engine: invalid value {args.engine!r}; allowed: {', '.join(ENGINES)}")
    if args.out:
        _prepare_output("--out", Path(args.out), is_dir=True)
    if args.json:
        _prepare_output("--json", Path(args.json), is_dir=False)
    _quiet_tensorflow()
    progress = _Progress()
    e = explain(a, b, seeds=range(args.seeds), engine=args.engine, a_name=a_name, b_name=b_name, progress=progress.step)
    progress.finish()
    print(render_explanation(e))
    from sinecheck._io import atomic_write

    if args.out:
        from sinecheck.study.figures import plot_explain

        print(f"wrote {atomic_write(Path(args.out) / 'explain.png', plot_explain(e))}")
    if args.json:
        atomic_write(args.json, json.dumps(e.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _side_environment(side: str, assignments: list[str], python: str | None) -> Any:
    from sinecheck.isolation.environment import CONTROLLED_VARS, Environment

    env = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or name not in CONTROLLED_VARS:
            raise ConfigError(
                f"--env-{side}: invalid value {text!r}; allowed: VAR=VALUE with VAR one of {', '.join(CONTROLLED_VARS)}"
            )
        env[name] = value
    if python is not None and not Path(python).is_file():
        raise ConfigError(f"--python-{side}: invalid value {python!r}; allowed: the path of a Python interpreter")
    return Environment(side, tuple(env.items()), python=python)


def _cmd_diverge(args: argparse.Namespace) -> int:
    _positive("--epochs", args.epochs)
    (model,) = _model_specs(args) or [None]
    if model is not None and args.a is not None and args.b is not None:
        raise ConfigError("--model: given with A and B; allowed: --model [B], or A [B]")
    if model is not None:
        a_name, a = model.label, model.config()
        b_text = args.a or args.b
    elif args.a is None:
        raise ConfigError("A: missing; allowed: a preset name, a TrainConfig JSON file, or --model SPEC")
    else:
        (a_name, a), b_text = _load_side(args.a, "A"), args.b
    a = a.replace(epochs=args.epochs or 5)
    env_a = _side_environment("a", args.env_a, args.python_a)
    env_b = _side_environment("b", args.env_b, args.python_b)
    factor = None
    if args.factor is not None:
        from sinecheck.checks.factors import factor_by_name

        factor = factor_by_name(args.factor)  # an unknown factor fails before any training
        if b_text is not None or env_a.env or env_b.env or env_a.python or env_b.python:
            raise ConfigError(
                "--factor: given with B or --env-*/--python-*; allowed: the factor alone (it defines both sides)"
            )
        b_name, b = a_name, a
    elif b_text is None:
        b_name, b = a_name, a
    else:
        b_name, b = _load_side(b_text, "B")
        b = b.replace(epochs=a.epochs)
    for option, path, is_dir in (("--out", args.out, True), ("--json", args.json, False)):
        if path:
            _prepare_output(option, Path(path), is_dir=is_dir)
    _quiet_tensorflow()
    from sinecheck._io import atomic_write
    from sinecheck.checks.diverge import diverge_factor, diverge_pair
    from sinecheck.study.figures import plot_growth

    if factor is not None:
        _, _, divergence, elapsed = diverge_factor(a, factor.name)
        title = f"{a_name}: {factor.name}"
        print(f"{a_name} ({a.describe()}), factor {factor.name}: {factor.question}")
    else:
        _, _, divergence, elapsed = diverge_pair(a, b, env_a=env_a, env_b=env_b)
        title = f"{a_name} vs {b_name}"
        print(f"A: {a_name} ({a.describe()}) in {env_a.describe()}")
        print(f"B: {b_name} ({b.describe()}) in {env_b.describe()}, a second fresh process")
        differ = changed_fields(a, b)
        if differ:
            print(f"the configs differ in: {', '.join(differ)}")
    print(divergence.describe())
    growth = divergence.growth
    marks = [k for k in (0, 1, 9, 99, 999) if k < len(growth)] + ([len(growth) - 1] if len(growth) else [])
    if len(growth):
        print("max |Δw| after step " + ", ".join(f"{k + 1}: {growth[k]:.3g}" for k in dict.fromkeys(marks)))
    print(f"({len(growth)} steps traced in two worker processes, {elapsed:.0f} s)")
    if args.out:
        print(f"wrote {atomic_write(Path(args.out) / 'diverge.png', plot_growth(divergence, title=title))}")
    if args.json:
        payload = {
            "a": {"name": a_name, "config": a.to_dict()},
            "b": {"name": b_name, "config": b.to_dict()},
            "factor": None if factor is None else factor.name,
            **divergence.to_dict(),
        }
        if factor is None:
            payload["a"]["environment"], payload["b"]["environment"] = env_a.to_dict(), env_b.to_dict()
        atomic_write(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _resolve_baseline(text: str, directory: str) -> Path:
    path = Path(text)
    if path.exists() or path.suffix == ".json":
        return path
    return Path(directory) / f"{text}.json"


def _cmd_baseline(args: argparse.Namespace) -> int:
    from sinecheck._io import atomic_write
    from sinecheck.checks import baseline as bl

    record_hint = f"`sinecheck baseline record --dir {args.dir}`"
    if args.action != "diff":
        (model,) = _model_specs(args) or [None]
        if model is not None:
            record_hint = (
                record_hint[:-1] + f" --model {model.model}" + (f" --data {model.data}`" if model.data else "`")
            )
        args.dir = str(bl.subject_dir(args.dir, model))
    if args.action == "list":
        paths = bl.list_baselines(args.dir)
        if not paths:
            print(f"no baselines in {args.dir}; record one with {record_hint}")
            return 0
        for path in paths:
            b = bl.load_baseline(path, with_arrays=False)
            print(f"{path.name:70} {len(b.entries):3} entries  recorded {b.created}\n    {b.key.describe()}")
        return 0
    if args.json:
        _prepare_output("--json", Path(args.json), is_dir=False)
    if args.action == "diff":
        old = bl.load_baseline(_resolve_baseline(args.old, args.dir))
        new = bl.load_baseline(_resolve_baseline(args.new, args.dir))
        result = bl.diff(old, new)
        print(f"{old.key.describe()}  →  {new.key.describe()}\n")
        print(result.table())
        print(f"\n{result.summary()}")
        if args.json:
            atomic_write(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
        return 1 if result.failed(args.strict) else 0
    _quiet_tensorflow()
    key = bl.EnvKey.current()
    configs = bl.baseline_configs(full=not args.short_only, model=model)
    if args.action == "check":
        references = bl.select_references(key, args.dir)  # a corrupt file fails here, before any training
        if not references:
            print(
                f"no baseline for this environment ({key.describe()}) or an older version in {args.dir}; "
                f"record one with {record_hint}"
            )
            return 1
    else:
        _prepare_output("--dir", Path(args.dir), is_dir=True)  # an unwritable directory fails before training
    if args.action == "record" and not args.force and bl.baseline_paths(args.dir, key)[0].exists():
        raise ConfigError(
            f"--dir: {bl.baseline_paths(args.dir, key)[0]} exists for this environment; allowed: "
            "a new environment, or --force to replace it"
        )
    progress = _Progress()
    results = bl.run_baseline_set(configs, progress=progress.step)
    progress.finish()
    current = bl.make_baseline(results, key)
    if args.action == "record":
        path, replaced = bl.record(current, args.dir, update=args.force)
        print(
            f"{'replaced the baseline of ' + replaced.created if replaced else 'recorded'} {path} "
            f"({len(current.entries)} entries) for {key.describe()}"
        )
        if args.json:
            atomic_write(args.json, json.dumps(current.to_json(), indent=2) + "\n")
        return 0
    checks = bl.check(current.entries, key, args.dir)
    for result in checks:
        print(result.summary())
        print(result.table())
        print()
    failed = bl.failures(checks, args.strict)
    for result, bad in failed:
        print(f"FAILED ({args.strict}) vs {result.against.path}: {', '.join(d.name for d in bad)}")
    if args.json:
        atomic_write(
            args.json,
            json.dumps({"key": key.to_dict(), "strict": args.strict, "checks": [c.to_dict() for c in checks]}, indent=2)
            + "\n",
        )
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    _positive("--seeds", args.seeds)
    _positive("--study-seeds", args.study_seeds, 2)
    _positive("--workers", args.workers)
    for name in PRESETS:  # validate overrides before any training starts
        get_preset(name).with_overrides(epochs=args.epochs)
    _prepare_output("--out", Path(args.out), is_dir=True)
    _quiet_tensorflow()
    from sinecheck.study.reference import run_reference
    from sinecheck.study.report import write_report

    progress = _Progress()
    start = time.perf_counter()

    def train_with_progress(cfg: Any) -> Any:
        from sinecheck.engines.registry import train

        return train(cfg, progress=progress.epoch)

    experiments = run_reference(
        seeds=range(args.seeds), epochs=args.epochs, progress=progress.step, train=train_with_progress
    )
    analysis = None
    if not args.no_study:
        from sinecheck.study.analysis import default_plan, run_analysis

        plan = default_plan(seeds=args.study_seeds, epochs=args.epochs)
        analysis = run_analysis(
            plan, Path(args.out) / "study", workers=args.workers, progress=_study_progress(progress)
        )
    progress.finish()
    path = write_report(experiments, Path(args.out), elapsed_s=time.perf_counter() - start, analysis=analysis)
    for e in experiments:
        mse = [r.metrics["mse_test"] for r in e.runs]
        print(f"{e.preset:14} {e.label:9} held-out MSE per seed: {', '.join(_fmt(m, '.4f') for m in mse)}")
    if analysis is not None:
        from sinecheck.study.claims import render_claims

        print(f"\nstudy: {analysis.runs} trainings in {analysis.elapsed_s:.0f} s")
        if analysis.explanation is not None:
            print(analysis.explanation.sentence())
        print(render_claims(analysis.claims))
    print(f"wrote {path} (+ figures, report.json) in {time.perf_counter() - start:.0f} s")
    return 0


def _cmd_matrix(args: argparse.Namespace) -> int:
    from sinecheck.checks.factors import FACTORS, select_factors
    from sinecheck.checks.matrix import DEFAULT_EPOCHS, matrix_rows, run_matrix
    from sinecheck.core.compare import Tolerance

    if args.list_factors:
        for f in FACTORS:
            needs = f" (needs {', '.join(f.requires)})" if f.requires else ""
            print(f"{f.name:16} {f.expect:14} {f.question}{needs}")
        return 0
    factors = select_factors(args.factor)
    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    models = _model_specs(args)
    only_models = bool(models) and not args.preset
    rows = matrix_rows(
        args.preset or ([] if only_models else list(PRESETS)),
        small=not args.no_small and not only_models,
        epochs=epochs,
        models=models,
    )
    if args.parallel < 1:
        raise ConfigError(f"--parallel: invalid value {args.parallel}; allowed: an integer >= 1")
    tolerance = Tolerance() if args.max_ulp is None else Tolerance(max_ulp=args.max_ulp)
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path:
            _prepare_output(option, Path(path), is_dir=False)
    progress = _Progress()
    matrix = run_matrix(
        rows, factors, parallel=args.parallel, tolerance=tolerance, progress=progress.step, locate=args.locate
    )
    progress.finish()
    print(matrix.table())
    located = [c for c in matrix.cells if c.first_divergence and c.meets_expectation is not False]
    if located:
        print()
    for cell in located:
        print(f"{cell.factor.name} / {cell.row}: {cell.first_divergence}")
    for finding in matrix.findings:
        print(f"\nfinding: {finding.statement}")
    for note in matrix.notes():
        print(f"note: {note}")
    violations = matrix.violations()
    print(
        f"\n{len(matrix.cells)} cells, {len(rows)} rows × {len(factors)} factors, {epochs} epochs per run, "
        f"{matrix.elapsed_s:.0f} s; expectations broken: {len(violations)}"
    )
    for cell in violations:
        located = cell.first_divergence
        print(
            f"BROKEN: {cell.factor.name} / {cell.row}: expected {cell.factor.expect}, got {cell.verdict}\n"
            f"{cell.report}" + (f"\n{located}" if located else "")
        )
    from sinecheck._io import atomic_write

    if args.json:
        atomic_write(args.json, json.dumps(matrix.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.markdown:
        atomic_write(args.markdown, render_matrix_markdown(matrix, epochs))
        print(f"wrote {args.markdown}")
    return 1 if violations else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 5)
    for option, value in (("--rounds", rounds), ("--epochs-per-call", args.epochs_per_call)):
        if value < 1:
            raise ConfigError(f"{option}: invalid value {value}; allowed: an integer >= 1")
    if args.json:
        _prepare_output("--json", Path(args.json), is_dir=False)
    _quiet_tensorflow()
    from sinecheck.checks.bench import render_bench, run_bench, time_backend_fit
    from sinecheck.core.environment import fingerprint, format_fingerprint

    models = _model_specs(args)
    names = [] if models else ["keras-default"] if args.quick else list(PRESETS)
    cases = [(m.label, m.config()) for m in models]
    for name in names:
        preset = get_preset(name)
        cases += [
            (name if len(preset.configs) == 1 else f"{name} {label}", cfg)
            for cfg, label in zip(preset.configs, preset.labels, strict=True)
        ]
    progress = _Progress()
    steps = iter(range(1, 10_000))
    total = len(cases) * 4 + (0 if args.quick and not args.backends else 3)
    rows = run_bench(
        cases,
        epochs_per_call=args.epochs_per_call,
        rounds=rounds,
        progress=lambda label: progress.step(next(steps), total, label),
    )
    backends = []
    if args.backends or (args.backends is None and not args.quick):
        for backend in ("tensorflow", "jax", "torch"):
            progress.step(next(steps), total, f"keras-default: fit on the {backend} backend (own process)")
            backends.append(time_backend_fit(backend, cases[0][1], epochs_per_call=args.epochs_per_call, rounds=rounds))
    progress.finish()
    info = fingerprint(probe_tensorflow=True)
    print(render_bench(rows, backends=backends))
    print(
        f"\n{rounds} timed calls of {args.epochs_per_call} epochs per engine, after one untimed first call "
        f"(its time: 'first call'); × fit = ratio of medians, measured in this run.\n{format_fingerprint(info)}"
    )
    if args.json:
        from sinecheck._io import atomic_write

        payload = {
            "rows": [r.to_dict() for r in rows],
            "backends": [b.to_dict() for b in backends],
            "rounds": rounds,
            "epochs_per_call": args.epochs_per_call,
            "fingerprint": info,
        }
        atomic_write(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def render_matrix_markdown(matrix: Any, epochs: int) -> str:
    """The matrix as Markdown: table, findings, skipped factors, environment."""
    from sinecheck.core.environment import format_fingerprint

    lines = ["# sinecheck reproducibility matrix", ""]
    if matrix.fingerprint:
        lines += [f"Environment: {format_fingerprint(matrix.fingerprint)}.", ""]
    lines += [
        f"{epochs} epochs per run; {matrix.elapsed_s:.0f} s in all. Cells: `identical` = bitwise; "
        "`ulp K` = within K units in the last place; `close`/`divergent` with the greatest |Δ|.",
        "",
        matrix.table(markdown=True),
        "",
    ]
    lines += [f"- {f.statement}" for f in matrix.findings]
    lines += [f"- {n}" for n in matrix.notes()]
    return "\n".join(lines) + "\n"


_COMMANDS = {
    "presets": _cmd_presets,
    "env": _cmd_env,
    "run": _cmd_run,
    "matrix": _cmd_matrix,
    "bench": _cmd_bench,
    "study": _cmd_study,
    "explain": _cmd_explain,
    "diverge": _cmd_diverge,
    "baseline": _cmd_baseline,
    "report": _cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        status = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe surfaces here, not as "Exception ignored" at interpreter exit
        return status
    except ConfigError as exc:
        sys.stderr.write(f"sinecheck {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `sinecheck presets --json | head`: the reader left, not an error to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:  # send what is still buffered to /dev/null, so the flush at exit does not fail a second time
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)
        return 1
    except OSError as exc:
        sys.stderr.write(f"sinecheck {args.command}: error: {exc}\n")
        return 1
