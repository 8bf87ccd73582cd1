"""Per-lag gradient scales: how strongly the hidden state at the last step depends on the state k steps earlier.

For a model run over a batch of sequences (h_0 = 0), the scale at lag k is

    s_k = mean over the batch of || ∂h_T / ∂h_{T-k} ||_F / sqrt(h),      k = 1 .. K,

(a padded sequence ends at its own last valid step T_b, and lag k averages the sequences with T_b >= k),

the root-mean-square singular value of the k-step state Jacobian (h = the model's true hidden size, so an
identity Jacobian gives 1 at any size; padded units contribute exact zeros). The derivative is taken
through the whole recurrent state with h_{T-k} perturbed and the rest of the state at T-k held: the block
RNN's state is [h; y] (y_t feeds back into h_{t+1}), an LSTM's [h; c]. It is the factor by which a loss
gradient arriving at h_T reaches h_{T-k}: the lag-dependent effective learning rate that gates and leaks
induce (a leaky unit with constant α and a linear recurrence W has ∂h_T/∂h_{T-k} = ((1 - α) I + α W)^k).

Computed with reverse-mode autodiff: one forward scan stores the states, then a reverse scan carries the
cotangents of the H rows of h_T back one step at a time (a vmapped VJP of the family's step), reading off
s_k at every lag; vmapped over a population and jitted.

Per model summary (``summarise``): s_1, the ratio s_K / s_1, ``decay_rate`` (the least-squares slope of
-log s_k against k: s_k ~ e^{-rate k}) and ``tau_1e``, the lag at which s_k first falls below s_1 / e
(linear interpolation of log s_k between lags; NaN when it never does within K, ``tau_censored`` True).
For a pure exponential decay tau_1e = 1 + 1 / rate.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from sparse_rnn_jax import cells, leaky
from sparse_rnn_jax.model import block_rnn_step

StepFn = Callable[[Mapping[str, jax.Array], Mapping[str, jax.Array], jax.Array, jax.Array], jax.Array]


def step_fn(family: str, activation: str) -> StepFn:
    """(params, masks, state f32[B, S], x_t f32[B, X]) -> next state f32[B, S] of a family; the hidden state h
    is the first H entries of the state."""
    if family == "block":
        return lambda p, m, z, x: block_rnn_step(p, m, z, x, activation)[0]
    if family in leaky.LEAKY_FAMILIES:
        mode = leaky.mode_of_family(family)
        return lambda p, m, z, x: leaky.leaky_step(mode, p, m, z, x, activation)[0]
    if family in cells.CELLS:
        return lambda p, m, z, x: cells.cell_step(family, p, m, z, x)[0]
    raise ValueError(f"unknown model family {family!r}")


def state_shape(family: str, params: Mapping[str, jax.Array]) -> tuple[int, int]:
    """(H, S): a (padded) model's hidden size and recurrent state size, from its arrays (no model axis)."""
    if family in cells.CELLS:
        h = int(params["W_h"].shape[-1])
        return h, cells.state_size(family, h)
    h = int(params["W_hh"].shape[-1])
    return h, h + int(params["W_yy"].shape[-1])


def real_units(family: str, masks: Mapping[str, jax.Array]) -> jax.Array:
    """bool[H]: the model's real (not padded) hidden units, from its bias masks."""
    return masks["b"][0] if family in cells.CELLS else masks["b_h"]


