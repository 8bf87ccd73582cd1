"""Baseline recurrent cells at matched budgets: LSTM, GRU, RNN-tanh, RNN-ReLU, each with a dense readout
y_t = W_yh h_t + b_y at every step (the paper's purple LSTM of Fig. 1/2; the related thesis' four cells).

Equations (PyTorch's, one input bias per gate plus the GRU's separate b_hn):

  rnn_tanh / rnn_relu:  h' = act(W_i x + W_h h + b)
  lstm:  i, f, g, o = W_i x + W_h h + b  (gate order i, f, g, o);  c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(c')
  gru:   r, z, n = W_i x + b  and  W_h h  (order r, z, n);  r = s(x_r + h_r);  z = s(x_z + h_z);
         n = tanh(x_n + r (h_n + b_hn));  h' = (1 - z) n + z h

Parameters (H may be a padded hidden size; G gates): W_i f32[G, H, X], W_h f32[G, H, H], b f32[G, H],
W_yh f32[Y, H], b_y f32[Y] and, for GRU, b_hn f32[H]. Masks of the same shapes are False on padded units
(every weight touching them and their biases), which keeps padded units exactly 0: for LSTM i = f = o = 1/2
and g = 0 give c = h = 0; for GRU n = 0 and h = 0 give h' = 0.

Accounting: trainable *weights* (W_i, W_h, W_yh; biases excluded) are what a budget counts, as for the block
RNNs; ``cell_counts`` also reports the biases and their total. The hidden proportion of a cell is
weights(W_h) / (weights(W_i) + weights(W_h)): the share of the weights computing h' that receive h.
Initialisation as PyTorch's: every weight and bias ~ U(-1/sqrt(h), 1/sqrt(h)) at the true hidden size h.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.core.cell_spec import CELLS, GATES, CellSpec, cell_counts
from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.models.family import Family, empty_spec_columns, paper_named_spec
from sparse_rnn_jax.models.masks import ModelArrays, masked_params
from sparse_rnn_jax.models.precision import COMPUTE_DTYPES, data_product

WEIGHT_KEYS: dict[str, str] = {"W_i": "W_i", "W_h": "W_h", "W_yh": "W_yh"}
"""param key -> mask key of a cell's weight arrays (each gate's rows stacked in one array, like PyTorch's)."""


def init_cell(spec: CellSpec, seed: int, padded_hidden_dim: int | None = None, mask_mode: str = "exact") -> ModelArrays:
    """Parameters (PyTorch's U(-1/sqrt(h), 1/sqrt(h))) and padding masks, drawn from ``seed`` at the true
    hidden size and zero-padded to ``padded_hidden_dim`` (cells are dense: ``mask_mode`` does not apply)."""
    h = spec.hidden_dim
    hp = h if padded_hidden_dim is None else int(padded_hidden_dim)
    if hp < h:
        raise ValueError(f"padded_hidden_dim {hp} < hidden_dim {h}")
    g, x, y = GATES[spec.cell], spec.input_dim, spec.output_dim
    rng = core_rng(seed, 0xCE11)
    k = 1.0 / math.sqrt(h)
    true_shapes = {"W_i": (g, h, x), "W_h": (g, h, h), "b": (g, h), "W_yh": (y, h), "b_y": (y,)}
    padded_shapes = {"W_i": (g, hp, x), "W_h": (g, hp, hp), "b": (g, hp), "W_yh": (y, hp), "b_y": (y,)}
    if spec.cell == "gru":
        true_shapes["b_hn"], padded_shapes["b_hn"] = (h,), (hp,)
    params, masks = {}, {}
    for name, shape in true_shapes.items():
        p = np.zeros(padded_shapes[name], np.float32)
        m = np.zeros(padded_shapes[name], bool)
        region = tuple(slice(0, s) for s in shape)
        p[region] = rng.uniform(-k, k, size=shape).astype(np.float32)
        m[region] = True
        params[name], masks[name] = p, m
    return ModelArrays(params, masks)


def state_size(cell: str, hidden_dim: int) -> int:
    """Size of the flat recurrent state: [h; c] for LSTM, h otherwise."""
    return 2 * hidden_dim if cell == "lstm" else hidden_dim


