import json

import numpy as np
import pytest

from sparse_rnn_jax.analysis import predictor as P
from sparse_rnn_jax.analysis.convergence import classify
from sparse_rnn_jax.core.configs import named_spec
from sparse_rnn_jax.core.spec import HYPERPARAMETER_FEATURES
from sparse_rnn_jax.engine.results import final_per_model, spec_columns
from tests.analysis.synthetic import EPOCHS, SMALL_MLP, synthetic_results


@pytest.fixture(scope="module")
def planted():
    """RAD models with h free (sampler normal), loss = 1.3 + 3 (hidden_proportion - 0.45)^2 + N(0, 0.02)."""
    models, rules = classify(final_per_model(synthetic_results("rad", 250, EPOCHS, seed=5, sampler="normal")))
    return models, rules["rad"]


@pytest.fixture(scope="module")
def fitted(planted):
    models, rule = planted
    return P.fit_and_evaluate(models, rule, trees=30, folds=5, seed=0, mlp=True, mlp_config=SMALL_MLP)


def test_features_are_the_19_hyperparameters_and_hidden_proportion():
    assert P.FEATURES == HYPERPARAMETER_FEATURES + ("hidden_proportion",)
    assert len(P.FEATURES) == 20
    spec = named_spec("eqn8", 2500, 10, budget=100_000)
    row = spec_columns(spec)
    np.testing.assert_allclose(P.spec_features([spec])[0], [row[f] for f in P.FEATURES])


def test_forest_recovers_planted_relation_and_ablation_drops_r2(fitted):
    _, ev = fitted
    assert ev.forest.r2 > 0.9
    assert ev.forest.spearman > 0.9
    assert ev.forest.r2 - ev.forest_without_hp.r2 > 0.2
    assert ev.importances.index[0] == "hidden_proportion"
    assert len(ev.forest.r2_folds) == 5


def test_permutation_importance_on_held_out_folds(fitted):
    _, ev = fitted
    # Shuffling hidden proportion destroys the held-out fit; shuffling any other feature barely changes it.
    assert ev.importances["hidden_proportion"] > 0.5
    assert ev.importances.drop("hidden_proportion").abs().max() < 0.05
    assert list(ev.importances_sd.index) == list(ev.importances.index) and (ev.importances_sd >= 0).all()
    assert set(ev.as_dict()["permutation_importance"]) == set(P.FEATURES)


def test_kfold_and_r2_are_those_of_the_hand_written_versions():
    for n, k in ((10, 3), (11, 2), (37, 5), (250, 5)):
        order = np.random.default_rng(3).permutation(n)
        expected = [np.sort(part) for part in np.array_split(order, k)]
        got = P.kfold_test_indices(n, k, 3)
        assert len(got) == k and all(np.array_equal(a, b) for a, b in zip(got, expected))
    rng = np.random.default_rng(0)
    actual = rng.normal(size=50)
    predicted = actual + rng.normal(scale=0.5, size=50)
    manual = 1.0 - ((actual - predicted) ** 2).sum() / ((actual - actual.mean()) ** 2).sum()
    assert P.r2_score(actual, predicted) == pytest.approx(manual, abs=1e-12)


def test_grouped_kfold_keeps_identical_rows_together():
    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    groups = P.row_groups(features)
    assert groups.tolist() == [0, 1, 0, 2, 1, 0, 3]
    assert np.array_equal(P.row_groups(np.eye(4)), np.arange(4))
    tests = P.kfold_test_indices(len(features), 2, 0, groups)
    assert sorted(np.concatenate(tests).tolist()) == list(range(7))
    for t in tests:  # a row's twins are never on the other side of the split
        assert all(set(np.flatnonzero(groups == groups[i])) <= set(t.tolist()) for i in t)
    with pytest.raises(ValueError, match="distinct models"):
        P.kfold_test_indices(len(features), 5, 0, groups)


def test_mlp_learns_the_relation_and_the_curve(fitted):
    # 200 training rows for a 20-feature MLP: well below the forest (at ~1,500 models both reach ~0.95).
    _, ev = fitted
    assert ev.mlp.r2 > 0.45
    assert ev.mlp.r2 - ev.mlp_without_hp.r2 > 0.2
    assert ev.mlp_curve_r2 is not None and ev.mlp_curve_r2 > 0.4


def test_forest_arrays_match_scikit_learn(planted):
    models, rule = planted
    data = P.regression_data(models, rule)
    forest = P.fit_forest(data.features, data.min_loss, trees=15, max_depth=6, seed=1)
    arrays = P.ForestArrays.from_sklearn(forest)
    probe = np.concatenate([data.features, data.features[:40] * 1.37])
    np.testing.assert_allclose(arrays.predict(probe), forest.predict(probe), rtol=0, atol=1e-12)


def test_save_load_roundtrip_without_pickle(fitted, planted, tmp_path):
    predictor, _ = fitted
    models, rule = planted
    folder = predictor.save(tmp_path / "rad")
    assert {p.name for p in folder.iterdir()} == {P.PREDICTOR_FILE, P.FOREST_FILE, P.MLP_FILE, P.MLP_PARAMS_FILE}
    meta = json.loads((folder / P.PREDICTOR_FILE).read_text())
    assert meta["task"] == "rad" and meta["input_dim"] == 2500 and meta["output_dim"] == 10
    with np.load(folder / P.FOREST_FILE, allow_pickle=False) as z:
        assert z["left"].dtype == np.int32
    loaded = P.ParentPredictor.load(folder)
    x = P.regression_data(models, rule).features[:25]
    a, b = predictor.predict(x), loaded.predict(x)
    np.testing.assert_allclose(a["forest"], b["forest"])
    np.testing.assert_allclose(a["mlp"], b["mlp"], rtol=1e-6)
    assert b["mlp_curve"].shape == (25, EPOCHS)
    assert loaded.out_of_range(x) == [[]] * 25
    assert "learning_rate" in loaded.out_of_range(np.where(np.arange(20) == 18, 1.0, x[0]))[0]


def test_find_predictor_by_dims(fitted, tmp_path):
    predictor, _ = fitted
    predictor.save(tmp_path / "rad")
    assert P.find_predictor(tmp_path, 2500, 10) == tmp_path / "rad"
    assert P.find_predictor(tmp_path / "rad", 2500, 10) == tmp_path / "rad"
    with pytest.raises(ValueError, match="input_dim=46, output_dim=26; found rad"):
        P.find_predictor(tmp_path, 46, 26)
    with pytest.raises(ValueError, match="does not exist"):
        P.find_predictor(tmp_path / "nope", 2500, 10)


def test_too_few_models(planted):
    models, rule = planted
    with pytest.raises(ValueError, match="at least"):
        P.fit_and_evaluate(models.iloc[: P.MIN_MODELS - 1], rule, trees=5, mlp=False)
