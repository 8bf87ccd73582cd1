"""Recent-set detection (``--task=recent_set``): a stream of one-hot symbols; at every step t >= window - 1 the
multi-hot target marks which symbols occurred in the last ``window`` steps (sigmoid cross-entropy per symbol).
Alphabet size and window (the memory span) are the family's parameters.

Arrays: ``x`` f32[N, T, K], ``targets`` f32[N, T, K], ``step_mask`` bool[N, T].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig

NAME = "recent_set"


@dataclasses.dataclass(frozen=True)
class RecentSetConfig(GeneratedConfig):
    """A recent-set detection task."""

    num_symbols: int = task_field(6, "Alphabet size K (inputs and outputs).")
    window: int = task_field(3, "Steps looked back.")
    seq_len: int = task_field(20, "Steps per sequence.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_symbols", self.num_symbols, 2)
        check_int("window", self.window, 1)
        check_int("seq_len", self.seq_len, self.window)


def make(config: RecentSetConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    k, w, t = config.num_symbols, config.window, config.seq_len
    onehot = np.eye(k, dtype=np.float32)[rng.integers(0, k, size=(n, t))]
    csum = np.concatenate([np.zeros((n, 1, k), np.float32), np.cumsum(onehot, axis=1)], axis=1)
    start = np.maximum(np.arange(t) + 1 - w, 0)
    targets = ((csum[:, 1:] - csum[:, start]) > 0).astype(np.float32)
    mask = np.zeros((n, t), bool)
    mask[:, w - 1 :] = True
    return {"x": onehot, "targets": targets, "step_mask": mask}


def dims(config: RecentSetConfig) -> tuple[int, int]:
    return config.num_symbols, config.num_symbols


def constrain(values: dict) -> dict:
    values["seq_len"] = max(values["seq_len"], values["window"] + 4)
    return values


RANGES = {"num_symbols": (3, 24, "logint"), "window": (1, 16, "logint"), "seq_len": (10, 48, "int")}
FAMILY = Family(NAME, "multilabel", RecentSetConfig, make, dims, lambda c: c.seq_len, RANGES, constrain)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
