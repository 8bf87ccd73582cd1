"""Delayed-recall copy task as per-step classification (``--task=copy``).

With K = ``num_symbols``, L = ``length`` and D = ``delay``, every sequence has T = L + D + L steps and
K + 2 input channels; exactly one channel is 1.0 at each step:

* steps ``[0, L)`` (presentation): channel ``s`` (0 <= s < K) one-hot encodes the shown symbol;
* steps ``[L, L + D)`` (delay): channel ``K`` ("blank");
* steps ``[L + D, T)`` (recall): channel ``K + 1`` ("cue").

At recall step ``L + D + j`` the label is the j-th shown symbol; ``step_mask`` is True only at the L recall
steps (labels are 0 elsewhere). Symbols are drawn i.i.d. uniformly from ``{0, ..., K - 1}``.
Arrays: ``x`` f32[N, T, K + 2], ``labels`` int32[N, T], ``step_mask`` bool[N, T].
Chance: the uniform prediction, cross-entropy ln K per recall step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from sparse_rnn_jax.tasks.base import TINY_SIZES, TaskDef, check_int, descriptor_dict, split_rng, task_field

TASK_KEY = 0x43_4F_50_59  # stream constant for this task ("COPY")


@dataclasses.dataclass(frozen=True)
class CopyConfig:
    """Copy-task data of a sweep."""

    num_symbols: int = task_field(8, "Alphabet size K (>= 2); inputs are K + 2 channels (symbols, blank, cue).")
    length: int = task_field(5, "Symbols shown and then recalled, L (>= 1).")
    delay: int = task_field(10, "Blank steps between presentation and recall, D (>= 0); T = 2 L + D.")
    train_size: int = task_field(4000, "Training sequences.")
    val_size: int = task_field(500, "Validation sequences.")
    test_size: int = task_field(500, "Test sequences (generated on demand, not used in training).")
    data_seed: int = task_field(0, "Seed of the generated sequences (each split has its own stream).")

    def __post_init__(self) -> None:
        check_int("num_symbols", self.num_symbols, 2)
        check_int("length", self.length, 1)
        check_int("delay", self.delay, 0)
        for name in ("train_size", "val_size", "test_size"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)

    @property
    def seq_len(self) -> int:
        """T = 2 * length + delay."""
        return 2 * int(self.length) + int(self.delay)

    @property
    def blank_channel(self) -> int:
        return int(self.num_symbols)

    @property
    def cue_channel(self) -> int:
        return int(self.num_symbols) + 1


def make_copy(config: CopyConfig, split: str, seed: int) -> dict[str, np.ndarray]:
    """Generate one split.

    Returns {"x": f32[N, T, K + 2], "labels": int32[N, T], "step_mask": bool[N, T]} with
    N = ``<split>_size``, T = ``config.seq_len``, K = ``config.num_symbols``.
    """
    rng = split_rng(seed, TASK_KEY, split)
    n = int(getattr(config, f"{split}_size"))
    k, length, delay = int(config.num_symbols), int(config.length), int(config.delay)
    t = config.seq_len
    recall = length + delay
    symbols = rng.integers(0, k, size=(n, length))

    x = np.zeros((n, t, k + 2), dtype=np.float32)
    rows = np.arange(n)[:, None]
    steps = np.arange(length)[None, :]
    x[rows, steps, symbols] = 1.0
    x[:, length:recall, config.blank_channel] = 1.0
    x[:, recall:, config.cue_channel] = 1.0

    labels = np.zeros((n, t), dtype=np.int32)
    labels[:, recall:] = symbols
    step_mask = np.zeros((n, t), dtype=bool)
    step_mask[:, recall:] = True
    return {"x": x, "labels": labels, "step_mask": step_mask}


def dims(config: CopyConfig) -> tuple[int, int]:
    """(K + 2, K)."""
    return int(config.num_symbols) + 2, int(config.num_symbols)


def descriptor(config: CopyConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``); chance_loss is analytic, ln K (``data`` is not needed)."""
    k = int(config.num_symbols)
    return descriptor_dict("copy", k + 2, k, config.seq_len, "ce", math.log(k), config.train_size)


def load(config: CopyConfig, log: Callable[[str], None] = print):
    """The train and validation splits and ``engine.task.step_classification_task`` (CE at the recall steps)."""
    from sparse_rnn_jax.engine.task import LoadedTask, step_classification_task

    train, val = (make_copy(config, s, config.data_seed) for s in ("train", "val"))
    log(
        f"copy: {config.train_size} / {config.val_size} sequences, {config.length} of {config.num_symbols} symbols "
        f"recalled after {config.delay} blank steps (T = {config.seq_len}); chance ln {config.num_symbols}"
    )
    task = step_classification_task("copy", *dims(config))
    return LoadedTask(task, train, val, {"copy": dataclasses.asdict(config)})


TINY = {"": {"num_symbols": 4, "length": 2, "delay": 3, **TINY_SIZES}}
"""Field overrides of a tiny instance (``TaskDef.tiny``)."""
TASK = TaskDef(name="copy", config_type=CopyConfig, dims=dims, load=load, descriptor=descriptor, tiny=TINY)
