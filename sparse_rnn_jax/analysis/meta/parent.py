"""The cross-task parent network: predicts a model's normalised loss curve from its task's descriptors and its
hyperparameters, so it can rank candidates for a task it never saw.

Features (``FEATURES``, 30): the task's ``TASK_FEATURES`` (log input dim, log output dim, log sequence length, the
loss kind one-hot, log training size, log budget) and the model's ``MODEL_FEATURES`` (the 19 hyperparameters,
hidden proportion, model density, log hidden size). Targets (``dataset``): the normalised minimum validation
loss and the normalised per-epoch curve resampled to ``CURVE_POINTS`` points at evenly spaced fractions of
training (linear interpolation over each model's own epochs, so runs with different epoch counts share one
target; point 0 is the first epoch, the last point the last epoch).

Two regressors, both reused from ``analysis.predictor``:

* a random forest (scikit-learn, leaves of at least ``DEFAULT_MIN_LEAF`` models) with one multi-output fit of
  [min, curve]; saved as ``predictor.ForestArrays`` whose ``value`` holds every output per node
  (f32[nodes, 1 + CURVE_POINTS]), evaluated with numpy;
* the Flax MLP of ``predictor.cv_mlp`` (min as its first output, the curve as the others), fitted on all models
  with early stopping on a held-out share.

Saved without pickle in a folder: ``parent.json`` (features and their training ranges, the zoo's tasks, the
leave-one-task-out scores), ``forest.npz``, ``mlp.msgpack`` and ``mlp.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.defaults import RANKERS
from sparse_rnn_jax.analysis.meta.dataset import curve_columns
from sparse_rnn_jax.analysis.predictor import (
    FOREST_FILE,
    MLP_FILE,
    ForestArrays,
    MLPConfig,
    MLPModel,
    RegressionData,
    cv_mlp,
    features_out_of_range,
    json_safe,
)
from sparse_rnn_jax.core.spec import HYPERPARAMETER_FEATURES
from sparse_rnn_jax.engine.results import spec_columns

LOSS_KINDS: tuple[str, ...] = ("ce", "mse", "bce")
TASK_FEATURES: tuple[str, ...] = (
    "log_input_dim",
    "log_output_dim",
    "log_seq_len",
    "loss_ce",
    "loss_mse",
    "loss_bce",
    "log_train_size",
    "log_budget",
)
MODEL_FEATURES: tuple[str, ...] = HYPERPARAMETER_FEATURES + ("hidden_proportion", "model_density", "log_hidden_dim")
FEATURES: tuple[str, ...] = TASK_FEATURES + MODEL_FEATURES
CURVE_POINTS = 10
"""Points of the resampled normalised loss curve."""
PARENT_FILE = "parent.json"
RANK_FOREST_FILE = "rank_forest.npz"
"""The ranking forest (within-run target from ``MODEL_FEATURES``), when the parent has one."""
SHIPPED_PARENT = Path(__file__).parent / "data" / "parent"
"""The parent shipped with the package (fitted on the shipped meta-dataset by ``experiments.zoo``)."""
DEFAULT_TREES = 300
DEFAULT_MAX_DEPTH = 10
DEFAULT_MIN_LEAF = 5
"""Models per leaf of the parent's forest at least (keeps the shipped forest small and smooths noisy targets)."""


def task_features(
    input_dim: float, output_dim: float, seq_len: float, loss: str, train_size: float, budget: float
) -> np.ndarray:
    """f64[len(TASK_FEATURES)] of one task at one budget."""
    if loss not in LOSS_KINDS:
        raise ValueError(f"loss must be one of {LOSS_KINDS}, got {loss!r}")
    onehot = [float(loss == k) for k in LOSS_KINDS]
    logs = [math.log(float(v)) for v in (input_dim, output_dim, seq_len)]
    return np.array(logs + onehot + [math.log(float(train_size)), math.log(float(budget))], dtype=float)


