"""The parent network: predicts a model's minimum validation loss a priori from its hyperparameters.

Features (20, as in the paper Sec. V): the 19 hyperparameters ``core.spec.HYPERPARAMETER_FEATURES`` (6 block
densities, 6 init means, 6 init stds, learning rate) plus ``hidden_proportion``. Targets: the minimum
validation loss and, for the MLP, the per-epoch validation-loss curve as extra outputs.

Targets follow ``convergence``: every model is kept, with its loss clipped to the task's cap and a
non-finite loss set to the cap, so a failed model is a bad (capped) target, not a missing one.

Two regressors, each scored by k-fold cross-validation (held-out R2, MAE and Spearman rank correlation
of the pooled out-of-fold predictions) with and without ``hidden_proportion`` (the ablation):

* a random forest (scikit-learn; the paper's 1,000 trees of depth 10);
* a small Flax MLP on standardised features and targets, trained on minibatches with AdamW; early
  stopping keeps the parameters with the lowest loss on a held-out 15 % of each training fold. The k
  folds train at once as one vmapped, jitted program.

Saved predictor (a folder; no pickle): ``predictor.json`` (task, dims, feature names and training ranges,
failure rule, cross-validation scores), ``forest.npz`` (the fitted trees as plain arrays: children,
split feature, threshold, leaf value; read with ``allow_pickle=False`` and evaluated here with numpy, so
no scikit-learn version coupling), ``mlp.msgpack`` (Flax parameters) and ``mlp.json`` (architecture and
feature/target normalisation).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.convergence import FailureRule, cap_curves
from sparse_rnn_jax.analysis.defaults import DEFAULT_FOLDS, PAPER_MAX_DEPTH, PAPER_TREES  # noqa: F401 (re-exported)
from sparse_rnn_jax.core.spec import HYPERPARAMETER_FEATURES, NetworkSpec
from sparse_rnn_jax.engine.results import spec_columns

FEATURES: tuple[str, ...] = HYPERPARAMETER_FEATURES + ("hidden_proportion",)
PAD_ROWS = 256
MIN_MODELS = 10
"""Fewer models with a target than this: no predictor is fitted."""
PREDICTOR_FILE = "predictor.json"
FOREST_FILE = "forest.npz"
MLP_PARAMS_FILE = "mlp.msgpack"
MLP_FILE = "mlp.json"


def json_safe(value):
    """``value`` with non-finite floats replaced by None (strict JSON), recursively."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class RegressionData:
    """Features and capped targets of one task.

    Attributes:
      features: f64[n, len(feature_names)].
      feature_names: column names of ``features``.
      min_loss: f64[n] capped minimum validation loss.
      curves: f64[n, epochs] capped per-epoch validation loss, or None when models differ in epochs.
      failed: bool[n] failed to converge.
    """

    features: np.ndarray
    feature_names: tuple[str, ...]
    min_loss: np.ndarray
    curves: np.ndarray | None
    failed: np.ndarray

    def constant(self, name: str) -> "RegressionData":
        """The same data with feature ``name`` set to 0 everywhere (carries no information)."""
        features = self.features.copy()
        features[:, self.feature_names.index(name)] = 0.0
        return dataclasses.replace(self, features=features)

    def without(self, name: str) -> "RegressionData":
        """The same data with feature ``name`` removed (for the ablation)."""
        keep = [i for i, f in enumerate(self.feature_names) if f != name]
        return dataclasses.replace(
            self, features=self.features[:, keep], feature_names=tuple(self.feature_names[i] for i in keep)
        )


def regression_data(models: pd.DataFrame, rule: FailureRule) -> RegressionData:
    """Features and targets from one task's per-model rows (``convergence.classify`` output)."""
    features = models[list(FEATURES)].to_numpy(dtype=float)
    curves = None
    epochs = models["epochs"].to_numpy() if "epochs" in models else np.array([])
    if epochs.size and (epochs == epochs[0]).all():
        cols = [f"val_loss_epoch_{k}" for k in range(1, int(epochs[0]) + 1)]
        if all(c in models for c in cols):
            curves = cap_curves(models[cols].to_numpy(dtype=float), rule.cap)
    return RegressionData(
        features=features,
        feature_names=FEATURES,
        min_loss=models["capped_min_val_loss"].to_numpy(dtype=float),
        curves=curves,
        failed=models["failed"].to_numpy(dtype=bool),
    )


