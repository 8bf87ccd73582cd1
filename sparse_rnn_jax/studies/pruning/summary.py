"""How much of a model can be pruned: per-model largest fractions and per-family summaries.

Per model and scope, the largest fraction f such that every fraction <= f keeps the validation accuracy within
ACCURACY_TOLERANCE (1 percentage point) of the unpruned control, and separately the loss within LOSS_TOLERANCE
(5 %); as pruned against the unpruned model, and after the fine-tune against the unpruned control fine-tuned
alike (so the fine-tune's own gain is not credited to pruning). Models that had not learned (``learned_models``:
a loss below CHANCE_MARGIN x the task's chance loss) are left out, and models at <= 1 % accuracy from the
accuracy criterion. Per family: the median and range over models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparse_rnn_jax.studies.pruning.masks import SCOPES, UNPRUNED_SCOPE

CHANCE_MARGIN = 0.98
"""A model "learned" when its loss is below CHANCE_MARGIN x its task's chance loss (the analysis' rule too)."""

ACCURACY_TOLERANCE = 0.01
"""A pruned model "keeps its accuracy" while it is at most 1 percentage point below its unpruned control."""
LOSS_TOLERANCE = 0.05
"""... and "keeps its loss" while its validation loss is at most 5 % above its unpruned control's."""


def metric_of(df: pd.DataFrame) -> str:
    """``accuracy`` when the rows have accuracies, else ``loss``: the metric of figures and the headline."""
    return "accuracy" if np.isfinite(df["val_accuracy_pruned"].to_numpy(dtype=float)).any() else "loss"


def metrics_of(df: pd.DataFrame) -> list[str]:
    """The criteria a summary reports: accuracy (when the task has one) and loss."""
    return ["accuracy", "loss"] if metric_of(df) == "accuracy" else ["loss"]


def _within(value: np.ndarray, reference: float, metric: str) -> np.ndarray:
    if metric == "accuracy":
        return value >= reference - ACCURACY_TOLERANCE - 1e-9
    return np.isfinite(value) & (value <= reference * (1.0 + LOSS_TOLERANCE) + 1e-12)


def learned_models(df: pd.DataFrame) -> pd.Index:
    """Model ids whose unpruned model learned something: for tasks with a chance loss (the ``chance_loss`` column)
    a validation loss below CHANCE_MARGIN x chance, as the analysis' failure rule; for other tasks every model
    with a finite loss."""
    base = df[df["scope"] == UNPRUNED_SCOPE].drop_duplicates("model_id")
    loss = base["val_loss_pruned"].to_numpy(dtype=float)
    chance = base["chance_loss"].to_numpy(dtype=float)
    ok = np.isfinite(loss) & (~np.isfinite(chance) | (loss < CHANCE_MARGIN * chance))
    return pd.Index(base["model_id"].to_numpy()[ok], name="model_id")


def scored_models(df: pd.DataFrame, metric: str) -> pd.Index:
    """The models a criterion is measured on: those that learned (``learned_models``) and, for accuracy, whose
    unpruned accuracy exceeds ACCURACY_TOLERANCE (a model at 0 % has no accuracy to lose)."""
    learned = learned_models(df)
    if metric != "accuracy":
        return learned
    base = df[(df["scope"] == UNPRUNED_SCOPE) & df["model_id"].isin(learned)].drop_duplicates("model_id")
    return pd.Index(base.loc[base["val_accuracy_pruned"] > ACCURACY_TOLERANCE, "model_id"].to_numpy(), name="model_id")


