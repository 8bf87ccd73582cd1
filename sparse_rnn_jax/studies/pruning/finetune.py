"""Evaluating and fine-tuning pruned populations with the engine's programs.

Every model of a chunk, at every (scope, fraction) and unpruned (scope ``none``, fraction 0, the control), forms
one bigger population: ``prune_and_finetune`` evaluates it with the engine's jitted ``evaluate`` and fine-tunes
it with the engine's jitted ``train_steps`` (one vmapped program for all variants; a fresh Adam state, each
model's own learning rate, one minibatch stream shared by every variant), then evaluates again.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.engine.population import even_pieces
from sparse_rnn_jax.engine.programs import PopulationProgram
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.engine.task import Objective
from sparse_rnn_jax.studies.pruning.masks import (
    DEFAULT_FRACTIONS,
    SCOPES,
    hidden_proportion_of_masks,
    make_variants,
    trainable_weights,
)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """How pruned populations are evaluated and fine-tuned.

    steps: minibatch Adam steps after pruning (0: evaluate only).  batch_size: sequences per minibatch.
    eval_batch_size: sequences per evaluation batch.  seed: the fine-tune's minibatch order.
    max_models: most (variant, model) rows per compiled program (memory); a population is split into equal
    pieces, padded with repeats of its last row.  steps_per_call: minibatches per jitted call.  unroll: scan unroll.
    """

    steps: int = 200
    batch_size: int = 16
    eval_batch_size: int = 250
    seed: int = 0
    max_models: int = 256
    steps_per_call: int = 50
    unroll: int = 1

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        for name in ("batch_size", "eval_batch_size", "max_models", "steps_per_call", "unroll"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def finetune_order(seed: int, n: int, batch_size: int, steps: int) -> np.ndarray:
    """int32[steps, batch_size]: consecutive permutations of the n training examples, drawn from
    (seed, pass, 0x9F1E) (a stream of its own, apart from the sweep's epoch orders)."""
    if n < batch_size:
        raise ValueError(f"training set ({n}) is smaller than one batch ({batch_size})")
    per_pass = n // batch_size
    passes = math.ceil(steps / per_pass) if steps else 0
    rows = [
        core_rng(seed, e, 0x9F1E).permutation(n)[: per_pass * batch_size].reshape(per_pass, batch_size)
        for e in range(passes)
    ]
    return (np.concatenate(rows)[:steps] if rows else np.zeros((0, batch_size), np.int64)).astype(np.int32)


def finetune_program(
    task: Objective, family: str, activation: str, cfg: FinetuneConfig, sharding=None
) -> PopulationProgram:
    """The engine's ``PopulationProgram`` of a family with a shared minibatch stream, as the fine-tune runs it
    (float32, the batched form; the models' arrays placed with ``sharding``)."""
    return PopulationProgram(
        task,
        family,
        activation,
        cfg.unroll,
        per_model_order=False,
        form="population",
        steps_per_call=cfg.steps_per_call,
        eval_batch_size=cfg.eval_batch_size,
        sharding=sharding,
    )


def evaluate_and_finetune(
    params: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    lrs: np.ndarray,
    program: PopulationProgram,
    train_data: Mapping[str, jax.Array],
    val_data: Mapping[str, jax.Array],
    cfg: FinetuneConfig,
    *,
    device_multiple: int = 1,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, np.ndarray]:
    """Evaluates a stacked population (rows [R, ...]), fine-tunes it for ``cfg.steps`` minibatches and
    evaluates again, through ``program`` (``finetune_program``); data already on the device.

    Returns f64/bool arrays [R]: val_loss_pruned, val_accuracy_pruned (before the fine-tune),
    val_loss_finetuned, val_accuracy_finetuned, diverged_finetune; and ``params`` / ``masks``, the
    fine-tuned weights and the masks (numpy, [R, ...]).
    """
    rows = int(np.shape(lrs)[0])
    n_train = int(np.shape(next(iter(train_data.values())))[0])
    order = finetune_order(cfg.seed, n_train, cfg.batch_size, cfg.steps)
    out = {
        k: np.zeros(rows)
        for k in ("val_loss_pruned", "val_accuracy_pruned", "val_loss_finetuned", "val_accuracy_finetuned")
    }
    out["diverged_finetune"] = np.zeros(rows, bool)
    tuned_params = {k: np.zeros_like(np.asarray(v)) for k, v in params.items()}
    for start, stop, size in even_pieces(rows, cfg.max_models, device_multiple):
        take = np.minimum(np.arange(start, start + size), stop - 1)  # pad with repeats of the last row
        population = program.init(
            {k: np.asarray(v)[take] for k, v in params.items()},
            {k: np.asarray(v)[take] for k, v in masks.items()},
            np.asarray(lrs, np.float32)[take],
        )
        n = stop - start
        loss, acc = program.evaluate(population.state.params, population.masks, val_data)
        out["val_loss_pruned"][start:stop], out["val_accuracy_pruned"][start:stop] = loss[:n], acc[:n]
        population, _ = program.train(population, train_data, order)
        loss, acc = program.evaluate(population.state.params, population.masks, val_data)
        out["val_loss_finetuned"][start:stop], out["val_accuracy_finetuned"][start:stop] = loss[:n], acc[:n]
        out["diverged_finetune"][start:stop] = np.asarray(population.state.diverged)[:n]
        for k, v in population.state.params.items():
            tuned_params[k][start:stop] = np.asarray(v)[:n]
        log(f"  {stop}/{rows} pruned variants evaluated and fine-tuned")
    out["params"] = tuned_params
    out["masks"] = {k: np.asarray(v) for k, v in masks.items()}
    return out


PRUNING_COLUMNS: tuple[str, ...] = (
    "model_id",
    "config",
    "family",
    "task",
    "output_dim",
    "hidden_dim",
    "hidden_proportion",
    "learning_rate",
    "scope",
    "fraction",
    "trainable_weights",
    "remaining_weights",
    "remaining_hidden_proportion",
    "val_loss_pruned",
    "val_accuracy_pruned",
    "val_loss_finetuned",
    "val_accuracy_finetuned",
    "diverged_finetune",
    "finetune_steps",
    "chance_loss",
)
"""Columns of ``pruning.parquet``, one row per (model, scope, fraction); scope ``none`` (fraction 0) is the
unpruned control. ``trainable_weights`` counts the trained model's weights (biases excluded),
``remaining_weights`` those left after pruning, ``remaining_hidden_proportion`` the hidden proportion of
what is left; ``*_pruned`` are measured right after pruning, ``*_finetuned`` after ``finetune_steps``
minibatches (accuracy NaN for tasks without one); ``chance_loss`` is the task's (``Task.chance_loss``)."""


def prune_and_finetune(
    members: Sequence,
    params: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    family: str,
    activation: str,
    task: Objective,
    train_data: Mapping[str, jax.Array],
    val_data: Mapping[str, jax.Array],
    cfg: FinetuneConfig,
    scopes: Sequence[str] = SCOPES,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    sharding=None,
    device_multiple: int = 1,
    log: Callable[[str], None] = lambda _: None,
) -> pd.DataFrame:
    """Prunes the trained models ``members`` of one chunk (``params``/``masks`` [P, ...], P = len(members),
    e.g. from ``engine.sweep.load_final_params``) at every (scope, fraction), evaluates, fine-tunes and evaluates
    again; returns the ``PRUNING_COLUMNS`` rows. ``sharding``: where the models' arrays go (None: the default
    device); ``device_multiple``: pieces are padded to a multiple of it (the devices ``sharding`` spans)."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"scopes must be among {SCOPES}, got {bad}")
    variants = make_variants(params, masks, family, scopes, fractions)
    lrs = np.tile(np.asarray([m.spec.learning_rate for m in members], np.float32), len(variants.scope))
    log(f"{family}: {len(members)} models x {len(variants.scope)} variants")
    res = evaluate_and_finetune(
        variants.params,
        variants.masks,
        lrs,
        finetune_program(task, family, activation, cfg, sharding),
        train_data,
        val_data,
        cfg,
        device_multiple=device_multiple,
        log=log,
    )
    trained = trainable_weights(masks, family)
    remaining = trainable_weights(variants.masks, family)
    remaining_hp = hidden_proportion_of_masks(variants.masks, family)
    hidden_proportion = [spec_columns(m.spec)["hidden_proportion"] for m in members]
    rows = []
    for v, (scope, fraction) in enumerate(zip(variants.scope, variants.fraction)):
        for i, m in enumerate(members):
            r = v * len(members) + i
            rows.append(
                {
                    "model_id": m.model_id,
                    "config": m.config,
                    "family": m.spec.family,
                    "task": task.name,
                    "output_dim": m.spec.output_dim,
                    "hidden_dim": m.spec.hidden_dim,
                    "hidden_proportion": hidden_proportion[i],
                    "learning_rate": m.spec.learning_rate,
                    "scope": scope,
                    "fraction": fraction,
                    "trainable_weights": int(trained[i]),
                    "remaining_weights": int(remaining[r]),
                    "remaining_hidden_proportion": float(remaining_hp[r]),
                    "val_loss_pruned": float(res["val_loss_pruned"][r]),
                    "val_accuracy_pruned": float(res["val_accuracy_pruned"][r]) if task.has_accuracy else math.nan,
                    "val_loss_finetuned": float(res["val_loss_finetuned"][r]),
                    "val_accuracy_finetuned": float(res["val_accuracy_finetuned"][r])
                    if task.has_accuracy
                    else math.nan,
                    "diverged_finetune": bool(res["diverged_finetune"][r]),
                    "finetune_steps": cfg.steps,
                    "chance_loss": task.chance_loss,
                }
            )
    return pd.DataFrame(rows, columns=list(PRUNING_COLUMNS))
