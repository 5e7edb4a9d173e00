"""``sinecheck presets``: the reference experiments, as a list or as full JSON configs."""

from __future__ import annotations

import argparse
import json

from sinecheck.core.presets import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the full configs as JSON")


def run(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: [c.to_dict() for c in p.configs] for name, p in PRESETS.items()}, indent=2))
        return 0
    for name, preset in PRESETS.items():
        ids = ", ".join(f"{label}: {c.config_id}" for c, label in zip(preset.configs, preset.labels, strict=True))
        print(f"{name:14} {preset.summary}\n{'':14} config ids: {ids}")
    return 0
