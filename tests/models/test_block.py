"""The block RNN against an independent numpy loop of Eqn 5; masks, gradients, Adam, padding."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_rnn_jax.core.spec import BLOCKS, make_spec
from sparse_rnn_jax.models.block import block_rnn_forward, block_rnn_step, init_model

DENS = {"hx": 0.3, "hh": 0.5, "hy": 0.7, "yx": 0.2, "yh": 0.9, "yy": 0.4}


def numpy_eqn5(spec, params, masks, x):
    """Plain loop over time and batch items of Eqn 5 (float64)."""
    W = {b: np.asarray(params[f"W_{b}"], np.float64) * masks[b] for b in BLOCKS}
    bh = np.asarray(params["b_h"], np.float64) * masks["b_h"]
    by = np.asarray(params["b_y"], np.float64) * masks["b_y"]
    act = (lambda v: np.maximum(v, 0)) if spec.activation == "relu" else np.tanh
    B, T, _ = x.shape
    out = np.zeros((B, T, spec.output_dim))
    for i in range(B):
        h = np.zeros(W["hh"].shape[0])
        y = np.zeros(spec.output_dim)
        for t in range(T):
            xt = x[i, t].astype(np.float64)
            h_new = act(W["hx"] @ xt + W["hh"] @ h + W["hy"] @ y + bh)
            y_new = W["yx"] @ xt + W["yh"] @ h + W["yy"] @ y + by
            h, y = h_new, y_new
            out[i, t] = y
    return out


def _random_biases(params, seed):
    rng = np.random.default_rng(seed)
    p = dict(params)
    p["b_h"] = rng.normal(0, 0.1, p["b_h"].shape).astype(np.float32)
    p["b_y"] = rng.normal(0, 0.1, p["b_y"].shape).astype(np.float32)
    return p


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forward_matches_numpy_loop(activation):
    spec = make_spec(13, 9, 5, DENS, init_std=0.3, activation=activation)
    arrays = init_model(spec, seed=0)
    params = _random_biases(arrays.params, 1)
    x = np.random.default_rng(2).normal(size=(4, 7, 13)).astype(np.float32)
    y = np.asarray(jax.jit(block_rnn_forward, static_argnames="activation")(params, arrays.masks, x, activation))
    ref = numpy_eqn5(spec, params, arrays.masks, x)
    assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) < 1e-5


def test_step_matches_forward():
    spec = make_spec(6, 5, 3, DENS, init_std=0.4)
    arrays = init_model(spec, seed=4)
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype(np.float32)
    full = block_rnn_forward(arrays.params, arrays.masks, x)
    z = jnp.zeros((2, 5 + 3), jnp.float32)
    for t in range(5):
        z, y = block_rnn_step(arrays.params, arrays.masks, z, x[:, t])
        np.testing.assert_allclose(y, full[:, t], rtol=1e-5, atol=1e-6)


def test_masked_gradients_zero_and_weights_stay_zero_under_adam():
    spec = make_spec(10, 8, 4, DENS, init_std=0.3)
    arrays = init_model(spec, seed=5, padded_hidden_dim=11)
    masks = {k: jnp.asarray(v) for k, v in arrays.masks.items()}
    params = {k: jnp.asarray(v) for k, v in arrays.params.items()}
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 6, 10)), jnp.float32)
    target = jnp.asarray(rng.normal(size=(3, 6, 4)), jnp.float32)

    def loss(p):
        return jnp.mean((block_rnn_forward(p, masks, x) - target) ** 2)

    grads = jax.grad(loss)(params)
    for b in BLOCKS:
        g = np.asarray(grads[f"W_{b}"])
        assert np.all(g[~arrays.masks[b]] == 0.0), b
        assert np.any(g[arrays.masks[b]] != 0.0), b
    assert np.all(np.asarray(grads["b_h"])[~arrays.masks["b_h"]] == 0.0)

    tx = optax.adam(1e-2)
    state = tx.init(params)
    step = jax.jit(lambda p, s: _adam_step(tx, loss, p, s))
    for _ in range(50):
        params, state = step(params, state)
    for b in BLOCKS:
        w = np.asarray(params[f"W_{b}"])
        assert np.all(w[~arrays.masks[b]] == 0.0), b
        assert not np.allclose(w[arrays.masks[b]], arrays.params[f"W_{b}"][arrays.masks[b]]), b
    assert np.all(np.asarray(params["b_h"])[~arrays.masks["b_h"]] == 0.0)


def _adam_step(tx, loss, p, s):
    g = jax.grad(loss)(p)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s


def test_padding_changes_nothing():
    spec = make_spec(12, 6, 4, DENS, init_std=0.3, activation="tanh")
    x = np.random.default_rng(0).normal(size=(3, 5, 12)).astype(np.float32)
    alone = init_model(spec, seed=9)
    padded = init_model(spec, seed=9, padded_hidden_dim=17)
    for b in BLOCKS:
        r, c = spec.block_shape(b)
        np.testing.assert_array_equal(padded.params[f"W_{b}"][:r, :c], alone.params[f"W_{b}"])
    y0 = block_rnn_forward(_random_biases(alone.params, 3), alone.masks, x, "tanh")
    pb = _random_biases(alone.params, 3)
    pp = dict(padded.params)
    pp["b_h"] = np.zeros(17, np.float32)
    pp["b_h"][:6] = pb["b_h"]
    pp["b_h"][6:] = 5.0  # garbage in padded biases is masked out
    pp["b_y"] = pb["b_y"]
    y1 = block_rnn_forward(pp, padded.masks, x, "tanh")
    chex.assert_trees_all_close(y0, y1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_hand_written_bptt_equals_autodiff(activation):
    """The recurrence's hand-written gradient equals autodiff's through the same scan (padded units included)."""
    from sparse_rnn_jax.models.block import ACTIVATION_FNS, apply_masks, input_projection, recurrent_matrix

    spec = make_spec(7, 6, 3, DENS, init_std=0.4, activation=activation)
    arrays = init_model(spec, seed=3, padded_hidden_dim=9)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5, 7)), jnp.float32)
    act = ACTIVATION_FNS[activation]

    def autodiff_forward(params):
        p = apply_masks(params, arrays.masks)
        proj = input_projection(p, x) + jnp.concatenate([p["b_h"], p["b_y"]])
        w = recurrent_matrix(p)

        def step(z, pr):
            pre = pr + z @ w
            return jnp.concatenate([act(pre[:, :9]), pre[:, 9:]], -1), pre[:, 9:]

        return jnp.swapaxes(jax.lax.scan(step, jnp.zeros((4, w.shape[0])), proj)[1], 0, 1)

    loss = lambda f: lambda params: jnp.sum(jnp.sin(f(params)))  # noqa: E731
    want = jax.grad(loss(autodiff_forward))(arrays.params)
    got = jax.grad(loss(lambda params: block_rnn_forward(params, arrays.masks, x, activation)))(arrays.params)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)
    for b in BLOCKS:  # masked (and padded) entries still get exactly zero gradient
        assert np.all(np.asarray(got[f"W_{b}"])[~arrays.masks[b]] == 0)
