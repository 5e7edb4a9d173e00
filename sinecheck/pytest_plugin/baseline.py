"""What the `sinecheck_baseline` fixture gives a test: record, update or check this environment's golden
baselines, per ``--sinecheck-baseline``, and fail with the drift table."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinecheck.checks import baseline as bl
from sinecheck.checks.baseline import Strictness
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import BaselineError
from sinecheck.pytest_plugin.settings import BaselineMode, Settings

__all__ = ["BaselineSession"]


class BaselineSession:
    """This environment's baseline runs and `verify()`, which records, updates or checks according to
    ``--sinecheck-baseline`` (in ``--sinecheck-baseline-dir``, graded by ``--sinecheck-strict``)."""

    def __init__(self, settings: Settings, lines: list[str]) -> None:
        self.mode: BaselineMode = settings.baseline
        self.directory: Path = settings.baseline_dir
        self.strict: Strictness = settings.strict
        self.lines = lines  # the summary lines of the session (shown after the run)

    def _command(self, mode: BaselineMode, model: ModelSpec | None = None) -> str:
        spec = (
            ""
            if model is None
            else f" --sinecheck-model={model.model}" + (f" --sinecheck-data={model.data}" if model.data else "")
        )
        return f"pytest --sinecheck-baseline={mode} --sinecheck-baseline-dir={self.directory}{spec}"

    def verify(self, model: ModelSpec | None = None) -> None:
        """Record / update / check, per the mode, the presets' baseline set — or with `model` (e.g. the
        ``sinecheck_model`` fixture) that model's, in its own subdirectory. With nothing that could fail — no
        baseline of this environment nor of an older version on this machine class, at most one of another CPU
        class (reported only, never failed) — the check is a skip that says how to record one, without training;
        a corrupt baseline fails before anything trains."""
        __tracebackhide__ = True
        if self.mode is BaselineMode.OFF:
            pytest.skip("baselines off (--sinecheck-baseline=off)")
        key = bl.EnvKey.current()
        directory = bl.subject_dir(self.directory, model)
        what = "" if model is None else f" of model {model.label}"
        references: list[tuple[bl.Baseline, bl.Relation]] = []
        if self.mode is BaselineMode.CHECK:
            problem = None
            try:
                references = bl.load_references(key, directory)
            except BaselineError as exc:
                problem = str(exc)
            if problem is not None:  # failed outside the except block: pytest would print the message twice, chained
                pytest.fail(problem, pytrace=False)
            if not references or bl.only_other_machine_class(references):
                others = [b.path.name for b, _ in references if b.path is not None]
                note = (
                    f" (only of another CPU class or oneDNN setting, not comparable bit for bit: {', '.join(others)})"
                    if others
                    else ""
                )
                missing = (
                    f"no baseline{what} for this environment ({key.describe()}) or an older version in "
                    f"{directory}{note}; record one with: {self._command(BaselineMode.RECORD, model)}"
                )
                self.lines.append(missing)  # in the session summary too, where a skip's reason is not shown
                pytest.skip(missing)
        current = bl.make_baseline(bl.run_baseline_set(bl.baseline_configs(model=model)), key)
        if self.mode is not BaselineMode.CHECK:
            self._record(current, directory, key, what)
            return
        checks = [bl.check_against(current.entries, baseline, relation) for baseline, relation in references]
        self.lines += [("" if model is None else f"model {model.label}: ") + c.summary() for c in checks]
        failed = bl.failures(checks, self.strict)
        if failed:
            pytest.fail(self._failure(failed, key, what, model), pytrace=False)

    def _record(self, current: bl.Baseline, directory: Path, key: bl.EnvKey, what: str) -> None:
        try:
            path, replaced = bl.record(current, directory, update=self.mode is BaselineMode.UPDATE)
        except BaselineError as exc:
            pytest.skip(str(exc))
        done = f"replaced the baseline recorded {replaced.created}" if replaced else "recorded a new baseline"
        self.lines.append(f"{done}{what} for {key.describe()}: {path}")

    def _failure(
        self,
        failed: list[bl.Failure],
        key: bl.EnvKey,
        what: str,
        model: ModelSpec | None,
    ) -> str:
        headings = [result.heading(bad, self.strict, option="--sinecheck-strict") for result, bad in failed]
        text = [*headings, f"this environment: {key.describe()}; strictness {self.strict}{what}"]
        for result, bad in failed:
            allowed = (
                "a reproducible environment allows (bitwise)"
                if result.relation is bl.Relation.SAME_ENVIRONMENT
                else f"--sinecheck-strict={self.strict} allows"
            )
            drifted = [d.name for d in bad if d.grade is not bl.Grade.CHANGED]
            changed = [d.name for d in bad if d.grade is bl.Grade.CHANGED]
            text += ["", result.summary(), result.table()]
            if drifted:
                text.append(f"{_count(drifted)} beyond what {allowed}: {', '.join(drifted)}")
            if changed:
                text.append(
                    f"{_count(changed)} changed since the baseline was recorded (see above): {', '.join(changed)}"
                )
        text += ["", f"if the change is intended: {self._command(BaselineMode.UPDATE, model)}"]
        return "\n".join(text)


def _count(names: list[str]) -> str:
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}"
