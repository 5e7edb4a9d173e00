"""Hypothesis properties of training (in this process, with TensorFlow) and of `compare` on real results.

The generated configs are tiny (1-2 layers of 1-16 units, 16-128 points, 1-2 epochs) so one run takes well
under a second; each training property is capped at a few examples so the file stays under a minute with
the ``ci`` profile.  A failing example prints its config (`note`), ready to paste into ``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, example, given, note, settings
from hypothesis import strategies as st

from sinecheck.core.compare import Verdict, compare
from sinecheck.core.config import ACTIVATIONS, INITIALIZERS, InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.core.result import RunResult

pytest.importorskip("tensorflow")


def capped(examples: int) -> settings:
    """The loaded profile's settings with at most `examples` examples: training runs cost ~0.5 s each."""
    return settings(max_examples=min(settings.default.max_examples, examples))


# -- strategies -------------------------------------------------------------------------------------------

STDDEVS = st.sampled_from([0.01, 0.05, 0.3, 1.0])


def _spec(name: str, **params: st.SearchStrategy) -> st.SearchStrategy[InitializerSpec]:
    """`name` with any subset of `params` set explicitly (the rest keep their Keras defaults)."""
    chosen = st.fixed_dictionaries({}, optional=params) if params else st.just({})
    return chosen.map(lambda p: InitializerSpec(name, tuple(p.items())))


#: Initializers that ignore the seed: a constant tensor.
CONSTANT_INITIALIZERS = ("zeros", "ones", "constant")

kernel_initializers = st.one_of(
    *(
        _spec(name)
        for name in (
            "glorot_uniform",
            "glorot_normal",
            "he_uniform",
            "he_normal",
            "lecun_uniform",
            "lecun_normal",
            "zeros",
            "ones",
        )
    ),
    _spec("orthogonal", gain=st.sampled_from([0.5, 1.0, 2.0])),
    _spec("random_normal", mean=st.sampled_from([0.0, 0.1]), stddev=STDDEVS),
    _spec("truncated_normal", mean=st.sampled_from([0.0, 0.1]), stddev=STDDEVS),
    _spec("random_uniform", minval=st.sampled_from([-1.0, -0.05]), maxval=st.sampled_from([0.05, 1.0])),
    _spec("constant", value=st.sampled_from([0.0, 0.5, 1.0, -1.0])),
)
bias_initializers = st.one_of(
    st.just(InitializerSpec("zeros")),  # the Keras default, and what shrinking tends to
    _spec("random_normal", stddev=STDDEVS),
    _spec("random_uniform"),
    _spec("constant", value=st.sampled_from([0.1, -0.5])),
    _spec("ones"),
)


@st.composite
def configs(draw: st.DrawFn, kernel: st.SearchStrategy[InitializerSpec] = kernel_initializers) -> TrainConfig:
    n_points = draw(st.integers(16, 128))
    return TrainConfig(
        hidden_units=tuple(draw(st.lists(st.integers(1, 16), min_size=1, max_size=2))),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        kernel_initializer=draw(kernel),
        bias_initializer=draw(bias_initializers),
        optimizer=OptimizerSpec(draw(st.sampled_from(["adam", "sgd", "rmsprop"])), draw(st.floats(1e-4, 0.1))),
        batch_size=draw(batch_sizes(n_points)),
        epochs=draw(st.integers(1, 2)),
        shuffle=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
        n_points=n_points,
    )


def batch_sizes(n_points: int) -> st.SearchStrategy[int]:
    """Mini-batches of 1-64, or one batch of the whole data set (any size >= n_points)."""
    return st.one_of(st.integers(1, 64), st.integers(n_points, 2 * n_points))


