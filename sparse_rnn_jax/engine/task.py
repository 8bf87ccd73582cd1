"""A task as the engine trains on it: its ``Objective`` (how a minibatch is cut from device-resident data and how a
model's outputs are scored) and a ``LoadedTask`` (the objective with its training and validation arrays). The
registry's ``tasks.base.TaskDef`` is the other side: how a task is configured and loaded.

A task's data is a dict of arrays with a leading example axis N (kept on device, compact: RAD images
stay uint8 and are normalised inside the jitted step). ``make_batch(data, idx)`` gathers examples
``idx: int32[B]`` and returns ``Batch(x f32[B, T, X], target, weight f32[B])``; ``score(y, batch)``
returns per-example ``(loss_sum f32[B], loss_count f32[B], correct f32[B])`` so that losses and
accuracies aggregate exactly over padded evaluation batches:

  loss = sum(weight * loss_sum) / sum(weight * loss_count);  accuracy = sum(weight * correct) / sum(weight)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class Batch(NamedTuple):
    """A minibatch: inputs x f32[B, T, X], the task's target pytree and row weights f32[B] (0 for padding)."""

    x: jax.Array  # f32[B, T, X]
    target: Any
    weight: jax.Array  # f32[B]; 0 for padding rows


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the population engine trains against: a sequence task's shapes, batches and loss.

    Attributes:
      name: "rad", "ah", "reber_next_symbol", ... (the results table's ``task`` column)
      input_dim, output_dim: |x| and |y|.
      make_batch: (data, idx int32[B]) -> Batch, jittable.
      score: (y f32[B, T, Y], Batch) -> (loss_sum, loss_count, correct), each f32[B].
      has_accuracy: whether ``correct`` means anything (classification).
      chance_loss: the loss of the best constant, uninformed predictor (ln 10 for 10-way classification; the
        best constant set prediction for Reber next-symbol), or NaN where the task defines none. The one
        definition of "chance" that the sweep summary, pruning and the analysis use (recorded in run.json).
    """

    name: str
    input_dim: int
    output_dim: int
    make_batch: Callable[[Mapping[str, jax.Array], jax.Array], Batch]
    score: Callable[[jax.Array, Batch], tuple[jax.Array, jax.Array, jax.Array]]
    has_accuracy: bool
    chance_loss: float = float("nan")


def function_key(fn: Callable) -> Any:
    """A value that is equal for two functions that trace to the same program: a plain function's code, defaults
    and the values it closes over (a ``functools.partial``: its function's key and its arguments); a callable whose
    closure or arguments are not hashable (arrays), or that is no function, is its own key (identity)."""
    if isinstance(fn, functools.partial):
        key: Any = ("partial", function_key(fn.func), fn.args, tuple(sorted(fn.keywords.items())))
    elif hasattr(fn, "__code__"):
        cells = tuple((type(c.cell_contents), c.cell_contents) for c in (fn.__closure__ or ()))
        key = (fn.__code__, fn.__defaults__, tuple(sorted((fn.__kwdefaults__ or {}).items())), cells)
    else:
        return fn
    try:
        hash(key)
    except TypeError:
        return fn
    return key


def program_key(task: Objective) -> tuple:
    """What a compiled program depends on of ``task``: its ``make_batch`` and ``score`` as values
    (``function_key``), not the ``Task`` object; its name and chance loss are not traced."""
    return function_key(task.make_batch), function_key(task.score)


def last_step_classification_score(y: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Cross-entropy and accuracy of the last step's outputs (logits f32[B, Y]) against int labels [B]."""
    logits = y[:, -1, :]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch.target)
    correct = (jnp.argmax(logits, axis=-1) == batch.target).astype(jnp.float32)
    return loss, jnp.ones_like(loss), correct


def masked_mse_score(y: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """MSE at every valid step: target = (targets f32[B, T, Y], step_mask bool[B, T]); the loss is the mean
    over valid steps and output dims."""
    actions, step_mask = batch.target
    m = step_mask.astype(jnp.float32)
    sq = jnp.mean((y - actions) ** 2, axis=-1)  # [B, T]
    loss_sum = jnp.sum(sq * m, axis=-1)
    return loss_sum, jnp.sum(m, axis=-1), jnp.zeros_like(loss_sum)


def multilabel_next_symbol_score(y: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Sigmoid outputs against multi-hot targets at every valid step: target = (targets f32[B, T, Y],
    step_mask bool[B, T]).

    loss_sum = binary cross-entropy summed over valid steps and the Y outputs, loss_count = valid steps x Y,
    so the aggregated loss is the mean binary cross-entropy per output and valid step. correct = 1 when at
    every valid step the predicted set {k: sigmoid(y_k) > 0.5} equals the target set (a fully correct string).
    """
    targets, step_mask = batch.target
    m = step_mask.astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(y, targets)  # [B, T, Y]
    loss_sum = jnp.sum(jnp.sum(bce, axis=-1) * m, axis=-1)
    step_ok = jnp.all((y > 0) == (targets > 0.5), axis=-1) | ~step_mask  # sigmoid(y) > 0.5  <=>  y > 0
    return loss_sum, jnp.sum(m, axis=-1) * y.shape[-1], jnp.all(step_ok, axis=-1).astype(jnp.float32)


def last_valid_step_classification_score(y: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Cross-entropy and accuracy of the logits at each sequence's last valid step: target = (labels int32[B],
    lengths int32[B]); the logits are y[b, lengths[b] - 1]."""
    labels, lengths = batch.target
    logits = jnp.take_along_axis(y, (lengths - 1)[:, None, None].astype(jnp.int32), axis=1)[:, 0, :]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return loss, jnp.ones_like(loss), correct


def masked_classification_score(y: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Cross-entropy at every valid step: target = (labels int32[B, T], step_mask bool[B, T]); the loss is the mean
    over valid steps, ``correct`` the share of a sequence's valid steps whose argmax is right."""
    labels, step_mask = batch.target
    m = step_mask.astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(y, labels)  # [B, T]
    right = (jnp.argmax(y, axis=-1) == labels).astype(jnp.float32)
    count = jnp.sum(m, axis=-1)
    return jnp.sum(ce * m, axis=-1), count, jnp.sum(right * m, axis=-1) / jnp.maximum(count, 1.0)


def _ones(idx: jax.Array) -> jax.Array:
    return jnp.ones(idx.shape[0], jnp.float32)


@functools.lru_cache(maxsize=None)
def classification_task(name: str, input_dim: int, output_dim: int, chance_loss: float | None = None) -> Objective:
    """Cross-entropy and accuracy at the last step: data {"x": f32[N, T, X], "labels": int32[N]}. Chance: ln Y
    unless given (e.g. the entropy of unbalanced classes)."""

    def make_batch(data, idx):
        return Batch(data["x"][idx], data["labels"][idx], _ones(idx))

    chance = float(np.log(output_dim)) if chance_loss is None else chance_loss
    return Objective(name, input_dim, output_dim, make_batch, last_step_classification_score, True, chance)


@functools.lru_cache(maxsize=None)
def step_classification_task(name: str, input_dim: int, output_dim: int, chance_loss: float | None = None) -> Objective:
    """Cross-entropy at the valid steps: data {"x": f32[N, T, X], "labels": int32[N, T], "step_mask": bool[N, T]};
    accuracy is the mean share of a sequence's valid steps predicted right. Chance: ln Y unless given."""

    def make_batch(data, idx):
        return Batch(data["x"][idx], (data["labels"][idx], data["step_mask"][idx]), _ones(idx))

    chance = float(np.log(output_dim)) if chance_loss is None else chance_loss
    return Objective(name, input_dim, output_dim, make_batch, masked_classification_score, True, chance)


@functools.lru_cache(maxsize=None)
def regression_task(name: str, input_dim: int, output_dim: int, chance_loss: float | None = None) -> Objective:
    """MSE at the valid steps: data {"x": f32[N, T, X], "targets": f32[N, T, Y], "step_mask": bool[N, T]}; no
    accuracy. ``chance_loss``: the MSE of the best constant prediction where the task defines one."""

    def make_batch(data, idx):
        return Batch(data["x"][idx], (data["targets"][idx], data["step_mask"][idx]), _ones(idx))

    if chance_loss is None:
        return Objective(name, input_dim, output_dim, make_batch, masked_mse_score, has_accuracy=False)
    return Objective(name, input_dim, output_dim, make_batch, masked_mse_score, False, chance_loss)


@functools.lru_cache(maxsize=None)
def multilabel_task(name: str, input_dim: int, output_dim: int, chance_loss: float | None = None) -> Objective:
    """Sigmoid outputs against multi-hot targets at the valid steps (``multilabel_next_symbol_score``): data
    {"x": f32[N, T, X], "targets": f32[N, T, Y], "step_mask": bool[N, T]}; a sequence is correct when every valid
    step's thresholded set is right."""

    def make_batch(data, idx):
        return Batch(data["x"][idx], (data["targets"][idx], data["step_mask"][idx]), _ones(idx))

    if chance_loss is None:
        return Objective(name, input_dim, output_dim, make_batch, multilabel_next_symbol_score, has_accuracy=True)
    return Objective(name, input_dim, output_dim, make_batch, multilabel_next_symbol_score, True, chance_loss)


@dataclasses.dataclass(frozen=True)
class LoadedTask:
    """A task's objective with its training and validation arrays (host numpy, leading example axis) and a JSON-able
    ``info`` record of where the data came from (source, sizes, hashes)."""

    objective: Objective
    train: Mapping[str, np.ndarray]
    val: Mapping[str, np.ndarray]
    info: dict
