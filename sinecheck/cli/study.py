"""``sinecheck study``: the error study — initializers × batch sizes × seeds, sweeps, explanation, claims."""

from __future__ import annotations

import argparse
import dataclasses

from sinecheck import options
from sinecheck.cli._common import (
    Progress,
    add_workers_option,
    int_at_least,
    int_at_least_two,
    prepare_outputs,
    quiet_tensorflow,
)
from sinecheck.study.analysis import (
    Analysis,
    StudyPlan,
    decomposition_table,
    default_plan,
    run_analysis,
    study_table,
    write_study_outputs,
)
from sinecheck.study.claims import DEFAULT_CAP, LOOKS, render_claims
from sinecheck.study.explain import render_explanation
from sinecheck.study.grid import DEFAULT_BATCH_SIZES, DEFAULT_INITIALIZERS, Axis, split_values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    options.add_preset_option(
        p.add_argument,
        repeatable=False,
        default="keras-default",
        help="base config of the grid (default keras-default; the sweeps use tf-explicit)",
    )
    p.add_argument("--seeds", type=int_at_least_two, default=10, metavar="N", help="seeds per cell (default 10)")
    options.add_epochs_option(p.add_argument, help="epochs per run (default: the preset's, 100)")
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
    add_claims_cap_option(p)
    options.add_engine_option(
        p.add_argument, default="fused", help="training engine (default fused: bitwise equal to Keras fit, ~35× faster)"
    )
    add_workers_option(p, help="processes to run cells in (default 2; 1 = in this process)")
    p.add_argument("--scheduler", metavar="ADDR", help="a Dask scheduler address (tcp://host:port) to run cells on")
    p.add_argument(
        "--out",
        default="study",
        metavar="DIR",
        help="directory for runs, tables and figures (default: study); rerunning resumes",
    )
    p.add_argument("--json", metavar="PATH", help="also write statistics, explanation and claims as JSON")


def claims_cap(text: str) -> int:
    """An integer >= 3: the most seeds a sequential claim may use (a bootstrap needs a few)."""
    return int_at_least(3, text)


def add_claims_cap_option(parser: argparse.ArgumentParser) -> None:
    """``--claims-cap N``: the seed cap of the sequential claims (shared by ``study`` and ``report``)."""
    parser.add_argument(
        "--claims-cap",
        type=claims_cap,
        default=DEFAULT_CAP,
        metavar="N",
        help=f"most seeds a claim may add before it is called inconclusive (default {DEFAULT_CAP}; looks at "
        f"{', '.join(map(str, LOOKS))} below it)",
    )


def run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    prepare_outputs(args)
    quiet_tensorflow()
    with Progress() as progress:
        analysis = run_analysis(plan, args.out, workers=args.workers, scheduler=args.scheduler, progress=progress.stage)
    path = write_study_outputs(analysis, args.out, json_path=args.json)
    print_analysis(analysis, seeds=args.seeds)
    print(
        f"\n{analysis.runs} trainings in {analysis.elapsed_s:.0f} s; wrote {path} (+ figures, study.json)"
        + (f" and {args.json}" if args.json else "")
    )
    return 0


def _plan(args: argparse.Namespace) -> StudyPlan:
    """The study the options ask for: the grid (initializers × batch sizes, or the --axis list), sweeps, explanation
    and claims."""
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
    return dataclasses.replace(
        plan,
        explain_pair=None if args.no_explain else plan.explain_pair,
        claims=not args.no_claims,
        claims_cap=args.claims_cap,
    )


def print_analysis(analysis: Analysis, *, seeds: int) -> None:
    """The grid and sweep tables, the variance decomposition, the explanation and the claims."""
    print(f"{analysis.grid.spec.name}: held-out MSE over {seeds} seeds\n")
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
