"""NARMA-10 system identification as per-step regression (``--task=narma``).

Inputs ``u_t ~ U(0, 0.5)`` i.i.d. drive the recurrence (Atiya & Parlos 2000)

    y[t + 1] = 0.3 y[t] + 0.05 y[t] * sum_{i=0}^{9} y[t - i] + 1.5 u[t - 9] u[t] + 0.1

started at rest (``y[t] = 0`` for t <= 0, ``u[t] = 0`` for t < 0) at the first step of every sequence, so
each target is a function of the visible inputs only. Step t of a sequence has input ``x[:, t, 0] = u[t]``
and target ``targets[:, t, 0] = y[t + 1]`` (the first output that depends on ``u[t]``). ``step_mask`` is
False for the first ``washout`` steps and True afterwards.

Divergence: the recurrence occasionally blows up. Any sequence whose |y| exceeds ``diverge_threshold`` (or
becomes non-finite) at any step is redrawn with fresh inputs from the same stream (deterministic), so the
returned series are all bounded by the threshold. Arrays: ``x`` f32[N, T, 1], ``targets`` f32[N, T, 1],
``step_mask`` bool[N, T]. Chance: the variance of the valid training targets (the MSE of predicting their mean).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from sparse_rnn_jax.tasks import base
from sparse_rnn_jax.tasks.base import TINY_SIZES, TaskDef, check_int, split_rng, task_field

TASK_KEY = 0x4E_41_52_4D  # stream constant for this task ("NARM")
NAME = "narma10"  # the results tables' task name
_ORDER = 10
MAX_REDRAW_ROUNDS = 100


@dataclasses.dataclass(frozen=True)
class NarmaConfig:
    """NARMA-10 data of a sweep."""

    seq_len: int = task_field(100, "Steps per sequence T.")
    washout: int = task_field(0, "Leading steps left out of the loss (0 <= washout < seq_len).")
    diverge_threshold: float = task_field(
        2.0, "Sequences with |y| above it are redrawn (> 0.5; stationary series stay below ~1.3)."
    )
    train_size: int = task_field(2000, "Training sequences.")
    val_size: int = task_field(500, "Validation sequences.")
    test_size: int = task_field(500, "Test sequences (generated on demand, not used in training).")
    data_seed: int = task_field(0, "Seed of the generated inputs (each split has its own stream).")

    def __post_init__(self) -> None:
        check_int("seq_len", self.seq_len, 1)
        check_int("washout", self.washout, 0)
        if self.washout >= self.seq_len:
            raise ValueError(f"washout must be < seq_len ({self.seq_len}), got {self.washout}")
        thr = self.diverge_threshold
        if isinstance(thr, bool) or not isinstance(thr, (int, float, np.integer, np.floating)):
            raise ValueError(f"diverge_threshold must be a number, got {type(thr).__name__}")
        if not math.isfinite(thr) or thr <= 0.5:
            raise ValueError(f"diverge_threshold must be finite and > 0.5, got {thr}")
        for name in ("train_size", "val_size", "test_size"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)


def narma10(u: np.ndarray) -> np.ndarray:
    """Run the NARMA-10 recurrence from rest on inputs u f64[N, T]; returns y[:, 1:] as f64[N, T].

    Output column t is y[t + 1]; overflowing series become inf/nan rather than raising.
    """
    u = np.asarray(u, dtype=np.float64)
    n, t_len = u.shape
    y = np.zeros((n, t_len + 1), dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(t_len):
            window_sum = y[:, max(0, t - _ORDER + 1) : t + 1].sum(axis=1)
            u_lag = u[:, t - _ORDER + 1] if t >= _ORDER - 1 else 0.0
            y[:, t + 1] = 0.3 * y[:, t] + 0.05 * y[:, t] * window_sum + 1.5 * u_lag * u[:, t] + 0.1
    return y[:, 1:]


def make_narma(config: NarmaConfig, split: str, seed: int) -> dict[str, np.ndarray]:
    """Generate one split.

    Returns {"x": f32[N, T, 1], "targets": f32[N, T, 1], "step_mask": bool[N, T]} with
    N = ``<split>_size`` and T = ``config.seq_len``.
    """
    rng = split_rng(seed, TASK_KEY, split)
    n = int(getattr(config, f"{split}_size"))
    t = int(config.seq_len)
    thr = float(config.diverge_threshold)
    u = rng.uniform(0.0, 0.5, size=(n, t))
    y = narma10(u)
    bad = ~np.all(np.abs(y) <= thr, axis=1)  # also catches nan
    rounds = 0
    while bad.any():
        rounds += 1
        if rounds > MAX_REDRAW_ROUNDS:
            raise RuntimeError(f"NARMA-10: {int(bad.sum())} sequences still diverge after {MAX_REDRAW_ROUNDS} redraws")
        rows = np.flatnonzero(bad)
        u[rows] = rng.uniform(0.0, 0.5, size=(rows.size, t))
        y[rows] = narma10(u[rows])
        bad[rows] = ~np.all(np.abs(y[rows]) <= thr, axis=1)
    step_mask = np.ones((n, t), dtype=bool)
    step_mask[:, : int(config.washout)] = False
    return {
        "x": u.astype(np.float32)[:, :, None],
        "targets": y.astype(np.float32)[:, :, None],
        "step_mask": step_mask,
    }


def dims(config: NarmaConfig) -> tuple[int, int]:
    """(1, 1): u in, y out."""
    return 1, 1


def descriptor(config: NarmaConfig, data: Any = None) -> dict:
    """Task summary with an empirical chance loss (``tasks.base.empirical_mse_descriptor``)."""
    return base.empirical_mse_descriptor(NAME, config, data, make_narma, dims(config))


def load(config: NarmaConfig, log: Callable[[str], None] = print):
    """The train and validation splits and ``engine.task.regression_task`` (MSE at the steps after the washout)."""

    def note(chance: float) -> str:
        return (
            f"narma: {config.train_size} / {config.val_size} NARMA-10 sequences of {config.seq_len} steps "
            f"(washout {config.washout}); chance MSE {chance:.5f}"
        )

    return base.empirical_mse_load(NAME, config, make_narma, dims(config), "narma", note, log)


TINY = {"": {"seq_len": 20, "washout": 3, **TINY_SIZES}}
"""Field overrides of a tiny instance (``TaskDef.tiny``)."""
TASK = TaskDef(name="narma", config_type=NarmaConfig, dims=dims, load=load, descriptor=descriptor, tiny=TINY)
