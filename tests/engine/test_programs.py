"""The train program against a plain reference (masked forward, optax Adam, one model at a time), the finiteness
check, and invalid steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_rnn_jax.engine.programs import _all_finite, init_train_state, make_train_steps
from sparse_rnn_jax.models.registry import get_family
from tests.toy import X, Y, family_spec, toy_data, toy_task

H, PADDED_H, P, STEPS, BATCH = 5, 8, 3, 6, 8
DENSITIES = {"hx": 0.6, "hh": 0.5, "hy": 0.8, "yx": 0.7, "yh": 1.0, "yy": 0.4}


def _stacked(family: str, dirty: bool):
    """P models' params and masks [P, ...]; ``dirty``: nonzero values at masked entries (as pruning leaves them)."""
    fam = get_family(family)
    spec = family_spec(family, X, H, Y, densities=DENSITIES, init_std=0.4, activation="tanh")
    arrays = [fam.init(spec, seed, PADDED_H) for seed in range(P)]
    params = {k: np.stack([a.params[k] for a in arrays]) for k in arrays[0].params}
    masks = {k: np.stack([a.masks[k] for a in arrays]) for k in arrays[0].masks}
    if dirty:
        rng = np.random.default_rng(1)
        for k, v in params.items():
            m = masks[fam.weight_keys.get(k, k)]
            params[k] = np.where(m, v, rng.normal(size=v.shape)).astype(np.float32)
    return params, masks


def _reference(family, params, masks, lrs, data, idx):
    """One model at a time: loss of the forward on the masked params, optax's Adam, p - lr * u."""
    fam, task = get_family(family), toy_task()
    adam = optax.scale_by_adam()

    def loss_fn(p, m, batch):
        loss_sum, loss_count, _ = task.score(fam.forward(p, m, batch.x, activation="tanh"), batch)
        return jnp.sum(loss_sum) / jnp.sum(loss_count)

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
    losses, finals = [], []
    for i in range(P):
        p = {k: jnp.asarray(v[i]) for k, v in params.items()}
        m = {k: jnp.asarray(v[i]) for k, v in masks.items()}
        opt, row = adam.init(p), []
        for s in range(len(idx)):
            loss, g = value_and_grad(p, m, task.make_batch(data, jnp.asarray(idx[s])))
            u, opt = adam.update(g, opt, p)
            p = jax.tree.map(lambda a, b: a - lrs[i] * b, p, u)
            row.append(float(loss))
        losses.append(row)
        finals.append({k: np.asarray(v) * np.asarray(m[fam.weight_keys.get(k, k)]) for k, v in p.items()})
    return np.asarray(losses).T, finals


@pytest.mark.parametrize(
    "family, dirty", [("block", False), ("block", True), ("lstm", False), ("leaky_gated", True), ("leaky_fixed", False)]
)
def test_train_steps_equal_the_plain_reference(family, dirty):
    data = {k: jnp.asarray(v) for k, v in toy_data(64).items()}
    idx = np.random.default_rng(0).integers(0, 64, size=(STEPS, BATCH)).astype(np.int32)
    params, masks = _stacked(family, dirty)
    lrs = np.asarray([3e-3, 1e-2, 3e-2], np.float32)
    ref_losses, ref_params = _reference(family, params, masks, lrs, data, idx)
    train_steps = jax.jit(make_train_steps(toy_task(), family, "tanh"))
    state, losses = train_steps(init_train_state(params), masks, lrs, data, jnp.asarray(idx), jnp.ones(STEPS, bool))
    np.testing.assert_allclose(np.asarray(losses), ref_losses, rtol=2e-5, atol=1e-6)
    weight_keys = get_family(family).weight_keys
    for i in range(P):
        for k, want in ref_params[i].items():
            got = np.asarray(state.params[k][i]) * np.asarray(masks[weight_keys.get(k, k)][i])
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=k)
    assert not np.asarray(state.diverged).any()


def test_invalid_steps_change_nothing():
    data = {k: jnp.asarray(v) for k, v in toy_data(64).items()}
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 64, size=(4, BATCH)).astype(np.int32))
    params, masks = _stacked("block", dirty=False)
    lrs = np.full(P, 1e-2, np.float32)
    train_steps = jax.jit(make_train_steps(toy_task(), "block", "tanh"))
    valid = jnp.asarray([True, False, True, False])
    state, _ = train_steps(init_train_state(params), masks, lrs, data, idx, valid)
    state_ref, _ = train_steps(init_train_state(params), masks, lrs, data, idx[jnp.asarray([0, 2])], jnp.ones(2, bool))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state_ref)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_all_finite_flags_any_non_finite_entry(bad):
    check = jax.jit(_all_finite)
    big = np.full((3, 4), 3e38, np.float32)  # finite, though its sum overflows
    assert bool(check({"a": big, "b": np.zeros(5, np.float32)}))
    for where in ("a", "b"):
        tree = {"a": big.copy(), "b": np.zeros(5, np.float32)}
        tree[where].flat[-1] = bad
        assert not bool(check(tree))


def _scaled_task(scale: float, chance: float):
    """A regression task made afresh (new closures) on each call: its score closes over ``scale``."""
    from sparse_rnn_jax.engine.task import Batch, Objective, masked_mse_score

    def make_batch(data, idx):
        return Batch(data["x"][idx] * scale, (data["targets"][idx], data["step_mask"][idx]), jnp.ones(idx.shape[0]))

    return Objective("scaled", X, Y, make_batch, masked_mse_score, False, chance)


def test_program_cache_is_keyed_by_value_not_by_task_object():
    from sparse_rnn_jax.engine.programs import jitted_programs

    a, b, c = _scaled_task(2.0, 0.5), _scaled_task(2.0, 0.7), _scaled_task(3.0, 0.5)
    assert a != b and a.make_batch is not b.make_batch  # distinct objects, as a task loaded twice gives
    args = ("block", "tanh", 1, False)
    assert jitted_programs(a, *args) is jitted_programs(b, *args)
    assert jitted_programs(c, *args) is not jitted_programs(a, *args)  # another closed-over value: another program
