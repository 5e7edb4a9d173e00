"""``sinecheck baseline``: golden baselines per environment — record, check, list, diff."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sinecheck import options
from sinecheck.checks import baseline as bl
from sinecheck.cli._common import (
    Parser,
    Progress,
    prepare_output,
    prepare_outputs,
    quiet_tensorflow,
    single_model,
    validate_specs,
    write_json,
)
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import ConfigError

ACTIONS = {
    "record": "train the baseline set here and store it under this environment's key",
    "check": "train the baseline set here and compare with the stored baselines",
    "list": "list the stored baselines",
    "diff": "compare two stored baselines (e.g. old and new TF/Keras)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    for action, text in ACTIONS.items():
        _add_action_arguments(actions.add_parser(action, help=text), action)


def _add_action_arguments(q: argparse.ArgumentParser, action: str) -> None:
    if action == "diff":
        q.add_argument("old", metavar="OLD", help="a baseline JSON file, or its name in --dir")
        q.add_argument("new", metavar="NEW", help="the same, for the newer environment")
    q.add_argument(
        "--dir", default="tests/baselines", metavar="PATH", help="baseline directory (default: tests/baselines)"
    )
    if action in ("check", "diff"):
        options.add_strict_option(
            q.add_argument,
            default="material",
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
        options.add_model_options(
            q.add_argument,
            what="this model's baselines (in a subdirectory of --dir named after the spec) instead of the presets'",
            repeatable=False,
        )


def run(args: argparse.Namespace) -> int:
    if args.action == "diff":
        return _diff(args)
    model = single_model(args)
    directory = bl.subject_dir(args.dir, model)
    if args.action == "list":
        return _list(directory, _record_hint(args.dir, model), models=model is None)
    prepare_outputs(args)
    quiet_tensorflow()
    key = bl.EnvKey.current()
    references: list[tuple[bl.Baseline, bl.Relation]] = []
    if args.action == "check":
        references = bl.load_references(key, directory)  # a corrupt file fails here, before anything trains
        if not references or bl.only_other_machine_class(references):
            others = [b.path.name for b, _ in references if b.path is not None]
            note = (
                f" (only of another CPU class or oneDNN setting: {', '.join(others)}; compare two stored "
                "baselines with `sinecheck baseline diff OLD NEW`)"
                if others
                else ""
            )
            print(
                f"no baseline for this environment ({key.describe()}) or an older version in {directory}{note}; "
                f"record one with {_record_hint(args.dir, model)}"
            )
            return 1
    if args.action == "record":
        _check_recordable(directory, key, force=args.force)
    validate_specs([model] if model else [])  # built once on its data: a bad spec is one line before anything trains
    current = _train(key, full=not args.short_only, model=model)
    if args.action == "record":
        return _record(current, directory, key, force=args.force, json_path=args.json)
    return _check(current, references, key, strict=args.strict, json_path=args.json)


def _record_hint(directory: str, model: ModelSpec | None) -> str:
    """The command that records the baselines a list or check did not find."""
    options = f" --model {model.model}" + (f" --data {model.data}" if model.data else "") if model else ""
    return f"`sinecheck baseline record --dir {directory}{options}`"


def _list(directory: Path, hint: str, *, models: bool) -> int:
    """The baselines in `directory`; with `models`, then those of each model, grouped by its subdirectory (other
    subdirectories and JSON files that are not baselines, such as saved drift reports, are left out)."""
    groups: list[tuple[Path | None, list[Path]]] = [(None, bl.list_baselines(directory))]
    if models and directory.is_dir():
        subdirectories = sorted(p for p in directory.iterdir() if p.is_dir())
        groups += [(sub, [p for p in bl.list_baselines(sub) if _is_baseline(p)]) for sub in subdirectories]
    groups = [(sub, paths) for sub, paths in groups if paths]
    if not groups:
        print(f"no baselines in {directory}; record one with {hint}")
        return 0
    for sub, paths in groups:
        indent = "" if sub is None else "  "
        baselines = [bl.load_baseline(path, with_arrays=False) for path in paths]
        if sub is not None:
            specs = sorted({e.config.model for b in baselines for e in b.entries.values() if e.config.model})
            print(f"{sub.name}/" + (f" (model {', '.join(specs)})" if specs else ""))
        for path, b in zip(paths, baselines, strict=True):
            print(
                f"{indent}{path.name:70} {len(b.entries):3} entries  recorded {b.created}\n"
                f"{indent}    {b.key.describe()}"
            )
    return 0


def _is_baseline(path: Path) -> bool:
    """Whether a JSON file in a subdirectory says it is a baseline (a damaged one is listed, and its error shown)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True
    return isinstance(data, dict) and data.get("kind") == "sinecheck-baseline"


