"""Moving averages (``--task=moving_average``): Gaussian inputs; the targets are fixed random linear readouts of
the inputs' mean over the last ``window`` steps (MSE from step window - 1). Input and output dims and the window
(the memory span) are the family's parameters.

Arrays: ``x`` f32[N, T, X], ``targets`` f32[N, T, Y], ``step_mask`` bool[N, T].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig, task_rng

NAME = "moving_average"


@dataclasses.dataclass(frozen=True)
class MovingAverageConfig(GeneratedConfig):
    """A moving-average regression task."""

    input_dim: int = task_field(4, "Inputs |x|.")
    output_dim: int = task_field(2, "Outputs |y| (random readouts of the averaged inputs).")
    window: int = task_field(5, "Steps averaged.")
    seq_len: int = task_field(20, "Steps per sequence.")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("input_dim", "output_dim", "window"):
            check_int(name, getattr(self, name), 1)
        check_int("seq_len", self.seq_len, self.window)


def make(config: MovingAverageConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    w, t = config.window, config.seq_len
    readout = task_rng(NAME, config).normal(size=(config.input_dim, config.output_dim))
    readout /= np.sqrt(config.input_dim)
    x = rng.normal(size=(n, t, config.input_dim))
    csum = np.concatenate([np.zeros((n, 1, config.input_dim)), np.cumsum(x, axis=1)], axis=1)
    start = np.maximum(np.arange(t) + 1 - w, 0)
    avg = (csum[:, 1:] - csum[:, start]) / w * np.sqrt(w)  # unit variance
    mask = np.zeros((n, t), bool)
    mask[:, w - 1 :] = True
    return {"x": x.astype(np.float32), "targets": (avg @ readout).astype(np.float32), "step_mask": mask}


def dims(config: MovingAverageConfig) -> tuple[int, int]:
    return config.input_dim, config.output_dim


def constrain(values: dict) -> dict:
    values["seq_len"] = max(values["seq_len"], values["window"] + 4)
    return values


RANGES = {
    "input_dim": (1, 32, "logint"),
    "output_dim": (1, 8, "logint"),
    "window": (1, 24, "logint"),
    "seq_len": (10, 56, "int"),
}
FAMILY = Family(NAME, "regression", MovingAverageConfig, make, dims, lambda c: c.seq_len, RANGES, constrain)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
