"""Multi-frequency regression (``--task=sines``): the input is a noisy sum of sinusoids with random frequencies,
amplitudes and phases; the targets are the separate components ``horizon`` steps ahead (one output per
frequency), MSE at every step after a washout. The number of frequencies (|y|), the horizon, the noise and the
length are the family's parameters; the frequencies are drawn once per task from [0.02, 0.45] cycles per step.

Arrays: ``x`` f32[N, T, 1], ``targets`` f32[N, T, F], ``step_mask`` bool[N, T].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig, check_float, task_rng

NAME = "sines"
WASHOUT = 5


@dataclasses.dataclass(frozen=True)
class SinesConfig(GeneratedConfig):
    """A multi-frequency regression task."""

    num_frequencies: int = task_field(2, "Sinusoids in the input (and outputs).")
    horizon: int = task_field(1, "Steps ahead each component is predicted.")
    noise: float = task_field(0.1, "Standard deviation of the input's Gaussian noise.")
    seq_len: int = task_field(30, "Steps per sequence.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_frequencies", self.num_frequencies, 1)
        check_int("horizon", self.horizon, 0)
        check_float("noise", self.noise, 0.0, 10.0)
        check_int("seq_len", self.seq_len, WASHOUT + 1)


def make(config: SinesConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    f = task_rng(NAME, config).uniform(0.02, 0.45, size=config.num_frequencies)
    t = np.arange(config.seq_len + config.horizon)
    amp = rng.uniform(0.5, 1.5, size=(n, 1, f.size))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, f.size))
    comp = amp * np.sin(2 * np.pi * f[None, None, :] * t[None, :, None] + phase)  # [n, T + h, F]
    x = comp[:, : config.seq_len].sum(-1, keepdims=True) + config.noise * rng.normal(size=(n, config.seq_len, 1))
    mask = np.zeros((n, config.seq_len), bool)
    mask[:, WASHOUT:] = True
    targets = comp[:, config.horizon : config.horizon + config.seq_len]
    return {"x": x.astype(np.float32), "targets": targets.astype(np.float32), "step_mask": mask}


def dims(config: SinesConfig) -> tuple[int, int]:
    return 1, config.num_frequencies


RANGES = {
    "num_frequencies": (1, 6, "int"),
    "horizon": (0, 10, "int"),
    "noise": (0.0, 0.5, "float"),
    "seq_len": (16, 64, "int"),
}
FAMILY = Family(NAME, "regression", SinesConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
