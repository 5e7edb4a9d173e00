"""``sinecheck explain``: why two configs predict different waves — Shapley attribution over seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from sinecheck import options
from sinecheck._io import atomic_write
from sinecheck.cli._common import Progress, int_at_least_two, load_side, prepare_outputs, quiet_tensorflow, write_json
from sinecheck.study.explain import explain, render_explanation
from sinecheck.study.figures import plot_explain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("a", metavar="A", help="a preset name (its first config) or a TrainConfig JSON file")
    p.add_argument("b", metavar="B", help="the same, for the other side")
    p.add_argument(
        "--seeds", type=int_at_least_two, default=10, metavar="N", help="seeds per subset of swaps (default 10)"
    )
    options.add_epochs_option(p.add_argument, help="epochs per run (default: A's)")
    options.add_engine_option(p.add_argument, default="fused", help="training engine (default fused)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write explain.png (the attribution chart) there")
    p.add_argument("--json", metavar="PATH", help="write the attribution, per-seed values and noise floor as JSON")


def run(args: argparse.Namespace) -> int:
    (a_name, a), (b_name, b) = load_side(args.a, "A"), load_side(args.b, "B")
    if args.epochs is not None:
        a, b = a.replace(epochs=args.epochs), b.replace(epochs=args.epochs)
    prepare_outputs(args)
    quiet_tensorflow()
    with Progress() as progress:
        e = explain(
            a, b, seeds=range(args.seeds), engine=args.engine, a_name=a_name, b_name=b_name, progress=progress.step
        )
    print(render_explanation(e))
    if args.out:
        print(f"wrote {atomic_write(Path(args.out) / 'explain.png', plot_explain(e))}")
    if args.json:
        write_json(args.json, e.to_dict())
        print(f"wrote {args.json}")
    return 0
