"""Teacher-student sequences (``--task=teacher``): the targets are the outputs of a random sparse tanh RNN (the
teacher) driven by Gaussian inputs. The teacher's hidden size, its recurrent and input/output densities (so its
hidden proportion) and its spectral radius (its memory) are the family's parameters; the loss is the MSE at every
step after a washout of 3 steps.

Arrays: ``x`` f32[N, T, X], ``targets`` f32[N, T, Y] (the teacher's readouts, O(1)), ``step_mask`` bool[N, T].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig, check_float, task_rng

NAME = "teacher"
WASHOUT = 3


@dataclasses.dataclass(frozen=True)
class TeacherConfig(GeneratedConfig):
    """A teacher-student task."""

    input_dim: int = task_field(4, "Inputs |x|.")
    output_dim: int = task_field(2, "Outputs |y| (the teacher's readouts).")
    seq_len: int = task_field(20, "Steps per sequence.")
    teacher_hidden: int = task_field(16, "Hidden units of the teacher RNN.")
    recurrent_density: float = task_field(0.5, "Density of the teacher's hidden-to-hidden weights.")
    io_density: float = task_field(0.5, "Density of the teacher's input and output weights.")
    spectral_radius: float = task_field(0.9, "Spectral radius of the teacher's recurrent matrix (its memory).")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("input_dim", "output_dim", "teacher_hidden"):
            check_int(name, getattr(self, name), 1)
        check_int("seq_len", self.seq_len, WASHOUT + 1)
        for name in ("recurrent_density", "io_density"):
            check_float(name, getattr(self, name), 0.01, 1.0)
        check_float("spectral_radius", self.spectral_radius, 0.0, 2.0)


def _sparse(rng: np.random.Generator, shape: tuple[int, int], density: float) -> np.ndarray:
    w = rng.normal(size=shape) * (rng.random(shape) < density)
    return w


def teacher_weights(config: TeacherConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W_in f64[X, H], W_hh f64[H, H], W_out f64[H, Y]) of the task's teacher (fixed by ``data_seed``)."""
    rng = task_rng(NAME, config)
    x, h, y = config.input_dim, config.teacher_hidden, config.output_dim
    w_in = _sparse(rng, (x, h), config.io_density) / np.sqrt(max(1.0, x * config.io_density))
    w_hh = _sparse(rng, (h, h), config.recurrent_density)
    radius = np.abs(np.linalg.eigvals(w_hh)).max() if w_hh.any() else 0.0
    w_hh = w_hh * (config.spectral_radius / radius) if radius > 0 else w_hh
    w_out = _sparse(rng, (h, y), config.io_density)
    w_out[:, ~w_out.any(axis=0)] = rng.normal(size=(h, int((~w_out.any(axis=0)).sum())))  # every output reads
    return w_in, w_hh, w_out / np.sqrt(max(1.0, h * config.io_density))


def make(config: TeacherConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    w_in, w_hh, w_out = teacher_weights(config)
    t = config.seq_len
    x = rng.normal(size=(n, t, config.input_dim))
    h = np.zeros((n, config.teacher_hidden))
    y = np.empty((n, t, config.output_dim))
    for k in range(t):
        h = np.tanh(x[:, k] @ w_in + h @ w_hh)
        y[:, k] = h @ w_out
    mask = np.zeros((n, t), bool)
    mask[:, WASHOUT:] = True
    return {"x": x.astype(np.float32), "targets": y.astype(np.float32), "step_mask": mask}


def dims(config: TeacherConfig) -> tuple[int, int]:
    return config.input_dim, config.output_dim


RANGES = {
    "input_dim": (1, 48, "logint"),
    "output_dim": (1, 8, "logint"),
    "seq_len": (10, 60, "int"),
    "teacher_hidden": (4, 64, "logint"),
    "recurrent_density": (0.05, 1.0, "logfloat"),
    "io_density": (0.1, 1.0, "logfloat"),
    "spectral_radius": (0.3, 1.3, "float"),
}
FAMILY = Family(NAME, "regression", TeacherConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
