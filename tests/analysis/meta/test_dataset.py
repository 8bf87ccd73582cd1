"""The meta-dataset shipped with the package: its schema, its tasks and its size, and the parent fitted on it."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_rnn_jax.analysis.meta.dataset import (
    COLUMNS,
    SHIPPED_DATASET,
    check_schema,
    curve_columns,
    read_meta_dataset,
)
from sparse_rnn_jax.analysis.meta.parent import SHIPPED_PARENT, CrossTaskParent, meta_features
from sparse_rnn_jax.core.spec import HYPERPARAMETER_FEATURES
from tests.analysis.meta.synthetic_meta import synthetic_meta


def test_shipped_meta_dataset_schema():
    frame = read_meta_dataset()
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert frame["task"].nunique() >= 8
    epochs = curve_columns(frame)
    assert epochs and len(epochs) == len(curve_columns(frame, "val_loss_epoch_"))
    for task, rows in frame.groupby("task"):
        for c in ("input_dim", "output_dim", "seq_len", "loss", "chance_loss", "train_size"):
            assert rows[c].nunique() == 1, (task, c)
    assert frame["loss"].isin(["ce", "mse", "bce"]).all() and set(frame["loss"]) >= {"ce", "mse", "bce"}
    assert frame[list(HYPERPARAMETER_FEATURES)].notna().all().all()
    assert frame["norm_min_loss"].between(0, 1.96 + 1e-9).all()
    norm = frame[epochs].to_numpy(float)
    assert np.allclose(np.nanmin(norm, axis=1), frame["norm_min_loss"], atol=1e-9)
    assert frame["config"].isin(["dense", "uniform", "eqn7", "eqn8", "balanced"]).any()
    size = SHIPPED_DATASET.stat().st_size + sum(p.stat().st_size for p in SHIPPED_PARENT.iterdir())
    assert size <= 10 * 2**20


def test_shipped_parent_was_fitted_on_the_shipped_data():
    frame = read_meta_dataset()
    parent = CrossTaskParent.load(mlp=False)
    assert [t["task"] for t in parent.meta["tasks"]] == sorted(frame["task"].unique())
    assert parent.meta["n_models"] == len(frame)
    assert parent.out_of_range(meta_features(frame)) == [[]] * len(frame)
    assert parent.meta["leave_one_task_out"]["summary"]


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda f: f.drop(columns=["budget"]), "missing column 'budget'"),
        (lambda f: f.assign(loss="hinge"), "loss must be"),
        (lambda f: f.assign(chance_loss=0.0), "chance_loss"),
        (lambda f: f.drop(columns=["norm_loss_epoch_2"]), "per-epoch"),
    ],
)
def test_schema_errors_name_the_problem(change, message):
    frame = synthetic_meta(tasks=("alpha",), n_sampled=2, seeds=1)
    check_schema(frame)
    with pytest.raises(ValueError, match=message):
        check_schema(change(frame))