def _resolve_baseline(text: str, directory: str) -> Path:
    """A baseline named on the command line: a path, or a name in `directory`."""
    path = Path(text)
    if path.exists() or path.suffix == ".json":
        return path
    return Path(directory) / f"{text}.json"


def _diff(args: argparse.Namespace) -> int:
    prepare_outputs(args)
    old = bl.load_baseline(_resolve_baseline(args.old, args.dir))
    new = bl.load_baseline(_resolve_baseline(args.new, args.dir))
    result = bl.diff(old, new)
    print(f"{old.key.describe()}  →  {new.key.describe()}\n")
    print(result.table())
    print(f"\n{result.summary()}")
    if args.json:
        write_json(args.json, result.to_dict())
    failed = result.failed(args.strict)
    if failed:
        print(result.heading(failed, args.strict))
    return 1 if failed else 0


def _check_recordable(directory: Path, key: bl.EnvKey, *, force: bool) -> None:
    """Fail before training when `directory` cannot be written, or already holds this environment's baseline
    (without --force)."""
    prepare_output("--dir", directory, is_dir=True)
    existing = bl.baseline_paths(directory, key)[0]
    if not force and existing.exists():
        raise ConfigError(
            f"--dir: {existing} exists for this environment; allowed: a new environment, or --force to replace it"
        )


def _train(key: bl.EnvKey, *, full: bool, model: ModelSpec | None) -> bl.Baseline:
    configs = bl.baseline_configs(full=full, model=model)
    with Progress() as progress:
        results = bl.run_baseline_set(configs, progress=progress.step)
    return bl.make_baseline(results, key)


def _record(current: bl.Baseline, directory: Path, key: bl.EnvKey, *, force: bool, json_path: str | None) -> int:
    path, replaced = bl.record(current, directory, update=force)
    print(
        f"{'replaced the baseline of ' + replaced.created if replaced else 'recorded'} {path} "
        f"({len(current.entries)} entries) for {key.describe()}"
    )
    if json_path:
        write_json(json_path, current.to_json())
    return 0


def _check(
    current: bl.Baseline,
    references: list[tuple[bl.Baseline, bl.Relation]],
    key: bl.EnvKey,
    *,
    strict: str,
    json_path: str | None,
) -> int:
    checks = [bl.check_against(current.entries, baseline, relation) for baseline, relation in references]
    for result in checks:
        print(result.summary())
        print(result.table())
        print()
    failed = bl.failures(checks, strict)
    for result, bad in failed:
        drifted = [d for d in bad if d.grade is not bl.Grade.CHANGED]
        changed = [d.name for d in bad if d.grade is bl.Grade.CHANGED]
        if drifted:  # the heading names the grades that failed: "FAILED: 1 material, 2 close beyond --strict=ulp"
            names = ", ".join(d.name for d in drifted)
            print(f"{result.heading(drifted, strict)} vs {result.against.path}: {names}")
        if changed:
            print(f"FAILED (changed since recorded, see above) vs {result.against.path}: {', '.join(changed)}")
    if json_path:
        write_json(json_path, {"key": key.to_dict(), "strict": strict, "checks": [c.to_dict() for c in checks]})
    return 1 if failed else 0
