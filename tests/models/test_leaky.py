"""Leaky-integrator and gated block RNNs: forward against an independent numpy loop for every mode, α = 1
equals the block RNN exactly, padding invariance, accounting of the gate, training in the engine."""

import numpy as np
import pytest

from sparse_rnn_jax.core.leaky_spec import LEAK_MODES, LeakySpec
from sparse_rnn_jax.core.spec import make_spec
from sparse_rnn_jax.engine.population import Member, model_seed
from sparse_rnn_jax.engine.programs import forward_fn
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.engine.sweep import TrainConfig, run_sweep
from sparse_rnn_jax.models.block import block_rnn_forward
from sparse_rnn_jax.models.leaky import init_leaky, leaky_forward, leaky_step, prepare_leaky_weights
from sparse_rnn_jax.models.registry import get_family
from tests.toy import toy_data, toy_members, toy_task

DENSITIES = {"hx": 0.6, "hh": 0.5, "hy": 0.8, "yx": 0.7, "yh": 1.0, "yy": 0.4}


def _spec(mode, alpha=0.3, hidden=6, activation="tanh"):
    base = make_spec(5, hidden, 3, densities=DENSITIES, init_std=0.4, activation=activation)
    return LeakySpec(base, mode, alpha)


def _randomise_leak(arrays, seed=0):
    """Non-trivial leak parameters (the gate starts at 0): random values on the trainable entries."""
    rng = np.random.default_rng(seed)
    params = dict(arrays.params)
    for k in ("a", "W_ax", "W_ah", "b_a"):
        if k in params:
            params[k] = (rng.normal(size=params[k].shape) * 0.8).astype(np.float32) * arrays.masks[k]
    params["b_h"] = (rng.normal(size=params["b_h"].shape) * 0.3).astype(np.float32) * arrays.masks["b_h"]
    return params


def numpy_leaky(mode, p, m, x, activation):
    """Plain loops over batch items and steps, float64, the module docstring's equations."""
    w = {k: np.asarray(v, np.float64) * np.asarray(m[k], np.float64) for k, v in p.items() if k in m}
    wb = {b: np.asarray(p[f"W_{b}"], np.float64) * m[b] for b in ("hx", "hh", "hy", "yx", "yh", "yy")}
    act = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    H = wb["hh"].shape[0]
    out = np.zeros((x.shape[0], x.shape[1], wb["yy"].shape[0]))
    for b in range(x.shape[0]):
        h, y = np.zeros(H), np.zeros(wb["yy"].shape[0])
        for t in range(x.shape[1]):
            xt = x[b, t].astype(np.float64)
            cand = act(wb["hx"] @ xt + wb["hh"] @ h + wb["hy"] @ y + w["b_h"])
            if mode == "fixed":
                alpha = float(m["alpha"])
            elif mode == "learned":
                alpha = sig(w["a"])
            else:
                alpha = sig(w["W_ax"] @ xt + w["W_ah"] @ h + w["b_a"])
            y_new = wb["yx"] @ xt + wb["yh"] @ h + wb["yy"] @ y + w["b_y"]
            h = (1 - alpha) * h + alpha * cand
            y = y_new
            out[b, t] = y
    return out


@pytest.mark.parametrize(
    "mode, activation", [("fixed", "relu"), ("learned", "tanh"), ("gated", "relu"), ("gated", "tanh")]
)
def test_forward_matches_numpy_loop(mode, activation):
    spec = _spec(mode, activation=activation)
    arrays = init_leaky(spec, seed=3)
    params = _randomise_leak(arrays)
    x = np.random.default_rng(1).normal(size=(3, 7, 5)).astype(np.float32)
    y = np.asarray(leaky_forward(mode, params, arrays.masks, x, activation))
    ref = numpy_leaky(mode, params, arrays.masks, x, activation)
    assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) < 1e-5
    # The engine's forward of the family is the same function; one carried step at a time agrees too.
    np.testing.assert_array_equal(np.asarray(forward_fn(spec.family, activation)(params, arrays.masks, x)), y)
    state = np.zeros((3, params["W_hh"].shape[0] + 3), np.float32)
    for t in range(7):
        state, y_t = leaky_step(
            prepare_leaky_weights(mode, params, arrays.masks), state, x[:, t], params["W_hh"].shape[0], activation
        )
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu"])
def test_fixed_alpha_one_is_the_block_rnn_exactly(activation):
    spec = _spec("fixed", alpha=1.0, activation=activation)
    leaky_arrays = get_family(spec.family).init(spec, 7, 9)
    block_arrays = get_family("block").init(spec.base, 7, 9)
    for k, v in block_arrays.params.items():  # the same seed draws the same block RNN
        np.testing.assert_array_equal(leaky_arrays.params[k], v)
    x = np.random.default_rng(2).normal(size=(4, 6, 5)).astype(np.float32)
    y_leaky = np.asarray(leaky_forward("fixed", leaky_arrays.params, leaky_arrays.masks, x, activation))
    y_block = np.asarray(block_rnn_forward(block_arrays.params, block_arrays.masks, x, activation))
    np.testing.assert_array_equal(y_leaky, y_block)


