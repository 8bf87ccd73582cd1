"""The loss of the best uninformed predictor: the one definition of a task's "chance" where no closed form
exists (numpy only)."""

from __future__ import annotations

import numpy as np


def constant_predictor_loss(targets: np.ndarray, step_mask: np.ndarray | None, loss: str) -> float:
    """The loss of the best constant prediction (one value per output, the same at every valid step) on
    ``targets``: ``bce`` multi-hot f32[N, T, Y] -> the mean binary entropy of each output's rate; ``mse`` f32[N, T, Y]
    -> the mean per-output variance; ``ce`` int[N] or int[N, T] class ids -> the entropy of the class frequencies.
    ``step_mask`` bool[N, T] selects the valid steps (None: all). The "chance" of tasks without a closed form."""
    t = np.asarray(targets)
    valid = np.ones(t.shape[:2], bool) if step_mask is None or t.ndim == 1 else np.asarray(step_mask, bool)
    if loss == "ce":
        ids = t[valid] if t.ndim == 2 else t
        p = np.bincount(ids.astype(np.int64).ravel()) / max(ids.size, 1)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    rows = t[valid] if t.ndim == 3 else t.reshape(-1, t.shape[-1])
    if loss == "mse":
        return float(rows.astype(np.float64).var(axis=0).mean())
    if loss == "bce":
        p = np.clip(rows.astype(np.float64).mean(axis=0), 1e-12, 1 - 1e-12)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log1p(-p))))
    raise ValueError(f"loss must be ce, mse or bce, got {loss!r}")
