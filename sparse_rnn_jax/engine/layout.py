"""Compact weight storage inside a train call: Adam's pass over the trainable entries only.

A sparse block is stored dense (``models.masks``): W f32[P, *shape] with exactly-zero masked entries, and Adam's
two moments beside it. On a CPU the step's elementwise passes over these arrays (masking, the finiteness check,
the moments and the update) are memory-bound, and a block of density d spends 1 / d of them on entries that never
change. Inside one call of ``engine.programs.make_train_steps`` the weights and moments of each compacted block
are therefore gathered once into compact arrays f32[P, K] (K >= the most trainable entries of any model of the
chunk); every step expands the weights back to dense for the products (one gather) and gathers the dense
weight gradient back to compact, and Adam runs on the compact arrays. After the call's last step the dense
state is written back, masked entries keeping the values they had. The same elementwise operations run on the
same values, so the results are bit-identical to the dense path (``tests/engine/test_layout.py``).

Layout arrays (``plan_layout``, host numpy, per compacted param key), for one model's rows:
  gather  int32[P, K]: the flat index (into one model's array of N entries) of each trainable entry, in order;
          the padding slots beyond a model's count repeat its last trainable index (a real entry, so its gradient
          is a real one: finite exactly when that entry's is, and it is never written back).
  scatter int32[P, N]: each entry's slot in the compact array; K for a masked entry (a zero slot).
The batched program reads them as flat indices into the whole population's flattened arrays instead (gather
int32[P * K], scatter int32[P * N] with P * K the zero slot), computed once on the host: a gather with a model
axis (vmap's batched form) measured slower on a CPU than one flat gather.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.engine.config import WEIGHT_LAYOUTS

COMPACT_MAX_FILL = 0.3
"""A block is compacted when its compact size K is at most this fraction of its dense size N: a denser block
saves too little of the elementwise passes to pay for the two gathers a step adds (measured on the bench's 64
Table IV models, float32, 2-core CPU: 48 models at |h| 52 whose input block's K is 37 % of N ran 2-12 % slower
compact, 16 models at |h| 224 with K at 8 % ran 8-12 % faster)."""

K_STEPS = 64
"""K is rounded up to a multiple of N / K_STEPS, so chunks of one bucket (similar densities) share a compiled
shape instead of compiling once per chunk."""


class KeyLayout(NamedTuple):
    """The compact layout of one param key (module docstring): gather int32[P, K], scatter int32[P, N]."""

    gather: np.ndarray
    scatter: np.ndarray


def resolve_layout(
    layout: str, compute_dtype: str = "float32", form: str = "population", platform: str | None = None, devices: int = 1
) -> str:
    """``layout`` ("auto", "dense" or "compact") resolved: "auto" is "compact" for float32 operands in the batched
    program on a single CPU device, where it was measured faster, and "dense" elsewhere (measured no faster: the loop
    form, whose model's arrays stay in cache, and bfloat16 operands; not measured: accelerators, whose step is
    bound by launches). A population sharded over several devices stays dense (a flat gather would cross shards)."""
    if layout not in WEIGHT_LAYOUTS:
        raise ValueError(f"weight_layout must be one of {WEIGHT_LAYOUTS}, got {layout!r}")
    if devices > 1:
        return "dense"
    if layout != "auto":
        return layout
    cpu = (platform or jax.default_backend()) == "cpu"
    return "compact" if cpu and compute_dtype == "float32" and form == "population" else "dense"


def compact_keys(params: Mapping, masks: Mapping, weight_keys: Mapping[str, str]) -> dict[str, str]:
    """{param key: mask key} of the weights that may be compacted: every weight of ``weight_keys`` whose boolean
    mask masks no other parameter (the forward then gets that mask as True, ``forward_masks``)."""
    users: dict[str, int] = {}
    for k in params:
        mk = weight_keys.get(k, k)
        if mk in masks:
            users[mk] = users.get(mk, 0) + 1
    return {
        k: mk
        for k, mk in weight_keys.items()
        if k in params and mk in masks and users.get(mk) == 1 and np.asarray(masks[mk]).dtype == bool
    }


def plan_layout(
    params: Mapping,
    masks: Mapping,
    weight_keys: Mapping[str, str],
    population: bool = True,
    max_fill: float = COMPACT_MAX_FILL,
) -> dict[str, KeyLayout]:
    """The compact layout of stacked host ``params`` and ``masks`` [P, ...]: the keys of ``compact_keys`` whose
    rounded K is at most ``max_fill`` of N (each key's ``KeyLayout``); {} when none is. ``population``: the
    indices address the whole population's flattened arrays (gather int32[P * K] into [P * N], scatter int32[P * N]
    into [P * K + 1], whose last slot is the zero of masked entries), as the batched program reads them;
    otherwise each model's own rows (the loop form slices them per model)."""
    out: dict[str, KeyLayout] = {}
    for k, mk in compact_keys(params, masks, weight_keys).items():
        flat = np.asarray(masks[mk]).reshape(np.shape(masks[mk])[0], -1)
        p, n = flat.shape
        counts = np.count_nonzero(flat, axis=1)
        quantum = max(1, math.ceil(n / K_STEPS))
        size = min(n, max(1, math.ceil(int(counts.max(initial=0)) / quantum) * quantum))
        if size > max_fill * n or p * max(n, size + 1) >= 2**31:
            continue
        gather = np.zeros((p, size), np.int64)
        scatter = np.full((p, n), size, np.int64)
        for i in range(p):
            nz = np.flatnonzero(flat[i])
            if nz.size:
                gather[i, : nz.size] = nz
                gather[i, nz.size :] = nz[-1]
                scatter[i, nz] = np.arange(nz.size)
        if population:
            rows = np.arange(p)[:, None]
            gather = (gather + rows * n).reshape(-1)
            scatter = np.where(scatter == size, p * size, scatter + rows * size).reshape(-1)
        out[k] = KeyLayout(gather.astype(np.int32), scatter.astype(np.int32))
    return out


