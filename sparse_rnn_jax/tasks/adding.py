"""Adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015) as a regression task (``--task=adding``).

Each sequence has T = ``seq_len`` steps and two input channels:

* ``x[:, :, 0]``: values drawn i.i.d. from U(0, 1);
* ``x[:, :, 1]``: marker channel, 1.0 at exactly two positions (one uniformly in the first half
  ``[0, T // 2)``, one uniformly in the second half ``[T // 2, T)``), 0.0 elsewhere.

The target is the sum of the two marked values, given only at the last step:
``targets[:, T - 1, 0] = x[i, a, 0] + x[i, b, 0]`` and zero elsewhere; ``step_mask`` is True only at
the last step. Arrays: ``x`` f32[N, T, 2], ``targets`` f32[N, T, 1], ``step_mask`` bool[N, T].
Chance: the best constant prediction is the target mean 1, MSE = Var(U + U') = 1/6.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from sparse_rnn_jax.tasks.base import TINY_SIZES, TaskDef, check_int, descriptor_dict, split_rng, task_field

TASK_KEY = 0x41_44_44  # stream constant for this task ("ADD")
CHANCE_LOSS = 1.0 / 6.0


@dataclasses.dataclass(frozen=True)
class AddingConfig:
    """Adding-problem data of a sweep."""

    seq_len: int = task_field(50, "Steps per sequence T.")
    train_size: int = task_field(4000, "Training sequences.")
    val_size: int = task_field(500, "Validation sequences.")
    test_size: int = task_field(500, "Test sequences (generated on demand, not used in training).")
    data_seed: int = task_field(0, "Seed of the generated sequences (each split has its own stream).")

    def __post_init__(self) -> None:
        check_int("seq_len", self.seq_len, 2)
        for name in ("train_size", "val_size", "test_size"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)


def make_adding(config: AddingConfig, split: str, seed: int) -> dict[str, np.ndarray]:
    """Generate one split.

    Returns {"x": f32[N, T, 2], "targets": f32[N, T, 1], "step_mask": bool[N, T]} with N = ``<split>_size``
    and T = ``config.seq_len``. Only the last step is valid; its target lies in [0, 2).
    """
    rng = split_rng(seed, TASK_KEY, split)
    n = int(getattr(config, f"{split}_size"))
    t = int(config.seq_len)
    half = t // 2
    values = rng.random((n, t), dtype=np.float32)
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, t, size=n)
    rows = np.arange(n)

    x = np.zeros((n, t, 2), dtype=np.float32)
    x[:, :, 0] = values
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0

    targets = np.zeros((n, t, 1), dtype=np.float32)
    targets[:, t - 1, 0] = (values[rows, first].astype(np.float64) + values[rows, second]).astype(np.float32)
    step_mask = np.zeros((n, t), dtype=bool)
    step_mask[:, t - 1] = True
    return {"x": x, "targets": targets, "step_mask": step_mask}


def dims(config: AddingConfig) -> tuple[int, int]:
    """(2, 1): value and marker in, the sum out."""
    return 2, 1


def descriptor(config: AddingConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``); chance_loss is analytic, 1/6 (``data`` is not needed)."""
    return descriptor_dict("adding", 2, 1, config.seq_len, "mse", CHANCE_LOSS, config.train_size)


def load(config: AddingConfig, log: Callable[[str], None] = print):
    """The train and validation splits and ``engine.task.regression_task`` (MSE at the last step)."""
    from sparse_rnn_jax.engine.task import LoadedTask, regression_task

    train, val = (make_adding(config, s, config.data_seed) for s in ("train", "val"))
    log(f"adding: {config.train_size} / {config.val_size} sequences of {config.seq_len} steps; chance MSE 1/6")
    task = regression_task("adding", 2, 1, chance_loss=CHANCE_LOSS)
    return LoadedTask(task, train, val, {"adding": dataclasses.asdict(config)})


TINY = {"": {"seq_len": 10, **TINY_SIZES}}
"""Field overrides of a tiny instance (``TaskDef.tiny``)."""
TASK = TaskDef(name="adding", config_type=AddingConfig, dims=dims, load=load, descriptor=descriptor, tiny=TINY)
