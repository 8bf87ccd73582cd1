"""The population training loop's pure parts: Adam with a per-model learning rate, vmapped over models,
scanned over minibatches, with per-model divergence freezing.

Shapes: P models in a chunk, B examples per minibatch, S steps per call. Every leaf of ``params``,
``masks`` and the optimiser state has a leading model axis P; ``lrs`` is f32[P].
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sparse_rnn_jax.families import forward_fn
from sparse_rnn_jax.tasks import Batch, Task

_ADAM = optax.scale_by_adam()


class TrainState(NamedTuple):
    """State of a chunk of P models."""

    params: Mapping[str, jax.Array]  # each [P, ...]
    opt_state: Any  # optax ScaleByAdamState, leaves [P, ...]
    diverged: jax.Array  # bool[P]: hit a non-finite loss or weight; frozen since


def init_train_state(params: Mapping[str, jax.Array]) -> TrainState:
    params = jax.tree.map(jnp.asarray, params)
    p = jax.tree.leaves(params)[0].shape[0]
    return TrainState(params, jax.vmap(_ADAM.init)(params), jnp.zeros((p,), bool))


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _mean_loss(task: Task, forward, params, masks, batch: Batch) -> jax.Array:
    y = forward(params, masks, batch.x)
    loss_sum, loss_count, _ = task.score(y, batch)
    return jnp.sum(batch.weight * loss_sum) / jnp.maximum(jnp.sum(batch.weight * loss_count), 1e-12)


def _model_step(task, forward, params, opt_state, diverged, masks, lr, batch):
    """One Adam step of one model; a model whose loss or new weights are non-finite keeps its old state
    and is flagged diverged for good. Returns (params, opt_state, diverged, loss)."""
    loss, grads = jax.value_and_grad(functools.partial(_mean_loss, task, forward))(params, masks, batch)
    updates, new_opt = _ADAM.update(grads, opt_state, params)
    new_params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    ok = jnp.isfinite(loss) & _all_finite(new_params)
    keep = ok & ~diverged
    params = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_params, params)
    opt_state = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_opt, opt_state)
    diverged = diverged | ~ok
    return params, opt_state, diverged, jnp.where(diverged, jnp.nan, loss)


def make_train_steps(task: Task, family: str, activation: str, unroll: int = 1, per_model_order: bool = False):
    """Returns ``train_steps(state, masks, lrs, data, idx, valid) -> (state, losses f32[S, P])`` for models of
    ``family`` (``families.FAMILIES``).

    idx: int32[S, B] (one minibatch stream shared by every model) or int32[S, P, B] (``per_model_order``);
    valid: bool[S], steps marked False change nothing (pads the last call of an epoch).
    """
    step = functools.partial(_model_step, task, forward_fn(family, activation, unroll))
    batch_axis = 0 if per_model_order else None
    vstep = jax.vmap(step, in_axes=(0, 0, 0, 0, 0, batch_axis))
    make_batch = jax.vmap(task.make_batch, in_axes=(None, 0)) if per_model_order else task.make_batch

    def train_steps(state: TrainState, masks, lrs, data, idx, valid):
        def body(st: TrainState, inputs):
            idx_s, valid_s = inputs
            batch = make_batch(data, idx_s)
            params, opt, div, loss = vstep(st.params, st.opt_state, st.diverged, masks, lrs, batch)
            new = TrainState(params, opt, div)
            # XLA fuses this select into the update (measured: no faster with lax.cond).
            return jax.tree.map(lambda n, o: jnp.where(valid_s, n, o), new, st), loss

        return jax.lax.scan(body, state, (idx, valid))

    return train_steps


def make_evaluate(task: Task, family: str, activation: str, unroll: int = 1):
    """Returns ``evaluate(params, masks, data, idx int32[S, B], weight f32[S, B]) -> (loss f32[P], accuracy f32[P])``
    over the examples ``idx`` (rows with weight 0 are padding)."""

    forward = forward_fn(family, activation, unroll)

    def one_model(params, masks, batch):
        return task.score(forward(params, masks, batch.x), batch)

    vmodel = jax.vmap(one_model, in_axes=(0, 0, None))

    def evaluate(params, masks, data, idx, weight):
        p = jax.tree.leaves(params)[0].shape[0]

        def body(acc, inputs):
            idx_s, w_s = inputs
            batch = task.make_batch(data, idx_s)
            batch = batch._replace(weight=batch.weight * w_s)
            loss_sum, loss_count, correct = vmodel(params, masks, batch)
            w = batch.weight[None, :]
            return (
                acc[0] + jnp.sum(w * loss_sum, -1),
                acc[1] + jnp.sum(w * loss_count, -1),
                acc[2] + jnp.sum(w * correct, -1),
                acc[3] + jnp.sum(w, -1),
            ), None

        zeros = jnp.zeros((p,), jnp.float32)
        (ls, lc, corr, n), _ = jax.lax.scan(body, (zeros, zeros, zeros, zeros), (idx, weight))
        return ls / jnp.maximum(lc, 1e-12), corr / jnp.maximum(n, 1e-12)

    return evaluate