def lag_norms(family: str, activation: str, params, masks, x: jax.Array, max_lag: int,
              lengths: jax.Array | None = None) -> jax.Array:
    """|| ∂h_T / ∂h_{T-k} ||_F for k = 1..K (K = min(max_lag, T)) of one model, averaged over the batch: f32[K].

    x: f32[B, T, X]. lengths: int32[B], each sequence's own last step T_b (padded sequences; None: every
    sequence ends at T); lag k averages the sequences with T_b >= k (NaN if none). Not normalised (see
    ``gradient_scales``). Only real units count: a padded unit stays 0 in the forward pass but may carry its
    own state forward (a leak of 1 - α, a GRU's z = 1/2), so its rows and columns are left out.
    """
    step = step_fn(family, activation)
    hidden, size = state_shape(family, params)
    batch, steps = x.shape[0], x.shape[1]
    lags = min(int(max_lag), steps)
    xs = jnp.swapaxes(x, 0, 1)  # [T, B, X]

    def forward(z, x_t):
        return step(params, masks, z, x_t), z

    _, states = jax.lax.scan(forward, jnp.zeros((batch, size), x.dtype), xs)  # states[t] = z_t, t = 0..T-1
    # Cotangents of h_{T_b}'s H entries: c[i] = e_i on the state, per sequence: [H, B, S].
    real = real_units(family, masks).astype(x.dtype)
    seed = jnp.broadcast_to((jnp.eye(hidden, size, dtype=x.dtype) * real[:, None])[:, None, :], (hidden, batch, size))
    ends = jnp.full((batch,), steps, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)
    first = steps - lags if lengths is None else 0  # all steps when sequences end at different steps

    def backward(c, inputs):
        t, z_t, x_t = inputs  # step t maps z_t to z_{t+1}
        c = jnp.where((t + 1 == ends)[None, :, None], seed, c)  # h_{T_b} = z_{T_b}'s first H entries
        _, vjp = jax.vjp(lambda z: step(params, masks, z, x_t), z_t)
        c = jax.vmap(lambda ct: vjp(ct)[0])(c)  # ∂h_{T_b}/∂z_t (0 for steps after T_b)
        return c, jnp.sqrt(jnp.sum((c[:, :, :hidden] * real) ** 2, axis=(0, 2)))  # Frobenius per sequence

    ts = jnp.arange(first, steps)
    _, norms = jax.lax.scan(backward, jnp.zeros_like(seed), (ts, states[first:], xs[first:]), reverse=True)
    # norms[j, b] is at lag ends[b] - (first + j); gather lags 1..K per sequence.
    k = jnp.arange(1, lags + 1)[:, None]
    rows = ends[None, :] - k - first  # [K, B]
    valid = rows >= 0
    picked = jnp.take_along_axis(norms, jnp.clip(rows, 0, norms.shape[0] - 1), axis=0)
    count = valid.sum(axis=1)
    return jnp.where(count > 0, jnp.sum(jnp.where(valid, picked, 0.0), axis=1) / jnp.maximum(count, 1), jnp.nan)


@functools.lru_cache(maxsize=32)
def _population_program(family: str, activation: str, max_lag: int, with_lengths: bool):
    if with_lengths:
        fn = lambda p, m, x, n: lag_norms(family, activation, p, m, x, max_lag, n)  # noqa: E731
        return jax.jit(jax.vmap(fn, in_axes=(0, 0, None, None)))
    return jax.jit(jax.vmap(lambda p, m, x: lag_norms(family, activation, p, m, x, max_lag), in_axes=(0, 0, None)))


def gradient_scales(family: str, activation: str, params, masks, x, hidden_dims, max_lag: int = 50,
                    lengths=None) -> np.ndarray:
    """Per-lag gradient scales of a stacked population (leaves [P, ...]): f64[P, K], row p's s_1..s_K
    (module docstring), the batch mean of || ∂h_{T_b} / ∂h_{T_b - k} ||_F / sqrt(hidden_dims[p]).
    x: f32[B, T, X] shared by every model; lengths: int32[B] of padded sequences (None: all end at T)."""
    params = jax.tree.map(jnp.asarray, dict(params))
    masks = jax.tree.map(jnp.asarray, dict(masks))
    program = _population_program(family, activation, int(max_lag), lengths is not None)
    args = (params, masks, jnp.asarray(x, jnp.float32)) + (() if lengths is None else (jnp.asarray(lengths, jnp.int32),))
    norms = np.asarray(program(*args))
    return norms.astype(np.float64) / np.sqrt(np.asarray(hidden_dims, np.float64))[:, None]


