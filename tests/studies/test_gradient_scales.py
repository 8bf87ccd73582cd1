"""Per-lag gradient scales: the closed form of a leaky linear recurrence, a brute-force Jacobian for gated
and cell families, padding invariance, and the decay summary."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.core.cell_spec import CellSpec
from sparse_rnn_jax.core.leaky_spec import LeakySpec
from sparse_rnn_jax.core.spec import make_spec
from sparse_rnn_jax.engine.population import Chunk, Member, stack_chunk
from sparse_rnn_jax.models.registry import family_of
from sparse_rnn_jax.studies.gradient_scales import (
    decay_summary,
    gradient_scales,
    scales_frame,
    state_shape,
    step_fn,
    summarise,
)

H, X, Y, T = 5, 3, 2, 9


def _linear_leaky(alpha, seed):
    """A fixed-α leaky relu RNN whose pre-activations stay positive (relu acts as the identity) and whose y
    never feeds h (W_hy = 0): ∂h_T/∂h_{T-k} = ((1 - α) I + α W_hh)^k exactly."""
    spec = LeakySpec(make_spec(X, H, Y, densities=1.0, init_std=0.3), "fixed", alpha)
    arrays = family_of(spec).init(spec, seed, H)
    params = dict(arrays.params)
    params["W_hy"] = np.zeros_like(params["W_hy"])
    w = np.abs(params["W_hh"])  # non-negative with row sums < 1: h >= 0 and the pre-activations stay > 0
    params["W_hh"] = (0.9 * w / w.sum(axis=1).max()).astype(np.float32)
    params["W_hx"] = params["W_hx"] * 0.1
    params["b_h"] = np.full(H, 5.0, np.float32)
    return spec, params, arrays.masks


def test_leaky_linear_recurrence_matches_closed_form():
    x = np.random.default_rng(0).normal(size=(4, T, X)).astype(np.float32)
    models = [_linear_leaky(a, s) for a, s in ((0.3, 1), (0.8, 2), (1.0, 3))]
    params = {k: np.stack([m[1][k] for m in models]) for k in models[0][1]}
    masks = {k: np.stack([np.asarray(m[2][k]) for m in models]) for k in models[0][2]}
    scales = gradient_scales("leaky_fixed", "relu", params, masks, x, [H] * 3, max_lag=7)
    assert scales.shape == (3, 7)
    for i, (spec, p, _) in enumerate(models):
        jac = (1 - spec.alpha) * np.eye(H) + spec.alpha * p["W_hh"].astype(np.float64)
        expected = [np.linalg.norm(np.linalg.matrix_power(jac, k)) / math.sqrt(H) for k in range(1, 8)]
        np.testing.assert_allclose(scales[i], expected, rtol=2e-5)
    # A slower leak (small α) keeps gradients alive longer.
    summary = summarise(scales_frame([0, 1, 2], scales)).set_index("model_id")
    assert summary.loc[0, "decay_rate"] < summary.loc[1, "decay_rate"]


def _brute_force(family, activation, params, masks, x, k):
    """|| ∂h_T/∂h_{T-k} ||_F per sequence by jax.jacrev of the last k steps (no scan tricks)."""
    step = step_fn(family, activation)
    hidden, size = state_shape(family, params)
    out = []
    for b in range(x.shape[0]):
        z = jnp.zeros((1, size))
        for t in range(x.shape[1] - k):
            z = step(params, masks, z, x[b : b + 1, t])

        def last_h(zz, b=b):
            for t in range(x.shape[1] - k, x.shape[1]):
                zz = step(params, masks, zz, x[b : b + 1, t])
            return zz[0, :hidden]

        jac = jax.jacrev(last_h)(z)[:H, 0, :H]  # the real units (padded ones carry their own zero state)
        out.append(float(jnp.linalg.norm(jac)))
    return np.asarray(out)


@pytest.mark.parametrize("family", ["leaky_gated", "gru", "lstm"])
def test_scales_match_a_brute_force_jacobian_and_ignore_padding(family):
    if family == "leaky_gated":
        spec = LeakySpec(make_spec(X, H, Y, densities=0.7, init_std=0.5, activation="tanh"), "gated", 0.4)
    else:
        spec = CellSpec(family, X, H, Y)
    x = np.random.default_rng(1).normal(size=(2, 6, X)).astype(np.float32)
    chunk = Chunk(0, 0, H + 3, (Member(0, spec, 4, "t"),))
    params, masks, _ = stack_chunk(chunk)  # padded to H + 3
    if family == "leaky_gated":  # a gate that is not constant
        params["W_ax"] = np.random.default_rng(2).normal(size=params["W_ax"].shape).astype(np.float32) * masks["W_ax"]
        params["W_ah"] = np.random.default_rng(3).normal(size=params["W_ah"].shape).astype(np.float32) * masks["W_ah"]
    scales = gradient_scales(family, spec.activation, params, masks, x, [H], max_lag=10)
    assert scales.shape == (1, 6)  # K = min(max_lag, T)
    one = {k: v[0] for k, v in params.items()}, {k: v[0] for k, v in masks.items()}
    for k in (1, 6):
        expected = _brute_force(family, spec.activation, *one, x, k).mean() / math.sqrt(H)
        np.testing.assert_allclose(scales[0, k - 1], expected, rtol=1e-4)
    alone = Chunk(0, 0, H, (Member(0, spec, 4, "t"),))
    p2, m2, _ = stack_chunk(alone)
    for k in ("W_ax", "W_ah"):
        if k in p2:
            p2[k] = params[k][:, :H, : p2[k].shape[2]]
    np.testing.assert_allclose(gradient_scales(family, spec.activation, p2, m2, x, [H], max_lag=10), scales, rtol=1e-5)


def test_decay_summary():
    rate = 0.5
    s = 2.0 * np.exp(-rate * np.arange(1, 11))
    d = decay_summary(s)
    assert d["decay_rate"] == pytest.approx(rate) and d["tau_1e"] == pytest.approx(1 + 1 / rate)
    assert not d["tau_censored"] and d["scale_lag1"] == pytest.approx(s[0])
    flat = decay_summary(np.ones(5))
    assert flat["tau_censored"] and math.isnan(flat["tau_1e"]) and flat["decay_rate"] == pytest.approx(0, abs=1e-12)
    dead = decay_summary(np.zeros(5))
    assert math.isnan(dead["decay_rate"]) and dead["tau_censored"]


def test_padded_sequences_end_at_their_own_last_step():
    spec = CellSpec("gru", X, H, Y)
    params, masks, _ = stack_chunk(Chunk(0, 0, H, (Member(0, spec, 4, "t"),)))
    x = np.random.default_rng(5).normal(size=(2, 6, X)).astype(np.float32)  # sequence 1 ends after 4 steps
    scales = gradient_scales("gru", "tanh", params, masks, x, [H], max_lag=6, lengths=[6, 4])
    one = {k: v[0] for k, v in params.items()}, {k: v[0] for k, v in masks.items()}
    for k in (1, 4, 5):
        per_seq = [_brute_force("gru", "tanh", *one, x[:1], k)[0]] + (
            [_brute_force("gru", "tanh", *one, x[1:, :4], k)[0]] if k <= 4 else []
        )
        np.testing.assert_allclose(scales[0, k - 1], np.mean(per_seq) / math.sqrt(H), rtol=1e-4)
    # Whatever follows a sequence's end changes nothing.
    x2 = x.copy()
    x2[1, 4:] = 100.0
    np.testing.assert_allclose(
        gradient_scales("gru", "tanh", params, masks, x2, [H], max_lag=6, lengths=[6, 4]), scales, rtol=1e-6
    )


def test_decay_summary_ignores_lags_without_sequences():
    s = np.concatenate([np.exp(-0.1 * np.arange(1, 6)), [np.nan, np.nan]])
    d = decay_summary(s)
    assert d["lags"] == 5 and d["tau_censored"] and d["decay_rate"] == pytest.approx(0.1)
