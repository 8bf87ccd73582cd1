"""The Flax NNX modules of every family: forward, loss and gradients equal the engine's, masked entries never move
under optax.adam through nnx.Optimizer, the arrays round-trip, stepping and unpadding, and docs/flax.md's examples
run as written."""

from __future__ import annotations

import re

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from sparse_rnn_jax.engine.programs import _mean_loss, forward_fn
from sparse_rnn_jax.models.modules import MODULES, Mask, RecurrentModel, module_class
from sparse_rnn_jax.models.registry import FAMILIES, get_family
from tests.conftest import REPO
from tests.toy import X, Y, family_spec, toy_data, toy_task

HIDDEN, PADDED = 5, 7
DENSITIES = {"hx": 0.6, "hh": 0.5, "hy": 0.8, "yx": 0.7, "yh": 1.0, "yy": 0.4}


def _arrays(family, masked_value=0.0):
    """A padded model of ``family`` with random values on its trainable entries (the gate and biases start at 0)
    and ``masked_value`` on every masked one."""
    spec = family_spec(family, X, HIDDEN, Y, densities=DENSITIES, init_std=0.4)
    params, masks = get_family(family).init(spec, 3, PADDED)
    rng = np.random.default_rng(0)
    keys = get_family(family).weight_keys
    out = {}
    for k, v in params.items():
        m = np.asarray(masks[keys.get(k, k)], bool)
        out[k] = np.where(m, rng.normal(size=v.shape) * 0.4, masked_value).astype(np.float32)
    return spec, out, masks


def _batch():
    return toy_task().make_batch(toy_data(32), np.arange(32))


def test_the_bar_block_rnn_module_is_the_engines_block_rnn():
    from sparse_rnn_jax import BlockRNN, block_rnn_forward, init_model

    assert issubclass(BlockRNN, nnx.Module)
    spec = family_spec("block", X, HIDDEN, Y, densities=DENSITIES)
    x = toy_data(8).get("x")
    rnn = BlockRNN.from_arrays(spec, *init_model(spec, 0))
    np.testing.assert_allclose(rnn(x), block_rnn_forward(*init_model(spec, 0), x), rtol=0, atol=1e-6)
    # the engine's fast path is what the module runs: the hand-written BPTT (custom_vjp) of block.recurrence
    assert "custom_vjp_call" in str(jax.make_jaxpr(lambda x: rnn(x))(x))
    # seed= draws exactly the engine's arrays, rngs= a seed from the stream
    for a, b in zip(BlockRNN(spec, seed=0).to_arrays(), init_model(spec, 0)):
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in b)
    a, b, c = (BlockRNN(spec, rngs=nnx.Rngs(k)).W_hh[...] for k in (1, 1, 2))
    assert a.shape == (HIDDEN, HIDDEN) and np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_forward_loss_and_gradients_equal_the_engines(family):
    spec, params, masks = _arrays(family)
    batch, task = _batch(), toy_task()
    forward = forward_fn(family, spec.activation)
    engine = jax.jit(
        lambda p: (
            forward(p, masks, batch.x),
            *jax.value_and_grad(_mean_loss, argnums=2)(task, forward, p, masks, batch),
        )
    )
    y, loss, grads = engine(params)

    model = module_class(family).from_arrays(spec, params, masks)
    assert type(model) is MODULES[family] and isinstance(model, nnx.Module)

    @nnx.jit
    def module_run(model):
        loss_fn = lambda m: _mean_loss(task, lambda _p, _m, x: m(x), None, None, batch)  # noqa: E731
        return model(batch.x), *nnx.value_and_grad(loss_fn)(model)

    m_y, m_loss, m_grads = module_run(model)
    np.testing.assert_allclose(m_y, y, rtol=0, atol=1e-6)
    np.testing.assert_allclose(m_loss, loss, rtol=0, atol=1e-6)
    m_grads = nnx.to_pure_dict(m_grads)
    assert set(m_grads) == set(params)  # every Param, and no mask
    keys = get_family(family).weight_keys
    for k in params:
        assert np.abs(grads[k]).max() > 0, k
        np.testing.assert_allclose(m_grads[k], grads[k], rtol=0, atol=1e-6, err_msg=k)
        assert np.all(np.asarray(m_grads[k])[~np.asarray(masks[keys.get(k, k)], bool)] == 0), k  # masked: exactly 0


