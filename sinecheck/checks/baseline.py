"""Golden baselines per environment, and the check that tells bit-level drift from a material change.

A baseline is what the reference configs produced in one environment — keyed by TensorFlow version, Keras
version (and whether it is Keras 2 or 3), backend, oneDNN on/off, CPU instruction-set class and platform —
stored as one JSON file (digests, metrics, configs) plus one ``.npz`` (initial and final weights, held-out
predictions, loss history), never pickle, each written atomically.

`check` compares this environment's runs with (a) the baseline of the *same* key — anything but bitwise
identical is a reproducibility regression — and (b) the most recent baseline of an *older* TensorFlow/Keras
version, grading every config IDENTICAL / ULP / CLOSE / DIVERGENT (weights beyond tolerance, error within the
seed-noise band) / MATERIAL.  A strictness level decides what fails: ``bitwise`` anything not identical, ``ulp``
anything worse than ULP, ``material`` only material changes.  A baseline of another CPU class only (no baseline of
this machine class) is not something to check against: the pytest check skips, saying how to record one.

When a change is material — the rule, per group (one config, its seeds), on the graded metric (held-out MSE
against sin(x), or a user model's compiled held-out loss), with the paired differences ``d_i = new_i - old_i``
of the same seed, the group's seed band ``B = NOISE_SIGMAS × std(old_i)`` (floored at NOISE_FLOOR) and the shift
margin ``m = SHIFT_BAND_FRACTION × B`` (one seed standard deviation):

(a) a single seed: ``|d_i| > B`` (or one side diverged and the other did not) — that seed moved beyond the noise;
(b) a consistent shift: every seed's ``d_i`` has the same sign and ``|d_i| > m`` — each seed moved the same way
    by more than one seed standard deviation, although each may stay inside the band.  With 3 seeds no test can
    decide at a useful level (an exact sign-flip test's smallest two-sided p is 2/2³ = 0.25), so this is a
    consistency rule, not a test.  What it costs and buys (simulated: seed std σ, mean error 3σ, each rerun
    ``new_i = old_i + δ + N(0, τ²)``): with no shift (δ = 0) it adds no false alarm to (a) worth naming (0.1 %
    at τ = 0.1σ, 0.5 % at τ = 0.3σ); a shift of every seed by δ = σ (half the band) is caught 58 % / 43 % of the
    time against 26 % / 32 % by (a) alone, δ = 1.5σ 86 % / 77 % against 47 % / 53 %.  If an upgrade re-draws the
    runs altogether (``d_i ~ N(0, 2σ²)``), (b) alone would flag 2 Φ(-1/√2)³ ≈ 2.8 % of groups with σ known, 7 % with
    σ estimated from 3 seeds — while (a) alone already flags 55 % of such groups;
(c) with at least SHIFT_TEST_MIN_SEEDS seeds (6: the smallest n whose exact sign-flip test can reach
    ``2/2ⁿ ≤ 0.05``): the exact two-sided sign-flip permutation test of ``mean(d)`` rejects at SHIFT_ALPHA = 0.05
    and ``|mean(d)| > SHIFT_REL × mean(old_i)`` (10 % of the group's error) — a consistent shift need not then move
    every seed.  Simulated as above with 6 seeds (10): a shift of δ = 0.5σ is caught 73 % (98 %) of the time at
    τ = 0.3σ, no shift flagged 1.5 % (0.3 %).  The committed baselines have 3 seeds, so (c) applies once they are
    re-recorded with more.

Rules (b) and (c) promote every non-identical entry of the group to MATERIAL.  A baseline whose JSON digests
disagree with its ``.npz`` arrays is corrupt (BaselineError naming the file and the command that regenerates it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from filelock import FileLock

from sinecheck._io import atomic_write
from sinecheck.core.compare import Tolerance, Verdict, compare, json_float
from sinecheck.core.config import TrainConfig
from sinecheck.core.enums import TextEnum
from sinecheck.core.environment import Fingerprint
from sinecheck.core.presets import PRESETS
from sinecheck.core.records import CompileRecord, DataRecord, ModelRecord
from sinecheck.core.result import CompiledMetrics, Metrics, RunResult, digest_tensors
from sinecheck.core.specs import ModelSpec, spec_identity
from sinecheck.engines.registry import train
from sinecheck.errors import BaselineError, ConfigError
from sinecheck.keras.runtime import probed_fingerprint

BASELINE_SCHEMA = 1
DEFAULT_DIR = "tests/baselines"
#: Seeds and epoch budgets of the baseline set: a short run shows bit-level drift early; the full one, what a
#: user's 100-epoch result does.
SEEDS: tuple[int, ...] = (0, 1, 2)
SHORT_EPOCHS = 5
#: The longer budget of a user model's baseline set (its cost is unknown; the presets use their own 100).
MODEL_FULL_EPOCHS = 20
#: A material change moves the held-out MSE by more than this many seed standard deviations of that config.
NOISE_SIGMAS = 2.0
NOISE_FLOOR = 1e-4
#: A consistent shift (every seed moved the same way) is material when each seed moved by more than this fraction
#: of the group's noise band: 0.5 band = one seed standard deviation (see the module docstring for its rates).
SHIFT_BAND_FRACTION = 0.5
#: From this many seeds on, a paired sign-flip permutation test (level SHIFT_ALPHA) also decides a shift …
SHIFT_TEST_MIN_SEEDS = 6
SHIFT_ALPHA = 0.05
#: … when the mean shift exceeds this fraction of the group's mean error (a practical margin beside the test).
SHIFT_REL = 0.10
#: Sign-flip permutations are enumerated exactly up to this many seeds, else sampled (fixed seed) this many times.
_EXACT_FLIPS_MAX_SEEDS = 16


class Grade(TextEnum):
    """How an entry compares with its baseline, best first; grades compare by this order (``Grade.ULP <
    Grade.CLOSE``, also against their text)."""

    IDENTICAL = "identical"
    ULP = "ulp"
    CLOSE = "close"
    DIVERGENT = "divergent"  # weights beyond tolerance, held-out error within the seed-noise band
    MATERIAL = "material"  # held-out MSE moved beyond the seed-noise band (or divergence differs)
    CHANGED = "changed"  # the model, its compile settings, the data or the config changed: not environment drift
    MISSING = "missing"  # not in the baseline

    @property
    def rank(self) -> int:
        return list(Grade).index(self)

    def __lt__(self, other: object) -> bool:
        return self.rank < Grade(other).rank

    def __le__(self, other: object) -> bool:
        return self.rank <= Grade(other).rank

    def __gt__(self, other: object) -> bool:
        return self.rank > Grade(other).rank

    def __ge__(self, other: object) -> bool:
        return self.rank >= Grade(other).rank


class Strictness(TextEnum):
    """What fails against a baseline of an older TensorFlow/Keras version (the same environment must always
    match bit for bit)."""

    BITWISE = "bitwise"  # anything not identical
    ULP = "ulp"  # anything worse than ULP
    MATERIAL = "material"  # only material changes

    @property
    def limit(self) -> Grade:
        """The worst grade this level accepts."""
        limits = {Strictness.BITWISE: Grade.IDENTICAL, Strictness.ULP: Grade.ULP, Strictness.MATERIAL: Grade.DIVERGENT}
        return limits[self]

    @classmethod
    def parse(cls, value: str) -> Strictness:
        """`value` as a level; anything else is a ConfigError naming the allowed ones."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"strict: invalid value {value!r}; allowed: {', '.join(STRICT_LEVELS)}") from None


