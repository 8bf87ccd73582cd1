"""Leaky-integrator and gated block RNNs: the paper's block RNN (Eqn 5) whose hidden state moves only part
of the way towards its new value at each step.

    c_{t+1} = act(W_hx x_{t+1} + W_hh h_t + W_hy y_t + b_h)           the block RNN's update (candidate)
    h_{t+1} = (1 - α_{t+1}) ⊙ h_t + α_{t+1} ⊙ c_{t+1}
    y_{t+1} =      W_yx x_{t+1} + W_yh h_t + W_yy y_t + b_y             unchanged (reads h_t, as in Eqn 5)

α sets each unit's time scale: with a constant α and no drive a unit keeps (1 - α)^k of its state after k
steps, a time constant of -1 / ln(1 - α) ≈ 1 / α steps.
Modes (``LEAK_MODES``; the model family is ``leaky_<mode>``):

  fixed    α a scalar in (0, 1], the same for every unit and step; not trained. α = 1 is the block RNN.
  learned  α = sigmoid(a), a f32[H] trainable per unit, initialised to logit(α0).
  gated    α_{t+1} = sigmoid(W_ax x_{t+1} + W_ah h_t + b_a): an input- and state-dependent gate per unit.

Arrays (H = padded hidden size; see ``init.py`` for the block RNN's own):
  params: the block RNN's W_hx ... W_yy, b_h, b_y, plus
          learned: a f32[H];   gated: W_ax f32[H, X], W_ah f32[H, H], b_a f32[H]
  masks:  the block RNN's hx ... yy, b_h, b_y, plus a mask of the same key for every leak parameter
          (``W_ax``, ``W_ah``, ``b_a``, ``a``: False on padded units) and, for ``fixed``, ``alpha`` f32[]: the
          fixed α. It is static per-model data, so it travels in the masks collection (the engine's
          non-trained per-model arrays): a population may mix α values in one compiled program.

The gate's own parameters: W_ax has the density of hx and W_ah the density of hh (exact-count masks drawn
from the model's seed, independent of the hx/hh masks), so the gate costs round(d_hx H X) + round(d_hh H H)
weights, and b_a adds H biases. Gate weights start at 0 and b_a at logit(α0), so a gated model starts as the
fixed-α model with α = α0 and learns where to depart from it.

Accounting (``LeakySpec.result_columns``): the gate's weights W_ax and W_ah count toward
``trainable_params`` (expected: d_hx H X + d_hh H H more than the block RNN's; exact: their realised masks,
which the engine's ``trainable_params_exact`` counts because their mask keys start with ``W_``), toward the
weight-space entries of the model density (H X + H H more), and toward the hidden proportion, whose
numerator gains W_ah and denominator W_ax + W_ah (they compute h_{t+1}; W_ah receives h_t). The per-unit
vectors a and b_a are counted like biases: not in ``trainable_params``. ``fixed`` and ``learned`` add no
weights, so their counts equal the block RNN's.

Padded units (``masks["b_h"]`` False): every incoming weight and bias is masked, so the candidate is act(0) = 0;
their a, W_ax/W_ah rows and b_a are masked as well, so α = sigmoid(0) = 1/2 there (fixed: the given α), and
h' = (1 - α) 0 + α 0 = 0: padded units stay exactly 0, and the real units never read them (masked columns).
"""

from __future__ import annotations

import functools
import math
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.core.leaky_spec import GATE_WEIGHTS, LEAK_MODES, LeakySpec
from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.models import block
from sparse_rnn_jax.models.block import ACTIVATION_FNS, init_model
from sparse_rnn_jax.models.family import Family
from sparse_rnn_jax.models.masks import ModelArrays, block_mask, masked
from sparse_rnn_jax.models.precision import COMPUTE_DTYPES, data_product


def logit(p: float) -> float:
    """log(p / (1 - p))."""
    return math.log(p) - math.log1p(-p)


