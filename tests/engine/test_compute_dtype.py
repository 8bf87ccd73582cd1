"""The computation dtype and the program form through the train program: float32 results bit-identical to the
engine before either existed, the loop form equal to the batched one, bfloat16 training close to float32 with
float32 state, and a run recording its compute dtype and keeping it on resume."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.engine.programs import choose_form, init_train_state, make_evaluate, make_train_steps
from tests.engine.test_programs import BATCH, STEPS, _stacked
from tests.toy import toy_data, toy_task

LRS = np.asarray([3e-3, 1e-2, 3e-2], np.float32)

BEFORE = {"block": "48d1056f69d16b6a", "lstm": "4b482af47334a3a7", "leaky_gated": "c7f141e8248e06a5"}
"""sha256 (first 16 hex digits) of the losses, final state and evaluation below, computed by the engine as it was
before the compute dtype and the program form existed (on the 2-core x86 CPU these notes were measured on)."""


def _train(family, **kw):
    data = {k: jnp.asarray(v) for k, v in toy_data(64).items()}
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 64, size=(STEPS, BATCH)).astype(np.int32))
    params, masks = _stacked(family, True)
    state, losses = jax.jit(make_train_steps(toy_task(), family, "tanh", **kw))(
        init_train_state(params), masks, LRS, data, idx, jnp.ones(STEPS, bool)
    )
    ev = jax.jit(make_evaluate(toy_task(), family, "tanh", **kw))(
        state.params, masks, data, idx, jnp.ones(idx.shape, jnp.float32)
    )
    return losses, state, ev


def _digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the recorded digests are a CPU's")
@pytest.mark.parametrize("family", sorted(BEFORE))
def test_float32_results_are_bit_identical_to_before(family):
    assert _digest(_train(family)) == BEFORE[family]
    assert _digest(_train(family, compute_dtype="float32", form="population")) == BEFORE[family]


@pytest.mark.parametrize("family", ["block", "leaky_gated"])
@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_loop_form_equals_the_population(family, compute_dtype):
    population = _train(family, compute_dtype=compute_dtype)
    loop = _train(family, compute_dtype=compute_dtype, form="loop")
    for a, b in zip(jax.tree.leaves(population), jax.tree.leaves(loop)):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-6, atol=1e-6)


def test_bfloat16_trains_close_to_float32_with_float32_state():
    (l32, _, _), (l16, s16, ev16) = _train("block"), _train("block", compute_dtype="bfloat16")
    for leaf in jax.tree.leaves((s16.params, s16.opt_state.mu, s16.opt_state.nu, l16, ev16)):
        assert leaf.dtype == jnp.float32
    assert not np.array_equal(l16, l32)  # the products did run in bf16
    np.testing.assert_allclose(l16, l32, rtol=2e-2)


def test_choose_form():
    assert choose_form("auto") == "population" and choose_form("loop") == "loop"
    with pytest.raises(ValueError, match="program_form"):
        choose_form("vmap")


def test_a_run_records_its_compute_dtype_and_refuses_another_on_resume(tmp_path):
    from sparse_rnn_jax.run.train import RunError
    from tests.experiments.test_run_protocol import CONFIG, _epochs, _train

    config = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, compute_dtype="bfloat16", epochs=1))
    work = tmp_path / "w"
    first = _train(config, work)
    assert json.loads((work / "run.json").read_text())["config"]["train"]["compute_dtype"] == "bfloat16"
    assert first.frame["val_loss"].notna().all()
    float32 = dataclasses.replace(config, train=dataclasses.replace(config.train, compute_dtype="float32", epochs=2))
    with pytest.raises(RunError, match="compute_dtype='bfloat16' there vs 'float32' now"):
        _train(float32, work)
    assert _train(_epochs(config, 2), work).record["status"] == "complete"
