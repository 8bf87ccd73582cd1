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

from sparse_rnn_jax.models.registry import get_family

StepFn = Callable[[Mapping[str, jax.Array], Mapping[str, jax.Array], jax.Array, jax.Array], jax.Array]


def step_fn(family: str, activation: str) -> StepFn:
    """(params, masks, state f32[B, S], x_t f32[B, X]) -> next state f32[B, S] of a registered family; the hidden
    state h is the first H entries of the state."""
    fam = get_family(family)

    def step(params, masks, z, x):
        return fam.step(fam.prepare(params, masks), z, x, fam.dims(params)[1], activation)[0]

    return step


def state_shape(family: str, params: Mapping[str, jax.Array]) -> tuple[int, int]:
    """(H, S): a (padded) model's hidden size and recurrent state size, from its arrays (no model axis)."""
    fam = get_family(family)
    _, hidden, output = fam.dims(params)
    return int(hidden), int(fam.state_size(int(hidden), int(output)))


def lag_norms(
    family: str, activation: str, params, masks, x: jax.Array, max_lag: int, lengths: jax.Array | None = None
) -> jax.Array:
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
    real = get_family(family).real_units(masks).astype(x.dtype)
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


def gradient_scales(
    family: str, activation: str, params, masks, x, hidden_dims, max_lag: int = 50, lengths=None
) -> np.ndarray:
    """Per-lag gradient scales of a stacked population (leaves [P, ...]): f64[P, K], row p's s_1..s_K
    (module docstring), the batch mean of || ∂h_{T_b} / ∂h_{T_b - k} ||_F / sqrt(hidden_dims[p]).
    x: f32[B, T, X] shared by every model; lengths: int32[B] of padded sequences (None: all end at T)."""
    params = jax.tree.map(jnp.asarray, dict(params))
    masks = jax.tree.map(jnp.asarray, dict(masks))
    program = _population_program(family, activation, int(max_lag), lengths is not None)
    args = (params, masks, jnp.asarray(x, jnp.float32)) + (
        () if lengths is None else (jnp.asarray(lengths, jnp.int32),)
    )
    norms = np.asarray(program(*args))
    return norms.astype(np.float64) / np.sqrt(np.asarray(hidden_dims, np.float64))[:, None]


def decay_summary(scales: np.ndarray) -> dict:
    """s_1, s_K / s_1, decay_rate and tau_1e (module docstring) of one model's scales f64[K]."""
    s = np.asarray(scales, np.float64)
    known = np.flatnonzero(~np.isnan(s))
    s = s[: known[-1] + 1] if len(known) else s[:0]  # trailing NaN: lags longer than every sequence
    out = {
        "scale_lag1": float(s[0]) if len(s) else math.nan,
        "scale_ratio_last": math.nan,
        "decay_rate": math.nan,
        "tau_1e": math.nan,
        "tau_censored": True,
        "lags": len(s),
    }
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
    return pd.DataFrame(
        {
            "model_id": np.repeat(np.asarray(model_ids), k),
            "lag": np.tile(np.arange(1, k + 1), p),
            "scale": scales.ravel(),
        }
    )


def summarise(scales: pd.DataFrame) -> pd.DataFrame:
    """Per model (``decay_summary``) from a long (model_id, lag, scale) table."""
    rows = []
    for model_id, g in scales.sort_values(["model_id", "lag"]).groupby("model_id", sort=True):
        rows.append({"model_id": model_id, **decay_summary(g["scale"].to_numpy())})
    return pd.DataFrame(rows)


def sequence_lengths(val: Mapping[str, np.ndarray], idx: np.ndarray, steps: int) -> np.ndarray | None:
    """Each chosen validation sequence's valid length, from the task's ``step_mask`` (or ``lengths``) arrays;
    None when every sequence has all ``steps`` steps."""
    if "step_mask" in val:
        lengths = np.asarray(val["step_mask"])[idx].sum(axis=1)
    elif "lengths" in val:
        lengths = np.asarray(val["lengths"])[idx]
    else:
        return None
    lengths = np.clip(lengths.astype(np.int32), 1, steps)
    return None if np.all(lengths == steps) else lengths


