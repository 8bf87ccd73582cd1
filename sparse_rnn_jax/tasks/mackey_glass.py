"""Mackey-Glass chaotic time-series forecasting as per-step regression (``--task=mackey_glass``).

The delay differential equation ``dx/dt = beta * x(t - tau) / (1 + x(t - tau)**n) - gamma * x(t)``
(defaults tau = 17, beta = 0.2, gamma = 0.1, n = 10; n is the config's ``exponent``) is integrated with the
explicit Euler method at step ``h = 1 / substeps`` time units (default 10 sub-steps per unit, delay buffer of
``tau * substeps`` sub-steps). The history on ``[-tau, 0]`` is a constant ``x0 ~ U(0.2, 0.8)`` drawn from the
split's stream, the first ``burn_in`` time units are discarded, and the series is then sampled every
``sample_interval`` time units.

Normalisation: ``z = (x - mu) / sigma`` where mu, sigma are the mean and standard deviation of a fixed
reference trajectory (constant history 1.2, 500 units burn-in, 5000 samples one unit apart) that depends
only on (tau, beta, gamma, n, substeps), so every split and seed shares the same affine map.

Each split integrates its own long series from its own initial condition and cuts it into N windows
starting ``stride`` samples apart (default ``stride = seq_len``: non-overlapping, in temporal order).
Window i: ``x[i, t, 0] = z[i * stride + t]`` and ``targets[i, t, 0] = z[i * stride + t + horizon]``;
``step_mask`` is all True. Arrays: ``x`` f32[N, T, 1], ``targets`` f32[N, T, 1], ``step_mask`` bool[N, T].
Chance: the variance of the training targets (the MSE of predicting their mean), close to 1.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import numpy as np

from sparse_rnn_jax.tasks import base
from sparse_rnn_jax.tasks.base import SPLITS, TINY_SIZES, TaskDef, check_int, split_rng, task_field

TASK_KEY = 0x4D_47_4C_53  # stream constant for this task ("MGLS")


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")


@dataclasses.dataclass(frozen=True)
class MackeyGlassConfig:
    """Mackey-Glass forecasting data of a sweep (time quantities in the equation's time units)."""

    seq_len: int = task_field(40, "Steps per sequence (window) T.")
    horizon: int = task_field(1, "Samples ahead to predict (>= 1).")
    stride: int | None = task_field(None, "Samples between window starts (default: seq_len, non-overlapping).")
    tau: float = task_field(17.0, "Delay tau of the equation (> 0; tau * substeps must be an integer).")
    beta: float = task_field(0.2, "beta of the equation (> 0).")
    gamma: float = task_field(0.1, "gamma (decay rate) of the equation (> 0).")
    exponent: float = task_field(10.0, "Exponent n of the equation's nonlinearity (> 0).")
    substeps: int = task_field(10, "Euler sub-steps per time unit (>= 1).")
    sample_interval: int = task_field(1, "Time units between samples (>= 1).")
    burn_in: int = task_field(500, "Time units discarded before the first sample (>= 0).")
    train_size: int = task_field(1000, "Training windows.")
    val_size: int = task_field(200, "Validation windows.")
    test_size: int = task_field(200, "Test windows (generated on demand, not used in training).")
    data_seed: int = task_field(0, "Seed of the initial conditions (each split integrates its own series).")

    def __post_init__(self) -> None:
        check_int("seq_len", self.seq_len, 1)
        check_int("horizon", self.horizon, 1)
        if self.stride is not None:
            check_int("stride", self.stride, 1)
        for name in ("tau", "beta", "gamma", "exponent"):
            _check_positive(name, getattr(self, name))
        check_int("substeps", self.substeps, 1)
        check_int("sample_interval", self.sample_interval, 1)
        check_int("burn_in", self.burn_in, 0)
        for name in ("train_size", "val_size", "test_size"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)
        delay = self.tau * self.substeps
        if abs(delay - round(delay)) > 1e-9:
            raise ValueError(f"tau * substeps must be an integer, got {self.tau} * {self.substeps} = {delay}")

    @property
    def window_stride(self) -> int:
        return int(self.seq_len if self.stride is None else self.stride)


def _power(v: np.ndarray, n: float) -> np.ndarray:
    """Elementwise v**n; square-and-multiply for integer 1 <= n <= 64 (correctly rounded IEEE ops only)."""
    if n != int(n) or not 1 <= n <= 64:
        return np.power(v, n)
    k, base, result = int(n), v, None
    while k:
        if k & 1:
            result = base if result is None else result * base
        k >>= 1
        if k:
            base = base * base
    return result


def integrate(
    num_samples: int,
    x0: float,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    n: float = 10.0,
    substeps: int = 10,
    sample_interval: int = 1,
    burn_in: int = 0,
) -> np.ndarray:
    """Raw (unnormalised) Mackey-Glass samples, f64[num_samples].

    Euler with step h = 1 / substeps from the constant history x(t) = x0 on [-tau, 0], written as
    ``x[s + 1] = (1 - h * gamma) * x[s] + h * beta * x[s - D] / (1 + x[s - D]**n)`` with D = tau * substeps.
    The delayed term of a block of D sub-steps depends only on already computed values, so it is evaluated
    with numpy per block (integer n by repeated multiplication, no libm ``pow``). Sample k is x at time
    ``burn_in + k * sample_interval``.
    """
    check_int("num_samples", num_samples, 1)
    delay = int(round(tau * substeps))
    h = 1.0 / substeps
    decay = 1.0 - h * gamma
    every = sample_interval * substeps
    first = burn_in * substeps
    total = first + (num_samples - 1) * every  # last sub-step index needed
    xs = [float(x0)] * (delay + 1)  # xs[delay + s] is x at sub-step s (history: s = -delay .. 0)
    x = xs[-1]
    for start in range(0, total, delay):
        stop = min(start + delay, total)
        xd = np.asarray(xs[start:stop], dtype=np.float64)  # x at sub-steps start - delay .. stop - 1 - delay
        drive = (h * beta * xd / (1.0 + _power(xd, float(n)))).tolist()
        for f in drive:
            x = decay * x + f
            xs.append(x)
    out = np.asarray(xs[delay + first :: every], dtype=np.float64)
    if out.shape != (num_samples,) or not np.all(np.isfinite(out)):
        raise RuntimeError("Mackey-Glass integration produced non-finite values")
    return out


@functools.lru_cache(maxsize=32)
def reference_stats(tau: float, beta: float, gamma: float, n: float, substeps: int) -> tuple[float, float]:
    """(mean, std) of the fixed reference trajectory used for normalisation."""
    ref = integrate(5000, 1.2, tau, beta, gamma, n, substeps, sample_interval=1, burn_in=500)
    std = float(ref.std())
    return float(ref.mean()), (std if std > 1e-12 else 1.0)


def make_series(config: MackeyGlassConfig, split: str, seed: int, num_samples: int) -> np.ndarray:
    """Normalised series of one split, f64[num_samples] (the source the windows are cut from)."""
    rng = split_rng(seed, TASK_KEY, split)
    x0 = float(rng.uniform(0.2, 0.8))
    params = (float(config.tau), float(config.beta), float(config.gamma), float(config.exponent), int(config.substeps))
    raw = integrate(num_samples, x0, *params, sample_interval=int(config.sample_interval), burn_in=int(config.burn_in))
    mu, sigma = reference_stats(*params)
    return (raw - mu) / sigma


def series_length(config: MackeyGlassConfig, split: str) -> int:
    """Samples needed for the windows of one split."""
    n = int(getattr(config, f"{split}_size"))
    return (n - 1) * config.window_stride + int(config.seq_len) + int(config.horizon)


def make_mackey_glass(config: MackeyGlassConfig, split: str, seed: int) -> dict[str, np.ndarray]:
    """Generate one split.

    Returns {"x": f32[N, T, 1], "targets": f32[N, T, 1], "step_mask": bool[N, T]} (normalised units) with
    N = ``<split>_size`` and T = ``config.seq_len``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = int(getattr(config, f"{split}_size"))
    t, horizon, stride = int(config.seq_len), int(config.horizon), config.window_stride
    z = make_series(config, split, seed, series_length(config, split)).astype(np.float32)
    starts = np.arange(n) * stride
    idx = starts[:, None] + np.arange(t)[None, :]
    return {
        "x": z[idx][:, :, None],
        "targets": z[idx + horizon][:, :, None],
        "step_mask": np.ones((n, t), dtype=bool),
    }


def dims(config: MackeyGlassConfig) -> tuple[int, int]:
    """(1, 1): the series in, its value ``horizon`` samples ahead out."""
    return 1, 1


def descriptor(config: MackeyGlassConfig, data: Any = None) -> dict:
    """Task summary with an empirical chance loss (``tasks.base.empirical_mse_descriptor``)."""
    return base.empirical_mse_descriptor("mackey_glass", config, data, make_mackey_glass, dims(config))


def load(config: MackeyGlassConfig, log: Callable[[str], None] = print):
    """The train and validation windows and ``engine.task.regression_task`` (MSE at every step)."""

    def note(chance: float) -> str:
        return (
            f"mackey_glass: {config.train_size} / {config.val_size} windows of {config.seq_len} steps, "
            f"{config.horizon} ahead (tau {config.tau:g}); chance MSE {chance:.4f}"
        )

    return base.empirical_mse_load("mackey_glass", config, make_mackey_glass, dims(config), "mackey_glass", note, log)


TINY = {"": {"seq_len": 12, "burn_in": 50, **TINY_SIZES}}
"""Field overrides of a tiny instance (``TaskDef.tiny``)."""
TASK = TaskDef(
    name="mackey_glass", config_type=MackeyGlassConfig, dims=dims, load=load, descriptor=descriptor, tiny=TINY
)
