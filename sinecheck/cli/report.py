"""``sinecheck report``: the reference experiments and the error study, as Markdown with plots."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from pathlib import Path

from sinecheck import options
from sinecheck._text import format_number
from sinecheck.cli._common import Progress, add_workers_option, int_at_least_two, prepare_outputs, quiet_tensorflow
from sinecheck.cli.study import add_claims_cap_option
from sinecheck.core.presets import PRESETS, get_preset
from sinecheck.engines.registry import train
from sinecheck.study.analysis import Analysis, default_plan, run_analysis
from sinecheck.study.claims import render_claims
from sinecheck.study.reference import ExperimentRuns, run_reference
from sinecheck.study.report import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default: report)")
    p.add_argument(
        "--seeds",
        type=options.positive_int,
        default=3,
        metavar="N",
        help="seeds per reference configuration (default 3)",
    )
    # type=int: TrainConfig checks the range, and its message names it ([1, 100000])
    options.add_epochs_option(
        p.add_argument, type=int, help="override the number of epochs (default: each preset's, 100)"
    )
    p.add_argument(
        "--study-seeds", type=int_at_least_two, default=10, metavar="N", help="seeds per study cell (default 10)"
    )
    p.add_argument("--no-study", action="store_true", help="only the reference experiments")
    add_claims_cap_option(p)
    add_workers_option(p, help="processes for the study (default 2)")


def run(args: argparse.Namespace) -> int:
    for name in PRESETS:  # validate overrides before any training starts
        get_preset(name).with_overrides(epochs=args.epochs)
    prepare_outputs(args)
    quiet_tensorflow()
    start = time.perf_counter()
    with Progress() as progress:
        experiments = run_reference(
            seeds=range(args.seeds),
            epochs=args.epochs,
            progress=progress.step,
            train=functools.partial(train, progress=progress.epoch),
        )
        analysis = None
        if not args.no_study:
            plan = dataclasses.replace(
                default_plan(seeds=args.study_seeds, epochs=args.epochs), claims_cap=args.claims_cap
            )
            analysis = run_analysis(plan, Path(args.out) / "study", workers=args.workers, progress=progress.stage)
    path = write_report(experiments, Path(args.out), elapsed_s=time.perf_counter() - start, analysis=analysis)
    _print_summary(experiments, analysis)
    print(f"wrote {path} (+ figures, report.json) in {time.perf_counter() - start:.0f} s")
    return 0


def _print_summary(experiments: list[ExperimentRuns], analysis: Analysis | None) -> None:
    """Held-out MSE per seed of every reference run; the study's size, explanation and claims."""
    for e in experiments:
        mse = [r.metrics.mse_test for r in e.runs]
        print(f"{e.preset:14} {e.label:9} held-out MSE per seed: {', '.join(format_number(m, '.4f') for m in mse)}")
    if analysis is None:
        return
    print(f"\nstudy: {analysis.runs} trainings in {analysis.elapsed_s:.0f} s")
    if analysis.explanation is not None:
        print(analysis.explanation.sentence())
    print(render_claims(analysis.claims))
