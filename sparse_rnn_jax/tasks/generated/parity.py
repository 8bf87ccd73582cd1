"""Delayed parity (``--task=parity``): a stream of random bits (one input channel, +-1); at every step t >=
lag + window - 1 the target is the parity of the ``window`` bits ending ``lag`` steps before t (two classes,
cross-entropy at those steps). Window (the order of the nonlinearity) and lag (the memory span) are the family's
parameters.

Arrays: ``x`` f32[N, T, 1], ``labels`` int32[N, T], ``step_mask`` bool[N, T].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig

NAME = "parity"


@dataclasses.dataclass(frozen=True)
class ParityConfig(GeneratedConfig):
    """A delayed-parity task."""

    window: int = task_field(2, "Bits whose parity is the target.")
    lag: int = task_field(0, "Steps between the window's last bit and the scored step.")
    seq_len: int = task_field(20, "Steps per sequence.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("window", self.window, 1)
        check_int("lag", self.lag, 0)
        check_int("seq_len", self.seq_len, self.window + self.lag)


def make(config: ParityConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    t, w, lag = config.seq_len, config.window, config.lag
    bits = rng.integers(0, 2, size=(n, t))
    csum = np.concatenate([np.zeros((n, 1), int), np.cumsum(bits, axis=1)], axis=1)
    labels = np.zeros((n, t), np.int32)
    first = w + lag - 1
    ends = np.arange(first, t) - lag  # window ends (inclusive)
    labels[:, first:] = (csum[:, ends + 1] - csum[:, ends + 1 - w]) % 2
    mask = np.zeros((n, t), bool)
    mask[:, first:] = True
    return {"x": (2.0 * bits - 1.0).astype(np.float32)[:, :, None], "labels": labels, "step_mask": mask}


def dims(config: ParityConfig) -> tuple[int, int]:
    return 1, 2


def constrain(values: dict) -> dict:
    values["seq_len"] = max(values["seq_len"], values["window"] + values["lag"] + 4)
    return values


RANGES = {"window": (1, 4, "int"), "lag": (0, 20, "int"), "seq_len": (12, 48, "int")}
FAMILY = Family(NAME, "steps", ParityConfig, make, dims, lambda c: c.seq_len, RANGES, constrain)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