def input_steps(data) -> int:
    """The steps of the task's input sequences (the longest lag that can be measured)."""
    idx = jnp.zeros((1,), jnp.int32)
    return int(data.objective.make_batch({k: jnp.asarray(v) for k, v in data.val.items()}, idx).x.shape[1])


def measure_run(
    run,
    data,
    kinds: tuple[str, ...] = ("initial", "trained"),
    max_lag: int = 50,
    sequences: int = 32,
    max_models_per_program: int = 16,
    log=print,
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[int, int]]:
    """Per-lag gradient scales of every model of a recorded run (``run.train.RecordedRun``) at its initial weights
    (drawn from its seed, as the sweep drew them) and/or its trained weights (kept by the sweep), on the first
    ``sequences`` validation sequences of ``data``. Returns (long table model_id, weights, lag, scale; per-model
    summary with config, family, leak, hidden size and proportion; (sequences, steps) of the inputs)."""
    from sparse_rnn_jax.engine.population import even_pieces, stack_chunk
    from sparse_rnn_jax.engine.results import spec_columns
    from sparse_rnn_jax.engine.sweep import load_final_params

    n_val = int(np.shape(next(iter(data.val.values())))[0])
    idx = jnp.arange(min(sequences, n_val), dtype=jnp.int32)
    x = np.asarray(jax.jit(data.objective.make_batch)({k: jnp.asarray(v) for k, v in data.val.items()}, idx).x)
    lengths = sequence_lengths(data.val, np.asarray(idx), x.shape[1])
    log(
        f"inputs: {x.shape[0]} validation sequences of {x.shape[1]} steps"
        + (f" (each ends at its own last valid step, {lengths.min()}-{lengths.max()})" if lengths is not None else "")
        + f"; lags 1..{min(max_lag, x.shape[1] if lengths is None else int(lengths.max()))}"
    )
    mask_mode = run.config.train.mask_mode
    frames, info = [], []
    for i, chunk in enumerate(run.chunks):
        n = len(chunk.members)
        arrays = {"initial": tuple({k: v[:n] for k, v in tree.items()} for tree in stack_chunk(chunk, mask_mode)[:2])}
        if "trained" in kinds:
            arrays["trained"] = load_final_params(run.workdir, chunk, mask_mode)
        hidden = np.asarray([m.spec.hidden_dim for m in chunk.members])
        for kind in kinds:
            params, masks = arrays[kind]
            scales = np.zeros((n, min(max_lag, x.shape[1])))
            for start, stop, size in even_pieces(n, max_models_per_program):  # equal pieces: one compile
                take = np.minimum(np.arange(start, start + size), n - 1)
                part = gradient_scales(
                    chunk.family,
                    chunk.activation,
                    {k: v[take] for k, v in params.items()},
                    {k: np.asarray(v)[take] for k, v in masks.items()},
                    x,
                    hidden[take],
                    max_lag,
                    lengths,
                )
                scales[start:stop] = part[: stop - start]
            frame = scales_frame([m.model_id for m in chunk.members], scales)
            frames.append(frame[frame["scale"].notna()].assign(weights=kind))  # NaN: longer than every sequence
        for m in chunk.members:
            cols = spec_columns(m.spec)
            info.append(
                {
                    "model_id": m.model_id,
                    "config": m.config,
                    "family": m.spec.family,
                    "leak_mode": cols.get("leak_mode"),
                    "leak_alpha": cols.get("leak_alpha"),
                    "hidden_dim": m.spec.hidden_dim,
                    "hidden_proportion": cols["hidden_proportion"],
                    "activation": m.spec.activation,
                }
            )
        log(f"chunk {i + 1}/{len(run.chunks)} ({chunk.family}, {n} models) measured")
    scales = pd.concat(frames, ignore_index=True)[["model_id", "weights", "lag", "scale"]]
    info = pd.DataFrame(info)
    summary = pd.concat(
        [summarise(scales[scales["weights"] == k].drop(columns="weights")).assign(weights=k) for k in kinds],
        ignore_index=True,
    )
    summary = info.merge(summary, on="model_id").sort_values(["weights", "model_id"]).reset_index(drop=True)
    return scales, summary, (int(x.shape[0]), int(x.shape[1]))
