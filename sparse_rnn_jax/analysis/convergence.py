"""Which models failed to converge, which exploded, how their losses enter summaries, and when a cell is ``uc``.

One rule, applied to every table, figure and regression target of the analysis and to the sweep's printout
(``summary``). Runs are grouped by experiment (task, environment, dims; ``report``), each group with its own rule:

**Failure threshold of a task.** A task with a chance loss (the loss of the best uninformed predictor, defined
by the task, ``engine.task.Task.chance_loss``, and recorded in each run's run.json: ln(output_dim) for RAD and
Reber classification, the best constant set prediction for Reber next-symbol) has the threshold
``CHANCE_MARGIN`` x chance. A task without one (e.g. Adroit Hammer, MSE) gets ``FAILURE_FACTOR`` x the
``FAILURE_REFERENCE_QUANTILE`` quantile of the task's finite minimum validation losses (pooled over all analysed
runs). A threshold can also be given.

**Failed to converge.** A model failed when its minimum validation loss (over epochs) is non-finite, or
is at or above its task's threshold, or when it is flagged ``diverged`` at its last epoch (a non-finite
loss or weight during training).

**Exploded** (loss not meaningful). A model exploded when its minimum validation loss is non-finite, or above
the explosion threshold ``EXPLOSION_FACTOR`` x the task's baseline (its chance loss; without one, the
``FAILURE_REFERENCE_QUANTILE`` quantile of the task's finite minimum losses; a given threshold is its own
baseline), or when it is flagged ``diverged`` at its last epoch. **At chance**: failed but not exploded (a finite
loss at or above the failure threshold: the model learned nothing, but its loss means something).

**Capped loss.** Every model enters means, spreads and the parent network's targets with its
minimum validation loss clipped to the task's cap, ``CAP_FACTOR`` x threshold; a non-finite minimum is
set to the cap. Failed models are kept (they are data: the parent network should learn where models
fail), but an exploding loss cannot dominate a mean or an R2.

**uc (unstable convergence, loss not meaningful)**, as the paper uses it: a summary cell (a bucket of models) is
``uc`` when more than ``UC_MAX_EXPLODED_FRACTION`` (25 %) of its models exploded (non-finite, diverged, or above
the explosion threshold). Many models *at chance* do not make a cell uc: their share is reported beside the mean.
A uc cell still shows its mean and n, with ``uc`` as a marker; an empty cell is shown as "-".
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
EXPLOSION_FACTOR = 10.0
"""Explosion threshold = EXPLOSION_FACTOR x the task's baseline (chance loss, or the reference quantile)."""
UC_MAX_EXPLODED_FRACTION = 0.25
"""A cell with more than this share of exploded models is ``uc``."""


@dataclasses.dataclass(frozen=True)
class FailureRule:
    """A task's failure threshold and loss cap.

    Attributes:
      task: the experiment's name (task, or its environment; ``report``).
      threshold: a minimum validation loss at or above this means the model failed to converge.
      cap: losses are clipped to this (non-finite ones set to it) before any summary or regression.
      source: how the threshold was set: "chance" (the task's chance loss), "population"
        (a multiple of a quantile of the task's losses) or "given".
      explosion: a minimum validation loss above this means the model exploded (``EXPLOSION_FACTOR`` x baseline).
      chance: the task's chance loss (None without one).
    """

    task: str
    threshold: float
    cap: float
    source: str
    explosion: float = math.inf
    chance: float | None = None

    def describe(self) -> str:
        """The rule in one sentence for reports."""
        how = {
            "chance": f"{CHANCE_MARGIN:g} x the task's chance loss",
            "population": f"{FAILURE_FACTOR:g} x the {FAILURE_REFERENCE_QUANTILE:g} quantile of the task's "
            "minimum losses",
            "given": "given",
        }[self.source]
        return (
            f"failure threshold {self.threshold:.4g} ({how}); losses capped at {self.cap:.4g}; "
            f"explosion threshold {self.explosion:.4g}"
        )


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
        return FailureRule(task, float(given), CAP_FACTOR * float(given), "given", EXPLOSION_FACTOR * float(given))
    chance = chance_loss(models)
    if chance is not None:
        threshold = CHANCE_MARGIN * chance
        return FailureRule(task, threshold, CAP_FACTOR * threshold, "chance", EXPLOSION_FACTOR * chance, chance)
    losses = models["min_val_loss"].to_numpy(dtype=float)
    losses = losses[np.isfinite(losses)]
    reference = float(np.quantile(losses, FAILURE_REFERENCE_QUANTILE)) if losses.size else math.nan
    if not reference > 0:  # no finite losses, or a quantile at 0: fall back to an unbounded threshold
        return FailureRule(task, math.inf, math.inf, "population")
    threshold = FAILURE_FACTOR * reference
    return FailureRule(task, threshold, CAP_FACTOR * threshold, "population", EXPLOSION_FACTOR * reference)