def meta_features(frame: pd.DataFrame) -> np.ndarray:
    """f64[n, len(FEATURES)] of meta-dataset rows."""
    n = len(frame)
    cols = {
        "log_input_dim": np.log(frame["input_dim"].to_numpy(float)),
        "log_output_dim": np.log(frame["output_dim"].to_numpy(float)),
        "log_seq_len": np.log(frame["seq_len"].to_numpy(float)),
        **{f"loss_{k}": (frame["loss"].to_numpy() == k).astype(float) for k in LOSS_KINDS},
        "log_train_size": np.log(frame["train_size"].to_numpy(float)),
        "log_budget": np.log(frame["budget"].to_numpy(float)),
        "log_hidden_dim": np.log(frame["hidden_dim"].to_numpy(float)),
    }
    for c in HYPERPARAMETER_FEATURES + ("hidden_proportion", "model_density"):
        cols[c] = frame[c].to_numpy(float)
    return np.stack([cols[f] for f in FEATURES], axis=1).reshape(n, len(FEATURES))


def spec_meta_features(specs: Sequence, descriptor: Mapping, budget: float) -> np.ndarray:
    """f64[len(specs), len(FEATURES)] of candidate specs for a task (``descriptor``: input_dim, output_dim,
    seq_len, loss, train_size) at ``budget``."""
    task = task_features(
        descriptor["input_dim"],
        descriptor["output_dim"],
        descriptor["seq_len"],
        descriptor["loss"],
        descriptor["train_size"],
        budget,
    )
    rows = []
    for spec in specs:
        c = spec_columns(spec)
        model = [float(c[f]) for f in HYPERPARAMETER_FEATURES + ("hidden_proportion", "model_density")]
        rows.append(np.concatenate([task, model, [math.log(spec.hidden_dim)]]))
    return np.array(rows, dtype=float).reshape(len(rows), len(FEATURES))


def resample_curves(curves: np.ndarray, points: int = CURVE_POINTS) -> np.ndarray:
    """f64[n, points]: each row of ``curves: f[n, epochs]`` (NaN after a row's last epoch) linearly interpolated at
    ``points`` evenly spaced fractions of its own epochs (a one-epoch row is constant)."""
    curves = np.asarray(curves, dtype=float)
    out = np.empty((curves.shape[0], points))
    grid = np.linspace(0.0, 1.0, points)
    for i, row in enumerate(curves):
        valid = row[np.isfinite(row)]
        if valid.size == 0:
            raise ValueError(f"curve {i} has no finite point")
        out[i] = valid[0] if valid.size == 1 else np.interp(grid, np.linspace(0.0, 1.0, valid.size), valid)
    return out