def decay_summary(scales: np.ndarray) -> dict:
    """s_1, s_K / s_1, decay_rate and tau_1e (module docstring) of one model's scales f64[K]."""
    s = np.asarray(scales, np.float64)
    known = np.flatnonzero(~np.isnan(s))
    s = s[: known[-1] + 1] if len(known) else s[:0]  # trailing NaN: lags longer than every sequence
    out = {"scale_lag1": float(s[0]) if len(s) else math.nan, "scale_ratio_last": math.nan, "decay_rate": math.nan,
           "tau_1e": math.nan, "tau_censored": True, "lags": len(s)}
    if not len(s) or not (np.isfinite(s[0]) and s[0] > 0):
        return out
    out["scale_ratio_last"] = float(s[-1] / s[0])
    k = np.arange(1, len(s) + 1, dtype=np.float64)
    ok = np.isfinite(s) & (s > 0)
    if ok.sum() >= 2:
        out["decay_rate"] = float(-np.polyfit(k[ok], np.log(s[ok]), 1)[0])
    level = s[0] / math.e
    below = np.flatnonzero(s <= level)  # (NaN and inf never count as fallen)
    if len(below):
        j = int(below[0])  # j >= 1
        lo, hi = s[j - 1], s[j]
        if np.isfinite(hi) and hi > 0:
            frac = (math.log(lo) - math.log(level)) / (math.log(lo) - math.log(hi))
        else:
            frac = 0.0
        out["tau_1e"] = float(k[j - 1] + frac)
        out["tau_censored"] = False
    return out


def scales_frame(model_ids, scales: np.ndarray) -> pd.DataFrame:
    """Long table (model_id, lag, scale) of a population's scales f64[P, K]."""
    p, k = scales.shape
    return pd.DataFrame({"model_id": np.repeat(np.asarray(model_ids), k), "lag": np.tile(np.arange(1, k + 1), p),
                         "scale": scales.ravel()})


def summarise(scales: pd.DataFrame) -> pd.DataFrame:
    """Per model (``decay_summary``) from a long (model_id, lag, scale) table."""
    rows = []
    for model_id, g in scales.sort_values(["model_id", "lag"]).groupby("model_id", sort=True):
        rows.append({"model_id": model_id, **decay_summary(g["scale"].to_numpy())})
    return pd.DataFrame(rows)


def scales_figure(scales: pd.DataFrame, path, title: str = ""):
    """Per-lag gradient scale (log scale) against lag: one thin line per model and a thick line per group
    (its geometric mean), one panel per ``weights`` value ("initial", "trained") when the column is there.
    ``scales`` needs model_id, lag, scale and ``group`` (e.g. the family). Writes a PNG; returns its path."""
    from matplotlib.figure import Figure

    from sparse_rnn_jax.analysis.figures import config_colours, ordered_configs, save_figure

    panels = [w for w in ("initial", "trained") if "weights" in scales and w in set(scales["weights"])] or [None]
    groups = ordered_configs(sorted(set(scales["group"])))
    colours = config_colours(groups)
    fig = Figure(figsize=(5.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, panel in zip(axes, panels):
        part = scales if panel is None else scales[scales["weights"] == panel]
        for g in groups:
            rows = part[part["group"] == g]
            if rows.empty:
                continue
            for _, m in rows.groupby("model_id"):
                m = m[m["scale"] > 0].sort_values("lag")
                ax.plot(m["lag"], m["scale"], color=colours[g], lw=0.6, alpha=0.35)
            positive = rows[rows["scale"] > 0]
            mean = np.exp(np.log(positive["scale"]).groupby(positive["lag"]).mean())
            ax.plot(mean.index, mean.to_numpy(), color=colours[g], lw=2.2, label=f"{g} (n={rows['model_id'].nunique()})")
        ax.set_yscale("log")
        ax.set_xlabel("lag k (steps before the last)")
        ax.set_title(f"{panel} weights" if panel else "", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("||dh_T / dh_{T-k}||_F / sqrt(h)  (batch mean)")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)
