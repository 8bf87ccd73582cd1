"""The ``Family`` protocol: how the population engine builds, runs, steps and counts one kind of model.

Every family (the block RNN, the baseline cells, the leaky and gated block RNNs) is one ``Family`` value of pure
functions and static data, registered by name in ``models.registry.FAMILIES``; a spec names its family
(``spec.family``). Code that needs "what kind of model is this" asks the registry, never the spec's type or
the arrays' keys. Shapes: H = padded hidden size, X = input size, Y = output size, S = recurrent state size,
B = batch, T = steps; params and masks are one model's (vmapped over a population by the engine).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple

from sparse_rnn_jax.core.configs import named_specs
from sparse_rnn_jax.core.spec import HYPERPARAMETER_FEATURES
from sparse_rnn_jax.models.graphs import GRAPH_COLUMNS
from sparse_rnn_jax.models.masks import ModelArrays

SPEC_COLUMNS: tuple[str, ...] = (
    (
        "hidden_dim",
        "input_dim",
        "output_dim",
        "trainable_params",
        "model_density",
        "hidden_proportion",
        "learning_rate",
        "activation",
    )
    + HYPERPARAMETER_FEATURES[:-1]
    + ("leak_mode", "leak_alpha")
)
"""The spec's columns of the results table that every family fills (``Family.result_columns``), before the
graph columns: dims, expected trainable weights, model density, hidden proportion, learning rate, activation,
the 18 block densities/init means/init stds (NaN for families without blocks) and the leak mode and alpha."""


class Family(NamedTuple):
    """One model family.

    name: the registry key; ``spec.family`` of its specs.
    init(spec, seed, padded_hidden_dim, mask_mode) -> ModelArrays: masks and initial params drawn from the
        model's own seed at its true size, zero-padded to H.
    forward(params, masks, x f32[B, T, X], activation, unroll[, compute_dtype]) -> y f32[B, T, Y].
    prepare(params, masks) -> a pytree of effective weights, masked and arranged once for ``step``.
    step(prepared, state f32[B, S], x_t f32[B, X], hidden_dim, activation) -> (state f32[B, S], y_t f32[B, Y]);
        the hidden state h is the first H entries of the state.
    dims(params) -> (X, H, Y): input, (padded) hidden and output sizes of one model's params (no model axis).
    state_size(hidden_dim, output_dim) -> S.
    real_units(masks) -> bool[H]: the real (not padded) hidden units.
    matmul_flops(input_dim, hidden_dim, output_dim) -> forward matrix FLOPs (2 x MACs) of one sequence step;
        with input_dim 0, the FLOPs of the products that read the state, not the input (``train_matmul_flops``).
    weight_keys: param key -> mask key of every weight array (biases excluded): what a budget counts.
    hidden_keys: the param keys of the hidden-to-hidden weights (the hidden proportion's numerator).
    top_row_keys: the param keys of every weight computing h (the hidden proportion's denominator).
    result_columns(spec, seed) -> dict: the ``SPEC_COLUMNS`` and graph columns of a model.
    compute_dtypes: the computation dtypes ``forward`` accepts as its ``compute_dtype`` keyword
        (``models.precision``); a family with only "float32" is called without it.
    config_names: the named configurations this family builds (``--configs`` accepts them; the sweep summary
        shows them as rows of its named-configuration table).
    named_spec(config, input_dim, output_dim, *, budget, hidden_dim, learning_rate, uniform_density, activation)
        -> the spec of named configuration ``config`` (one of ``config_names``) at ``budget`` trainable weights or,
        with no budget, at ``hidden_dim`` units. None for a family with no named configurations.
    """

    name: str
    init: Callable[..., ModelArrays]
    forward: Callable[..., Any]
    prepare: Callable[[Mapping, Mapping], Any]
    step: Callable[..., tuple]
    dims: Callable[[Mapping], tuple[int, int, int]]
    state_size: Callable[[int, int], int]
    real_units: Callable[[Mapping], Any]
    matmul_flops: Callable[[int, int, int], float]
    weight_keys: Mapping[str, str]
    hidden_keys: tuple[str, ...]
    top_row_keys: tuple[str, ...]
    result_columns: Callable[..., dict]
    compute_dtypes: tuple[str, ...] = ("float32",)
    config_names: tuple[str, ...] = ()
    named_spec: Callable[..., Any] | None = None


def train_matmul_flops(family: Family, input_dim: int, hidden_dim, output_dim: int) -> float:
    """Matrix FLOPs (2 x MACs) of training on one sequence step: the forward, one weight-gradient product per
    forward product (as many FLOPs again) and the state cotangents, which only the products reading the state
    need (``matmul_flops`` at input_dim 0): the input is data and gets no gradient. For RAD's 2,500 inputs this
    is ~2x the forward, not the 3x of a layer whose input is itself trained."""
    fwd = family.matmul_flops(input_dim, hidden_dim, output_dim)
    return 2.0 * fwd + family.matmul_flops(0, hidden_dim, output_dim)


def empty_spec_columns() -> dict:
    """Every ``SPEC_COLUMNS`` and graph column at its "not applicable" value (NaN, leak "none", no graph)."""
    row: dict = {c: math.nan for c in SPEC_COLUMNS + GRAPH_COLUMNS}
    row.update(leak_mode="none", hh_graph=None)
    return row


def paper_named_spec(config: str, input_dim: int, output_dim: int, **kwargs):
    """``Family.named_spec`` of the paper's families: ``core.configs.named_specs`` of one named configuration
    (a block RNN of ``core.configs.NAMED_CONFIGS`` or a baseline cell of ``core.cell_spec.CELLS``)."""
    return named_specs([config], input_dim, output_dim, **kwargs)[0]