def batching(n_points: int, batch_size: int) -> list[int]:
    """The sizes of an epoch's batches: Keras keeps the last, partial batch as a step of its own."""
    return [batch_size] * (n_points // batch_size) + ([n_points % batch_size] if n_points % batch_size else [])


def show(*configs_: TrainConfig) -> None:
    for config in configs_:
        note(config.describe())
        note(config.to_json())


def train(config: TrainConfig) -> RunResult:
    from sinecheck.engines.registry import train as train_

    return train_(config)


# -- when may two different configs legitimately produce the same weights? --------------------------------
#
# Initializers are constructed layer by layer (kernel, then bias) and each random one takes its seed from
# Python's `random` (seeded by `seed`) when it is constructed.  So two configs that differ only in the kernel
# initializer give every kernel the same seed, as long as both initializers are random (or both constant),
# and then two initializers that run the same random op with the same parameters build the same kernels.
# `kernel_draw` mirrors Keras 3's initializers to tell which op and parameters that is.

#: name → (scale, mode, distribution) of Keras's VarianceScaling family.
VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated"),
}


def kernel_shapes(config: TrainConfig) -> list[tuple[int, int]]:
    dims = (1, *config.hidden_units, 1)
    return list(itertools.pairwise(dims))


def kernel_draw(spec: InitializerSpec, shape: tuple[int, int]) -> tuple:
    """The random op (or constant) and its parameters that `spec` runs for a kernel of `shape`."""
    p = {**INITIALIZERS[spec.name], **spec.kwargs()}
    if spec.name in CONSTANT_INITIALIZERS:
        return ("constant", {"zeros": 0.0, "ones": 1.0}.get(spec.name, p.get("value")))
    if spec.name == "random_normal":
        return ("normal", p["mean"], p["stddev"])
    if spec.name == "truncated_normal":
        return ("truncated", p["mean"], p["stddev"])
    if spec.name == "random_uniform":
        return ("uniform", p["minval"], p["maxval"])
    if spec.name == "orthogonal":
        # QR of a 1x1 normal sample is exactly ±1: a coin flip, not a continuous draw
        return ("sign" if shape == (1, 1) else "orthogonal", p["gain"])
    scale, mode, distribution = VARIANCE_SCALING[spec.name]
    fan_in, fan_out = shape
    scale /= max(1.0, fan_in if mode == "fan_in" else (fan_in + fan_out) / 2.0)  # exactly as Keras computes it
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale)
        return ("uniform", -limit, limit)
    return ("truncated", 0.0, math.sqrt(scale) / 0.87962566103423978)


def kernel_draws(spec: InitializerSpec, config: TrainConfig) -> list[tuple]:
    return [kernel_draw(spec, shape) for shape in kernel_shapes(config)]


def may_coincide(a: tuple, b: tuple) -> bool:
    """Different draws that can still give equal values, depending on the numbers drawn.

    * ``normal`` and ``truncated`` normal with the same mean and stddev: TensorFlow's stateless truncated
      normal starts from the same Philox block as the plain one (the first 4 values agree unless one is
      rejected beyond 2 stddev), so kernels of up to 4 elements come out equal most of the time;
    * a ``sign`` kernel (orthogonal, 1x1) is ``±gain``, which a constant ``gain`` or ``-gain`` matches half
      of the time.
    """
    kinds = {a[0], b[0]}
    if kinds == {"normal", "truncated"}:
        return a[1:] == b[1:]
    if kinds == {"sign", "constant"}:
        sign, constant = (a, b) if a[0] == "sign" else (b, a)
        return abs(constant[1]) == sign[1]
    return False


def trained(run: RunResult) -> bool:
    """Whether training changed any weight at all (an lr far below the weights' ulp, or zero gradients, may not)."""
    return not compare(run.initial_weights, run.final_weights).identical


# -- properties of training -------------------------------------------------------------------------------


@capped(5)
@given(configs())
def test_same_config_twice_is_identical(config: TrainConfig) -> None:
    show(config)
    a, b = train(config), train(config)
    result = compare(a, b)
    assert result.verdict is Verdict.IDENTICAL, result.report()