def init_leaky(
    spec: LeakySpec, seed: int, padded_hidden_dim: int | None = None, mask_mode: str = "exact"
) -> ModelArrays:
    """The block RNN's arrays of ``spec.base`` from ``seed`` (identical to ``init_model``'s) plus the leak
    parameters and masks, zero-padded to ``padded_hidden_dim``."""
    arrays = init_model(spec.base, seed, padded_hidden_dim, mask_mode)
    params, masks = dict(arrays.params), dict(arrays.masks)
    hp = params["W_hh"].shape[0]
    h, x = spec.hidden_dim, spec.input_dim
    real = np.arange(hp) < h
    if spec.mode == "fixed":
        masks["alpha"] = np.asarray(spec.alpha, np.float32)
    elif spec.mode == "learned":
        params["a"] = np.where(real, np.float32(logit(spec.alpha)), 0).astype(np.float32)
        masks["a"] = real.copy()
    else:
        for i, (key, cols, block) in enumerate((("W_ax", x, "hx"), ("W_ah", h, "hh"))):
            rng = core_rng(seed, 0x1EA4, i)
            m = np.zeros((hp, hp if key == "W_ah" else x), bool)
            m[:h, :cols] = block_mask(rng, h, cols, spec.base.density(block), mask_mode)
            masks[key] = m
            params[key] = np.zeros(m.shape, np.float32)
        params["b_a"] = np.where(real, np.float32(logit(spec.alpha)), 0).astype(np.float32)
        masks["b_a"] = real.copy()
    return ModelArrays(params, masks)


def _masked(params: Mapping[str, jax.Array], masks: Mapping[str, jax.Array], key: str) -> jax.Array:
    return masked(params[key], masks[key])


class LeakyStepWeights(NamedTuple):
    """Effective weights of a leaky block RNN arranged for stepping (S = H + Y), masked once.

    w_in_t: f32[X, S] or, gated, f32[X, S + H] (W_ax^T appended).  w_rec_t: f32[S, S] or f32[S, S + H]
    (W_ah^T appended, zero rows for y).  bias: f32[S] or f32[S + H] (b_a appended).
    alpha: fixed f32[], learned f32[H], gated None (computed from columns S.. of each step's product).
    """

    w_in_t: jax.Array | None
    w_rec_t: jax.Array
    bias: jax.Array
    alpha: jax.Array | None


def prepare_leaky_weights(
    mode: str, params: Mapping[str, jax.Array], masks: Mapping[str, jax.Array]
) -> LeakyStepWeights:
    """Masks the blocks and leak parameters and concatenates them: the gated mode appends W_ax to the input
    matrix and W_ah to the recurrent one, so a step is still one product of [h; y] with one matrix."""
    p = _effective(mode, params, masks)
    w_in_t = jnp.concatenate([p["W_hx"], p["W_yx"]] + ([p["W_ax"]] if mode == "gated" else []), axis=0).T
    return _recurrent_weights(mode, p, masks)._replace(w_in_t=w_in_t)


