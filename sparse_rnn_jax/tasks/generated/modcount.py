"""Modular counting (``--task=modcount``): a stream of one-hot symbols; the target at the last step is how many
times symbol 0 occurred, modulo ``modulus`` (cross-entropy over ``modulus`` classes). Alphabet size, modulus and
length are the family's parameters; the class frequencies are not uniform for short sequences, so the chance loss
is their entropy on the training split.

Arrays: ``x`` f32[N, T, K], ``labels`` int32[N].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig

NAME = "modcount"


@dataclasses.dataclass(frozen=True)
class ModCountConfig(GeneratedConfig):
    """A modular counting task."""

    num_symbols: int = task_field(3, "Alphabet size K (inputs); symbol 0 is counted.")
    modulus: int = task_field(3, "Classes: the count modulo this.")
    seq_len: int = task_field(20, "Steps per sequence.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_symbols", self.num_symbols, 2)
        check_int("modulus", self.modulus, 2)
        check_int("seq_len", self.seq_len, 1)


def make(config: ModCountConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    symbols = rng.integers(0, config.num_symbols, size=(n, config.seq_len))
    labels = ((symbols == 0).sum(axis=1) % config.modulus).astype(np.int32)
    return {"x": np.eye(config.num_symbols, dtype=np.float32)[symbols], "labels": labels}


def dims(config: ModCountConfig) -> tuple[int, int]:
    return config.num_symbols, config.modulus


RANGES = {"num_symbols": (2, 12, "logint"), "modulus": (2, 6, "int"), "seq_len": (8, 48, "int")}
FAMILY = Family(NAME, "last", ModCountConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
