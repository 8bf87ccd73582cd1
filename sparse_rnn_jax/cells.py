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

import dataclasses
import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.init import ModelArrays

CELLS: tuple[str, ...] = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES: dict[str, int] = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A baseline cell: which cell, its dims and learning rate (``name`` labels it in results)."""

    cell: str
    input_dim: int
    hidden_dim: int
    output_dim: int
    learning_rate: float = 1e-4
    name: str = ""

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        for f in ("input_dim", "hidden_dim", "output_dim"):
            v = getattr(self, f)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{f} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not self.name:
            object.__setattr__(self, "name", self.cell)

    @property
    def family(self) -> str:
        return self.cell

    @property
    def activation(self) -> str:
        return {"rnn_relu": "relu"}.get(self.cell, "tanh")

    def replace(self, **changes) -> "CellSpec":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class CellCounts:
    """Trainable counts of a cell network, exactly as trained."""

    input_weights: int  # W_i
    hidden_weights: int  # W_h
    readout_weights: int  # W_yh
    biases: int  # b, b_y (and b_hn)

    @property
    def weights(self) -> int:
        return self.input_weights + self.hidden_weights + self.readout_weights

    @property
    def total(self) -> int:
        return self.weights + self.biases

    @property
    def hidden_proportion(self) -> float:
        return self.hidden_weights / (self.input_weights + self.hidden_weights)


def cell_counts(cell: str, input_dim: int, hidden_dim: int, output_dim: int) -> CellCounts:
    g, x, h, y = GATES[cell], input_dim, hidden_dim, output_dim
    biases = g * h + y + (h if cell == "gru" else 0)
    return CellCounts(g * h * x, g * h * h, y * h, biases)


def cell_hidden_for_budget(cell: str, input_dim: int, output_dim: int, budget: float) -> int:
    """The hidden size whose trainable weights (biases excluded) are closest to ``budget``."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    g, x, y = GATES[cell], input_dim, output_dim
    weights = lambda h: cell_counts(cell, x, h, y).weights  # noqa: E731
    if weights(1) > budget * 1.01:
        raise ValueError(f"budget {budget:,.0f} is too small for a {cell} on input_dim={x}, output_dim={y}: "
                         f"hidden_dim=1 already has {weights(1):,} trainable weights")
    root = (-(g * x + y) + math.sqrt((g * x + y) ** 2 + 4 * g * budget)) / (2 * g)
    return min({max(1, math.floor(root)), max(1, math.ceil(root))}, key=lambda h: abs(weights(h) - budget))


def cell_spec(cell: str, input_dim: int, output_dim: int, *, hidden_dim: int | None = None, budget: float | None = None,
              learning_rate: float = 1e-4) -> CellSpec:
    """A cell sized by ``hidden_dim`` or by a trainable-weight ``budget`` (exactly one)."""
    if (hidden_dim is None) == (budget is None):
        raise ValueError("give exactly one of hidden_dim and budget")
    if hidden_dim is None:
        hidden_dim = cell_hidden_for_budget(cell, input_dim, output_dim, budget)
    return CellSpec(cell, input_dim, hidden_dim, output_dim, learning_rate)


def init_cell(spec: CellSpec, seed: int, padded_hidden_dim: int | None = None) -> ModelArrays:
    """Parameters (PyTorch's U(-1/sqrt(h), 1/sqrt(h))) and padding masks, drawn from ``seed`` at the true
    hidden size and zero-padded to ``padded_hidden_dim``."""
    h = spec.hidden_dim
    hp = h if padded_hidden_dim is None else int(padded_hidden_dim)
    if hp < h:
        raise ValueError(f"padded_hidden_dim {hp} < hidden_dim {h}")
    g, x, y = GATES[spec.cell], spec.input_dim, spec.output_dim
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0xCE11])))
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


def _masked(params: Mapping[str, jax.Array], masks: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    return {k: v * masks[k].astype(v.dtype) for k, v in params.items()}


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


def cell_forward(cell: str, params: Mapping[str, jax.Array], masks: Mapping[str, jax.Array], x: jax.Array, unroll: int = 1) -> jax.Array:
    """x f32[B, T, X] -> y f32[B, T, Y]; the input projections of all steps are one product before the scan."""
    p = _masked(params, masks)
    hidden = p["W_h"].shape[1]
    projected = jnp.einsum("btx,gkx->tbgk", x, p["W_i"]) + p["b"]  # [T, B, G, H]
    rec = _recurrence(cell, p, hidden)

    def step(state, xp):
        state = rec(state, xp)
        return state, state[:, :hidden]

    s0 = jnp.zeros((x.shape[0], state_size(cell, hidden)), x.dtype)
    _, hs = jax.lax.scan(step, s0, projected, unroll=unroll)
    y = jnp.einsum("tbh,yh->bty", hs, p["W_yh"]) + p["b_y"]
    return y


def cell_step(cell: str, params, masks, state: jax.Array, x_t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One step for rollouts: state f32[B, S], x_t f32[B, X] -> (state, y_t f32[B, Y])."""
    p = _masked(params, masks)
    hidden = p["W_h"].shape[1]
    state = _recurrence(cell, p, hidden)(state, jnp.einsum("bx,gkx->bgk", x_t, p["W_i"]) + p["b"])
    return state, state[:, :hidden] @ p["W_yh"].T + p["b_y"]
