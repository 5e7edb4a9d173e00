"""``sinecheck env``: the environment fingerprint (versions, backend, oneDNN, CPU, threads)."""

from __future__ import annotations

import argparse
import json

from sinecheck.cli._common import quiet_tensorflow
from sinecheck.core.environment import format_fingerprint
from sinecheck.keras.runtime import probed_fingerprint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print it as JSON")


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    info = probed_fingerprint(probe_tensorflow=True)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:{width}}  {' '.join(value) if isinstance(value, list) else value}")
    print(f"\n{format_fingerprint(info)}")
    return 0