def forward_masks(masks: Mapping, layout: Mapping, weight_keys: Mapping[str, str], models: int | None) -> dict:
    """``masks`` with the mask of every compacted weight replaced by True (bool[models], or a scalar for one model):
    its expanded weights are already masked, so the forward's multiply by the mask is by one, which XLA drops."""
    replaced = {weight_keys[k] for k in layout}
    true = jnp.ones((models,) if models is not None else (), bool)
    return {k: (true if k in replaced else v) for k, v in masks.items()}


def compress(tree: Mapping, layout: Mapping[str, KeyLayout], population: bool) -> dict:
    """The compacted keys of ``tree`` (params or a moment, dense) gathered to f32[P, K] (``population``: a
    population's layout) or, for one model, f32[K] (its own rows of the layout); other keys as given.

    The gather's "fill" mode (every index is in bounds, so it never fills) is kept on purpose: with it the
    moments' update compiles to the same arithmetic as the dense program's, bit for bit (measured: with
    ``promise_in_bounds`` XLA fused the gather into the update and rounded the moments differently by 1 ulp)."""
    out = dict(tree)
    for k, lay in layout.items():
        v = tree[k]
        got = jnp.take(v.reshape(-1), lay.gather, mode="fill", fill_value=0)
        out[k] = got.reshape(v.shape[0], -1) if population else got
    return out


def expand(tree: Mapping, layout: Mapping[str, KeyLayout], shapes: Mapping[str, tuple]) -> dict:
    """The compacted keys of ``tree`` expanded to their dense ``shapes``, masked entries exactly 0 (one gather from
    the compact array with a zero slot appended); other keys as given. Population or one model alike."""
    out = dict(tree)
    for k, lay in layout.items():
        padded = jnp.concatenate([tree[k].reshape(-1), jnp.zeros((1,), tree[k].dtype)])
        out[k] = padded.at[lay.scatter].get(mode="promise_in_bounds").reshape(shapes[k])
    return out


def write_back(compact: Mapping, dense: Mapping, layout: Mapping[str, KeyLayout], masks: Mapping, weight_keys) -> dict:
    """The dense tree after a call: each compacted key's trainable entries from ``compact`` and its masked entries
    as they were in ``dense``; other keys from ``compact``."""
    shapes = {k: dense[k].shape for k in layout}
    expanded = expand(compact, layout, shapes)
    return {
        k: (jnp.where(masks[weight_keys[k]], expanded[k], dense[k]) if k in layout else v) for k, v in expanded.items()
    }
