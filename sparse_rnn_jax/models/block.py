"""The varied-density block RNN (paper Eqn 5): dense weight arrays times static boolean masks.

    h_{t+1} = act(W_hx x_{t+1} + W_hh h_t + W_hy y_t + b_h)
    y_{t+1} =     W_yx x_{t+1} + W_yh h_t + W_yy y_t + b_y,      h_0 = 0, y_0 = 0

Arrays (H = padded hidden dim >= spec.hidden_dim, X = input_dim, Y = output_dim):
  params: W_hx f32[H, X], W_hh f32[H, H], W_hy f32[H, Y], W_yx f32[Y, X], W_yh f32[Y, H], W_yy f32[Y, Y],
          b_h f32[H], b_y f32[Y]   (masked and padded entries exactly 0; biases start at 0)
  masks:  hx, hh, hy, yx, yh, yy bool[same shapes], b_h bool[H] (False on padded units), b_y bool[Y]

Everything a model starts from is drawn from its own integer seed with numpy's PCG64, at the model's true
shape, before padding, so a model is the same whatever padded hidden size or population it is trained in.
A spec with ``hh_graph`` gets its hh mask from a random graph on its true hidden units (``models.graphs``).

Effective weights are ``W * mask``: a masked entry is exactly 0, its gradient is exactly 0, and Adam then
leaves it at 0. The x-projections of every step are one product per input block before the scan; inside the
scan the state z = [h; y] is multiplied by the recurrent block [[W_hh, W_hy], [W_yh, W_yy]].

Padded hidden units (``masks["b_h"]`` False) have every incoming weight and their bias masked, so their
pre-activation is 0 and act(0) = 0 for relu and tanh: they stay exactly 0 and change nothing.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.core.accounting import expected_accounting
from sparse_rnn_jax.core.configs import NAMED_CONFIGS
from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.core.spec import BLOCKS, TOP_ROW, NetworkSpec
from sparse_rnn_jax.models.family import Family, empty_spec_columns, paper_named_spec
from sparse_rnn_jax.models.graphs import graph_columns, hh_graph_mask
from sparse_rnn_jax.models.masks import ModelArrays, block_mask, masked_params
from sparse_rnn_jax.models.precision import COMPUTE_DTYPES, data_product

Params = Mapping[str, jax.Array]
Masks = Mapping[str, jax.Array]

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": jax.nn.relu, "tanh": jnp.tanh}
WEIGHT_KEYS: dict[str, str] = {f"W_{b}": b for b in BLOCKS}
"""param key -> mask key of the six weight blocks."""


def init_model(
    spec: NetworkSpec, seed: int, padded_hidden_dim: int | None = None, mask_mode: str = "exact"
) -> ModelArrays:
    """Masks and initial parameters of ``spec`` drawn from ``seed``, zero-padded to ``padded_hidden_dim``."""
    hp = spec.hidden_dim if padded_hidden_dim is None else int(padded_hidden_dim)
    if hp < spec.hidden_dim:
        raise ValueError(f"padded_hidden_dim {hp} < hidden_dim {spec.hidden_dim}")
    padded_dims = {"x": spec.input_dim, "h": hp, "y": spec.output_dim}
    params: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for i, b in enumerate(BLOCKS):
        rng = core_rng(seed, i)
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


def apply_masks(params: Params, masks: Masks) -> dict[str, jax.Array]:
    """Effective parameters: every weight and bias times its mask (same keys as ``params``)."""
    return masked_params({k: params[k] for k in (*WEIGHT_KEYS, "b_h", "b_y")}, masks, WEIGHT_KEYS)


class StepWeights(NamedTuple):
    """Effective weights arranged for stepping (S = H + Y, the state size), masked once.

    w_in_t: f32[X, S] = [W_hx; W_yx]^T.  w_rec_t: f32[S, S] = [[W_hh, W_hy], [W_yh, W_yy]]^T.
    bias: f32[S] = [b_h; b_y].
    """

    w_in_t: jax.Array
    w_rec_t: jax.Array
    bias: jax.Array


def prepare_step_weights(params: Params, masks: Masks) -> StepWeights:
    """Masks the blocks and concatenates them into the input and recurrent matrices (once per model)."""
    p = apply_masks(params, masks)
    w_in = jnp.concatenate([p["W_hx"], p["W_yx"]], axis=0)
    return StepWeights(w_in.T, recurrent_matrix(p), jnp.concatenate([p["b_h"], p["b_y"]]))


def prepared_step(
    weights: StepWeights, state: jax.Array, x_t: jax.Array, hidden_dim: int, activation: str = "relu"
) -> tuple[jax.Array, jax.Array]:
    """One step of Eqn 5 on prepared weights: state f32[..., S], x_t f32[..., X] ->
    (z_{t+1} f32[..., S], y_{t+1} f32[..., Y]); ``hidden_dim`` = H (padded), S = H + Y."""
    pre = x_t @ weights.w_in_t + state @ weights.w_rec_t + weights.bias
    y = pre[..., hidden_dim:]
    return jnp.concatenate([ACTIVATION_FNS[activation](pre[..., :hidden_dim]), y], axis=-1), y


def input_projection(p: Params, x: jax.Array, compute_dtype: str = "float32") -> jax.Array:
    """Every step's input projection, time-major for the scan: x f32[B, T, X] -> f32[T, B, H+Y] (no bias), from the
    effective (masked) blocks ``p``. Each block is contracted as stored (W_hx f32[H, X], W_yx f32[Y, X]), so the
    large input matrix is never concatenated or transposed (measured: ~1.5x faster training steps on RAD).
    ``compute_dtype``: the products' operand dtype (``models.precision``); the result is float32 either way."""
    return jnp.concatenate(
        [
            data_product("btx,hx->tbh", x, p["W_hx"], compute_dtype),
            data_product("btx,yx->tby", x, p["W_yx"], compute_dtype),
        ],
        axis=-1,
    )


