"""One-shot magnitude pruning of trained populations: scopes, exact-count pruned masks, and the stacked
population of every (scope, fraction) variant.

A trained chunk (stacked params and masks, as ``engine.sweep.load_final_params`` returns them) is pruned at
each fraction f of its *currently trainable* weights (mask True), in one of three scopes:

  global     one ranking over every weight array of a model (its family's ``weight_keys``: block RNN W_hx ...
             W_yy; cells W_i, W_h, W_yh; leaky gated also W_ax, W_ah): the round(f n) smallest |w| of its n
             trainable weights go.
  per_block  every weight array pruned by f separately (a cell's W_i holds all its gates, as PyTorch's
             weight_ih does, and is one array).
  hidden     only the hidden-to-hidden weights (the family's ``hidden_keys``).

Pruned entries become masked (False): exactly 0 in the forward pass, zero gradient, and Adam keeps them at 0,
so a fine-tune cannot revive them. Biases (and a leaky model's per-unit α parameters) are never pruned. Counts
are exact: ranks, not a threshold, decide, so ties at the threshold are broken by position (row-major over the
arrays in ``weight_keys`` order) and a group of n trainable weights keeps exactly n - round(f n) (half up).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from sparse_rnn_jax.models.masks import trainable_counts
from sparse_rnn_jax.models.registry import get_family

SCOPES: tuple[str, ...] = ("global", "per_block", "hidden")
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
UNPRUNED_SCOPE = "none"
"""The scope of the unpruned control variant (fraction 0)."""


def weight_keys(family: str) -> Mapping[str, str]:
    """param key -> mask key of every weight array of a family (biases excluded)."""
    return get_family(family).weight_keys


def scope_groups(family: str, scope: str) -> list[tuple[str, ...]]:
    """The groups of param keys that are ranked together in ``scope`` (one fraction per group)."""
    keys = tuple(weight_keys(family))
    if scope == "global":
        return [keys]
    if scope == "per_block":
        return [(k,) for k in keys]
    if scope == "hidden":
        return [get_family(family).hidden_keys]
    raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def pruned_count(fraction: float, trainable: np.ndarray) -> np.ndarray:
    """round(fraction x trainable), half up: how many of ``trainable`` weights a fraction prunes."""
    return np.floor(np.asarray(trainable, np.float64) * fraction + 0.5 + 1e-9).astype(np.int64)


def _group_ranks(
    params: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], family: str, group: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude ranks of the trainable weights of ``group`` per model: (ranks int64[P, N], trainable
    bool[P, N]) over the group's arrays flattened and concatenated; rank 0 is the smallest |w| (masked
    entries rank after every trainable one)."""
    wk = weight_keys(family)
    p = np.asarray(masks[wk[group[0]]]).shape[0]
    mag = np.concatenate([np.abs(np.asarray(params[k], np.float64)).reshape(p, -1) for k in group], axis=1)
    trainable = np.concatenate([np.asarray(masks[wk[k]], bool).reshape(p, -1) for k in group], axis=1)
    key = np.where(trainable, np.nan_to_num(mag, nan=np.inf), np.inf)
    order = np.lexsort((key, ~trainable), axis=-1)  # trainable first, then by magnitude, ties by position
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :].repeat(p, 0), axis=1)
    return ranks, trainable


def prune_masks(
    params: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    family: str,
    scope: str,
    fractions: Sequence[float],
) -> list[dict[str, np.ndarray]]:
    """Pruned masks of a stacked population (every leaf [P, ...]), one dict per fraction (same keys as
    ``masks``; only the weight masks of ``scope`` change, each keeping its largest-magnitude entries)."""
    for f in fractions:
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"pruning fractions must be in [0, 1], got {f}")
    wk = weight_keys(family)
    out = [dict(masks) for _ in fractions]
    for group in scope_groups(family, scope):
        ranks, trainable = _group_ranks(params, masks, family, group)
        n = trainable.sum(axis=1)
        sizes = [int(np.prod(np.asarray(masks[wk[k]]).shape[1:])) for k in group]
        bounds = np.cumsum([0] + sizes)
        for i, f in enumerate(fractions):
            keep = trainable & (ranks >= pruned_count(f, n)[:, None])
            for j, k in enumerate(group):
                out[i][wk[k]] = keep[:, bounds[j] : bounds[j + 1]].reshape(np.asarray(masks[wk[k]]).shape)
    return out


def trainable_weights(masks: Mapping[str, np.ndarray], family: str, keys: Sequence[str] | None = None) -> np.ndarray:
    """Trainable weights per model of stacked masks (of the param ``keys``, default every weight array): int64[P]."""
    wk = weight_keys(family)
    return trainable_counts(masks, [wk[k] for k in (list(wk) if keys is None else keys)])


def hidden_proportion_of_masks(masks: Mapping[str, np.ndarray], family: str) -> np.ndarray:
    """The hidden proportion of realised masks, f64[P]: trainable hidden-to-hidden weights (``hidden_keys``) over
    the trainable weights computing h (``top_row_keys``). NaN where that is 0."""
    fam = get_family(family)
    den = trainable_weights(masks, family, fam.top_row_keys).astype(np.float64)
    num = trainable_weights(masks, family, fam.hidden_keys).astype(np.float64)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


@dataclasses.dataclass(frozen=True)
class Variants:
    """A pruned population: V variants of each of P models stacked variant-major (row v * P + i is model i
    at variant v). ``params``/``masks`` leaves [V * P, ...]; ``scope``/``fraction`` name the variants."""

    params: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    scope: tuple[str, ...]
    fraction: tuple[float, ...]
    models: int

    @property
    def size(self) -> int:
        """Rows of the stacked population: variants x models."""
        return len(self.scope) * self.models


def make_variants(
    params: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    family: str,
    scopes: Sequence[str] = SCOPES,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> Variants:
    """The unpruned control (scope ``none``, fraction 0) and every (scope, fraction) of a trained chunk,
    stacked; pruned weights are set to exactly 0 in ``params`` as well."""
    p = int(np.shape(next(iter(masks.values())))[0])
    all_masks, scope_names, fracs = [dict(masks)], [UNPRUNED_SCOPE], [0.0]
    for s in scopes:
        all_masks += prune_masks(params, masks, family, s, fractions)
        scope_names += [s] * len(fractions)
        fracs += [float(f) for f in fractions]
    wk = weight_keys(family)
    stacked_masks = {k: np.concatenate([np.asarray(m[k]) for m in all_masks]) for k in masks}
    stacked_params = {}
    for k, v in params.items():
        tiled = np.concatenate([np.asarray(v)] * len(all_masks))
        if k in wk:
            tiled = tiled * stacked_masks[wk[k]].astype(tiled.dtype)
        stacked_params[k] = tiled
    return Variants(stacked_params, stacked_masks, tuple(scope_names), tuple(fracs), p)