def max_prunable(df: pd.DataFrame, stage: str = "pruned", metric: str | None = None) -> pd.DataFrame:
    """Per (model, scope): the largest fraction f such that every fraction <= f keeps the model's ``metric``
    (default ``metric_of``) within tolerance of its unpruned control (``stage`` "pruned": no retraining,
    against the unpruned model; "finetuned": after the fine-tune, against the unpruned control fine-tuned
    alike); 0 when the smallest fraction already falls outside. Column ``max_fraction_{stage}``."""
    metric = metric or metric_of(df)
    col = f"val_{metric}_{stage}"
    ref = df[df["scope"] == UNPRUNED_SCOPE].drop_duplicates("model_id").set_index("model_id")[col]
    out = []
    for (model_id, scope), g in df[df["scope"] != UNPRUNED_SCOPE].groupby(["model_id", "scope"], sort=True):
        g = g.sort_values("fraction")
        ok = _within(g[col].to_numpy(dtype=float), float(ref.loc[model_id]), metric)
        bad = np.flatnonzero(~ok)
        fractions = g["fraction"].to_numpy(dtype=float)
        largest = fractions[-1] if not len(bad) else (fractions[bad[0] - 1] if bad[0] > 0 else 0.0)
        out.append(
            {
                "model_id": model_id,
                "scope": scope,
                "family": g["family"].iloc[0],
                "config": g["config"].iloc[0],
                f"max_fraction_{stage}": float(largest),
            }
        )
    return pd.DataFrame(out, columns=["model_id", "scope", "family", "config", f"max_fraction_{stage}"])


def summary_table(df: pd.DataFrame, group: str = "family") -> pd.DataFrame:
    """Per (``group``, scope): how much can be pruned before the metric falls, for each criterion of
    ``metrics_of`` (accuracy within ACCURACY_TOLERANCE, loss within LOSS_TOLERANCE), without and with the
    fine-tune: ``{metric}_models`` (``scored_models``), ``unpruned_{metric}`` (their mean) and
    ``{metric}_{stage}_{median,min,max}``, the median and range over models of ``max_prunable``."""
    keys = [group, "scope"]
    scopes = [s for s in SCOPES if s in set(df["scope"])]
    table = df[df["scope"] != UNPRUNED_SCOPE][keys].drop_duplicates().reset_index(drop=True)
    for metric in metrics_of(df):
        part = df[df["model_id"].isin(scored_models(df, metric))]
        base = (
            part[part["scope"] == UNPRUNED_SCOPE]
            .drop_duplicates("model_id")
            .set_index("model_id")[f"val_{metric}_pruned"]
        )
        per_model = max_prunable(part, "pruned", metric).merge(
            max_prunable(part, "finetuned", metric)[["model_id", "scope", "max_fraction_finetuned"]],
            on=["model_id", "scope"],
        )
        per_model["unpruned"] = per_model["model_id"].map(base)
        agg = {f"{metric}_models": ("model_id", "nunique"), f"unpruned_{metric}": ("unpruned", "mean")}
        for stage in ("pruned", "finetuned"):
            for stat in ("median", "min", "max"):
                agg[f"{metric}_{stage}_{stat}"] = (f"max_fraction_{stage}", stat)
        stats = (
            per_model.groupby(keys, sort=False).agg(**agg).reset_index()
            if len(per_model)
            else pd.DataFrame(columns=keys + list(agg))
        )
        table = table.merge(stats, on=keys, how="left")
        table[f"{metric}_models"] = table[f"{metric}_models"].fillna(0).astype(int)
    order = {s: i for i, s in enumerate(scopes)}
    return table.sort_values(keys, key=lambda c: c.map(order) if c.name == "scope" else c).reset_index(drop=True)


def mean_curves(df: pd.DataFrame, learned_only: bool = True) -> pd.DataFrame:
    """Mean metric per (family, scope, fraction) over the models that learned (or all), before and after the
    fine-tune; the unpruned control appears at fraction 0 of every scope."""
    metric = metric_of(df)
    if learned_only:
        df = df[df["model_id"].isin(learned_models(df))]
    base = df[df["scope"] == UNPRUNED_SCOPE]
    scopes = [s for s in SCOPES if s in set(df["scope"])]
    parts = [df[df["scope"] != UNPRUNED_SCOPE]] + [base.assign(scope=s) for s in scopes]
    both = pd.concat(parts, ignore_index=True)
    return (
        both.groupby(["family", "scope", "fraction"], sort=True)
        .agg(
            models=("model_id", "nunique"),
            pruned=(f"val_{metric}_pruned", "mean"),
            finetuned=(f"val_{metric}_finetuned", "mean"),
        )
        .reset_index()
    )