def _effective(mode: str, params: Mapping[str, jax.Array], masks: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The block RNN's effective blocks and biases plus the mode's masked leak parameters."""
    if mode not in LEAK_MODES:
        raise ValueError(f"leak mode must be one of {LEAK_MODES}, got {mode!r}")
    p = block.apply_masks(params, masks)
    extra = {"learned": ("a",), "gated": ("W_ax", "W_ah", "b_a")}.get(mode, ())
    p.update({k: _masked(params, masks, k) for k in extra})
    return p


def _recurrent_weights(mode: str, p: Mapping[str, jax.Array], masks: Mapping[str, jax.Array]) -> LeakyStepWeights:
    """Everything but the input matrix (``w_in_t`` None) from the effective parameters ``p``."""
    w_rec_t = block.recurrent_matrix(p)
    bias = jnp.concatenate([p["b_h"], p["b_y"]])
    if mode == "fixed":
        return LeakyStepWeights(None, w_rec_t, bias, masks["alpha"])
    if mode == "learned":
        return LeakyStepWeights(None, w_rec_t, bias, jax.nn.sigmoid(p["a"]))
    hidden, state_size = p["W_hh"].shape[0], w_rec_t.shape[0]
    gate_rec = jnp.concatenate([p["W_ah"].T, jnp.zeros((state_size - hidden, hidden), w_rec_t.dtype)], axis=0)
    return LeakyStepWeights(None, jnp.concatenate([w_rec_t, gate_rec], axis=1), jnp.concatenate([bias, p["b_a"]]), None)


def _update(
    weights: LeakyStepWeights, z: jax.Array, proj_t: jax.Array, hidden: int, activation: str
) -> tuple[jax.Array, jax.Array]:
    """One step from the state z f32[B, S] and this step's input projection (bias included) ->
    (z_{t+1} f32[B, S], y_{t+1} f32[B, Y])."""
    state_size = weights.w_rec_t.shape[0]
    pre = proj_t + z @ weights.w_rec_t
    alpha = jax.nn.sigmoid(pre[:, state_size:]) if weights.alpha is None else weights.alpha
    h_new = (1.0 - alpha) * z[:, :hidden] + alpha * ACTIVATION_FNS[activation](pre[:, :hidden])
    y = pre[:, hidden:state_size]
    return jnp.concatenate([h_new, y], axis=-1), y


def leaky_step(
    weights: LeakyStepWeights,
    state: jax.Array,
    x_t: jax.Array,
    hidden_dim: int,
    activation: str = "relu",
) -> tuple[jax.Array, jax.Array]:
    """One step on prepared weights: state f32[B, H+Y] (z_t = [h_t; y_t]), x_t f32[B, X] ->
    (z_{t+1}, y_{t+1} f32[B, Y])."""
    return _update(weights, state, x_t @ weights.w_in_t + weights.bias, hidden_dim, activation)


def leaky_forward(
    mode: str,
    params: Mapping[str, jax.Array],
    masks: Mapping[str, jax.Array],
    x: jax.Array,
    activation: str = "relu",
    unroll: int = 1,
    compute_dtype: str = "float32",
) -> jax.Array:
    """Runs a leaky block RNN over a batch: x f32[B, T, X] -> y f32[B, T, Y] (module docstring). As in
    ``block.block_rnn_forward``, every step's input projection is one product before the scan, with operands in
    ``compute_dtype`` (``models.precision``)."""
    p = _effective(mode, params, masks)
    w = _recurrent_weights(mode, p, masks)
    hidden = params["W_hh"].shape[0]
    projected = block.input_projection(p, x, compute_dtype)  # [T, B, S], each block contracted as stored
    if mode == "gated":
        projected = jnp.concatenate([projected, data_product("btx,hx->tbh", x, p["W_ax"], compute_dtype)], axis=-1)
    projected = projected + w.bias  # [T, B, S (+H)]
    z0 = jnp.zeros((x.shape[0], w.w_rec_t.shape[0]), x.dtype)
    _, ys = jax.lax.scan(lambda z, pr: _update(w, z, pr, hidden, activation), z0, projected, unroll=unroll)
    return jnp.swapaxes(ys, 0, 1)


def result_columns(spec: LeakySpec, seed: int | None = None) -> dict:
    """The base block RNN's columns with the leak mode and alpha, and the gate's weights counted (gated)."""
    return {**block.result_columns(spec.base, seed), **spec.result_columns()}


def matmul_flops(mode: str, input_dim: int, hidden_dim: int, output_dim: int) -> float:
    """Forward matrix FLOPs of one step: the gated mode's products have H more columns (W_ax, W_ah)."""
    state = hidden_dim + output_dim
    cols = state + (hidden_dim if mode == "gated" else 0)
    return 2.0 * (input_dim * cols + state * cols)


def _family(mode: str) -> Family:
    gated = mode == "gated"
    return Family(
        name=f"leaky_{mode}",
        init=init_leaky,
        forward=functools.partial(leaky_forward, mode),
        prepare=functools.partial(prepare_leaky_weights, mode),
        step=leaky_step,
        dims=block.FAMILY.dims,
        state_size=block.FAMILY.state_size,
        real_units=block.FAMILY.real_units,
        matmul_flops=functools.partial(matmul_flops, mode),
        weight_keys={**block.WEIGHT_KEYS, **({k: k for k in GATE_WEIGHTS} if gated else {})},
        hidden_keys=("W_hh", "W_ah") if gated else ("W_hh",),
        top_row_keys=block.FAMILY.top_row_keys + (GATE_WEIGHTS if gated else ()),
        result_columns=result_columns,
        compute_dtypes=COMPUTE_DTYPES,
    )


FAMILIES: tuple[Family, ...] = tuple(_family(m) for m in LEAK_MODES)