def _recurrence(cell: str, p: Mapping[str, jax.Array], hidden: int):
    """(state f32[B, S], projected input f32[B, G, H]) -> new state; S = state_size."""
    w_h = p["W_h"]  # [G, H, H]

    def rec(state, xp):
        if cell == "lstm":
            h, c = state[:, :hidden], state[:, hidden:]
            gates = xp + jnp.einsum("bh,gkh->bgk", h, w_h)
            i, f, g, o = (gates[:, j] for j in range(4))
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            return jnp.concatenate([jax.nn.sigmoid(o) * jnp.tanh(c), c], axis=-1)
        if cell == "gru":
            hh = jnp.einsum("bh,gkh->bgk", state, w_h)
            r = jax.nn.sigmoid(xp[:, 0] + hh[:, 0])
            z = jax.nn.sigmoid(xp[:, 1] + hh[:, 1])
            n = jnp.tanh(xp[:, 2] + r * (hh[:, 2] + p["b_hn"]))
            return (1.0 - z) * n + z * state
        pre = xp[:, 0] + state @ w_h[0].T
        return jnp.tanh(pre) if cell == "rnn_tanh" else jax.nn.relu(pre)

    return rec


def cell_forward(
    cell: str,
    params: Mapping[str, jax.Array],
    masks: Mapping[str, jax.Array],
    x: jax.Array,
    unroll: int = 1,
    compute_dtype: str = "float32",
) -> jax.Array:
    """x f32[B, T, X] -> y f32[B, T, Y]; the input projections of all steps are one product before the scan, with
    operands in ``compute_dtype`` (``models.precision``; the recurrence stays float32)."""
    p = masked_params(params, masks, {})
    hidden = p["W_h"].shape[1]
    projected = data_product("btx,gkx->tbgk", x, p["W_i"], compute_dtype) + p["b"]  # [T, B, G, H]
    rec = _recurrence(cell, p, hidden)

    def step(state, xp):
        state = rec(state, xp)
        return state, state[:, :hidden]

    s0 = jnp.zeros((x.shape[0], state_size(cell, hidden)), x.dtype)
    _, hs = jax.lax.scan(step, s0, projected, unroll=unroll)
    y = jnp.einsum("tbh,yh->bty", hs, p["W_yh"]) + p["b_y"]
    return y


def cell_step(
    cell: str,
    p: Mapping[str, jax.Array],
    state: jax.Array,
    x_t: jax.Array,
    hidden_dim: int | None = None,
    activation: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """One step on masked params ``p`` (``prepare``): state f32[B, S], x_t f32[B, X] -> (state, y_t f32[B, Y]).
    The cell fixes its own activation; ``hidden_dim`` and ``activation`` are the Family protocol's."""
    hidden = p["W_h"].shape[1]
    state = _recurrence(cell, p, hidden)(state, jnp.einsum("bx,gkx->bgk", x_t, p["W_i"]) + p["b"])
    return state, state[:, :hidden] @ p["W_yh"].T + p["b_y"]


def result_columns(spec: CellSpec, seed: int | None = None) -> dict:
    """A cell's results columns: no blocks (density, init mean and std NaN), model density 1 and hidden proportion
    weights(W_h) / (weights(W_i) + weights(W_h))."""
    counts = cell_counts(spec.cell, spec.input_dim, spec.hidden_dim, spec.output_dim)
    row = empty_spec_columns()
    row.update(
        hidden_dim=spec.hidden_dim,
        input_dim=spec.input_dim,
        output_dim=spec.output_dim,
        trainable_params=float(counts.weights),
        model_density=1.0,
        hidden_proportion=counts.hidden_proportion,
        learning_rate=spec.learning_rate,
        activation=spec.activation,
    )
    return row


def matmul_flops(cell: str, input_dim: int, hidden_dim: int, output_dim: int) -> float:
    """Forward matrix FLOPs (2 x MACs) of one sequence step of ``cell``."""
    return 2.0 * (GATES[cell] * hidden_dim * (input_dim + hidden_dim) + output_dim * hidden_dim)


def _family(cell: str) -> Family:
    return Family(
        name=cell,
        init=init_cell,
        forward=lambda params, masks, x, activation=None, unroll=1, compute_dtype="float32": cell_forward(
            cell, params, masks, x, unroll, compute_dtype
        ),
        prepare=lambda params, masks: masked_params(params, masks, {}),
        step=functools.partial(cell_step, cell),
        dims=lambda params: (params["W_i"].shape[-1], params["W_h"].shape[-1], params["W_yh"].shape[-2]),
        state_size=lambda hidden_dim, output_dim: state_size(cell, hidden_dim),
        real_units=lambda masks: masks["b"][0],
        matmul_flops=functools.partial(matmul_flops, cell),
        weight_keys=WEIGHT_KEYS,
        hidden_keys=("W_h",),
        top_row_keys=("W_i", "W_h"),
        result_columns=result_columns,
        compute_dtypes=COMPUTE_DTYPES,
        config_names=(cell,),
        named_spec=paper_named_spec,
    )


FAMILIES: tuple[Family, ...] = tuple(_family(c) for c in CELLS)
