"""Which models failed to converge, how their losses enter summaries, and when a summary cell is ``uc``.

One rule, applied to every table, figure and regression target of the analysis:

**Failure threshold of a task.** A task with a chance loss (the loss of the best uninformed predictor, defined
by the task, ``engine.task.Task.chance_loss``, and recorded in each run's run.json: ln(output_dim) for RAD and
Reber classification, the best constant set prediction for Reber next-symbol) has the threshold
``CHANCE_MARGIN`` x chance. A task without one (e.g. Adroit Hammer, MSE) gets ``FAILURE_FACTOR`` x the
``FAILURE_REFERENCE_QUANTILE`` quantile of the task's finite minimum validation losses (pooled over all analysed
runs). A threshold can also be given.

**Failed to converge.** A model failed when its minimum validation loss (over epochs) is non-finite, or
is at or above its task's threshold, or when it is flagged ``diverged`` at its last epoch (a non-finite
loss or weight during training).

**Capped loss.** Every model enters means, spreads and the parent network's targets with its
minimum validation loss clipped to the task's cap, ``CAP_FACTOR`` x threshold; a non-finite minimum is
set to the cap. Failed models are kept (they are data: the parent network should learn where models
fail), but an exploding loss cannot dominate a mean or an R2.

**uc (unstable convergence, loss not meaningful).** A summary cell (a bucket of models) is ``uc`` when
more than ``UC_MAX_FAILED_FRACTION`` of its models failed to converge, or when it holds fewer than
``UC_MIN_MODELS`` models. An empty cell is shown as "-", not ``uc``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
import pandas as pd

CHANCE_MARGIN = 0.98
"""A cross-entropy model must get at least 2 % below chance to count as converged."""
FAILURE_FACTOR = 3.0
FAILURE_REFERENCE_QUANTILE = 0.25
"""Tasks without a chance loss: threshold = FAILURE_FACTOR x this quantile of the finite minimum losses."""
CAP_FACTOR = 2.0
"""Capped loss = min(min_val_loss, CAP_FACTOR x threshold); non-finite -> the cap."""
UC_MAX_FAILED_FRACTION = 0.25
UC_MIN_MODELS = 5


@dataclasses.dataclass(frozen=True)
class FailureRule:
    """A task's failure threshold and loss cap.

    Attributes:
      task: task name.
      threshold: a minimum validation loss at or above this means the model failed to converge.
      cap: losses are clipped to this (non-finite ones set to it) before any summary or regression.
      source: how the threshold was set: "chance" (cross-entropy, ln(output_dim)), "population"
        (a multiple of a quantile of the task's losses) or "given".
    """

    task: str
    threshold: float
    cap: float
    source: str

    def describe(self) -> str:
        """The rule in one sentence for reports."""
        how = {
            "chance": f"{CHANCE_MARGIN:g} x the task's chance loss",
            "population": f"{FAILURE_FACTOR:g} x the {FAILURE_REFERENCE_QUANTILE:g} quantile of the task's "
            "minimum losses",
            "given": "given",
        }[self.source]
        return f"failure threshold {self.threshold:.4g} ({how}); losses capped at {self.cap:.4g}"


def chance_loss(models: pd.DataFrame) -> float | None:
    """The task's chance loss from the rows' ``chance_loss`` column (run.json's), None where it has none."""
    if "chance_loss" not in models:
        return None
    values = models["chance_loss"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(values[0]) if values.size else None


def failure_rule(models: pd.DataFrame, task: str, given: float | None = None) -> FailureRule:
    """The failure rule of ``task`` from its per-model rows (``min_val_loss``, ``chance_loss``)."""
    if given is not None:
        if not given > 0 or math.isinf(given):
            raise ValueError(f"failure loss for task {task!r} must be a positive number, got {given}")
        return FailureRule(task, float(given), CAP_FACTOR * float(given), "given")
    chance = chance_loss(models)
    if chance is not None:
        threshold = CHANCE_MARGIN * chance
        return FailureRule(task, threshold, CAP_FACTOR * threshold, "chance")
    losses = models["min_val_loss"].to_numpy(dtype=float)
    losses = losses[np.isfinite(losses)]
    reference = float(np.quantile(losses, FAILURE_REFERENCE_QUANTILE)) if losses.size else math.nan
    if not reference > 0:  # no finite losses, or a quantile at 0: fall back to an unbounded threshold
        return FailureRule(task, math.inf, math.inf, "population")
    threshold = FAILURE_FACTOR * reference
    return FailureRule(task, threshold, CAP_FACTOR * threshold, "population")


def classify(
    models: pd.DataFrame, failure_loss: Mapping[str, float] | None = None
) -> tuple[pd.DataFrame, dict[str, FailureRule]]:
    """Adds ``failed`` (bool) and ``capped_min_val_loss`` to the per-model rows of ``final_per_model``.

    Returns the new frame and one FailureRule per task. ``failure_loss`` maps task -> given threshold.
    """
    failure_loss = dict(failure_loss or {})
    rules: dict[str, FailureRule] = {}
    failed = pd.Series(False, index=models.index)
    capped = pd.Series(np.nan, index=models.index, dtype=float)
    for task, rows in models.groupby("task", sort=True):
        rule = failure_rule(rows, str(task), failure_loss.get(str(task)))
        rules[str(task)] = rule
        loss = rows["min_val_loss"].to_numpy(dtype=float)
        finite = np.isfinite(loss)
        diverged = (
            rows["diverged"].fillna(False).to_numpy(dtype=bool) if "diverged" in rows else np.zeros(len(rows), bool)
        )
        failed.loc[rows.index] = ~finite | (np.where(finite, loss, np.inf) >= rule.threshold) | diverged
        capped.loc[rows.index] = np.where(finite, np.minimum(np.where(finite, loss, 0.0), rule.cap), rule.cap)
    return models.assign(failed=failed.astype(bool), capped_min_val_loss=capped), rules


def cap_curves(curves: np.ndarray, cap: float) -> np.ndarray:
    """Per-epoch losses with the same treatment: non-finite -> cap, finite clipped to the cap."""
    curves = np.asarray(curves, dtype=float)
    return np.where(np.isfinite(curves), np.minimum(curves, cap), cap)


def is_uc(n_models: int, n_failed: int) -> bool:
    """The uc rule for a summary cell (see the module docstring); an empty cell is not uc."""
    if n_models == 0:
        return False
    return n_models < UC_MIN_MODELS or n_failed / n_models > UC_MAX_FAILED_FRACTION


def rule_markdown() -> str:
    """The rule in a few lines of markdown, for reports."""
    return (
        f"- A model **failed to converge** when its minimum validation loss is non-finite or at/above its task's "
        f"failure threshold, or it is flagged `diverged` at its last epoch. Threshold: {CHANCE_MARGIN:g} x the task's "
        "chance loss where the task defines one (run.json: ln(|y|) for RAD and Reber classification, the best "
        f"constant set prediction for Reber next-symbol); otherwise {FAILURE_FACTOR:g} x the "
        f"{FAILURE_REFERENCE_QUANTILE:g} quantile of the task's finite minimum losses.\n"
        f"- Losses are **capped** at {CAP_FACTOR:g} x the threshold (non-finite -> the cap) in every mean, spread, "
        "figure and regression target; failed models are kept.\n"
        f"- A cell is **uc** (unstable convergence, loss not meaningful) when more than "
        f"{UC_MAX_FAILED_FRACTION:.0%} of its models failed or it holds fewer than {UC_MIN_MODELS} models; "
        'an empty cell is shown as "-".'
    )
