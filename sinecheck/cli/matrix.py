"""``sinecheck matrix``: which factors change the bits — factor × preset → verdict, in isolated processes."""

from __future__ import annotations

import argparse

from sinecheck import options
from sinecheck._io import atomic_write
from sinecheck.checks.factors import FACTORS, Factor, select_factors
from sinecheck.checks.matrix import DEFAULT_EPOCHS, Locate, Matrix, Row, matrix_rows, matrix_workers, run_matrix
from sinecheck.cli._common import Progress, paired_specs, prepare_outputs, write_json
from sinecheck.core.compare import Tolerance
from sinecheck.core.environment import format_fingerprint
from sinecheck.core.presets import PRESETS
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import ConfigError
from sinecheck.isolation.pool import WorkerPool, validate_isolated


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    options.add_preset_option(
        p.add_argument, help=f"rows from this preset (repeatable; default all: {', '.join(PRESETS)})"
    )
    options.add_factor_option(p.add_argument, help="factors to run (repeatable; default all; see --list-factors)")
    p.add_argument("--list-factors", action="store_true", help="list the factors and what each compares, then exit")
    # type=int: TrainConfig checks the range, and its message names it ([1, 100000])
    options.add_epochs_option(
        p.add_argument,
        type=int,
        help="epochs per run (default 5: identity shows after a few steps; drift grows with epochs)",
    )
    p.add_argument("--no-small", action="store_true", help="leave out the small Dense(32) row")
    p.add_argument("--parallel", type=int, default=2, metavar="N", help="worker processes at once (default 2)")
    options.add_max_ulp_option(p.add_argument, help="ULP distance still graded ULP (default 16)")
    p.add_argument("--json", metavar="PATH", help="write every cell (verdict, max |Δ|, max ULP, digests) as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the table and findings as Markdown")
    options.add_model_options(p.add_argument, what="add a row for this model (without --preset: only the model rows)")
    p.add_argument(
        "--locate",
        default=Locate.BROKEN.value,
        choices=[where.value for where in Locate],
        help="replay cells step by step to print where the two runs first parted: cells that break "
        "their expectation (default), every non-identical cell (slower), or none",
    )


def run(args: argparse.Namespace) -> int:
    if args.list_factors:
        print(list_factors())
        return 0
    factors = select_factors(args.factor)
    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    if args.parallel < 1:
        raise ConfigError(f"--parallel: invalid value {args.parallel}; allowed: an integer >= 1")
    tolerance = Tolerance() if args.max_ulp is None else Tolerance(max_ulp=args.max_ulp)
    prepare_outputs(args)
    models = paired_specs(args)
    rows = _rows(args, epochs, models)  # a bad value (e.g. --epochs 0) fails here, before any process starts
    with WorkerPool() as pool:
        # The default worker imports each model spec and checks it on its data (this process never imports
        # TensorFlow): a bad spec is one line before anything trains, after one import, not after all of them.  One
        # more worker imports meanwhile (both cores busy); the rest start once the specs are good.
        workers = matrix_workers(factors)
        pool.prestart(workers[:2])
        validate_isolated(pool, models)
        pool.prestart(workers)
        with Progress() as progress:
            matrix = run_matrix(
                rows,
                factors,
                pool=pool,
                parallel=args.parallel,
                tolerance=tolerance,
                progress=progress.step,
                locate=Locate(args.locate),
            )
    print(matrix.table())
    _print_details(matrix, rows, factors, epochs)
    if args.json:
        write_json(args.json, matrix.to_dict())
        print(f"wrote {args.json}")
    if args.markdown:
        atomic_write(args.markdown, render_markdown(matrix, epochs))
        print(f"wrote {args.markdown}")
    return 1 if matrix.violations() else 0


def list_factors() -> str:
    """One line per factor: its name, what it is expected to do, the question it answers, what it needs."""
    lines = []
    for f in FACTORS:
        needs = f" (needs {', '.join(f.requires)})" if f.requires else ""
        lines.append(f"{f.name:16} {f.expect:14} {f.question}{needs}")
    return "\n".join(lines)


def _rows(args: argparse.Namespace, epochs: int, models: list[ModelSpec]) -> list[Row]:
    """The matrix rows: the chosen presets (all by default) and the small row, plus one row per --model; with
    --model and no --preset, only the model rows."""
    only_models = bool(models) and not args.preset
    return matrix_rows(
        args.preset or ([] if only_models else list(PRESETS)),
        small=not args.no_small and not only_models,
        epochs=epochs,
        models=models,
    )


def _print_details(matrix: Matrix, rows: list[Row], factors: list[Factor], epochs: int) -> None:
    """What follows the table: where located cells parted, findings, notes, the tally and each broken cell."""
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
        where = cell.first_divergence
        print(
            f"BROKEN: {cell.factor.name} / {cell.row}: expected {cell.factor.expect}, got {cell.verdict}\n"
            f"{cell.report}" + (f"\n{where}" if where else "")
        )


def render_markdown(matrix: Matrix, epochs: int) -> str:
    """The matrix as Markdown: table, findings, skipped factors, environment."""
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