def spec_features(specs: Sequence[NetworkSpec]) -> np.ndarray:
    """f64[len(specs), 20] feature rows of candidate specs (same columns as the results table)."""
    rows = [spec_columns(s) for s in specs]
    return np.array([[float(r[f]) for f in FEATURES] for r in rows], dtype=float).reshape(len(rows), len(FEATURES))


def row_groups(features: np.ndarray) -> np.ndarray:
    """int[n]: one group per distinct feature row, numbered by first occurrence (identical rows, such as a named
    config's seeds, share a group; a table of distinct rows gets 0..n-1)."""
    features = np.asarray(features, dtype=float).reshape(len(features), -1)
    _, first, inverse = np.unique(features, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[np.asarray(inverse).reshape(-1)]


def kfold_test_indices(n: int, folds: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """Shuffled (grouped) k-fold split of range(n): the test indices of each fold (sorted).

    scikit-learn's ``KFold`` (unshuffled: the first g % folds folds one group larger) over one numpy permutation
    of the groups drawn from ``seed``; every row of a group lands in the same fold, so a model never has an
    identical twin on the other side of a split. ``groups`` (int[n], e.g. ``row_groups``) defaults to one group
    per row, whose folds are those of every earlier version of this analysis.
    """
    from sklearn.model_selection import KFold

    groups = np.arange(n) if groups is None else np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have one entry per model ({n}), got shape {groups.shape}")
    ids, inverse = np.unique(groups, return_inverse=True)
    if folds < 2 or folds > ids.size:
        raise ValueError(f"need 2 <= folds <= number of distinct models ({ids.size}), got {folds}")
    order = np.random.default_rng(seed).permutation(ids.size)
    out = []
    for _, test in KFold(folds).split(order):
        out.append(np.flatnonzero(np.isin(inverse, order[test])))
    return out


# --------------------------------------------------------------------------------------------- scores


@dataclasses.dataclass(frozen=True)
class CVScore:
    """Cross-validated scores from pooled out-of-fold predictions.

    Attributes:
      r2, mae, spearman: of the pooled out-of-fold predictions against the (capped) targets.
      r2_folds: R2 within each fold.
      predicted: f64[n] out-of-fold prediction of every model.
    """

    r2: float
    mae: float
    spearman: float
    r2_folds: tuple[float, ...]
    predicted: np.ndarray

    def as_dict(self) -> dict:
        """JSON-able scores."""
        return {"r2": self.r2, "mae": self.mae, "spearman": self.spearman, "r2_folds": list(self.r2_folds)}


def r2_score(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination of ``predicted`` against ``actual`` (scikit-learn's ``r2_score``; constant
    ``actual``: 1.0 when predicted exactly, else 0.0)."""
    from sklearn.metrics import r2_score as sk_r2_score

    return float(sk_r2_score(np.asarray(actual, float), np.asarray(predicted, float)))


def _score(actual: np.ndarray, predicted: np.ndarray, tests: Sequence[np.ndarray]) -> CVScore:
    from scipy.stats import spearmanr

    rho = spearmanr(actual, predicted).statistic if np.ptp(actual) > 0 and np.ptp(predicted) > 0 else math.nan
    return CVScore(
        r2=r2_score(actual, predicted),
        mae=float(np.abs(actual - predicted).mean()),
        spearman=float(rho),
        r2_folds=tuple(r2_score(actual[t], predicted[t]) for t in tests),
        predicted=np.asarray(predicted, float),
    )


# --------------------------------------------------------------------------------------------- forest


def fit_forest(
    features: np.ndarray, target: np.ndarray, trees: int = PAPER_TREES, max_depth: int = PAPER_MAX_DEPTH, seed: int = 0
):
    """A scikit-learn RandomForestRegressor fitted on all cores."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=trees, max_depth=max_depth, n_jobs=-1, random_state=seed)
    return forest.fit(features, target)


def features_out_of_range(
    features: np.ndarray, lo: Sequence[float], hi: Sequence[float], names: Sequence[str], tol
) -> list[list[str]]:
    """For each row of ``features`` [n, len(names)], the names of the features outside [lo - tol, hi + tol]
    (``tol`` a scalar or one value per feature)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    features = np.asarray(features, dtype=float).reshape(-1, len(names))
    bad = (features < lo - tol) | (features > hi + tol)
    return [[names[j] for j in np.flatnonzero(row)] for row in bad]


@dataclasses.dataclass(frozen=True)
class ForestArrays:
    """A fitted regression forest as flat arrays over all trees' nodes (leaves point to themselves).

    Attributes:
      left, right: i32[nodes] global child index.  feature: i32[nodes].  threshold: f64[nodes]
      (go left when float32(x[feature]) <= threshold, as scikit-learn does).  value: f64[nodes] node mean
      (``predict`` reads it at leaves only; ``save`` writes 0 at internal nodes).
      roots: i32[trees] root node of each tree.  depth: the deepest tree's depth.
      importances: f64[features] impurity-based importances (sum 1).
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    importances: np.ndarray

    @classmethod
    def from_sklearn(cls, forest) -> "ForestArrays":
        """The fitted forest's trees as plain arrays."""
        parts = {k: [] for k in ("left", "right", "feature", "threshold", "value")}
        roots, offset, depth = [], 0, 0
        for est in forest.estimators_:
            t = est.tree_
            n = t.node_count
            idx = np.arange(n)
            leaf = t.children_left < 0
            parts["left"].append(np.where(leaf, idx, t.children_left) + offset)
            parts["right"].append(np.where(leaf, idx, t.children_right) + offset)
            parts["feature"].append(np.where(leaf, 0, t.feature))
            parts["threshold"].append(np.where(leaf, np.inf, t.threshold))
            parts["value"].append(t.value.reshape(n, -1)[:, 0])
            roots.append(offset)
            offset += n
            depth = max(depth, int(t.max_depth))
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(
            left=cat["left"].astype(np.int32),
            right=cat["right"].astype(np.int32),
            feature=cat["feature"].astype(np.int32),
            threshold=cat["threshold"].astype(np.float64),
            value=cat["value"].astype(np.float64),
            roots=np.asarray(roots, np.int32),
            depth=depth,
            importances=np.asarray(forest.feature_importances_, np.float64),
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """f64[n] mean over trees of the leaf reached by each row of ``features: f[n, f]``."""
        return self.tree_predictions(features).mean(axis=0)

    def tree_predictions(self, features: np.ndarray) -> np.ndarray:
        """f64[trees, n] (or [trees, n, outputs]) each tree's prediction for each row of ``features``."""
        x = np.asarray(features, dtype=np.float32).astype(np.float64)
        rows = np.arange(x.shape[0])[None, :]
        node = np.broadcast_to(self.roots[:, None], (self.roots.size, x.shape[0])).copy()
        for _ in range(self.depth):
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return self.value[node]

    def quantiles(self, features: np.ndarray, q: tuple[float, float] = (10, 90)) -> np.ndarray:
        """f64[2, n] the ``q`` percentiles over trees of the first output for each row (the forest's spread: how
        much its trees disagree; the cross-validated error is the honest error of its mean)."""
        trees = self.tree_predictions(features)
        trees = trees[..., 0] if trees.ndim == 3 else trees
        return np.percentile(trees, q, axis=0)

    def save(self, path: Path) -> None:
        """Writes the arrays to an npz file (no pickle). Internal nodes' values, which ``predict`` never reads
        (every path ends at a leaf, and leaves point to themselves), are written as 0 so that the file compresses:
        the shipped cross-task parent's forest.npz takes 1.9 MB instead of 3.3 MB, with identical predictions."""
        leaf = self.left == np.arange(self.left.size)
        np.savez_compressed(
            path,
            left=self.left,
            right=self.right,
            feature=self.feature,
            threshold=self.threshold,
            value=np.where(leaf.reshape((-1,) + (1,) * (self.value.ndim - 1)), self.value, 0).astype(self.value.dtype),
            roots=self.roots,
            depth=np.int64(self.depth),
            importances=self.importances,
        )

    @classmethod
    def load(cls, path: Path) -> "ForestArrays":
        """Reads the arrays from an npz file with ``allow_pickle=False``."""
        with np.load(path, allow_pickle=False) as z:
            return cls(
                **{k: z[k] for k in ("left", "right", "feature", "threshold", "value", "roots", "importances")},
                depth=int(z["depth"]),
            )


PERMUTATION_REPEATS = 5
"""Shuffles per feature and held-out fold in the permutation importance."""


def permutation_importance_held_out(
    forest, features: np.ndarray, target: np.ndarray, seed: int, repeats: int = PERMUTATION_REPEATS
) -> np.ndarray:
    """f64[repeats, n_features]: the drop in held-out R2 when one feature's column is shuffled
    (``sklearn.inspection.permutation_importance`` on rows the fitted ``forest`` never saw). The forest is
    evaluated through its plain arrays (``ForestArrays``, identical predictions, far faster on few rows)."""
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.inspection import permutation_importance

    class _Fitted(RegressorMixin, BaseEstimator):
        def __init__(self, arrays=None):
            self.arrays = arrays

        def fit(self, x, y):  # pragma: no cover - already fitted
            return self

        def predict(self, x):
            return self.arrays.predict(x)

    arrays = forest if isinstance(forest, ForestArrays) else ForestArrays.from_sklearn(forest)
    result = permutation_importance(
        _Fitted(arrays), features, target, scoring="r2", n_repeats=repeats, random_state=seed, n_jobs=1
    )
    return np.asarray(result.importances, dtype=float).T


def cv_forest(
    data: RegressionData, folds: int, trees: int, max_depth: int, seed: int, importance: bool = False
) -> tuple[CVScore, np.ndarray | None]:
    """Grouped k-fold cross-validated scores of the random forest on ``data`` (identical feature rows, such as a
    named config's seeds, are one group: ``row_groups``), and with ``importance`` the permutation importances on
    each held-out fold, f64[folds * PERMUTATION_REPEATS, n_features] (else None)."""
    tests = kfold_test_indices(len(data.min_loss), folds, seed, row_groups(data.features))
    predicted = np.empty_like(data.min_loss)
    drops = []
    for k, test in enumerate(tests):
        train = np.setdiff1d(np.arange(len(data.min_loss)), test)
        forest = fit_forest(data.features[train], data.min_loss[train], trees, max_depth, seed + k)
        predicted[test] = forest.predict(data.features[test])
        if importance:
            drops.append(permutation_importance_held_out(forest, data.features[test], data.min_loss[test], seed + k))
    return _score(data.min_loss, predicted, tests), (np.concatenate(drops) if importance else None)


# ------------------------------------------------------------------------------------------------ MLP


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """Small MLP on standardised features/targets.

    ``evaluations`` x ``steps_per_evaluation`` AdamW steps on minibatches of ``batch_size`` training rows;
    after every ``steps_per_evaluation`` steps the loss on the held-out ``stop_fraction`` of the training
    rows is measured and the parameters with the lowest one are kept (early stopping).
    """

    hidden: tuple[int, ...] = (64, 64)
    batch_size: int = 128
    evaluations: int = 40
    steps_per_evaluation: int = 50
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    stop_fraction: float = 0.15


def _mlp_module(hidden: Sequence[int], outputs: int):
    import flax.linen as nn

    class MLP(nn.Module):
        """features -> gelu Dense layers -> ``outputs`` (normalised targets)."""

        @nn.compact
        def __call__(self, x):
            for width in hidden:
                x = nn.gelu(nn.Dense(width)(x))
            return nn.Dense(outputs)(x)

    return MLP()


@functools.lru_cache(maxsize=8)
def _fold_trainer(config: MLPConfig, outputs: int):
    """A jitted ``(keys, batches, x, y, target_weights, train_w, stop_w) -> (params, norm)`` vmapped over
    folds; ``batches: i32[folds, evaluations, steps_per_evaluation, batch_size]`` row indices."""
    import jax
    import jax.numpy as jnp
    import optax

    model = _mlp_module(config.hidden, outputs)
    tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)

    def weighted_stats(v, w):
        mean = (v * w[:, None]).sum(0) / w.sum()
        std = jnp.sqrt(((v - mean) ** 2 * w[:, None]).sum(0) / w.sum())
        return mean, jnp.where(std > 1e-12, std, 1.0)

    def train_one(key, batches, x, y, tw, w_train, w_stop):
        x_mean, x_std = weighted_stats(x, w_train)
        y_mean, y_std = weighted_stats(y, w_train)
        xn, yn = (x - x_mean) / x_std, (y - y_mean) / y_std
        params = model.init(key, xn[:1])

        def batch_loss(p, idx):
            # Uniform rows of the whole table, weighted by the fold's training mask.
            err = (((model.apply(p, xn[idx]) - yn[idx]) ** 2) * tw).sum(-1)
            w = w_train[idx]
            return (err * w).sum() / jnp.maximum(w.sum(), 1.0)

        def step(carry, idx):
            p, opt = carry
            grad = jax.grad(batch_loss)(p, idx)
            updates, opt = tx.update(grad, opt, p)
            return (optax.apply_updates(p, updates), opt), None

        def evaluate(carry, idx):
            p, opt, best_p, best = carry
            (p, opt), _ = jax.lax.scan(step, (p, opt), idx)
            err = (((model.apply(p, xn) - yn) ** 2) * tw).sum(-1)
            stop_loss = (err * w_stop).sum() / w_stop.sum()
            better = stop_loss < best
            best_p = jax.tree.map(lambda a, b: jnp.where(better, a, b), p, best_p)
            return (p, opt, best_p, jnp.where(better, stop_loss, best)), None

        init = (params, tx.init(params), params, jnp.asarray(jnp.inf, jnp.float32))
        (_, _, best_p, _), _ = jax.lax.scan(evaluate, init, batches)
        return best_p, (x_mean, x_std, y_mean, y_std)

    return jax.jit(jax.vmap(train_one, in_axes=(0, 0, None, None, None, 0, 0)))


def _train_mlp_folds(
    x: np.ndarray,
    y: np.ndarray,
    target_weights: np.ndarray,
    train_w: np.ndarray,
    stop_w: np.ndarray,
    seed: int,
    config: MLPConfig,
):
    """Trains one MLP per row of ``train_w: f32[folds, n]`` at once (vmap), early-stopped on ``stop_w``.

    Each fold standardises features and targets with its own training rows' mean and std.
    Returns (params, norm) with a leading folds axis; norm = (x_mean, x_std, y_mean, y_std).
    """
    import jax
    import jax.numpy as jnp

    folds, n = train_w.shape
    keys = jax.random.split(jax.random.PRNGKey(seed), folds)
    # Minibatches: uniform rows of the whole table (the loss weights them by the fold's training mask).
    shape = (folds, config.evaluations, config.steps_per_evaluation, config.batch_size)
    batches = jnp.asarray(np.random.default_rng(seed).integers(0, n, shape), jnp.int32)
    # Pad the rows (zero weight, never drawn) to a multiple of PAD_ROWS so tables of similar size share
    # one compiled trainer.
    padded = -(-n // PAD_ROWS) * PAD_ROWS
    pad = lambda a: np.pad(np.asarray(a, np.float32), [(0, 0)] * (a.ndim - 1) + [(0, padded - n)])  # noqa: E731
    pad_rows = lambda a: np.pad(np.asarray(a, np.float32), [(0, padded - n), (0, 0)])  # noqa: E731
    trainer = _fold_trainer(config, y.shape[1])
    params, norm = trainer(
        keys, batches, pad_rows(x), pad_rows(y), np.asarray(target_weights, np.float32), pad(train_w), pad(stop_w)
    )
    return jax.device_get(params), jax.device_get(norm)


def _stop_split(train: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train = rng.permutation(train)
    n_stop = max(1, int(round(fraction * train.size)))
    return train[n_stop:], train[:n_stop]


def _mlp_targets(data: RegressionData) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Target matrix [min, curve...], per-output loss weights (min: 1/2, curve: 1/2 shared), names."""
    if data.curves is None:
        return data.min_loss[:, None], np.ones(1), ("min_val_loss",)
    epochs = data.curves.shape[1]
    y = np.concatenate([data.min_loss[:, None], data.curves], axis=1)
    w = np.concatenate([[0.5], np.full(epochs, 0.5 / epochs)])
    return y, w, ("min_val_loss",) + tuple(f"val_loss_epoch_{k}" for k in range(1, epochs + 1))


@dataclasses.dataclass(frozen=True)
class MLPModel:
    """A fitted MLP: Flax params plus the feature/target normalisation it was trained with."""

    hidden: tuple[int, ...]
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    params: dict
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        """f64[n, len(target_names)]."""
        model = _mlp_module(self.hidden, len(self.target_names))
        xn = (np.asarray(features, np.float32) - self.x_mean) / self.x_std
        out = np.asarray(model.apply(self.params, xn.astype(np.float32)), dtype=np.float64)
        return out * self.y_std + self.y_mean

    def save(self, directory: Path) -> None:
        """Writes the Flax params (msgpack) and the architecture and normalisation (JSON)."""
        from flax import serialization

        (directory / MLP_PARAMS_FILE).write_bytes(serialization.msgpack_serialize(self.params))
        meta = {
            "hidden": list(self.hidden),
            "activation": "gelu",
            "feature_names": list(self.feature_names),
            "target_names": list(self.target_names),
            "x_mean": self.x_mean.tolist(),
            "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean.tolist(),
            "y_std": self.y_std.tolist(),
        }
        (directory / MLP_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> "MLPModel":
        """Reads a model written by ``save``."""
        from flax import serialization

        meta = json.loads((directory / MLP_FILE).read_text())
        params = serialization.msgpack_restore((directory / MLP_PARAMS_FILE).read_bytes())
        arr = lambda k: np.asarray(meta[k], np.float32)  # noqa: E731
        return cls(
            tuple(meta["hidden"]),
            tuple(meta["feature_names"]),
            tuple(meta["target_names"]),
            params,
            arr("x_mean"),
            arr("x_std"),
            arr("y_mean"),
            arr("y_std"),
        )


def _unstack(tree, i: int):
    import jax

    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


def cv_mlp(
    data: RegressionData, folds: int, seed: int, config: MLPConfig = MLPConfig()
) -> tuple[CVScore, float | None, MLPModel]:
    """Cross-validated MLP and the MLP fitted on all models, trained together as ``folds + 1`` vmapped fits.

    Returns the score of the minimum-loss output, the mean R2 over epochs of the curve outputs (None
    without curves) and the final model (early-stopped on a held-out share of all models).
    """
    n = len(data.min_loss)
    tests = kfold_test_indices(n, folds, seed, row_groups(data.features))
    rng = np.random.default_rng(seed + 1)
    train_w, stop_w = np.zeros((folds + 1, n)), np.zeros((folds + 1, n))
    for k, test in enumerate(tests + [np.array([], dtype=int)]):
        fit, stop = _stop_split(np.setdiff1d(np.arange(n), test), config.stop_fraction, rng)
        train_w[k, fit], stop_w[k, stop] = 1.0, 1.0
    y, tw, names = _mlp_targets(data)
    params, norm = _train_mlp_folds(data.features, y, tw, train_w, stop_w, seed, config)
    fitted = [
        MLPModel(config.hidden, data.feature_names, names, _unstack(params, k), *(np.asarray(a[k]) for a in norm))
        for k in range(folds + 1)
    ]
    predicted = np.empty_like(y)
    for k, test in enumerate(tests):
        predicted[test] = fitted[k].predict(data.features[test])
    score = _score(data.min_loss, predicted[:, 0], tests)
    curve_r2 = None
    if data.curves is not None:
        curve_r2 = float(np.mean([r2_score(y[:, j], predicted[:, j]) for j in range(1, y.shape[1])]))
    return score, curve_r2, fitted[folds]


# ------------------------------------------------------------------------------------- parent network


@dataclasses.dataclass
class Evaluation:
    """Cross-validated scores of the parent network on one task.

    Attributes:
      forest / forest_without_hp: random forest with all 20 features / without hidden_proportion.
      mlp / mlp_without_hp: the same for the MLP (None when the MLP is off).
      mlp_curve_r2: mean over epochs of the MLP's held-out R2 on the validation-loss curve (None without curves).
      importances: the forest's permutation importance per feature, descending: the mean drop in held-out R2
        when the feature is shuffled in a fold the forest never saw (``PERMUTATION_REPEATS`` shuffles per fold),
        in the units of the ablation's R2 change.
      importances_sd: their standard deviation over folds and shuffles (same index).
      actual: f64[n] capped minimum validation losses (the targets); failed: bool[n].
    """

    n_models: int
    folds: int
    trees: int
    max_depth: int
    forest: CVScore
    forest_without_hp: CVScore
    mlp: CVScore | None
    mlp_without_hp: CVScore | None
    mlp_curve_r2: float | None
    importances: pd.Series
    importances_sd: pd.Series
    actual: np.ndarray
    failed: np.ndarray
    importances_ci: pd.DataFrame | None = None
    """lo, hi: the 95 % t-interval of each importance over the folds (each fold's mean over its shuffles)."""

    def as_dict(self) -> dict:
        """JSON-able scores."""
        out = {
            "n_models": self.n_models,
            "folds": self.folds,
            "trees": self.trees,
            "max_depth": self.max_depth,
            "forest": self.forest.as_dict(),
            "forest_without_hidden_proportion": self.forest_without_hp.as_dict(),
            "permutation_importance": {k: float(v) for k, v in self.importances.items()},
            "permutation_importance_sd": {k: float(self.importances_sd[k]) for k in self.importances.index},
        }
        if self.mlp is not None:
            out["mlp"] = self.mlp.as_dict()
            out["mlp_without_hidden_proportion"] = self.mlp_without_hp.as_dict()
            out["mlp_curve_r2"] = self.mlp_curve_r2
        return out


@dataclasses.dataclass
class ParentPredictor:
    """A fitted parent network for one task: forest (and MLP) plus the metadata ``recommend`` checks."""

    meta: dict
    forest: ForestArrays
    mlp: MLPModel | None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features the predictor reads, in order."""
        return tuple(self.meta["features"])

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted minimum validation loss of each row of ``features: f[n, 20]``:
        {"forest": f64[n], "mlp": f64[n] (when fitted)}; with curves also "mlp_curve": f64[n, epochs]."""
        features = np.asarray(features, dtype=float).reshape(-1, len(self.feature_names))
        out = {"forest": self.forest.predict(features)}
        if self.mlp is not None:
            pred = self.mlp.predict(features)
            out["mlp"] = pred[:, 0]
            if pred.shape[1] > 1:
                out["mlp_curve"] = pred[:, 1:]
        return out

    def out_of_range(self, features: np.ndarray) -> list[list[str]]:
        """For each row, the features outside the range the predictor was trained on."""
        return features_out_of_range(
            features, self.meta["feature_min"], self.meta["feature_max"], self.feature_names, 1e-12
        )

    def save(self, directory: str | Path) -> Path:
        """Writes predictor.json, forest.npz and the MLP files into ``path``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.forest.save(directory / FOREST_FILE)
        if self.mlp is not None:
            self.mlp.save(directory)
        (directory / PREDICTOR_FILE).write_text(json.dumps(json_safe(self.meta), indent=1, allow_nan=False))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ParentPredictor":
        """Reads a predictor written by ``save`` (no pickle)."""
        directory = Path(directory)
        meta = json.loads((directory / PREDICTOR_FILE).read_text())
        forest = ForestArrays.load(directory / FOREST_FILE)
        mlp = MLPModel.load(directory) if (directory / MLP_FILE).is_file() else None
        return cls(meta, forest, mlp)


def find_predictor(path: str | Path, input_dim: int, output_dim: int) -> Path:
    """The predictor folder under ``path`` for these dims: ``path`` itself, or one of its task subfolders
    (``analyze`` writes ``OUT/predictor/<task>/``). Raises ValueError naming what was found."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"predictor folder {path} does not exist")
    candidates = (
        [path]
        if (path / PREDICTOR_FILE).is_file()
        else sorted(p for p in path.iterdir() if (p / PREDICTOR_FILE).is_file())
    )
    if not candidates:
        raise ValueError(f"no {PREDICTOR_FILE} in {path} or its subfolders")
    found = []
    for c in candidates:
        try:
            meta = json.loads((c / PREDICTOR_FILE).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read {c / PREDICTOR_FILE}: {e}") from None
        if meta.get("input_dim") == input_dim and meta.get("output_dim") == output_dim:
            return c
        found.append(f"{meta.get('task')} ({meta.get('input_dim')}x{meta.get('output_dim')})")
    raise ValueError(
        f"no predictor in {path} was trained on input_dim={input_dim}, output_dim={output_dim}; "
        f"found {', '.join(found)}"
    )


def fit_and_evaluate(
    models: pd.DataFrame,
    rule: FailureRule,
    trees: int = PAPER_TREES,
    max_depth: int = PAPER_MAX_DEPTH,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    mlp: bool = True,
    mlp_config: MLPConfig = MLPConfig(),
) -> tuple[ParentPredictor, Evaluation]:
    """Cross-validates and fits the parent network on one task's per-model rows (``convergence.classify``).

    Raises ValueError when fewer than ``MIN_MODELS`` models are given.
    """
    if len(models) < MIN_MODELS:
        raise ValueError(f"the parent network needs at least {MIN_MODELS} models, got {len(models)}")
    data = regression_data(models, rule)
    folds = min(folds, int(row_groups(data.features).max()) + 1)
    ablated = data.without("hidden_proportion")
    forest_cv, drops = cv_forest(data, folds, trees, max_depth, seed, importance=True)
    forest_ablated, _ = cv_forest(ablated, folds, trees, max_depth, seed)
    mlp_cv = mlp_ablated = curve_r2 = fitted_mlp = None
    if mlp:
        mlp_cv, curve_r2, fitted_mlp = cv_mlp(data, folds, seed, mlp_config)
        # Ablation as a constant column: same shapes, so the compiled trainer is reused.
        mlp_ablated, _, _ = cv_mlp(data.constant("hidden_proportion"), folds, seed, mlp_config)
    forest = ForestArrays.from_sklearn(fit_forest(data.features, data.min_loss, trees, max_depth, seed))
    importances = pd.Series(drops.mean(axis=0), index=list(data.feature_names)).sort_values(ascending=False)
    importances_sd = pd.Series(drops.std(axis=0), index=list(data.feature_names))[importances.index]
    per_fold = drops.reshape(folds, -1, drops.shape[1]).mean(axis=1)  # each fold's mean over its shuffles
    from sparse_rnn_jax.analysis.tables import t_interval

    importances_ci = pd.DataFrame(
        [t_interval(per_fold[:, j]) for j in range(per_fold.shape[1])],
        index=list(data.feature_names),
        columns=["lo", "hi"],
    ).loc[importances.index]
    evaluation = Evaluation(
        n_models=len(models),
        folds=folds,
        trees=trees,
        max_depth=max_depth,
        forest=forest_cv,
        forest_without_hp=forest_ablated,
        mlp=mlp_cv,
        mlp_without_hp=mlp_ablated,
        mlp_curve_r2=curve_r2,
        importances=importances,
        importances_sd=importances_sd,
        importances_ci=importances_ci,
        actual=data.min_loss,
        failed=data.failed,
    )
    first = models.iloc[0]
    meta = {
        "task": rule.task,
        "input_dim": int(first["input_dim"]),
        "output_dim": int(first["output_dim"]),
        "features": list(data.feature_names),
        "feature_min": data.features.min(axis=0).tolist(),
        "feature_max": data.features.max(axis=0).tolist(),
        "target": "min_val_loss (capped; see failure rule)",
        "failure_rule": {"threshold": rule.threshold, "cap": rule.cap, "source": rule.source},
        "trainable_params_range": [float(models["trainable_params"].min()), float(models["trainable_params"].max())],
        "n_models": len(models),
        "n_failed": int(data.failed.sum()),
        "epochs": None if data.curves is None else int(data.curves.shape[1]),
        "cross_validation": evaluation.as_dict(),
    }
    return ParentPredictor(meta, forest, fitted_mlp), evaluation