@pytest.mark.parametrize("mode", LEAK_MODES)
def test_padding_changes_nothing(mode):
    spec = _spec(mode, activation="relu")
    alone = init_leaky(spec, seed=5)
    padded = init_leaky(spec, seed=5, padded_hidden_dim=11)
    p_alone = _randomise_leak(alone, seed=1)
    p_padded = {k: np.zeros_like(v) for k, v in padded.params.items()}
    for k, v in p_alone.items():  # the same values on the real units, zeros elsewhere
        p_padded[k][tuple(slice(0, s) for s in v.shape)] = v
    # Garbage in the padded entries must change nothing either: they are masked.
    rng = np.random.default_rng(0)
    mask_of = lambda k: padded.masks[k[2:] if k[2:] in padded.masks else k]  # noqa: E731  (W_hx -> hx)
    p_garbage = {k: np.where(mask_of(k), v, rng.normal(size=v.shape).astype(np.float32)) for k, v in p_padded.items()}
    x = np.random.default_rng(3).normal(size=(2, 8, 5)).astype(np.float32)
    y0 = np.asarray(leaky_forward(mode, p_alone, alone.masks, x, "relu"))
    for p in (p_padded, p_garbage):
        y1 = np.asarray(leaky_forward(mode, p, padded.masks, x, "relu"))
        np.testing.assert_allclose(y0, y1, rtol=1e-5, atol=1e-6)
    # The padded units' state stays exactly 0 through every step.
    state = np.zeros((2, 11 + 3), np.float32)
    for t in range(8):
        state, _ = leaky_step(prepare_leaky_weights(mode, p_garbage, padded.masks), state, x[:, t], 11, "relu")
        assert np.all(np.asarray(state)[:, 6:11] == 0)


def test_accounting_counts_the_gate_exactly():
    spec = _spec("gated", hidden=6)
    arrays = init_leaky(spec, seed=0)
    cols = spec_columns(spec)
    base_cols = spec_columns(spec.base)
    h, x = 6, 5
    gate_expected = 0.6 * h * x + 0.5 * h * h
    assert cols["trainable_params"] == pytest.approx(base_cols["trainable_params"] + gate_expected)
    assert arrays.masks["W_ax"].sum() == round(0.6 * h * x) and arrays.masks["W_ah"].sum() == round(0.5 * h * h)
    assert (cols["leak_mode"], cols["leak_alpha"]) == ("gated", 0.3)
    assert base_cols["leak_mode"] == "none" and np.isnan(base_cols["leak_alpha"])
    for mode in ("fixed", "learned"):  # no weights added
        c = spec_columns(_spec(mode))
        assert (c["trainable_params"], c["hidden_proportion"]) == (
            base_cols["trainable_params"],
            base_cols["hidden_proportion"],
        )
    # A gated model starts as the fixed-α model with α = α0.
    xs = np.random.default_rng(0).normal(size=(2, 5, 5)).astype(np.float32)
    fixed = init_leaky(_spec("fixed"), seed=0)
    np.testing.assert_allclose(
        leaky_forward("gated", arrays.params, arrays.masks, xs, "tanh"),
        leaky_forward("fixed", fixed.params, fixed.masks, xs, "tanh"),
        rtol=1e-5,
        atol=1e-6,
    )
    flops = {f: get_family(f).matmul_flops(x, h, 3) for f in ("leaky_gated", "leaky_fixed", "block")}
    assert flops["leaky_gated"] > flops["leaky_fixed"] == flops["block"]
    with pytest.raises(ValueError, match="alpha"):
        LeakySpec(spec.base, "learned", 1.0)
    with pytest.raises(ValueError, match="mode"):
        LeakySpec(spec.base, "bogus", 0.5)
    assert spec.replace(hidden_dim=9).hidden_dim == 9 and spec.replace(alpha=0.7).alpha == 0.7


def test_learned_alpha_trains_in_the_engine(tmp_path):
    """The engine trains a leaky family like any other (the gated family trains in tests/experiments/test_prune.py)."""
    from sparse_rnn_jax.engine.population import make_chunks
    from sparse_rnn_jax.engine.sweep import load_final_params

    members = [
        Member(10 + i, LeakySpec(m.spec, "learned", 0.5), model_seed(0, 10 + i), m.config)
        for i, m in enumerate(toy_members(2))
    ]
    cfg = TrainConfig(epochs=2, batch_size=16, eval_batch_size=48, max_buckets=1, steps_per_call=6)
    df = run_sweep(
        members, toy_task(), toy_data(), toy_data(48, seed=1), cfg, tmp_path, progress=False, log=lambda _: None
    )
    assert (df.leak_mode == "learned").all() and (df.leak_alpha == 0.5).all()
    for m in members:
        rows = df[df.model_id == m.model_id].sort_values("epoch")
        assert rows.val_loss.iloc[-1] < rows.val_loss.iloc[0] and not rows.diverged.any()
    (chunk,) = make_chunks(members, 1, 8)
    params, masks = load_final_params(tmp_path, chunk)
    real = masks["a"]
    assert np.all(params["a"][~real] == 0) and np.any(params["a"][real] != np.float32(0.0))  # logit(0.5) = 0 moved


@pytest.mark.parametrize("mode", ["fixed", "learned", "gated"])
def test_environment_rollout_actor_carries_leaky_state(mode):
    """The rollout actor recognises leaky models and its carried steps equal the full forward."""
    from sparse_rnn_jax.core.leaky_spec import LeakySpec
    from sparse_rnn_jax.core.spec import make_spec
    from sparse_rnn_jax.models.leaky import leaky_forward
    from sparse_rnn_jax.tasks.adroit.rollout import make_population_actor

    spec = LeakySpec(make_spec(5, 4, 3, 0.6, init_std=0.3), mode, 0.4)
    arrays = get_family(spec.family).init(spec, 3, 6)
    x = np.random.default_rng(0).normal(size=(2, 5, 5)).astype(np.float32)
    full = np.asarray(leaky_forward(mode, arrays.params, arrays.masks, x, "relu"))
    act, state = make_population_actor(
        spec.family,
        {k: v[None] for k, v in arrays.params.items()},
        {k: v[None] for k, v in arrays.masks.items()},
        "relu",
        2,
        3,
    )
    for t in range(5):
        state, y = act(state, x[:, t])
        np.testing.assert_allclose(y, full[:, t], rtol=1e-5, atol=1e-6)
