"""Predicting a model's performance from the graph properties of its hh mask (the related thesis' random
forest, which reached a cross-validated R2 of 0.81 for GRUs on the embedded Reber grammar).

Rows: the models of one task whose hh mask is a random graph (``hh_graph`` set, ``results.GRAPH_COLUMNS``).
Features: the six ``graph_*`` properties (``graphs.GRAPH_PROPERTIES``) plus, by default, the hh density.
Target: the capped minimum validation loss of ``convergence`` when present (failed models kept at the
cap), else the minimum validation loss (non-finite rows dropped). Scores: k-fold cross-validated R2 and
MAE of the pooled out-of-fold predictions (scikit-learn's ``r2_score`` over ``KFold`` folds), R2 per fold,
and each feature's permutation importance on the held-out folds (the drop in held-out R2 when it is
shuffled). For comparison the same forest is also scored on the graph features plus the parent
network's 20 features (``predictor.FEATURES``): in a sweep where the other hyperparameters vary too, the
graph alone cannot explain what the learning rate or the other blocks do.

Note: on a connected graph the mean normalised betweenness equals (average path length - 1) / (n - 2),
so those two features carry largely the same information (see ``graphs``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.predictor import (
    FEATURES,
    PAPER_MAX_DEPTH,
    PAPER_TREES,
    fit_forest,
    kfold_test_indices,
    permutation_importance_held_out,
    r2_score,
)
from sparse_rnn_jax.models.graphs import GRAPH_PROPERTIES

GRAPH_FEATURES: tuple[str, ...] = tuple(f"graph_{p}" for p in GRAPH_PROPERTIES)
MIN_GRAPH_MODELS = 10
"""Fewer graph models than this: no regression is fitted."""


@dataclasses.dataclass(frozen=True)
class GraphRegression:
    """Cross-validated random forest from graph properties to the (capped) minimum validation loss.

    Attributes:
      feature_names: the columns used.  n_models, folds, trees, max_depth: the fit.
      r2, mae: of the pooled out-of-fold predictions.  r2_folds: R2 within each held-out fold.
      actual, predicted: f64[n] targets and out-of-fold predictions.  failed: bool[n] failed to converge.
      importances: permutation importances on the held-out folds (mean drop in held-out R2), largest first.
      importances_sd: their standard deviation over folds and shuffles (same index).
      kinds: graph kind -> number of models.
      r2_with_hyperparameters: R2 of the same forest on the graph features + ``predictor.FEATURES``
        (None when not computed).
    """

    feature_names: tuple[str, ...]
    n_models: int
    folds: int
    trees: int
    max_depth: int
    r2: float
    mae: float
    r2_folds: tuple[float, ...]
    actual: np.ndarray
    predicted: np.ndarray
    failed: np.ndarray
    importances: pd.Series
    importances_sd: pd.Series
    kinds: dict
    r2_with_hyperparameters: float | None = None


def has_graph_columns(models: pd.DataFrame) -> bool:
    """Whether a results table (per model or per epoch) holds at least one model with a graph hh mask."""
    if "hh_graph" not in models or any(c not in models for c in GRAPH_FEATURES):
        return False
    return bool(models["hh_graph"].notna().any())


def graph_models(models: pd.DataFrame, target: str, feature_names: Sequence[str]) -> pd.DataFrame:
    """The rows with a graph, finite features and a finite target."""
    if not has_graph_columns(models):
        return models.iloc[:0]
    rows = models[models["hh_graph"].notna()]
    values = rows[list(feature_names) + [target]].to_numpy(dtype=float)
    return rows[np.isfinite(values).all(axis=1)]


def _cv_forest(
    x: np.ndarray, y: np.ndarray, folds: int, trees: int, max_depth: int, seed: int, importance: bool = False
):
    """(out-of-fold predictions, R2 per fold, permutation drops f64[folds * repeats, features] or None)."""
    tests = kfold_test_indices(len(y), folds, seed)
    predicted = np.empty_like(y)
    drops = []
    for k, test in enumerate(tests):
        train = np.setdiff1d(np.arange(len(y)), test)
        forest = fit_forest(x[train], y[train], trees, max_depth, seed + k)
        predicted[test] = forest.predict(x[test])
        if importance:
            drops.append(permutation_importance_held_out(forest, x[test], y[test], seed + k))
    return predicted, tuple(r2_score(y[t], predicted[t]) for t in tests), (np.concatenate(drops) if drops else None)


def fit_graph_regression(
    models: pd.DataFrame,
    *,
    target: str | None = None,
    include_density: bool = True,
    trees: int = PAPER_TREES,
    max_depth: int = PAPER_MAX_DEPTH,
    folds: int = 5,
    seed: int = 0,
    compare_hyperparameters: bool = True,
) -> GraphRegression:
    """Fits and cross-validates the forest on the per-model rows ``models`` (``results.final_per_model``,
    optionally ``convergence.classify``-ed). Raises ValueError with fewer graph models than ``folds``."""
    if target is None:
        target = "capped_min_val_loss" if "capped_min_val_loss" in models else "min_val_loss"
    names = GRAPH_FEATURES + (("density_hh",) if include_density else ())
    rows = graph_models(models, target, names)
    if len(rows) < max(folds, 2):
        raise ValueError(f"{len(rows)} models with graph features and a finite {target}; need at least {max(folds, 2)}")
    x = rows[list(names)].to_numpy(dtype=float)
    y = rows[target].to_numpy(dtype=float)
    predicted, r2_folds, drops = _cv_forest(x, y, folds, trees, max_depth, seed, importance=True)
    importances = pd.Series(drops.mean(axis=0), index=list(names)).sort_values(ascending=False)
    importances_sd = pd.Series(drops.std(axis=0), index=list(names))[importances.index]
    r2_hyper = None
    if compare_hyperparameters:
        extra = [f for f in FEATURES if f not in names and f in rows]
        xh = np.concatenate([x, rows[extra].to_numpy(dtype=float)], axis=1)
        if np.isfinite(xh).all():
            r2_hyper = r2_score(y, _cv_forest(xh, y, folds, trees, max_depth, seed)[0])
    failed = rows["failed"].to_numpy(dtype=bool) if "failed" in rows else np.zeros(len(rows), bool)
    return GraphRegression(
        feature_names=tuple(names),
        n_models=len(rows),
        folds=folds,
        trees=trees,
        max_depth=max_depth,
        r2=r2_score(y, predicted),
        mae=float(np.abs(y - predicted).mean()),
        r2_folds=r2_folds,
        actual=y,
        predicted=predicted,
        failed=failed,
        importances=importances,
        importances_sd=importances_sd,
        kinds={str(k): int(v) for k, v in rows["hh_graph"].value_counts().items()},
        r2_with_hyperparameters=r2_hyper,
    )


def report_section(w, fig_dir: Path, task: str, models: pd.DataFrame, options, log) -> GraphRegression | None:
    """Adds the graph-regression section of ``task`` to the analysis report writer ``w`` (``report._Writer``),
    with its two figures; writes nothing when no model of the task has a graph hh mask."""
    if not has_graph_columns(models):
        return None
    from sparse_rnn_jax.analysis import figures

    w.add("### hh graph properties: predicting minimum validation loss (random forest)", "")
    n_graph = int(models["hh_graph"].notna().sum())
    folds = min(options.folds, n_graph)
    if n_graph < MIN_GRAPH_MODELS:
        w.add(f"Not fitted: {n_graph} models with a graph hh mask, fewer than {MIN_GRAPH_MODELS}.", "")
        return None
    log(f"[{task}] graph regression: {n_graph} models")
    reg = fit_graph_regression(models, trees=options.trees, max_depth=options.max_depth, folds=folds, seed=options.seed)
    folds_arr = np.asarray(reg.r2_folds)
    kinds = ", ".join(f"{k}: {n}" for k, n in reg.kinds.items())
    w.add(
        f"{reg.n_models} models with a random-graph hh mask ({kinds}). Features: {', '.join(reg.feature_names)} "
        f"(properties of each realised graph, `sparse_rnn_jax/graphs.py`). Target: the capped minimum validation "
        f"loss. Random forest of {reg.trees} trees, max depth {reg.max_depth}; {reg.folds}-fold cross-validation "
        "(the related thesis reports R2 0.81 for GRUs on the embedded Reber grammar).",
        "",
        "| features | R2 | MAE | R2 per fold |",
        "|---|---|---|---|",
        f"| graph properties | {reg.r2:.3f} | {reg.mae:.4g} | {folds_arr.mean():.3f} ± {folds_arr.std():.3f} |",
    )
    if reg.r2_with_hyperparameters is not None:
        w.add(f"| graph properties + the parent network's 20 features | {reg.r2_with_hyperparameters:.3f} | | |")
    w.add("")
    w.figure(
        figures.predicted_vs_actual(
            reg.actual,
            {"graph forest": (reg.predicted, reg.r2, reg.mae)},
            reg.failed,
            fig_dir / f"{task}_graph_predicted_vs_actual.png",
            f"{task}: minimum validation loss from hh graph properties",
        ),
        f"{task}: held-out predicted against actual minimum validation loss from the hh graph properties",
    )
    w.figure(
        figures.feature_importance(
            reg.importances,
            fig_dir / f"{task}_graph_feature_importance.png",
            f"{task}: graph forest permutation importance on held-out folds",
            reg.importances_sd,
        ),
        f"{task}: permutation importance of the hh graph properties (drop in held-out R2 when shuffled; mean ± sd "
        "over folds and shuffles)",
    )
    w.add(
        "| feature | permutation importance (drop in held-out R2) | sd |",
        "|---|---|---|",
        *(f"| {k} | {v:.4f} | {reg.importances_sd[k]:.4f} |" for k, v in reg.importances.items()),
        "",
    )
    return reg