@capped(5)
@given(configs(), st.integers(0, 2**32 - 1))
@example(TrainConfig(hidden_units=(1,), kernel_initializer="orthogonal(gain=2)", n_points=16, epochs=1, seed=0), 1)
def test_changing_the_seed_changes_the_initial_weights(config: TrainConfig, other_seed: int) -> None:
    assume(other_seed != config.seed)
    config = config.replace(epochs=1)  # initial weights are all this property looks at
    other = config.replace(seed=other_seed)
    show(config, other)
    a, b = train(config), train(other)
    initial = compare(a.initial_weights, b.initial_weights)
    draws = kernel_draws(config.kernel_initializer, config)
    if config.bias_initializer.name not in CONSTANT_INITIALIZERS or any(
        d[0] not in ("constant", "sign") for d in draws
    ):
        assert initial.verdict is Verdict.DIVERGENT, initial.report()
    elif any(d[0] == "sign" for d in draws):
        # orthogonal on 1x1 kernels: two seeds agree with probability 1/2 per kernel; both are ±gain
        gain = draws[0][1]
        for run in (a, b):
            for name, w in run.initial_weights.items():
                if name.endswith("kernel"):
                    assert np.all(np.abs(w) == np.float32(gain)), (name, w)
    else:  # nothing random to seed: the seed must not matter
        assert initial.identical, initial.report()


@capped(5)
@given(configs(), st.data())
def test_changing_the_batch_size_changes_the_final_weights(config: TrainConfig, data: st.DataObject) -> None:
    other = config.replace(batch_size=data.draw(batch_sizes(config.n_points), label="other batch size"))
    # Two batch sizes >= n_points both mean one batch of everything: the same run, not a different one.
    assume(batching(config.n_points, config.batch_size) != batching(other.n_points, other.batch_size))
    show(config, other)
    a, b = train(config), train(other)
    assert compare(a.initial_weights, b.initial_weights).identical  # the batch size is not seeded
    # Legitimately equal: neither run changed a single weight (every update below half an ulp, or zero
    # gradients), or both blew up at their first NaN (TerminateOnNaN) leaving the same NaN bits.  Neither
    # turned up in hundreds of examples (even a dead ReLU net or all-zero kernels still train the output
    # bias, which starts at exactly 0 or moves by far more than an ulp), but they are possible.
    assume(trained(a) or trained(b))
    assume(not (a.diverged and b.diverged))
    final = compare(a.final_weights, b.final_weights)
    assert not final.identical, final.report()


@capped(5)
@given(configs(), kernel_initializers)
@example(
    TrainConfig(hidden_units=(5,), kernel_initializer="glorot_uniform", n_points=16, epochs=1),
    InitializerSpec("random_uniform", (("minval", -1.0), ("maxval", 1.0))),
)
@example(
    TrainConfig(hidden_units=(1, 1), kernel_initializer="glorot_normal", n_points=16, epochs=1),
    InitializerSpec("lecun_normal"),
)
def test_changing_the_kernel_initializer_changes_the_final_weights(
    config: TrainConfig, kernel: InitializerSpec
) -> None:
    other = config.replace(kernel_initializer=kernel)
    assume(other != config)
    show(config, other)
    da, db = kernel_draws(config.kernel_initializer, config), kernel_draws(kernel, config)
    note(f"kernel draws: {da} vs {db}")
    a, b = train(config), train(other)
    initial = compare(a.initial_weights, b.initial_weights)
    final = compare(a.final_weights, b.final_weights)
    if da == db:  # e.g. glorot_uniform on Dense(5) is random_uniform(-1, 1); glorot is lecun on square kernels
        assert initial.identical and final.identical, final.report()
    elif all(x == y or may_coincide(x, y) for x, y in zip(da, db, strict=True)):
        assert final.identical == initial.identical, final.report()
    else:
        assert not initial.identical, initial.report()
        assume(not (a.diverged and b.diverged))  # see the batch-size property
        assert not final.identical, final.report()


# -- the algebra of compare on a real result ----------------------------------------------------------------

SMALL = TrainConfig(hidden_units=(8,), n_points=64, epochs=2)