def classify(
    models: pd.DataFrame, failure_loss: Mapping[str, float] | None = None, by: str = "task"
) -> tuple[pd.DataFrame, dict[str, FailureRule]]:
    """Adds ``failed``, ``exploded``, ``at_chance`` (bool) and ``capped_min_val_loss`` to the per-model rows of
    ``final_per_model``, with one rule per value of column ``by`` (the task, or the report's experiment).

    Returns the new frame and the rules by group. ``failure_loss`` maps a group (or its task) -> given threshold.
    """
    failure_loss = dict(failure_loss or {})
    rules: dict[str, FailureRule] = {}
    failed = pd.Series(False, index=models.index)
    exploded = pd.Series(False, index=models.index)
    capped = pd.Series(np.nan, index=models.index, dtype=float)
    for group, rows in models.groupby(by, sort=True):
        task = str(rows["task"].iloc[0]) if "task" in rows else str(group)
        rule = failure_rule(rows, str(group), failure_loss.get(str(group), failure_loss.get(task)))
        rules[str(group)] = rule
        loss = rows["min_val_loss"].to_numpy(dtype=float)
        finite = np.isfinite(loss)
        diverged = (
            rows["diverged"].fillna(False).to_numpy(dtype=bool) if "diverged" in rows else np.zeros(len(rows), bool)
        )
        finite_loss = np.where(finite, loss, np.inf)
        failed.loc[rows.index] = ~finite | (finite_loss >= rule.threshold) | diverged
        exploded.loc[rows.index] = ~finite | (finite_loss > rule.explosion) | diverged
        capped.loc[rows.index] = np.where(finite, np.minimum(np.where(finite, loss, 0.0), rule.cap), rule.cap)
    return (
        models.assign(
            failed=failed.astype(bool),
            exploded=exploded.astype(bool),
            at_chance=(failed & ~exploded).astype(bool),
            capped_min_val_loss=capped,
        ),
        rules,
    )


def cap_curves(curves: np.ndarray, cap: float) -> np.ndarray:
    """Per-epoch losses with the same treatment: non-finite -> cap, finite clipped to the cap."""
    curves = np.asarray(curves, dtype=float)
    return np.where(np.isfinite(curves), np.minimum(curves, cap), cap)


def is_uc(n_models: int, n_exploded: int) -> bool:
    """The uc rule for a summary cell: more than ``UC_MAX_EXPLODED_FRACTION`` of its models exploded (non-finite,
    diverged or above the explosion threshold). An empty cell is not uc."""
    if n_models == 0:
        return False
    return n_exploded / n_models > UC_MAX_EXPLODED_FRACTION


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
        f"- A model **exploded** (loss not meaningful) when its minimum validation loss is non-finite or above "
        f"{EXPLOSION_FACTOR:g} x the task's baseline (its chance loss; otherwise the {FAILURE_REFERENCE_QUANTILE:g} "
        "quantile above), or it is flagged `diverged`. A failed model that did not explode is **at chance**.\n"
        f"- A cell is **uc** (unstable convergence, loss not meaningful, as in the paper) when more than "
        f"{UC_MAX_EXPLODED_FRACTION:.0%} of its models exploded; it still shows its mean and n, with `uc` beside the "
        'number. Models at chance do not make a cell uc: their share is its own row. An empty cell is "-".'
    )
