"""Masks: the one definition of a masked weight, exact-count or Bernoulli block masks, and the arrays a model
starts from.

A masked entry is exactly 0 in the forward pass (``masked``), so its gradient is exactly 0 and Adam leaves it
at 0: a sparse block is a dense array times a static boolean mask.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

MASK_MODES: tuple[str, ...] = ("exact", "bernoulli")


class ModelArrays(NamedTuple):
    """One model's initial arrays: ``params`` (trained) and ``masks`` (static, same keys where they mask a
    parameter), numpy, zero-padded to the bucket's hidden size."""

    params: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]


def masked(value, mask):
    """``value * mask`` in ``value``'s dtype (numpy or jax arrays): the effective weight of a masked array."""
    return value * mask.astype(value.dtype)


def masked_params(params: Mapping, masks: Mapping, mask_keys: Mapping[str, str]) -> dict:
    """Every parameter times its mask: ``mask_keys`` maps a param key to its mask key; params without an entry
    are masked by the mask of the same key."""
    return {k: masked(v, masks[mask_keys.get(k, k)]) for k, v in params.items()}


def block_mask(rng: np.random.Generator, rows: int, cols: int, density: float, mode: str = "exact") -> np.ndarray:
    """bool[rows, cols] with round(density * rows * cols) True entries (at least 1) placed uniformly at
    random (``exact``), or each entry True with probability ``density`` (``bernoulli``)."""
    n = rows * cols
    if density >= 1.0:
        return np.ones((rows, cols), dtype=bool)
    if mode == "exact":
        k = int(min(n, max(1, round(density * n))))
        flat = np.zeros(n, dtype=bool)
        flat[rng.permutation(n)[:k]] = True
        return flat.reshape(rows, cols)
    if mode == "bernoulli":
        return rng.random((rows, cols)) < density
    raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mode!r}")


def trainable_counts(masks: Mapping[str, np.ndarray], keys) -> np.ndarray:
    """Trainable entries per model of stacked masks (leading model axis P) summed over ``keys``: int64[P]."""
    return sum(np.count_nonzero(np.asarray(masks[k]).reshape(np.shape(masks[k])[0], -1), axis=1) for k in keys)
