"""The Reber tasks for the engine: next-symbol sets (binary cross-entropy at every step; a string counts as
correct when every step's thresholded set is right) and classification (cross-entropy at the last symbol)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.core.chance import constant_predictor_loss
from sparse_rnn_jax.engine.task import (
    Batch,
    LoadedTask,
    Objective,
    last_valid_step_classification_score,
    multilabel_task,
)
from sparse_rnn_jax.tasks.reber import ReberTaskConfig
from sparse_rnn_jax.tasks.reber.grammar import NUM_SYMBOLS, load_reber


def reber_next_symbol_task(chance_loss: float | None = None) -> Objective:
    """Embedded Reber grammar, next-symbol prediction (``grammar``): data {"x": f32[N, T, 7], "targets":
    f32[N, T, 7] (multi-hot legal next symbols), "step_mask": bool[N, T], ...}. Loss: mean binary cross-entropy
    per output and valid step; accuracy: the fraction of fully correct strings. ``chance_loss``: that of the
    best constant predictor of the sets (``core.chance.constant_predictor_loss`` on the training split)."""
    return multilabel_task("reber_next_symbol", NUM_SYMBOLS, NUM_SYMBOLS, chance_loss)


@functools.lru_cache(maxsize=None)
def reber_classification_task() -> Objective:
    """Embedded Reber grammar, grammatical (1) or not (0) (``grammar``): data {"x": f32[N, T, 7],
    "label": int32[N], "lengths": int32[N]}; 2-class cross-entropy at each string's last symbol; chance ln 2."""

    def make_batch(data, idx):
        return Batch(data["x"][idx], (data["label"][idx], data["lengths"][idx]), jnp.ones(idx.shape[0], jnp.float32))

    return Objective(
        "reber_classification",
        NUM_SYMBOLS,
        2,
        make_batch,
        last_valid_step_classification_score,
        has_accuracy=True,
        chance_loss=float(np.log(2.0)),
    )


def load(config: ReberTaskConfig, log: Callable[[str], None] = print) -> LoadedTask:
    """Generates the strings of every split and the engine's arrays."""
    grammar = config.grammar_config()
    splits = load_reber(grammar)
    train = splits["train"].arrays
    if grammar.variant == "next_symbol":
        task = reber_next_symbol_task(round(constant_predictor_loss(train["targets"], train["step_mask"], "bce"), 6))
    else:
        task = reber_classification_task()
    lengths = np.asarray([len(s) for s in splits["train"].strings])
    train_set = set(splits["train"].strings)
    info = {
        "reber": dataclasses.asdict(grammar),
        "train_length": {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())},
        "distinct_train_strings": len(train_set),
        "val_strings_seen_in_train": float(np.mean([s in train_set for s in splits["val"].strings])),
    }
    log(
        f"reber ({grammar.variant}): {grammar.train_size} / {grammar.val_size} / {grammar.test_size} strings, "
        f"length {info['train_length']['min']}-{info['train_length']['max']} "
        f"(median {info['train_length']['median']:g}), {len(train_set)} distinct in train; "
        f"{info['val_strings_seen_in_train']:.0%} of validation strings also in train"
    )
    return LoadedTask(task, train, splits["val"].arrays, info)