#: The strictness levels as option values (for argparse / pytest choices).
STRICT_LEVELS: tuple[str, ...] = tuple(level.value for level in Strictness)


class Relation(TextEnum):
    """How a reference baseline's environment relates to the one checked against it."""

    SAME_ENVIRONMENT = "same environment"  # anything but bitwise identical is a regression
    OLDER_VERSION = "older version"  # the most recent older TensorFlow/Keras on the same machine class
    OTHER_MACHINE_CLASS = "other machine class"  # reported, never failed: oneDNN picks kernels by ISA


def regenerate_hint(directory: str | os.PathLike[str]) -> str:
    return (
        f"regenerate it with `sinecheck baseline record --dir {directory} --force` "
        f"(or `pytest --sinecheck-baseline=update --sinecheck-baseline-dir={directory}`)"
    )


# -- environment keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvKey:
    """What makes two environments' bits comparable: the same key must reproduce bit for bit."""

    tensorflow: str
    keras: str  # "keras-3.15.1" or "tf_keras-2.21.0": which Keras trained, and its version
    backend: str
    onednn: bool
    isa: str
    platform: str

    @classmethod
    def current(cls) -> EnvKey:
        return cls.from_fingerprint(probed_fingerprint(probe_tensorflow=True))

    @classmethod
    def from_fingerprint(cls, fp: Fingerprint) -> EnvKey:
        impl = fp.get("keras_impl", "keras")
        version = fp.get("tf_keras") if impl == "tf_keras" else fp.get("keras")
        return cls(
            str(fp.get("tensorflow")),
            f"{impl}-{version}",
            str(fp.get("keras_backend")),
            bool(fp.get("onednn")),
            str(fp.get("isa")),
            str(fp.get("platform")),
        )

    @property
    def slug(self) -> str:
        """The file name stem, e.g. ``tf2.21.0-keras3.15.1-tensorflow-onednn-avx512-linux-x86_64``."""
        keras = self.keras.replace("keras-", "keras").replace("tf_keras", "tfkeras")
        raw = (
            f"tf{self.tensorflow}-{keras}-{self.backend}-{'onednn' if self.onednn else 'noonednn'}-"
            f"{self.isa}-{self.platform}"
        ).lower()
        return re.sub(r"[^a-z0-9._-]+", "_", raw)

    @property
    def versions(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(TensorFlow, Keras) versions as numbers, for "older than"."""
        return _version(self.tensorflow), _version(self.keras.split("-", 1)[-1])

    def same_machine_class(self, other: EnvKey) -> bool:
        return (self.backend, self.onednn, self.isa, self.platform) == (
            other.backend,
            other.onednn,
            other.isa,
            other.platform,
        )

    def describe(self) -> str:
        return (
            f"TensorFlow {self.tensorflow}, {self.keras.replace('-', ' ')}, {self.backend} backend, oneDNN "
            f"{'on' if self.onednn else 'off'}, {self.isa}, {self.platform}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3]) or (0,)


# -- the baseline set ----------------------------------------------------------------------------------------


def baseline_configs(
    *,
    seeds: Sequence[int] = SEEDS,
    short_epochs: int = SHORT_EPOCHS,
    full: bool = True,
    model: ModelSpec | None = None,
    model_epochs: int = MODEL_FULL_EPOCHS,
) -> list[tuple[str, TrainConfig]]:
    """(name, config) of every baseline entry: each preset config × seeds × (short run, the preset's epochs);
    for a user's `model`, its default config × seeds × (short run, `model_epochs`)."""
    out = []
    if model is not None:
        budgets = [short_epochs] + ([model_epochs] if full and model_epochs != short_epochs else [])
        for epochs in budgets:
            for seed in seeds:
                out.append((f"{model.label}/{epochs}ep/seed{seed}", model.config(epochs=epochs, seed=seed)))
        return out
    for preset_name, preset in PRESETS.items():
        for cfg, label in zip(preset.configs, preset.labels, strict=True):
            budgets = [short_epochs] + ([cfg.epochs] if full and cfg.epochs != short_epochs else [])
            for epochs in budgets:
                for seed in seeds:
                    name = f"{preset_name}/{label.replace(' ', '')}/{epochs}ep/seed{seed}"
                    out.append((name, cfg.replace(epochs=epochs, seed=seed)))
    return out


def group_of(name: str) -> str:
    """The entry name without its seed: the seeds of one group make its noise band."""
    return name.rsplit("/seed", 1)[0]


# -- files ---------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One stored run: its config, digests, metrics, (compact) arrays, and what really trained — the model's
    architecture fingerprint, its compile settings and the data's digest (None in baselines recorded before)."""

    config: TrainConfig
    digests: dict[str, str]
    metrics: Metrics
    diverged: bool
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    model: ModelRecord | None = None
    compiled: CompileRecord | None = None
    data: DataRecord | None = None

    @classmethod
    def from_result(cls, result: RunResult) -> Entry:
        arrays = {k: v for k, v in result.tensors().items() if k != "pred/train"}
        return cls(
            result.config,
            dict(result.digests),
            result.metrics,
            result.diverged,
            arrays,
            result.model_record,
            result.compile_record,
            result.data_record,
        )

    def changes(self, new: Entry) -> list[str]:
        """What the user changed between this (stored) entry and `new`: ``your model changed: Adam learning_rate
        0.001 → 0.002``, ``your data changed: …``, ``your config changed: …`` — empty when neither the model, its
        compile settings, the data nor the config did (as far as the stored entry recorded them)."""
        out: list[str] = []
        old_config, new_config = _portable(self.config), _portable(new.config)
        if old_config != new_config:
            fields = [
                k for k in sorted(old_config.keys() | new_config.keys()) if old_config.get(k) != new_config.get(k)
            ]
            lines = [f"{k} {_short(old_config.get(k))} → {_short(new_config.get(k))}" for k in fields]
            out.append("your config changed: " + "; ".join(lines))
        model: list[str] = []
        if self.model is not None and new.model is not None:
            model += self.model.changes(new.model)
        if self.compiled is not None and new.compiled is not None:
            model += self.compiled.changes(new.compiled)
        if model:
            out.append("your model changed: " + "; ".join(model))
        if self.config.data is not None and self.data is not None and new.data is not None:  # a user's data spec
            data = self.data.changes(new.data)
            if data:
                out.append("your data changed: " + "; ".join(data))
        return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 50 else text[:47] + "..."


#: Entry keys in a baseline file that point into its "records" table (one copy per distinct record).
_RECORD_KINDS = ("model", "compile", "data")


@dataclass
class Baseline:
    """Every entry recorded in one environment."""

    key: EnvKey
    entries: dict[str, Entry]
    fingerprint: Fingerprint
    created: str
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The baseline file's content.  The entries' model, compile and data records are stored once each in
        ``records`` (by kind and digest) and named by digest in every entry that has them."""
        records: dict[str, dict[str, Any]] = {kind: {} for kind in _RECORD_KINDS}
        entries: dict[str, Any] = {}
        for name, e in self.entries.items():
            entry: dict[str, Any] = {
                "config": e.config.to_dict(),
                "config_id": e.config.config_id,
                "digests": e.digests,
                "metrics": e.metrics.to_json(),
                "diverged": e.diverged,
            }
            for kind, record in zip(_RECORD_KINDS, (e.model, e.compiled, e.data), strict=True):
                if record is not None:
                    records[kind][record.digest] = record.to_dict()
                    entry[kind] = record.digest
            entries[name] = entry
        out: dict[str, Any] = {
            "schema": BASELINE_SCHEMA,
            "kind": "sinecheck-baseline",
            "key": self.key.to_dict(),
            "fingerprint": self.fingerprint,
            "created": self.created,
            "entries": entries,
        }
        if any(records.values()):
            out["records"] = {kind: table for kind, table in records.items() if table}
        return out


def subject_dir(directory: str | os.PathLike[str], model: ModelSpec | None = None) -> Path:
    """Where the baselines of one model live: `directory` for the presets, a subdirectory per user model (so a
    new model's missing baselines are a skip, and each model's files can be recorded and reviewed alone)."""
    return Path(directory) if model is None else Path(directory) / model.slug


class BaselinePaths(NamedTuple):
    """The two files of one baseline."""

    json: Path  # digests, metrics, configs
    npz: Path  # the arrays


def baseline_paths(directory: str | os.PathLike[str], key: EnvKey) -> BaselinePaths:
    root = Path(directory)
    return BaselinePaths(root / f"{key.slug}.json", root / f"{key.slug}.npz")  # (the slug has dots: no with_suffix)


def write_baseline(baseline: Baseline, directory: str | os.PathLike[str]) -> Path:
    """Write the ``.npz`` then the JSON (each atomically: temp file + os.replace); return the JSON path."""
    json_path, npz_path = baseline_paths(directory, baseline.key)
    arrays: dict[str, Any] = {
        f"{name}::{tensor}": np.asarray(value)
        for name, e in baseline.entries.items()
        for tensor, value in e.arrays.items()
    }
    atomic_write(npz_path, lambda fh: np.savez_compressed(fh, **arrays))
    return atomic_write(json_path, json.dumps(baseline.to_json(), indent=1) + "\n")


def load_baseline(path: str | os.PathLike[str], *, with_arrays: bool = True) -> Baseline:
    """Load one baseline with `json` and ``np.load(allow_pickle=False)`` only; any problem is a BaselineError
    naming the file and how to regenerate it."""
    path = Path(path)
    hint = regenerate_hint(path.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: no such baseline file; record one with `sinecheck baseline record --dir {path.parent}`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a readable baseline ({type(exc).__name__}: {exc}); {hint}") from None
    if not isinstance(data, dict) or data.get("kind") != "sinecheck-baseline":
        raise BaselineError(f"{path}: not a sinecheck baseline (no 'kind': 'sinecheck-baseline'); {hint}")
    if data.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(
            f"{path}: baseline schema {data.get('schema')!r} is not supported; allowed: "
            f"{BASELINE_SCHEMA} (this sinecheck); {hint}"
        )
    try:
        key = EnvKey(**data["key"])
        records = data.get("records", {})
        models = {d: ModelRecord.from_dict(r) for d, r in records.get("model", {}).items()}
        compiled = {d: CompileRecord.from_dict(r) for d, r in records.get("compile", {}).items()}
        datas = {d: DataRecord.from_dict(r) for d, r in records.get("data", {}).items()}
        entries = {
            name: Entry(
                TrainConfig.from_dict(e["config"]),
                _digests(e["digests"]),
                Metrics.from_json(e["metrics"]),
                bool(e["diverged"]),
                model=models[e["model"]] if "model" in e else None,
                compiled=compiled[e["compile"]] if "compile" in e else None,
                data=datas[e["data"]] if "data" in e else None,
            )
            for name, e in data["entries"].items()
        }
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # (AttributeError: a list where a mapping is)
        raise BaselineError(f"{path}: malformed baseline ({type(exc).__name__}: {exc}); {hint}") from None
    if with_arrays:
        npz_path = path.with_suffix(".npz")
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                for composite in npz.files:
                    name, _, tensor = composite.partition("::")
                    if name in entries:
                        entries[name].arrays[tensor] = npz[composite]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BaselineError(
                f"{npz_path}: missing or unreadable arrays of {path.name} ({type(exc).__name__}: {exc}); {hint}"
            ) from None
        _cross_check(path, npz_path, entries, hint)
    return Baseline(key, entries, data.get("fingerprint", {}), data.get("created", ""), path)


def _digests(value: Any) -> dict[str, str]:
    """An entry's digests as its JSON holds them: kind -> hex string; TypeError on anything else (a malformed file,
    not a crash later when the digests are cross-checked or compared)."""
    digests = dict(value)
    for kind, digest in digests.items():
        if not isinstance(digest, str):
            raise TypeError(f"digest {kind!r} is not a string: {digest!r}")
    return digests


#: The digests a baseline's JSON records per entry, and the prefix of the arrays in its ``.npz`` they digest.
_DIGEST_PREFIXES = {"initial_weights": "initial/", "final_weights": "final/", "predictions": "pred/"}


def _cross_check(path: Path, npz_path: Path, entries: Mapping[str, Entry], hint: str) -> None:
    """Every digest the JSON records must be the digest (`digest_tensors`, in the stored order) of the arrays the
    ``.npz`` holds for it; any disagreement — or an entry with no arrays at all — makes the file corrupt (one-line
    BaselineError).  The predictions digest covers the training-grid predictions too, which compact preset
    entries do not store: it is checked where every prediction array is stored (``pred/train`` present)."""
    bad: list[str] = []
    for name, e in entries.items():
        if not e.arrays:
            bad.append(f"entry {name} has no arrays in {npz_path.name}")
            continue
        for kind, recorded in e.digests.items():
            prefix = _DIGEST_PREFIXES.get(kind)
            if prefix is None:
                continue
            arrays = {k[len(prefix) :]: v for k, v in e.arrays.items() if k.startswith(prefix)}
            if kind == "predictions" and not any(k.startswith("train") for k in arrays):
                continue  # a compact entry: the training-grid predictions are not stored
            actual = digest_tensors(arrays)
            if actual != recorded:
                bad.append(f"entry {name}: {kind} digest {recorded[:12]}… ≠ {actual[:12]}… of its arrays")
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise BaselineError(
            f"{path}: corrupt baseline — its JSON digests disagree with the arrays in {npz_path.name}: {bad[0]}{more}; "
            f"{hint}"
        )


def list_baselines(directory: str | os.PathLike[str]) -> list[Path]:
    return sorted(Path(directory).glob("*.json"))


def find_baselines(directory: str | os.PathLike[str]) -> list[Baseline]:
    """Every baseline in `directory` (metadata only; a bad file raises BaselineError)."""
    return [load_baseline(p, with_arrays=False) for p in list_baselines(directory)]


# -- recording -----------------------------------------------------------------------------------------------


def run_baseline_set(
    configs: Sequence[tuple[str, TrainConfig]],
    *,
    engine: str = "keras",
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, RunResult]:
    """Train every baseline config (Keras ``fit`` by default: the thing users upgrade)."""
    out = {}
    for i, (name, cfg) in enumerate(configs, 1):
        if progress is not None:
            progress(i, len(configs), name)
        out[name] = train(cfg, engine=engine)
    return out


def make_baseline(results: Mapping[str, RunResult], key: EnvKey | None = None) -> Baseline:
    return Baseline(
        key or EnvKey.current(),
        {n: Entry.from_result(r) for n, r in results.items()},
        probed_fingerprint(probe_tensorflow=True),
        time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file that serialises writers of `path` on this machine (parallel CLI runs, pytest-xdist workers).
    It lives in the temporary directory, named by a hash of the absolute path (and the user, so that two users'
    locks never collide), never in the baseline directory: nothing is left there to be committed by accident."""
    owner = str(os.getuid()) if hasattr(os, "getuid") else ""
    digest = hashlib.sha256(f"{Path(path).resolve()}\0{owner}".encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"sinecheck-{digest}.lock"


class Recorded(NamedTuple):
    """Where `record` stored a baseline, and the one it replaced (with ``update``)."""

    path: Path
    replaced: Baseline | None


def record(baseline: Baseline, directory: str | os.PathLike[str], *, update: bool = False) -> Recorded:
    """Store `baseline` under its key.  Without `update` an existing baseline of that key is never touched
    (BaselineError); with it, the old one is replaced and returned, so the caller can say what it replaced.
    Safe for concurrent callers (a file lock per key, outside `directory`: see `lock_path`)."""
    json_path, _ = baseline_paths(directory, baseline.key)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(json_path)):
        replaced = None
        if json_path.exists():
            if not update:
                raise BaselineError(
                    f"{json_path}: a baseline for this environment exists already; `record` never "
                    "overwrites one — use `sinecheck baseline record --force` or "
                    "`pytest --sinecheck-baseline=update` to replace it"
                )
            try:
                replaced = load_baseline(json_path, with_arrays=False)
            except BaselineError:
                replaced = None  # a corrupt file is what `update` is for
        return Recorded(write_baseline(baseline, directory), replaced)


# -- checking ------------------------------------------------------------------------------------------------


@dataclass
class Drift:
    """One entry graded against a baseline."""

    name: str
    grade: Grade
    max_abs_w: float | None
    max_ulp_w: int | None
    delta_mse: float | None
    noise_band: float | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "grade": self.grade.value,
            "max_abs_w": json_float(self.max_abs_w),
            "max_ulp_w": self.max_ulp_w,
            "delta_mse": json_float(self.delta_mse),
            "noise_band": json_float(self.noise_band),
            "detail": self.detail,
        }