def targets(frame: pd.DataFrame, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(f64[n] normalised minimum loss, f64[n, points] resampled normalised curve) of meta-dataset rows."""
    return frame["norm_min_loss"].to_numpy(float), resample_curves(frame[curve_columns(frame)].to_numpy(float), points)


RANK_TARGETS: tuple[str, ...] = ("relative", "rank")
RANK_TARGET = "relative"
"""The within-(task, budget) target of the ranking forest: ``relative`` = the normalised minimum loss minus the
median of its run (one task at one budget); ``rank`` = its percentile rank within the run (0 best, 1 worst)."""


def rank_target(frame: pd.DataFrame, kind: str = RANK_TARGET) -> np.ndarray:
    """f64[n]: the within-run target ``kind`` (``RANK_TARGETS``) of meta-dataset rows; runs are the rows sharing
    (task, run). Uses only the rows of each run, so held-out runs never inform a training row's target."""
    from scipy.stats import rankdata

    if kind not in RANK_TARGETS:
        raise ValueError(f"rank target must be one of {RANK_TARGETS}, got {kind!r}")
    loss = frame["norm_min_loss"].to_numpy(float)
    out = np.empty(len(frame))
    keys = frame["task"].astype(str) + "\0" + frame["run"].astype(str)
    for _, pos in pd.Series(np.arange(len(frame))).groupby(keys.to_numpy()).groups.items():
        pos = np.asarray(pos, int)
        v = loss[pos]
        if kind == "relative":
            out[pos] = v - np.median(v)
        else:
            out[pos] = (rankdata(v) - 1) / max(v.size - 1, 1)
    return out


def fit_forest_multi(
    features: np.ndarray,
    outputs: np.ndarray,
    trees: int = DEFAULT_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    seed: int = 0,
    min_leaf: int = DEFAULT_MIN_LEAF,
) -> ForestArrays:
    """One multi-output random forest (scikit-learn, leaves of >= ``min_leaf`` models) on ``outputs: f[n, k]`` as
    ``ForestArrays`` with ``value: f32[nodes, k]`` (its ``predict`` then returns f64[n, k])."""
    from sklearn.ensemble import RandomForestRegressor

    outputs = np.asarray(outputs, dtype=float).reshape(len(features), -1)
    forest = RandomForestRegressor(
        n_estimators=trees, max_depth=max_depth, min_samples_leaf=min_leaf, n_jobs=-1, random_state=seed
    ).fit(features, outputs[:, 0] if outputs.shape[1] == 1 else outputs)
    arrays = ForestArrays.from_sklearn(forest)
    value = np.concatenate([est.tree_.value.reshape(est.tree_.node_count, -1) for est in forest.estimators_])
    return dataclasses.replace(arrays, value=value.astype(np.float32))


def fit_mlp(
    features: np.ndarray, min_loss: np.ndarray, curves: np.ndarray, seed: int = 0, config: MLPConfig = MLPConfig()
) -> MLPModel:
    """The predictor's MLP fitted on every row (min loss as output 0, the curve as outputs 1..), early-stopped on
    a held-out share (``predictor.cv_mlp``'s final model)."""
    data = RegressionData(features, FEATURES, min_loss, curves, np.zeros(len(min_loss), bool))
    _, _, model = cv_mlp(data, 2, seed, config)
    return model


@dataclasses.dataclass
class CrossTaskParent:
    """A fitted cross-task parent: the multi-output forest, the MLP (or None), ``meta`` (``parent.json``) and the
    ranking forest (or None: a parent fitted before it existed), which predicts ``RANK_TARGET`` from the
    ``MODEL_FEATURES`` columns."""

    meta: dict
    forest: ForestArrays
    mlp: MLPModel | None
    rank_forest: ForestArrays | None = None

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """{"forest": f64[n], "forest_curve": f64[n, CURVE_POINTS]} (normalised losses), with a ranking forest
        "rank" (the within-run score: lower ranks first) and, with an MLP, "mlp" and "mlp_curve", for
        ``features: f[n, len(FEATURES)]``."""
        features = np.asarray(features, dtype=float).reshape(-1, len(FEATURES))
        f = np.asarray(self.forest.predict(features), dtype=float).reshape(len(features), -1)
        out = {"forest": f[:, 0], "forest_curve": f[:, 1:]}
        if self.rank_forest is not None:
            model = [FEATURES.index(c) for c in MODEL_FEATURES]
            out["rank"] = np.asarray(self.rank_forest.predict(features[:, model]), dtype=float).reshape(-1)
        if self.mlp is not None:
            m = self.mlp.predict(features)
            out["mlp"], out["mlp_curve"] = m[:, 0], m[:, 1:]
        return out

    def rank_scores(self, features: np.ndarray, ranker: str = "forest") -> tuple[np.ndarray, np.ndarray]:
        """(f64[n] predicted normalised minimum loss, f64[n, CURVE_POINTS] predicted curve) by ``ranker``: the
        forest, the MLP or their mean."""
        if ranker not in RANKERS:
            raise ValueError(f"ranker must be one of {RANKERS}, got {ranker!r}")
        if ranker != "forest" and self.mlp is None:
            raise ValueError(f"ranker {ranker!r} needs a parent with an MLP; this one has only the forest")
        p = self.predict(features)
        if ranker == "forest":
            return p["forest"], p["forest_curve"]
        if ranker == "mlp":
            return p["mlp"], p["mlp_curve"]
        return (p["forest"] + p["mlp"]) / 2, (p["forest_curve"] + p["mlp_curve"]) / 2

    def out_of_range(self, features: np.ndarray) -> list[list[str]]:
        """For each row, the features outside the range of the zoo's models."""
        lo, hi = np.asarray(self.meta["feature_min"]), np.asarray(self.meta["feature_max"])
        return features_out_of_range(features, lo, hi, FEATURES, 1e-9 * np.maximum(1.0, np.abs(hi - lo)))

    def save(self, directory: str | Path) -> Path:
        """Writes parent.json, forest.npz and (with an MLP) mlp.msgpack and mlp.json into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.forest.save(directory / FOREST_FILE)
        if self.rank_forest is not None:
            self.rank_forest.save(directory / RANK_FOREST_FILE)
        elif (directory / RANK_FOREST_FILE).exists():
            (directory / RANK_FOREST_FILE).unlink()
        if self.mlp is not None:
            self.mlp.save(directory)
        elif (directory / MLP_FILE).exists():
            (directory / MLP_FILE).unlink()
        (directory / PARENT_FILE).write_text(json.dumps(json_safe(self.meta), indent=1, allow_nan=False))
        return directory

    @classmethod
    def load(cls, directory: str | Path | None = None, mlp: bool = True) -> "CrossTaskParent":
        """Reads a parent written by ``save`` (default: the shipped one); ``mlp=False`` skips the MLP (no JAX)."""
        directory = Path(directory) if directory is not None else SHIPPED_PARENT
        if not (directory / PARENT_FILE).is_file():
            raise ValueError(f"no {PARENT_FILE} in {directory}")
        meta = json.loads((directory / PARENT_FILE).read_text())
        if tuple(meta.get("features", ())) != FEATURES:
            raise ValueError(f"{directory / PARENT_FILE}: features differ from this version's; refit the parent")
        forest = ForestArrays.load(directory / FOREST_FILE)
        model = MLPModel.load(directory) if mlp and (directory / MLP_FILE).is_file() else None
        rank = ForestArrays.load(directory / RANK_FOREST_FILE) if (directory / RANK_FOREST_FILE).is_file() else None
        return cls(meta, forest, model, rank)


def task_summaries(frame: pd.DataFrame) -> list[dict]:
    """One dict per zoo task of the meta-dataset: its descriptor, budgets and model count."""
    out = []
    for task, rows in frame.groupby("task", sort=True):
        first = rows.iloc[0]
        out.append(
            {
                "task": str(task),
                "task_kind": str(first["task_kind"]),
                "input_dim": int(first["input_dim"]),
                "output_dim": int(first["output_dim"]),
                "seq_len": int(first["seq_len"]),
                "loss": str(first["loss"]),
                "chance_loss": float(first["chance_loss"]),
                "train_size": int(first["train_size"]),
                "budgets": sorted(float(b) for b in rows["budget"].unique()),
                "epochs": int(rows["epochs"].max()),
                "models": int(len(rows)),
            }
        )
    return out


def fit_parent(
    frame: pd.DataFrame,
    *,
    trees: int = DEFAULT_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    seed: int = 0,
    mlp: bool = True,
    mlp_config: MLPConfig = MLPConfig(),
    loto: dict | None = None,
    lofo: dict | None = None,
    rank: str | None = RANK_TARGET,
) -> CrossTaskParent:
    """The cross-task parent fitted on every row of the meta-dataset ``frame`` (``lofo`` and ``loto``: the
    leave-one-family-out and leave-one-task-out summaries to record in its meta)."""
    features = meta_features(frame)
    min_loss, curves = targets(frame)
    forest = fit_forest_multi(features, np.concatenate([min_loss[:, None], curves], axis=1), trees, max_depth, seed)
    model = fit_mlp(features, min_loss, curves, seed, mlp_config) if mlp else None
    ranker = None
    if rank:
        cols = [FEATURES.index(c) for c in MODEL_FEATURES]
        ranker = fit_forest_multi(features[:, cols], rank_target(frame, rank)[:, None], trees, max_depth, seed)
    tasks = task_summaries(frame)
    meta = {
        "features": list(FEATURES),
        "task_features": list(TASK_FEATURES),
        "feature_min": features.min(axis=0).tolist(),
        "feature_max": features.max(axis=0).tolist(),
        "target": "norm_min_loss: capped minimum validation loss / the task's chance loss (analysis.meta.dataset)",
        "curve": f"normalised validation loss at {CURVE_POINTS} evenly spaced fractions of training",
        "curve_points": CURVE_POINTS,
        "trees": trees,
        "max_depth": max_depth,
        "mlp": None if model is None else {"hidden": list(mlp_config.hidden)},
        "tasks": tasks,
        "n_models": int(len(frame)),
        "importances": dict(zip(FEATURES, forest.importances.tolist())),
        "leave_one_task_out": loto,
        "lofo": lofo,
        "rank_target": rank,
        "rank_features": list(MODEL_FEATURES) if rank else None,
    }
    return CrossTaskParent(meta, forest, model, ranker)
