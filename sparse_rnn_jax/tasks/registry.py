"""The task registry: name -> the module or package defining its ``TaskDef`` (``TASK``) and its
``descriptor(config, data=None)``. A new task is one module plus one line here; ``experiments.sweep --task=NAME``
then trains it and its config fields become flags."""

from __future__ import annotations

import importlib

from sparse_rnn_jax.tasks.base import TaskDef

TASKS: dict[str, str] = {
    "rad": "sparse_rnn_jax.tasks.rad",
    "ah": "sparse_rnn_jax.tasks.adroit",
    "reber": "sparse_rnn_jax.tasks.reber",
    "adding": "sparse_rnn_jax.tasks.adding",
    "copy": "sparse_rnn_jax.tasks.copy_task",
    "mackey_glass": "sparse_rnn_jax.tasks.mackey_glass",
    "narma": "sparse_rnn_jax.tasks.narma",
    "smnist": "sparse_rnn_jax.tasks.seq_mnist",
    "npz": "sparse_rnn_jax.tasks.npz",
    "teacher": "sparse_rnn_jax.tasks.generated.teacher",
    "recall": "sparse_rnn_jax.tasks.generated.recall",
    "parity": "sparse_rnn_jax.tasks.generated.parity",
    "sines": "sparse_rnn_jax.tasks.generated.sines",
    "prototypes": "sparse_rnn_jax.tasks.generated.prototypes",
    "modcount": "sparse_rnn_jax.tasks.generated.modcount",
    "lds": "sparse_rnn_jax.tasks.generated.lds",
    "recent_set": "sparse_rnn_jax.tasks.generated.recent_set",
    "moving_average": "sparse_rnn_jax.tasks.generated.moving_average",
    "markov": "sparse_rnn_jax.tasks.generated.markov",
}


def get_task(name: str) -> TaskDef:
    """The registered task ``name``; a ValueError naming the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {tuple(TASKS)}")
    return importlib.import_module(TASKS[name]).TASK