@pytest.fixture(scope="module")
def run() -> RunResult:
    return train(SMALL)


def with_final(run: RunResult, name: str, tensor: np.ndarray) -> RunResult:
    """`run` with one final weight tensor replaced (digests recomputed)."""
    return dataclasses.replace(run, final_weights={**run.final_weights, name: tensor}, digests={})


def nudged(run: RunResult, name: str, index: int, steps: int) -> RunResult:
    """`run` with one element of a final weight moved `steps` representable floats (negative: down)."""
    tensor = run.final_weights[name].copy()
    flat = tensor.reshape(-1)
    for _ in range(abs(steps)):
        flat[index] = np.nextafter(flat[index], np.float32(np.inf if steps > 0 else -np.inf))
    return with_final(run, name, tensor)


def scaled(run: RunResult, name: str, factor: float) -> RunResult:
    return with_final(run, name, (run.final_weights[name] * np.float32(factor)).astype(np.float32))


def test_compare_is_reflexive(run: RunResult) -> None:
    result = compare(run, run)
    assert result.verdict is Verdict.IDENTICAL
    assert all(t.verdict is Verdict.IDENTICAL and t.max_ulp == 0 for t in result.tensors)
    copy = dataclasses.replace(
        run, final_weights={k: v.copy() for k, v in run.final_weights.items()}, digests={}
    )  # equal values in new arrays
    assert compare(run, copy).identical


def test_one_nudged_weight_is_ulp_with_max_ulp_one(run: RunResult) -> None:
    result = compare(run, nudged(run, "layer0/kernel", 3, 1))
    assert result.verdict is Verdict.ULP, result.report()
    diff = {t.name: t for t in result.tensors}["final/layer0/kernel"]
    assert diff.verdict is Verdict.ULP and diff.max_ulp == 1 and diff.mismatched == 1
    assert diff.max_abs_index == (0, 3)
    assert all(t.verdict is Verdict.IDENTICAL for t in result.tensors if t.name != "final/layer0/kernel")


def test_verdicts_are_ordered_by_size_of_difference(run: RunResult) -> None:
    verdicts = [
        compare(run, run).verdict,
        compare(run, nudged(run, "layer0/kernel", 0, 1)).verdict,
        compare(run, scaled(run, "layer0/kernel", 1 + 1e-5)).verdict,  # ~100 ULP, well inside rtol 1e-4
        compare(run, scaled(run, "layer0/kernel", 1.5)).verdict,
    ]
    assert verdicts == [Verdict.IDENTICAL, Verdict.ULP, Verdict.CLOSE, Verdict.DIVERGENT]
    assert Verdict.IDENTICAL < Verdict.ULP < Verdict.CLOSE < Verdict.DIVERGENT
    # the overall verdict is the worst tensor's
    both = with_final(
        scaled(run, "layer1/kernel", 1 + 1e-5),
        "layer0/kernel",
        nudged(run, "layer0/kernel", 0, 1).final_weights["layer0/kernel"],
    )
    assert compare(run, both).verdict is Verdict.CLOSE


@settings(max_examples=min(settings.default.max_examples, 50))
@given(
    name=st.sampled_from(["layer0/kernel", "layer0/bias", "layer1/kernel", "layer1/bias"]),
    where=st.integers(0, 7),
    steps=st.integers(-40, 40),
)
def test_ulp_steps_are_counted_and_the_verdict_is_symmetric(run: RunResult, name: str, where: int, steps: int) -> None:
    index = where % run.final_weights[name].size
    other = nudged(run, name, index, steps)
    ab, ba = compare(run, other), compare(other, run)
    assert ab.verdict is ba.verdict
    assert ab.worst.max_ulp == ba.worst.max_ulp == abs(steps)
    if steps == 0:
        assert ab.verdict is Verdict.IDENTICAL
    elif abs(steps) <= 16:
        assert ab.verdict is Verdict.ULP
    else:
        assert ab.verdict in (Verdict.CLOSE, Verdict.DIVERGENT)