def recurrent_matrix(p: Params) -> jax.Array:
    """[[W_hh, W_hy], [W_yh, W_yy]]^T: f32[S, S] (S = H + Y) from the effective blocks ``p``."""
    top = jnp.concatenate([p["W_hh"], p["W_hy"]], axis=1)
    bottom = jnp.concatenate([p["W_yh"], p["W_yy"]], axis=1)
    return jnp.concatenate([top, bottom], axis=0).T


def block_rnn_forward(
    params: Params,
    masks: Masks,
    x: jax.Array,
    activation: str = "relu",
    unroll: int = 1,
    compute_dtype: str = "float32",
) -> jax.Array:
    """Runs Eqn 5 over a batch of sequences: x f32[B, T, X] -> y f32[B, T, Y], the output after every step
    (params and masks as ``init_model``'s; H may be a padded hidden size). ``compute_dtype``: the input
    projection's operand dtype (``models.precision``); the recurrence and its state stay float32."""
    p = apply_masks(params, masks)
    projected = input_projection(p, x, compute_dtype) + jnp.concatenate([p["b_h"], p["b_y"]])
    ys = recurrence(recurrent_matrix(p), projected, params["W_hh"].shape[0], activation, unroll)
    return jnp.swapaxes(ys, 0, 1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def recurrence(w_rec_t: jax.Array, projected: jax.Array, hidden: int, activation: str, unroll: int = 1) -> jax.Array:
    """The scan of Eqn 5 from the input projections: pre_t = proj_t + z_t W_rec^T, z_{t+1} = [act(pre_t[:H]),
    pre_t[H:]], z_0 = 0. w_rec_t f32[S, S], projected f32[T, B, S] -> the outputs y_t = pre_t[H:], f32[T, B, Y].

    Its gradient is hand-written back-propagation through time: the reverse scan carries only the state's
    cotangent (one product per step), and the recurrent weights' gradient is one product over all steps and
    sequences afterwards (autodiff accumulates it inside the loop, one small product per step: measured 25-30 %
    slower on RAD shapes). Equal to autodiff up to float summation order (tests/models)."""
    return _recurrence_forward(w_rec_t, projected, hidden, activation, unroll)[0]


def _recurrence_forward(w_rec_t, projected, hidden, activation, unroll):
    act = ACTIVATION_FNS[activation]

    def step(z, proj_t):
        pre = proj_t + z @ w_rec_t
        return jnp.concatenate([act(pre[:, :hidden]), pre[:, hidden:]], axis=-1), (z, pre)

    z0 = jnp.zeros((projected.shape[1], w_rec_t.shape[0]), projected.dtype)
    _, (states, pres) = jax.lax.scan(step, z0, projected, unroll=unroll)
    return pres[:, :, hidden:], (w_rec_t, states, pres)


def _recurrence_backward(hidden, activation, unroll, residuals, d_out):
    w_rec_t, states, pres = residuals  # states[t] = z_t (the state step t reads), pres[t] = its pre-activation
    act = ACTIVATION_FNS[activation]

    def step(dz_next, inputs):
        pre, dy = inputs
        _, act_vjp = jax.vjp(act, pre[:, :hidden])
        dpre = jnp.concatenate([act_vjp(dz_next[:, :hidden])[0], dz_next[:, hidden:] + dy], axis=-1)
        return dpre @ w_rec_t.T, dpre

    _, dpres = jax.lax.scan(step, jnp.zeros_like(states[0]), (pres, d_out), reverse=True, unroll=unroll)
    return jnp.einsum("tbi,tbj->ij", states, dpres), dpres


recurrence.defvjp(
    lambda w, proj, hidden, activation, unroll: _recurrence_forward(w, proj, hidden, activation, unroll),
    _recurrence_backward,
)


def block_rnn_step(params: Params, masks: Masks, state: jax.Array, x_t: jax.Array, activation: str = "relu"):
    """One step of Eqn 5 on raw params and masks: state f32[B, H+Y], x_t f32[B, X] -> (state, y f32[B, Y])."""
    return prepared_step(prepare_step_weights(params, masks), state, x_t, params["W_hh"].shape[0], activation)


def matmul_flops(input_dim: int, hidden_dim: int, output_dim: int) -> float:
    """Forward matrix FLOPs (2 x MACs) of one sequence step through the dense arrays."""
    state = hidden_dim + output_dim
    return 2.0 * (state * input_dim + state * state)


def result_columns(spec: NetworkSpec, seed: int | None = None) -> dict:
    """The spec's columns of the results table (``models.family.SPEC_COLUMNS`` and the graph columns)."""
    acc = expected_accounting(spec)
    row = empty_spec_columns()
    row.update(
        hidden_dim=spec.hidden_dim,
        input_dim=spec.input_dim,
        output_dim=spec.output_dim,
        trainable_params=acc.trainable_params,
        model_density=acc.model_density,
        hidden_proportion=acc.hidden_proportion,
        learning_rate=spec.learning_rate,
        activation=spec.activation,
    )
    for b in BLOCKS:
        row[f"density_{b}"] = spec.blocks[b].density
        row[f"init_mean_{b}"] = spec.blocks[b].init_mean
        row[f"init_std_{b}"] = spec.blocks[b].init_std
    row.update(graph_columns(spec.hh_graph, spec.hidden_dim, spec.blocks["hh"].density, seed))
    return row


FAMILY = Family(
    name="block",
    init=init_model,
    forward=block_rnn_forward,
    prepare=prepare_step_weights,
    step=prepared_step,
    dims=lambda params: (params["W_hx"].shape[-1], params["W_hh"].shape[-1], params["W_yx"].shape[-2]),
    state_size=lambda hidden_dim, output_dim: hidden_dim + output_dim,
    real_units=lambda masks: masks["b_h"],
    matmul_flops=matmul_flops,
    weight_keys=WEIGHT_KEYS,
    hidden_keys=("W_hh",),
    top_row_keys=tuple(f"W_{b}" for b in TOP_ROW),
    result_columns=result_columns,
    compute_dtypes=COMPUTE_DTYPES,
    config_names=NAMED_CONFIGS,
    named_spec=paper_named_spec,
)
