"""Every optimizer variant the fused engine implements, against Keras ``fit`` bit for bit over 20 epochs with
shuffling on — and a negative control showing the comparison catches a one-op change in an update rule.

The config is small (64 points, batch 24: two full batches and a short last batch of 16) so each variant costs
about a second, most of it ``fit``'s first call.
"""

from __future__ import annotations

import pytest

from sinecheck.core.compare import compare
from sinecheck.core.config import OptimizerSpec, TrainConfig

pytest.importorskip("tensorflow")
from sinecheck.engines import fused as fused_module
from sinecheck.engines import updates
from sinecheck.engines.registry import train

EPOCHS = 20

#: Every branch of `sinecheck.engines.updates`: (id, spec).  Rates are large enough that each slot matters.
VARIANTS: list[tuple[str, OptimizerSpec]] = [
    ("sgd", OptimizerSpec("sgd", 0.05)),
    ("sgd-momentum", OptimizerSpec("sgd", 0.02, (("momentum", 0.9),))),
    ("sgd-nesterov", OptimizerSpec("sgd", 0.02, (("momentum", 0.9), ("nesterov", True)))),
    ("adam", OptimizerSpec("adam", 0.01)),
    ("adam-amsgrad", OptimizerSpec("adam", 0.01, (("amsgrad", True),))),
    ("rmsprop", OptimizerSpec("rmsprop", 0.005)),
    ("rmsprop-centered", OptimizerSpec("rmsprop", 0.005, (("centered", True),))),
    ("rmsprop-momentum", OptimizerSpec("rmsprop", 0.002, (("momentum", 0.9),))),
    ("rmsprop-centered-momentum", OptimizerSpec("rmsprop", 0.002, (("momentum", 0.9), ("centered", True)))),
    ("adagrad", OptimizerSpec("adagrad", 0.05)),
]


def _config(optimizer: OptimizerSpec) -> TrainConfig:
    return TrainConfig(
        hidden_units=(8,), n_points=64, batch_size=24, shuffle=True, seed=3, epochs=EPOCHS, optimizer=optimizer
    )


@pytest.mark.parametrize("optimizer", [v[1] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_fused_equals_fit_for_every_optimizer(optimizer: OptimizerSpec) -> None:
    cfg = _config(optimizer)
    reference, fused = train(cfg, engine="keras"), train(cfg, engine="fused")
    assert fused.engine == "fused"
    assert reference.loss_history[-1] < reference.loss_history[0], "did not train: the comparison is vacuous"
    assert fused.digests == reference.digests, compare(reference, fused).report()
    assert compare(reference, fused).identical, compare(reference, fused).report()


def test_every_update_rule_branch_is_covered() -> None:
    """A new optimizer or flag in the engine must be added to `VARIANTS` (one per distinct slot layout)."""
    layouts = {(spec.name, tuple(name for name, _ in updates.update_rule(spec).slots)) for _, spec in VARIANTS}
    assert len(layouts) == 9  # sgd x3, adam x2, rmsprop x4 (centered and momentum each add a slot), adagrad
    assert {spec.name for _, spec in VARIANTS} == set(updates.OPTIMIZERS)


def test_a_one_op_change_in_the_nesterov_update_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: re-associate one addition of the Nesterov step, ``w + (m*mom - g*lr)`` ->
    ``(w + m*mom) - g*lr``; mathematically the same, and the bitwise comparison must still see it."""
    original = updates.update_rule

    def perturbed(spec: OptimizerSpec) -> updates.UpdateRule:
        rule = original(spec)
        momentum = float(dict(spec.params).get("momentum", 0.0))

        def step(mt, g, w, slots, t, lr):  # type: ignore[no-untyped-def]
            mom = mt.scalar(momentum)
            m = slots[0] * mom - g * lr
            return (w + m * mom) - g * lr, (m,)

        return updates.UpdateRule(rule.name, rule.slots, step, rule.flat_safe)

    cfg = _config(dict(VARIANTS)["sgd-nesterov"])
    reference = train(cfg, engine="keras")
    monkeypatch.setattr(fused_module, "update_rule", perturbed)
    fused_module.fused_program.cache_clear()  # the cached program was traced with the real rule
    try:
        changed = train(cfg, engine="fused")
    finally:
        fused_module.fused_program.cache_clear()  # never leave the perturbed program for later tests
    assert changed.digests["final_weights"] != reference.digests["final_weights"]
    assert not compare(reference, changed).identical
