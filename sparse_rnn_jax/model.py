"""The varied-density block RNN (paper Eqn 5): dense weight arrays times static boolean masks.

    h_{t+1} = act(W_hx x_{t+1} + W_hh h_t + W_hy y_t + b_h)
    y_{t+1} =     W_yx x_{t+1} + W_yh h_t + W_yy y_t + b_y,      h_0 = 0, y_0 = 0

Effective weights are ``W * mask``: a masked entry is exactly 0, its gradient is exactly 0, and Adam then
leaves it at 0. The x-projections of every step are one matrix product before the scan; inside the scan
the state z = [h; y] is multiplied by the recurrent block [[W_hh, W_hy], [W_yh, W_yy]].

Padded hidden units (``masks["b_h"]`` False) have every incoming weight and their bias masked, so their
pre-activation is 0 and act(0) = 0 for relu and tanh: they stay exactly 0 and change nothing.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sparse_rnn_jax.init import init_model
from sparse_rnn_jax.spec import BLOCKS, NetworkSpec

Params = Mapping[str, jax.Array]
Masks = Mapping[str, jax.Array]

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def apply_masks(params: Params, masks: Masks) -> dict[str, jax.Array]:
    """Effective parameters: every weight and bias times its mask (same keys as ``params``)."""
    out = {f"W_{b}": params[f"W_{b}"] * masks[b].astype(params[f"W_{b}"].dtype) for b in BLOCKS}
    out["b_h"] = params["b_h"] * masks["b_h"].astype(params["b_h"].dtype)
    out["b_y"] = params["b_y"] * masks["b_y"].astype(params["b_y"].dtype)
    return out


class StepWeights(NamedTuple):
    """Effective weights arranged for stepping (S = H + Y, the state size), masked once.

    w_in_t: f32[X, S] = [W_hx; W_yx]^T.  w_rec_t: f32[S, S] = [[W_hh, W_hy], [W_yh, W_yy]]^T.  bias: f32[S] = [b_h; b_y].
    """

    w_in_t: jax.Array
    w_rec_t: jax.Array
    bias: jax.Array


def prepare_step_weights(params: Params, masks: Masks) -> StepWeights:
    """Masks the blocks and concatenates them into the input and recurrent matrices (once per model)."""
    p = apply_masks(params, masks)
    w_in = jnp.concatenate([p["W_hx"], p["W_yx"]], axis=0)
    top = jnp.concatenate([p["W_hh"], p["W_hy"]], axis=1)
    bottom = jnp.concatenate([p["W_yh"], p["W_yy"]], axis=1)
    w_rec = jnp.concatenate([top, bottom], axis=0)
    return StepWeights(w_in.T, w_rec.T, jnp.concatenate([p["b_h"], p["b_y"]]))


def initial_state(batch: int, hidden_dim: int, output_dim: int, dtype=jnp.float32) -> jax.Array:
    """Zero state z_0 = [h_0; y_0]: f32[batch, hidden_dim + output_dim]."""
    return jnp.zeros((batch, hidden_dim + output_dim), dtype)


def prepared_step(
    weights: StepWeights, state: jax.Array, x_t: jax.Array, hidden_dim: int, activation: str = "relu"
) -> tuple[jax.Array, jax.Array]:
    """One step of Eqn 5 on prepared weights: state f32[..., S], x_t f32[..., X] ->
    (z_{t+1} f32[..., S], y_{t+1} f32[..., Y])."""
    pre = x_t @ weights.w_in_t + state @ weights.w_rec_t + weights.bias
    y = pre[..., hidden_dim:]
    return jnp.concatenate([ACTIVATION_FNS[activation](pre[..., :hidden_dim]), y], axis=-1), y


def block_rnn_step(
    params: Params, masks: Masks, state: jax.Array, x_t: jax.Array, activation: str = "relu"
) -> tuple[jax.Array, jax.Array]:
    """One step of Eqn 5 (for rollouts of a single model; populations prepare once, see ``rollout``).

    Args: state f32[B, H+Y] (z_t = [h_t; y_t]); x_t f32[B, X].
    Returns: (z_{t+1} f32[B, H+Y], y_{t+1} f32[B, Y]).
    """
    return prepared_step(prepare_step_weights(params, masks), state, x_t, params["W_hh"].shape[0], activation)


def block_rnn_forward(
    params: Params, masks: Masks, x: jax.Array, activation: str = "relu", unroll: int = 1
) -> jax.Array:
    """Runs Eqn 5 over a batch of sequences.

    Args:
      params, masks: see ``sparse_rnn_jax.init`` (H may be a padded hidden size).
      x: f32[B, T, X] inputs.
    Returns:
      y: f32[B, T, Y], the output after every step.
    """
    w = prepare_step_weights(params, masks)
    hidden = params["W_hh"].shape[0]
    act = ACTIVATION_FNS[activation]
    # All steps' input projections in one product, time-major for the scan: [T, B, H+Y].
    projected = jnp.einsum("btx,xk->tbk", x, w.w_in_t) + w.bias

    def step(z: jax.Array, proj_t: jax.Array) -> tuple[jax.Array, jax.Array]:
        pre = proj_t + z @ w.w_rec_t
        z_next = jnp.concatenate([act(pre[:, :hidden]), pre[:, hidden:]], axis=-1)
        return z_next, pre[:, hidden:]

    z0 = jnp.zeros((x.shape[0], w.w_rec_t.shape[0]), x.dtype)
    _, ys = jax.lax.scan(step, z0, projected, unroll=unroll)
    return jnp.swapaxes(ys, 0, 1)


@functools.lru_cache(maxsize=64)
def _cached_init(spec: NetworkSpec, seed: int, padded_hidden_dim: int, mask_mode: str):
    return init_model(spec, seed, padded_hidden_dim, mask_mode)


class BlockRNN(nn.Module):
    """Flax module of one block RNN.

    Variables: ``params`` (W_hx ... W_yy, b_h, b_y) and ``masks`` (bool, a separate collection, so an optimiser
    over ``params`` never sees them). Initial values come from ``seed`` (``sparse_rnn_jax.init.init_model``),
    not from the Flax rng, so the same seed gives the same network in any population or padding.

    Call: x f32[B, T, X] -> y f32[B, T, Y].
    """

    spec: NetworkSpec
    seed: int = 0
    padded_hidden_dim: int | None = None
    mask_mode: str = "exact"
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        hp = self.padded_hidden_dim or self.spec.hidden_dim
        arrays = _cached_init(self.spec, int(self.seed), int(hp), self.mask_mode)
        params = {k: self.param(k, lambda _rng, v=v: jnp.asarray(v)) for k, v in arrays.params.items()}
        masks = {k: self.variable("masks", k, lambda v=v: jnp.asarray(v)).value for k, v in arrays.masks.items()}
        return block_rnn_forward(params, masks, x, self.spec.activation, self.unroll)