@pytest.mark.parametrize("family", ["block", "gru"])  # every family's masked gradients are exactly 0 (above)
def test_masked_entries_never_move_under_adam(family):
    spec, params, masks = _arrays(family, masked_value=0.7)  # non-zero masked entries: they must stay 0.7
    model = RecurrentModel.from_arrays(spec, params, masks)
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    assert not any(leaf.dtype == bool for leaf in jax.tree.leaves(nnx.state(optimizer)))  # masks are not trained
    batch, task = _batch(), toy_task()

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: _mean_loss(task, lambda _p, _m, x: m(x), None, None, batch))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(train_step(model, optimizer)) for _ in range(5)]
    assert losses[-1] < losses[0]
    trained, kept = model.to_arrays()
    keys = get_family(family).weight_keys
    for k, v in params.items():
        m = np.asarray(masks[keys.get(k, k)], bool)
        np.testing.assert_array_equal(np.asarray(trained[k])[~m], v[~m], err_msg=k)
        assert np.all(np.asarray(trained[k])[m] != v[m]), k
    for k, v in masks.items():
        np.testing.assert_array_equal(kept[k], v)
    assert set(nnx.to_pure_dict(nnx.state(model, Mask))["masks"]) == set(masks)


@pytest.mark.parametrize("family", ["block", "leaky_gated", "gru"])  # the three layouts of arrays and padding
def test_step_unpadded_and_round_trip(family):
    spec, params, masks = _arrays(family)
    model = RecurrentModel.from_arrays(spec, params, masks)
    back = model.to_arrays()
    assert all(np.array_equal(back.params[k], params[k]) for k in params) and set(back.params) == set(params)
    assert all(np.array_equal(back.masks[k], masks[k]) for k in masks) and set(back.masks) == set(masks)
    x = toy_data(4)["x"]
    y = model(x)
    _, ys = jax.lax.scan(lambda s, x_t: model.step(s, x_t), model.initial_state(4), np.swapaxes(x, 0, 1))
    np.testing.assert_allclose(np.swapaxes(ys, 0, 1), y, rtol=0, atol=1e-6)
    small = model.unpadded()
    assert model.hidden_dim == PADDED and small.hidden_dim == HIDDEN and type(small) is type(model)
    np.testing.assert_allclose(small(x), y, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="padding"):  # a trained entry on a padded unit is not padding
        key = "W_hh" if "W_hh" in params else "W_h"
        RecurrentModel.from_arrays(spec, {**params, key: np.ones_like(params[key])}, masks).unpadded()


def test_bad_arrays_and_specs_are_refused():
    from sparse_rnn_jax import GRU, BlockRNN

    spec, params, masks = _arrays("block")
    with pytest.raises(ValueError, match="keys"):
        BlockRNN.from_arrays(spec, {k: v for k, v in params.items() if k != "b_y"}, masks)
    with pytest.raises(ValueError, match=r"masks\['hh'\] has shape"):
        BlockRNN.from_arrays(spec, params, {**masks, "hh": masks["hh"][:, :3]})
    with pytest.raises(ValueError, match="smaller than"):
        BlockRNN.from_arrays(spec.replace(hidden_dim=PADDED + 1), params, masks)
    with pytest.raises(ValueError, match="family 'gru'"):
        GRU.from_arrays(spec, params, masks)
    with pytest.raises(ValueError, match="exactly one of rngs and seed"):
        BlockRNN(spec)


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_docs_flax_examples_run():
    blocks = _python_blocks(REPO / "docs" / "flax.md")
    example = blocks[0]
    assert len(example.strip().splitlines()) <= 30
    ns: dict = {}
    exec(compile(example, "docs/flax.md", "exec"), ns)
    accuracy = float((ns["model"](ns["x"]).argmax(-1) == ns["y"]).mean())
    assert accuracy > 0.9 and np.mean(ns["losses"][-8:]) < 0.2, (accuracy, ns["losses"][-8:])
    assert isinstance(ns["model"].rnn, nnx.Module)
    interop: dict = {}
    exec(compile(blocks[1], "docs/flax.md", "exec"), interop)
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(
        interop["rnn"](x), interop["block_rnn_forward"](interop["params"], interop["masks"], x), rtol=0, atol=1e-6
    )


def test_a_family_registered_without_a_module_class_gets_one(monkeypatch):
    import dataclasses

    from sparse_rnn_jax.core.spec import NetworkSpec
    from sparse_rnn_jax.models import registry
    from sparse_rnn_jax.models.block import FAMILY, block_rnn_forward, init_model

    @dataclasses.dataclass(frozen=True)
    class OtherSpec(NetworkSpec):
        @property
        def family(self) -> str:
            return "other_block"

    monkeypatch.setitem(registry.FAMILIES, "other_block", FAMILY._replace(name="other_block"))
    spec = OtherSpec(X, HIDDEN, Y)
    cls = module_class("other_block")
    assert cls is module_class("other_block") and issubclass(cls, RecurrentModel) and cls.family == "other_block"
    model = RecurrentModel.from_arrays(spec, *init_model(spec, 4))
    assert type(model) is cls
    x = toy_data(4)["x"]
    np.testing.assert_allclose(model(x), block_rnn_forward(*init_model(spec, 4), x), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unknown model family"):
        module_class("no_such_family")
