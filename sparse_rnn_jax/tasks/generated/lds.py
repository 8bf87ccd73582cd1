"""Linear dynamical system identification (``--task=lds``): the targets are the observations of a random stable
linear system driven by Gaussian inputs, s' = A s + B x, y = C s (MSE after a washout of 3 steps). State size,
input and output dims and the spectral radius of A (how long inputs echo: the memory span) are the family's
parameters.

Arrays: ``x`` f32[N, T, X], ``targets`` f32[N, T, Y], ``step_mask`` bool[N, T].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig, check_float, task_rng

NAME = "lds"
WASHOUT = 3


@dataclasses.dataclass(frozen=True)
class LdsConfig(GeneratedConfig):
    """A linear-system identification task."""

    input_dim: int = task_field(2, "Inputs |x|.")
    output_dim: int = task_field(2, "Observations |y|.")
    state_dim: int = task_field(8, "State size of the system.")
    spectral_radius: float = task_field(0.9, "Spectral radius of A (< 1: stable).")
    seq_len: int = task_field(30, "Steps per sequence.")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("input_dim", "output_dim", "state_dim"):
            check_int(name, getattr(self, name), 1)
        check_float("spectral_radius", self.spectral_radius, 0.0, 0.999)
        check_int("seq_len", self.seq_len, WASHOUT + 1)


def make(config: LdsConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    fixed = task_rng(NAME, config)
    s_dim = config.state_dim
    a = fixed.normal(size=(s_dim, s_dim))
    radius = np.abs(np.linalg.eigvals(a)).max()
    a *= config.spectral_radius / radius
    b = fixed.normal(size=(config.input_dim, s_dim)) / np.sqrt(config.input_dim)
    c = fixed.normal(size=(s_dim, config.output_dim)) / np.sqrt(s_dim)
    x = rng.normal(size=(n, config.seq_len, config.input_dim))
    s = np.zeros((n, s_dim))
    y = np.empty((n, config.seq_len, config.output_dim))
    for k in range(config.seq_len):
        s = s @ a.T + x[:, k] @ b
        y[:, k] = s @ c
    y /= max(float(y[:, WASHOUT:].std()), 1e-6)  # unit scale whatever the radius
    mask = np.zeros((n, config.seq_len), bool)
    mask[:, WASHOUT:] = True
    return {"x": x.astype(np.float32), "targets": y.astype(np.float32), "step_mask": mask}


def dims(config: LdsConfig) -> tuple[int, int]:
    return config.input_dim, config.output_dim


RANGES = {
    "input_dim": (1, 16, "logint"),
    "output_dim": (1, 8, "logint"),
    "state_dim": (2, 32, "logint"),
    "spectral_radius": (0.3, 0.98, "float"),
    "seq_len": (12, 60, "int"),
}
FAMILY = Family(NAME, "regression", LdsConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