@dataclass
class CheckResult:
    """This environment against one baseline."""

    against: Baseline
    relation: Relation
    drifts: list[Drift]

    @property
    def worst(self) -> Grade:
        return max((d.grade for d in self.drifts), default=Grade.IDENTICAL)

    def failed(self, strict: Strictness | str) -> list[Drift]:
        """The drifts this strictness level does not accept (the same environment must be bitwise equal)."""
        same = self.relation is Relation.SAME_ENVIRONMENT
        limit = Grade.IDENTICAL if same else Strictness.parse(strict).limit
        return [d for d in self.drifts if d.grade > limit]

    def heading(self, drifts: Sequence[Drift], strict: Strictness | str, *, option: str = "--strict") -> str:
        """The headline of a failure, naming the grades that failed: ``FAILED: 1 material, 2 ulp beyond
        --strict=ulp`` (or ``… where the same environment must be bitwise identical``; changed entries apart)."""
        drifted = [d for d in drifts if d.grade is not Grade.CHANGED]
        counts = ", ".join(f"{n} {g}" for g in reversed(Grade) if (n := sum(d.grade is g for d in drifted)))
        if self.relation is Relation.SAME_ENVIRONMENT:
            where = "where the same environment must be bitwise identical"
        else:
            where = f"beyond {option}={Strictness.parse(strict)}"
        parts = [f"{counts} {where}"] if drifted else []
        changed = sum(d.grade is Grade.CHANGED for d in drifts)
        if changed:
            parts.append(f"{changed} changed since the baseline was recorded")
        return "FAILED: " + "; ".join(parts)

    def changes(self) -> list[str]:
        """What the user changed since the baseline was recorded (model, compile settings, data, config), each
        distinct change once, with the entries it concerns."""
        seen: dict[str, list[str]] = {}
        for d in self.drifts:
            if d.grade is Grade.CHANGED:
                seen.setdefault(d.detail, []).append(d.name)
        return [f"{detail} ({_entries(names)})" for detail, names in seen.items()]

    def table(self) -> str:
        """The drift table: config, verdict, max |Δw|, max ULP, the held-out error's change (MSE against sin(x),
        or a user's model's compiled loss) against its noise band."""
        rows = [("config", "verdict", "max |Δw|", "max ULP (w)", f"Δ{self._metric()}", "noise band")]
        for d in self.drifts:
            rows.append(
                (
                    d.name,
                    d.grade,
                    _num(d.max_abs_w),
                    "—" if d.max_ulp_w is None else str(d.max_ulp_w),
                    _num(d.delta_mse, signed=True),
                    _num(d.noise_band),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [
            f"  {d.name}: {d.detail}"
            for d in self.drifts
            if d.grade not in (Grade.IDENTICAL, Grade.CHANGED) and d.detail  # (changes: said once, in the summary)
        ]
        return "\n".join(lines)

    def _metric(self) -> str:
        names = {
            self.against.entries[d.name].metrics.held_out_loss_name
            for d in self.drifts
            if d.name in self.against.entries
        }
        return names.pop() if len(names) == 1 else "held-out error"

    def summary(self) -> str:
        """One line per check — and first, what the user changed since the baseline was recorded (those entries are
        not graded as environment drift)."""
        counts = {g: sum(d.grade is g for d in self.drifts) for g in Grade}
        parts = ", ".join(f"{n} {g}" for g, n in counts.items() if n)
        note = ""
        if self.relation is Relation.OTHER_MACHINE_CLASS:
            note = (
                " — a baseline from another CPU/ISA class or oneDNN setting may legitimately differ "
                "(oneDNN picks kernels by instruction set); not a regression"
            )
        line = f"vs {self.against.key.describe()} ({self.relation}): {parts}{note}"
        changes = [
            c.replace("your model changed: ", "your model changed since the baseline was recorded: ", 1)
            .replace("your data changed: ", "your data changed since the baseline was recorded: ", 1)
            .replace("your config changed: ", "your config changed since the baseline was recorded: ", 1)
            for c in self.changes()
        ]
        if not changes:
            return line
        return "\n".join(
            [
                *changes,
                "(not graded as environment drift: re-record the baseline if the change is intended)",
                line,
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "against": self.against.key.to_dict(),
            "file": str(self.against.path),
            "relation": self.relation.value,
            "worst": self.worst.value,
            "drifts": [d.to_dict() for d in self.drifts],
        }


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.2e}" if signed else f"{value:.2e}"


def _entries(names: Sequence[str]) -> str:
    return (
        f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}: {', '.join(names[:3])}{', …' if len(names) > 3 else ''}"
    )


def noise_bands(baseline: Baseline) -> dict[str, float]:
    """Per group (config without seed): NOISE_SIGMAS × the std over its seeds of the held-out error — the MSE
    against sin(x), or a user's model's compiled held-out loss — floored."""
    groups: dict[str, list[float]] = {}
    for name, e in baseline.entries.items():
        value = e.metrics.held_out_loss
        if math.isfinite(value):
            groups.setdefault(group_of(name), []).append(value)
    return {
        g: max(NOISE_SIGMAS * float(np.std(v, ddof=1)) if len(v) > 1 else NOISE_FLOOR, NOISE_FLOOR)
        for g, v in groups.items()
    }


_GRADE_OF_VERDICT = {
    Verdict.IDENTICAL: Grade.IDENTICAL,
    Verdict.ULP: Grade.ULP,
    Verdict.CLOSE: Grade.CLOSE,
    Verdict.DIVERGENT: Grade.DIVERGENT,
}


def grade(name: str, current: Entry, stored: Entry | None, band: float | None, tolerance: Tolerance) -> Drift:
    """Grade one entry: CHANGED when the user changed the model, its compile settings, the data or the config
    (`Entry.changes`: not environment drift, not graded further); else the verdict of its arrays, promoted to
    MATERIAL when the held-out error (MSE against sin(x), or the compiled loss) moved beyond the seed-noise band
    (or divergence differs)."""
    if stored is None:
        return Drift(name, Grade.MISSING, None, None, None, band, "not in the baseline")
    changes = stored.changes(current)
    if changes:
        return Drift(name, Grade.CHANGED, None, None, None, band, "; ".join(changes))
    a, b = stored.arrays, current.arrays
    if not a:  # metadata-only load: digests decide
        same = stored.digests == current.digests
        return Drift(name, Grade.IDENTICAL if same else Grade.DIVERGENT, None, None, None, band, "digests only")
    cmp = compare(a, b, tolerance=tolerance)
    weights = [t for t in cmp.tensors if t.name.startswith("final/")]
    max_w = max((t.max_abs for t in weights), default=None)
    max_ulp = max((t.max_ulp for t in weights), default=None)
    delta = current.metrics.held_out_loss - stored.metrics.held_out_loss
    level = _GRADE_OF_VERDICT[cmp.verdict]
    if stored.diverged != current.diverged:
        detail = f"diverged {stored.diverged} → {current.diverged}"
        return Drift(name, Grade.MATERIAL, max_w, max_ulp, delta, band, detail)
    beyond_noise = delta is not None and band is not None and (not math.isfinite(delta) or abs(delta) > band)
    if level is Grade.DIVERGENT and beyond_noise:
        level = Grade.MATERIAL
    changed = [k for k in set(stored.digests) | set(current.digests) if stored.digests.get(k) != current.digests.get(k)]
    changed += [f"metric {k.value}" for k, v in stored.metrics.items() if not _same_number(v, current.metrics.get(k))]
    changed += _compiled_changes(stored.metrics.compiled, current.metrics.compiled)
    if level is Grade.IDENTICAL and changed:  # the arrays agree but the recorded numbers do not: an edited file
        return Drift(
            name,
            Grade.MATERIAL if beyond_noise else Grade.DIVERGENT,
            max_w,
            max_ulp,
            delta,
            band,
            f"recorded {', '.join(sorted(changed))} differ(s) from this run although the arrays match: an edited "
            "or corrupt file? (`sinecheck baseline record --force` / `pytest --sinecheck-baseline=update`)",
        )
    worst = cmp.worst
    detail = "" if level is Grade.IDENTICAL else f"worst tensor {worst.name}: {worst.mismatched}/{worst.size} differ"
    moved = _compiled_moves(stored.metrics.compiled, current.metrics.compiled)
    if detail and moved:
        detail += f"; held-out {moved}"
    return Drift(name, level, max_w, max_ulp, delta, band, detail)


def _compiled_changes(old: CompiledMetrics, new: CompiledMetrics) -> list[str]:
    """``metric compiled held_out/accuracy`` for every compiled metric whose recorded value differs."""
    out = []
    for split, a, b in (("train", old.train, new.train), ("held_out", old.held_out, new.held_out)):
        values = dict(b)
        out += [f"metric compiled {split}/{k}" for k, v in a if not _same_number(v, values.get(k))]
    return out


def _compiled_moves(old: CompiledMetrics, new: CompiledMetrics) -> str:
    """How the compiled held-out metrics moved: ``loss 0.5312 → 0.5298, accuracy 0.7500 → 0.7656``."""
    values = dict(new.held_out)
    moves = [
        f"{k} {v:.4g} → {values[k]:.4g}" for k, v in old.held_out if k in values and not _same_number(v, values[k])
    ]
    return ", ".join(moves)


def _portable(config: TrainConfig) -> dict[str, Any]:
    """The config as a baseline compares it: a model/data spec by its identity, not the path it was given by."""
    out = config.to_dict()
    for name in ("model", "data"):
        if name in out:
            out[name] = spec_identity(out[name])
    return out


def _same_number(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def sign_flip_p(deltas: Sequence[float]) -> float:
    """The two-sided p-value of the paired sign-flip permutation test of ``mean(deltas) = 0``: the share of the
    2ⁿ sign patterns whose mean is at least as far from 0 as the observed one (exact up to 16 values, else
    65 536 patterns drawn with a fixed seed, the observed one counted)."""
    d = np.asarray(deltas, dtype=np.float64)
    n = len(d)
    if n == 0:
        return 1.0
    if n <= _EXACT_FLIPS_MAX_SEEDS:
        codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)
        signs = 1.0 - 2.0 * (codes & 1)
    else:
        rng = np.random.default_rng(0)
        signs = np.vstack([np.ones(n), rng.choice([-1.0, 1.0], size=(2**16, n))])
    observed = abs(float(d.mean()))
    means = np.abs(signs @ d) / n
    return float(np.mean(means >= observed * (1 - 1e-12)))


def consistent_shift(deltas: Sequence[float], old: Sequence[float], band: float) -> str | None:
    """Why a group's paired differences ``deltas`` (new − old of each seed, the stored errors `old`, its noise
    `band`) are a material shift by rule (b) or (c) of the module docstring, or None when they are not."""
    n = len(deltas)
    if n < 2 or not all(math.isfinite(x) for x in [*deltas, *old]):
        return None
    margin = SHIFT_BAND_FRACTION * band
    signs = {math.copysign(1.0, x) for x in deltas if x != 0}
    shown = ", ".join(f"{x:+.3g}" for x in deltas)
    if len(signs) == 1 and 0 not in deltas and min(abs(x) for x in deltas) > margin:
        return (
            f"consistent shift: all {n} seeds moved the same way ({shown}), each by more than {margin:.3g} "
            f"({SHIFT_BAND_FRACTION:g} × the noise band {band:.3g})"
        )
    if n >= SHIFT_TEST_MIN_SEEDS:
        mean, level = float(np.mean(deltas)), SHIFT_REL * abs(float(np.mean(old)))
        p = sign_flip_p(deltas)
        if p <= SHIFT_ALPHA and abs(mean) > level:
            return (
                f"consistent shift: mean {mean:+.3g} over {n} seeds (paired sign-flip test p = {p:.3g} ≤ "
                f"{SHIFT_ALPHA:g}; beyond {SHIFT_REL:.0%} of the mean error, {level:.3g})"
            )
    return None


#: Grades a consistent shift promotes to MATERIAL (identical, changed, missing and material entries are left).
_SHIFTABLE = (Grade.ULP, Grade.CLOSE, Grade.DIVERGENT)


def check_against(
    current: Mapping[str, Entry], baseline: Baseline, relation: Relation, *, tolerance: Tolerance | None = None
) -> CheckResult:
    """Grade every entry of `current` against `baseline`, then every group by its paired per-seed differences
    (`consistent_shift`): a consistent shift makes the group's non-identical entries MATERIAL."""
    bands = noise_bands(baseline)
    tol = tolerance or Tolerance()
    drifts = [
        grade(name, entry, baseline.entries.get(name), bands.get(group_of(name)), tol)
        for name, entry in current.items()
    ]
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(drifts):
        groups.setdefault(group_of(d.name), []).append(i)
    for group, members in groups.items():
        seeds = [n for n in baseline.entries if group_of(n) == group]
        graded = [drifts[i] for i in members]
        band = bands.get(group)
        if band is None or len(graded) != len(seeds) or any(d.grade in (Grade.CHANGED, Grade.MISSING) for d in graded):
            continue  # only a group whose every stored seed was rerun unchanged is paired
        deltas = [d.delta_mse for d in graded]
        old = [baseline.entries[d.name].metrics.held_out_loss for d in graded]
        why = consistent_shift([x for x in deltas if x is not None], old, band) if None not in deltas else None
        if why is None:
            continue
        for i in members:
            d = drifts[i]
            if d.grade in _SHIFTABLE:
                drifts[i] = replace(d, grade=Grade.MATERIAL, detail="; ".join(filter(None, [why, d.detail])))
    return CheckResult(baseline, relation, drifts)


def load_references(key: EnvKey, directory: str | os.PathLike[str]) -> list[tuple[Baseline, Relation]]:
    """`select_references`, each loaded with its arrays (and cross-checked: a corrupt file is a BaselineError
    before anything trains)."""
    return [(load_baseline(path), relation) for path, relation in select_references(key, directory)]


def only_other_machine_class(references: Iterable[Reference | tuple[Baseline, Relation]]) -> bool:
    """Whether every reference is of another machine class (none of this one): nothing that can fail — the pytest
    check skips with the command that records this machine's baseline instead of training to compare with it."""
    relations = [relation for _, relation in references]
    return bool(relations) and all(r is Relation.OTHER_MACHINE_CLASS for r in relations)


class Reference(NamedTuple):
    """A baseline to check against, and how its environment relates to the one checked."""

    path: Path
    relation: Relation


def select_references(key: EnvKey, directory: str | os.PathLike[str]) -> list[Reference]:
    """The baselines to check `key` against: the same key, the most recent older TF/Keras version on the same
    machine class, and — reported as such — same versions on another machine class."""
    baselines = find_baselines(directory)
    out: list[Reference] = []
    same = [b for b in baselines if b.key == key]
    if same and same[0].path:
        out.append(Reference(same[0].path, Relation.SAME_ENVIRONMENT))
    older = [b for b in baselines if b.key != key and key.same_machine_class(b.key) and b.key.versions < key.versions]
    if older:
        newest = max(older, key=lambda b: b.key.versions)
        if newest.path:
            out.append(Reference(newest.path, Relation.OLDER_VERSION))
    other = [b for b in baselines if b.key.versions == key.versions and not key.same_machine_class(b.key)]
    out += [Reference(b.path, Relation.OTHER_MACHINE_CLASS) for b in other if b.path]
    return out


def check(
    current: Mapping[str, Entry], key: EnvKey, directory: str | os.PathLike[str], *, tolerance: Tolerance | None = None
) -> list[CheckResult]:
    """Check this environment's entries against every reference baseline `select_references` finds."""
    return [
        check_against(current, baseline, relation, tolerance=tolerance)
        for baseline, relation in load_references(key, directory)
    ]


def diff(old: Baseline, new: Baseline, *, tolerance: Tolerance | None = None) -> CheckResult:
    """Two stored baselines against each other (e.g. after a nox upgrade run), graded like `check`: two recordings
    of the same environment key must be bitwise identical, whatever the strictness."""
    if old.key == new.key:
        relation = Relation.SAME_ENVIRONMENT
    elif old.key.same_machine_class(new.key):
        relation = Relation.OLDER_VERSION
    else:
        relation = Relation.OTHER_MACHINE_CLASS
    return check_against(new.entries, old, relation, tolerance=tolerance)


class Failure(NamedTuple):
    """A check against one baseline, and the drifts its strictness level does not accept."""

    result: CheckResult
    drifts: list[Drift]


def failures(results: Iterable[CheckResult], strict: Strictness | str) -> list[Failure]:
    """The failed checks (a baseline of another machine class is reported, never failed); a bad `strict` is a
    ConfigError."""
    level = Strictness.parse(strict)
    return [
        Failure(r, bad) for r in results if (bad := r.failed(level)) and r.relation is not Relation.OTHER_MACHINE_CLASS
    ]
