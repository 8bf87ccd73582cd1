"""Masks and initial weights of one network, at its true shape, embedded in a (possibly padded) shape.

Everything a model starts from is drawn from its own integer seed with numpy's PCG64, at the model's true
shape, before padding. A model's masks and initial weights are therefore the same whatever padded
hidden size or population it is trained in, which is what makes padded units change nothing.

Arrays (H = padded hidden dim >= spec.hidden_dim, X = input_dim, Y = output_dim):
  params: W_hx f32[H, X], W_hh f32[H, H], W_hy f32[H, Y], W_yx f32[Y, X], W_yh f32[Y, H], W_yy f32[Y, Y],
          b_h f32[H], b_y f32[Y]   (masked and padded entries exactly 0; biases start at 0)
  masks:  hx, hh, hy, yx, yh, yy bool[same shapes], b_h bool[H] (False on padded units), b_y bool[Y]

A spec with ``hh_graph`` gets its hh mask from a random graph on its true hidden units drawn from the same
seed (``sparse_rnn_jax.graphs``); its hh weights are still N(mean, std) times that mask.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sparse_rnn_jax.graphs import hh_graph_mask
from sparse_rnn_jax.spec import BLOCKS, NetworkSpec

MASK_MODES = ("exact", "bernoulli")


class ModelArrays(NamedTuple):
    params: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]


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


def init_model(spec: NetworkSpec, seed: int, padded_hidden_dim: int | None = None, mask_mode: str = "exact") -> ModelArrays:
    """Masks and initial parameters of ``spec`` drawn from ``seed``, zero-padded to ``padded_hidden_dim``."""
    hp = spec.hidden_dim if padded_hidden_dim is None else int(padded_hidden_dim)
    if hp < spec.hidden_dim:
        raise ValueError(f"padded_hidden_dim {hp} < hidden_dim {spec.hidden_dim}")
    padded_dims = {"x": spec.input_dim, "h": hp, "y": spec.output_dim}
    params: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for i, b in enumerate(BLOCKS):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), i])))
        rows, cols = spec.block_shape(b)
        blk = spec.blocks[b]
        if b == "hh" and spec.hh_graph is not None:  # a random graph on the hidden units
            m = hh_graph_mask(spec.hh_graph, rows, blk.density, seed)
        else:
            m = block_mask(rng, rows, cols, blk.density, mask_mode)
        w = (rng.standard_normal((rows, cols)) * blk.init_std + blk.init_mean).astype(np.float32) * m
        shape = (padded_dims[b[0]], padded_dims[b[1]])
        masks[b] = np.zeros(shape, dtype=bool)
        masks[b][:rows, :cols] = m
        params[f"W_{b}"] = np.zeros(shape, dtype=np.float32)
        params[f"W_{b}"][:rows, :cols] = w
    masks["b_h"] = np.arange(hp) < spec.hidden_dim
    masks["b_y"] = np.ones(spec.output_dim, dtype=bool)
    params["b_h"] = np.zeros(hp, dtype=np.float32)
    params["b_y"] = np.zeros(spec.output_dim, dtype=np.float32)
    return ModelArrays(params, masks)
