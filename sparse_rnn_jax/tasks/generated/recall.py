"""Delayed recall (``--task=recall``): a stream of one-hot symbols; at every step t >= lag the target is the
symbol seen ``lag`` steps earlier (cross-entropy at those steps). The alphabet size and the lag (the memory span)
are the family's parameters.

Arrays: ``x`` f32[N, T, K], ``labels`` int32[N, T], ``step_mask`` bool[N, T] (True from step ``lag``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig

NAME = "recall"


@dataclasses.dataclass(frozen=True)
class RecallConfig(GeneratedConfig):
    """A delayed-recall task."""

    num_symbols: int = task_field(4, "Alphabet size K (inputs and classes).")
    lag: int = task_field(5, "Steps between a symbol and its recall.")
    recall_steps: int = task_field(10, "Steps scored (the sequence is lag + recall_steps long).")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_symbols", self.num_symbols, 2)
        check_int("lag", self.lag, 1)
        check_int("recall_steps", self.recall_steps, 1)

    @property
    def seq_len(self) -> int:
        return self.lag + self.recall_steps


def make(config: RecallConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    t, k, lag = config.seq_len, config.num_symbols, config.lag
    symbols = rng.integers(0, k, size=(n, t))
    labels = np.zeros((n, t), np.int32)
    labels[:, lag:] = symbols[:, :-lag]
    mask = np.zeros((n, t), bool)
    mask[:, lag:] = True
    return {"x": np.eye(k, dtype=np.float32)[symbols], "labels": labels, "step_mask": mask}


def dims(config: RecallConfig) -> tuple[int, int]:
    return config.num_symbols, config.num_symbols


RANGES = {"num_symbols": (2, 24, "logint"), "lag": (1, 30, "logint"), "recall_steps": (4, 24, "int")}
FAMILY = Family(NAME, "steps", RecallConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
