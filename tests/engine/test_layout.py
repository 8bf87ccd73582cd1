"""Compact weight storage inside a train call (``engine.layout``): bit-identical to the dense program for every
kind of family, both program forms, dirty masked entries and diverging models; the layout's indices; and which
layout "auto" picks."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.engine.layout import compact_keys, plan_layout, resolve_layout
from sparse_rnn_jax.engine.programs import PopulationProgram, init_train_state, make_train_steps
from sparse_rnn_jax.models.registry import FAMILIES, get_family
from tests.engine.test_compute_dtype import BEFORE, LRS, _digest
from tests.engine.test_programs import BATCH, STEPS, _stacked
from tests.toy import toy_data, toy_task


def _run(family, lrs, layout, form="population", per_model_order=False, dirty=True, steps=STEPS):
    data = {k: jnp.asarray(v) for k, v in toy_data(64).items()}
    params, masks = _stacked(family, dirty)
    p = len(lrs)
    shape = (steps, p, BATCH) if per_model_order else (steps, BATCH)
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 64, size=shape).astype(np.int32))
    lay = {}
    if layout:
        keys = get_family(family).weight_keys
        lay = jax.device_put(plan_layout(params, masks, keys, population=form == "population", max_fill=1.0))
        assert lay, "nothing was compacted"
    train = jax.jit(make_train_steps(toy_task(), family, "tanh", per_model_order=per_model_order, form=form))
    return train(init_train_state(params), masks, np.asarray(lrs, np.float32), data, idx, jnp.ones(steps, bool), lay)


def _assert_identical(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("form", ["population", "loop"])
def test_compact_steps_are_bit_identical_to_dense(family, form):
    _assert_identical(_run(family, LRS, True, form), _run(family, LRS, False, form))


def test_compact_with_per_model_order_and_clean_masks_is_bit_identical():
    _assert_identical(_run("block", LRS, True, per_model_order=True), _run("block", LRS, False, per_model_order=True))
    _assert_identical(_run("block", LRS, True, dirty=False), _run("block", LRS, False, dirty=False))


def test_a_diverging_model_is_flagged_and_frozen_alike():
    lrs = [3e-3, 1e30, 3e-2]  # the middle model blows up within a few steps
    compact, dense = _run("block", lrs, True, steps=10), _run("block", lrs, False, steps=10)
    assert np.asarray(dense[0].diverged).tolist() == [False, True, False]
    _assert_identical(compact, dense)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the recorded digests are a CPU's")
@pytest.mark.parametrize("family", sorted(BEFORE))
def test_compact_float32_results_equal_the_engine_before_either(family):
    """The digests ``test_compute_dtype`` recorded from the engine before the compute dtype, the program form and the
    compact layout existed: a compact call reproduces them bit for bit."""
    from sparse_rnn_jax.engine.programs import make_evaluate

    data = {k: jnp.asarray(v) for k, v in toy_data(64).items()}
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 64, size=(STEPS, BATCH)).astype(np.int32))
    state, losses = _run(family, LRS, True)
    ev = jax.jit(make_evaluate(toy_task(), family, "tanh"))(
        state.params, _stacked(family, True)[1], data, idx, jnp.ones(idx.shape, jnp.float32)
    )
    assert _digest((losses, state, ev)) == BEFORE[family]


def test_layout_indices():
    rng = np.random.default_rng(0)
    masks = {"m": rng.random((3, 4, 40)) < 0.2, "b": np.ones((3, 4), bool)}
    masks["m"][2] = False  # a model with nothing trainable in this block
    params = {"W": rng.normal(size=(3, 4, 40)).astype(np.float32), "b": np.zeros((3, 4), np.float32)}
    local = plan_layout(params, masks, {"W": "m"}, population=False)["W"]
    n, size = 160, local.gather.shape[1]
    counts = masks["m"].reshape(3, -1).sum(1)
    assert size % 3 == 0 and counts.max() <= size < counts.max() + 3  # rounded up to a multiple of ceil(N / 64)
    for i in range(2):
        nz = np.flatnonzero(masks["m"][i])
        np.testing.assert_array_equal(local.gather[i, : nz.size], nz)
        assert (local.gather[i, nz.size :] == nz[-1]).all()  # padding repeats a real entry
        np.testing.assert_array_equal(local.scatter[i, nz], np.arange(nz.size))
        assert (np.delete(local.scatter[i], nz) == size).all()  # masked entries read the zero slot
    assert (local.gather[2] == 0).all() and (local.scatter[2] == size).all()
    flat = plan_layout(params, masks, {"W": "m"}, population=True)["W"]
    np.testing.assert_array_equal(flat.gather, (local.gather + np.arange(3)[:, None] * n).reshape(-1))
    want = np.where(local.scatter == size, 3 * size, local.scatter + np.arange(3)[:, None] * size)
    np.testing.assert_array_equal(flat.scatter, want.reshape(-1))
    assert plan_layout(params, masks, {"W": "m"}, max_fill=0.1) == {}  # K above the fill: stays dense


def test_compact_keys_leave_out_shared_and_non_boolean_masks():
    masks = {"a": np.ones((2, 3), bool), "s": np.ones((2, 3), bool), "f": np.ones((2, 3), np.float32)}
    params = {"A": 0, "S1": 0, "S2": 0, "F": 0}
    assert compact_keys(params, masks, {"A": "a", "S1": "s", "S2": "s", "F": "f"}) == {"A": "a"}


def test_resolve_layout():
    assert resolve_layout("auto", "float32", "population", "cpu") == "compact"
    assert resolve_layout("auto", "bfloat16", "population", "cpu") == "dense"
    assert resolve_layout("auto", "float32", "loop", "cpu") == "dense"
    assert resolve_layout("auto", "float32", "population", "gpu") == "dense"
    assert resolve_layout("compact", "bfloat16", "loop", "gpu") == "compact"
    assert resolve_layout("compact", devices=2) == "dense"
    with pytest.raises(ValueError, match="weight_layout"):
        resolve_layout("sparse")


def test_population_program_plans_the_layout_and_trains_alike():
    from sparse_rnn_jax.engine.config import TrainConfig
    from sparse_rnn_jax.engine.run_plan import plan_members
    from tests.toy import toy_members

    members = [m for m in toy_members(8, max_hidden=40) if m.spec.family == "block"]
    chunk = plan_members(members, TrainConfig(max_buckets=1, max_models_per_chunk=64)).chunks[0]
    data = {k: jnp.asarray(v) for k, v in toy_data(64).items()}
    idx = np.random.default_rng(0).integers(0, 64, size=(7, BATCH)).astype(np.int32)
    finals = {}
    for layout in ("compact", "dense"):
        program = dataclasses.replace(
            PopulationProgram(toy_task(), chunk.family, chunk.activation, steps_per_call=3), weight_layout=layout
        )
        population = program.stack(chunk)
        assert bool(population.layout) == (layout == "compact")
        finals[layout] = program.train(population, data, idx)[0].state
    _assert_identical(finals["compact"], finals["dense"])
