"""Model families of the population engine: the block RNN ("block"), the baseline cells (``cells.CELLS``) and
the leaky-integrator and gated block RNNs (``leaky.LEAKY_FAMILIES``).

A family says how a member's arrays are drawn (``init_arrays``), how a batch of sequences runs through it
(``forward_fn``) and what one sequence step costs in matrix FLOPs (``matmul_flops``), so buckets, padding
efficiency and benchmarks treat every family alike. Each family trains in its own buckets.
"""

from __future__ import annotations

import functools
from typing import Callable, Union

from sparse_rnn_jax import cells, leaky
from sparse_rnn_jax.init import ModelArrays, init_model
from sparse_rnn_jax.model import block_rnn_forward
from sparse_rnn_jax.spec import NetworkSpec

AnySpec = Union[NetworkSpec, cells.CellSpec, leaky.LeakySpec]
FAMILIES: tuple[str, ...] = ("block",) + cells.CELLS + leaky.LEAKY_FAMILIES


def family_of(spec: AnySpec) -> str:
    return spec.family


def init_arrays(spec: AnySpec, seed: int, padded_hidden_dim: int, mask_mode: str = "exact") -> ModelArrays:
    """Masks and initial parameters of one member, drawn from its seed and zero-padded."""
    if isinstance(spec, cells.CellSpec):
        return cells.init_cell(spec, seed, padded_hidden_dim)
    if isinstance(spec, leaky.LeakySpec):
        return leaky.init_leaky(spec, seed, padded_hidden_dim, mask_mode)
    return init_model(spec, seed, padded_hidden_dim, mask_mode)


@functools.lru_cache(maxsize=None)
def forward_fn(family: str, activation: str, unroll: int = 1) -> Callable:
    """(params, masks, x f32[B, T, X]) -> y f32[B, T, Y] for a family."""
    if family == "block":
        return functools.partial(_block_forward, activation=activation, unroll=unroll)
    if family in cells.CELLS:
        return functools.partial(cells.cell_forward, family, unroll=unroll)
    if family in leaky.LEAKY_FAMILIES:
        return functools.partial(leaky.leaky_forward, leaky.mode_of_family(family), activation=activation, unroll=unroll)
    raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")


def _block_forward(params, masks, x, activation: str, unroll: int):
    return block_rnn_forward(params, masks, x, activation, unroll)


def matmul_flops(family: str, input_dim: int, hidden_dim: int, output_dim: int, batch: int = 1, steps: int = 1) -> float:
    """Forward matrix FLOPs (2 x MACs) of ``batch`` sequences of ``steps`` steps through the dense arrays."""
    if family == "block":
        state = hidden_dim + output_dim
        return 2.0 * batch * steps * (state * input_dim + state * state)
    if family in leaky.LEAKY_FAMILIES:  # the gated mode's products have H more columns (W_ax, W_ah)
        state = hidden_dim + output_dim
        cols = state + (hidden_dim if family == "leaky_gated" else 0)
        return 2.0 * batch * steps * (input_dim * cols + state * cols)
    g = cells.GATES[family]
    return 2.0 * batch * steps * (g * hidden_dim * (input_dim + hidden_dim) + output_dim * hidden_dim)
