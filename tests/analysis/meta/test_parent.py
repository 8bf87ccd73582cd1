"""The cross-task parent: features, resampled curves, and a save/load round trip without pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparse_rnn_jax.analysis.meta.parent import (
    CURVE_POINTS,
    FEATURES,
    PARENT_FILE,
    CrossTaskParent,
    fit_parent,
    meta_features,
    resample_curves,
    spec_meta_features,
)
from sparse_rnn_jax.core.configs import named_specs
from tests.analysis.meta.synthetic_meta import TASKS, synthetic_meta
from tests.analysis.synthetic import SMALL_MLP


def test_resampled_curves_follow_each_row_own_epochs():
    curves = np.array([[3.0, 2.0, 1.0, np.nan, np.nan], [5.0, 4.0, 3.0, 2.0, 1.0], [7.0] + [np.nan] * 4])
    out = resample_curves(curves, 3)
    np.testing.assert_allclose(out, [[3.0, 2.0, 1.0], [5.0, 3.0, 1.0], [7.0, 7.0, 7.0]])


def test_spec_features_match_the_meta_dataset_rows():
    frame = synthetic_meta(tasks=("beta",), n_sampled=0, seeds=1)
    x, y, seq, loss, _ = TASKS["beta"]
    specs = named_specs(("dense", "uniform", "eqn7", "eqn8", "balanced"), x, y, budget=float(frame["budget"][0]))
    desc = {"input_dim": x, "output_dim": y, "seq_len": seq, "loss": loss, "train_size": 1000}
    np.testing.assert_allclose(spec_meta_features(specs, desc, frame["budget"][0]), meta_features(frame))


def test_save_and_load_give_the_same_predictions(tmp_path):
    frame = synthetic_meta(tasks=("alpha", "gamma"), n_sampled=10, seeds=1)
    parent = fit_parent(frame, trees=20, mlp=True, mlp_config=SMALL_MLP)
    folder = parent.save(tmp_path / "parent")
    loaded = CrossTaskParent.load(folder)
    features = meta_features(frame)
    a, b = parent.predict(features), loaded.predict(features)
    assert a.keys() == b.keys() == {"forest", "forest_curve", "mlp", "mlp_curve", "rank"}
    assert b["forest_curve"].shape == b["mlp_curve"].shape == (len(frame), CURVE_POINTS)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)
    with np.load(folder / "forest.npz", allow_pickle=False) as z:
        assert z["value"].shape[1] == 1 + CURVE_POINTS
    meta = json.loads((folder / PARENT_FILE).read_text())
    assert meta["features"] == list(FEATURES) and [t["task"] for t in meta["tasks"]] == ["alpha", "gamma"]
    assert CrossTaskParent.load(folder, mlp=False).mlp is None
    score, curve = loaded.rank_scores(features, "mean")
    np.testing.assert_allclose(score, (a["forest"] + a["mlp"]) / 2, rtol=1e-6)
    outside = loaded.out_of_range(features * 0 + features.max(axis=0) + 1.0)
    assert outside[0] == list(FEATURES)
    assert loaded.out_of_range(features[:3]) == [[], [], []]
    assert b["rank"].shape == (len(frame),) and np.isfinite(b["rank"]).all()
    assert (folder / "rank_forest.npz").is_file() and meta["rank_target"] == "relative"


def test_ranker_without_mlp_is_refused(tmp_path):
    parent = fit_parent(synthetic_meta(tasks=("alpha",), n_sampled=6, seeds=1), trees=5, mlp=False)
    with pytest.raises(ValueError, match="needs a parent with an MLP"):
        parent.rank_scores(np.zeros((1, len(FEATURES))), "mlp")
