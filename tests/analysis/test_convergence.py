import math

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.analysis import convergence as cv


def _models(task, losses, diverged=None, output_dim=10):
    n = len(losses)
    return pd.DataFrame(
        {
            "task": task,
            "output_dim": output_dim,
            "min_val_loss": np.asarray(losses, float),
            "chance_loss": np.log(output_dim) if task == "rad" else np.nan,
            "diverged": diverged if diverged is not None else [False] * n,
        }
    )


def test_chance_rule_for_cross_entropy_task():
    rule = cv.failure_rule(_models("rad", [1.0, 2.0]), "rad")
    assert rule.source == "chance"
    assert rule.threshold == pytest.approx(cv.CHANCE_MARGIN * math.log(10))
    assert rule.cap == pytest.approx(cv.CAP_FACTOR * rule.threshold)
    assert rule.explosion == pytest.approx(cv.EXPLOSION_FACTOR * math.log(10))
    assert rule.chance == pytest.approx(math.log(10))


def test_population_rule_for_other_tasks():
    losses = np.linspace(0.05, 0.15, 101)
    rule = cv.failure_rule(_models("ah", losses, output_dim=26), "ah")
    assert rule.source == "population"
    assert rule.threshold == pytest.approx(cv.FAILURE_FACTOR * np.quantile(losses, cv.FAILURE_REFERENCE_QUANTILE))
    assert rule.explosion == pytest.approx(cv.EXPLOSION_FACTOR * np.quantile(losses, cv.FAILURE_REFERENCE_QUANTILE))
    assert rule.chance is None


def test_given_threshold_and_bad_given():
    assert cv.failure_rule(_models("ah", [0.1]), "ah", given=0.3).threshold == 0.3
    with pytest.raises(ValueError, match="positive"):
        cv.failure_rule(_models("ah", [0.1]), "ah", given=-1.0)


def test_classify_flags_and_caps():
    ln10 = math.log(10)
    models = _models(
        "rad", [1.2, 2.30, math.nan, math.inf, 1.5, 50.0], diverged=[False, False, False, False, True, False]
    )
    out, rules = cv.classify(models)
    cap = rules["rad"].cap
    assert out["failed"].tolist() == [False, True, True, True, True, True]
    # Exploded: non-finite, diverged, or above 10 x chance (50 > 23.0); 2.30 is at chance, not exploded.
    assert out["exploded"].tolist() == [False, False, True, True, True, True]
    assert out["at_chance"].tolist() == [False, True, False, False, False, False]
    np.testing.assert_allclose(out["capped_min_val_loss"], [1.2, 2.30, cap, cap, 1.5, cap])
    assert cap == pytest.approx(2 * 0.98 * ln10)


def test_classify_by_experiment_with_given_threshold_by_task():
    models = pd.concat(
        [_models("ah", [0.1] * 8 + [5.0], output_dim=26).assign(experiment=e) for e in ("door", "hammer")],
        ignore_index=True,
    )
    models.loc[models["experiment"] == "door", "min_val_loss"] *= 10
    out, rules = cv.classify(models, {"ah": 0.5, "hammer": 0.2}, by="experiment")
    assert set(rules) == {"door", "hammer"}
    assert rules["hammer"].threshold == 0.2 and rules["door"].threshold == 0.5  # experiment first, then task
    assert rules["door"].explosion == pytest.approx(5.0)
    assert out.loc[out["experiment"] == "door", "failed"].tolist() == [True] * 9
    assert out.loc[out["experiment"] == "door", "exploded"].tolist() == [False] * 8 + [True]


def test_classify_separates_tasks():
    models = pd.concat([_models("rad", [1.0, 3.0]), _models("ah", [0.1] * 8 + [5.0], output_dim=26)], ignore_index=True)
    out, rules = cv.classify(models)
    assert set(rules) == {"rad", "ah"}
    assert out["failed"].tolist() == [False, True] + [False] * 8 + [True]


def test_cap_curves():
    np.testing.assert_allclose(cv.cap_curves([[1.0, np.nan, 9.0, np.inf]], 4.0), [[1.0, 4.0, 4.0, 4.0]])


@pytest.mark.parametrize(
    "n,exploded,uc",
    [
        (0, 0, False),  # empty: shown as "-", not uc
        (1, 0, False),  # a small cell is not uc: it shows its n
        (4, 1, False),
        (4, 2, True),
        (20, 5, False),  # exactly 25 %: not more than the limit
        (20, 6, True),  # 30 %
        (100, 25, False),
        (100, 26, True),
    ],
)
def test_uc_rule(n, exploded, uc):
    assert cv.is_uc(n, exploded) is uc
