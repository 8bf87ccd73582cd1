"""Sampled-dims classification (``--task=prototypes``): each class has a random prototype in |x| dimensions;
a sequence shows its class's prototype under fresh Gaussian noise at every step, and the class is predicted at the
last step (cross-entropy). Input dimension, class count, length and noise (how many steps must be averaged) are
the family's parameters.

Arrays: ``x`` f32[N, T, X], ``labels`` int32[N].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig, check_float, task_rng

NAME = "prototypes"


@dataclasses.dataclass(frozen=True)
class PrototypesConfig(GeneratedConfig):
    """A sampled-dims classification task."""

    input_dim: int = task_field(16, "Inputs |x|.")
    num_classes: int = task_field(5, "Classes |y|.")
    seq_len: int = task_field(10, "Steps per sequence.")
    noise: float = task_field(2.0, "Noise standard deviation per step (prototypes have unit-variance entries).")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("input_dim", self.input_dim, 1)
        check_int("num_classes", self.num_classes, 2)
        check_int("seq_len", self.seq_len, 1)
        check_float("noise", self.noise, 0.0, 100.0)


def make(config: PrototypesConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    protos = task_rng(NAME, config).normal(size=(config.num_classes, config.input_dim))
    labels = rng.integers(0, config.num_classes, size=n)
    x = protos[labels][:, None, :] + config.noise * rng.normal(size=(n, config.seq_len, config.input_dim))
    return {"x": x.astype(np.float32), "labels": labels.astype(np.int32)}


def dims(config: PrototypesConfig) -> tuple[int, int]:
    return config.input_dim, config.num_classes


RANGES = {
    "input_dim": (2, 256, "logint"),
    "num_classes": (2, 20, "logint"),
    "seq_len": (2, 40, "logint"),
    "noise": (0.5, 6.0, "logfloat"),
}
FAMILY = Family(NAME, "last", PrototypesConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
