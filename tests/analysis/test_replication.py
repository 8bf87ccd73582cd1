"""The replication comparisons: Welch differences and verdicts, Table IV beside the paper, row Spearman, the
Fig. 1 ordering checks."""

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.analysis import replication as rep
from sparse_rnn_jax.analysis.convergence import classify
from sparse_rnn_jax.engine.results import final_per_model
from tests.analysis.synthetic import synthetic_results


def test_difference_matches_scipy_welch_and_verdicts():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.1, 8), rng.normal(0.8, 0.2, 6)
    d = rep.difference(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    assert d["p"] == pytest.approx(res.pvalue) and d["low"] < d["diff"] < d["high"]
    ci = res.confidence_interval(0.95)
    assert (d["low"], d["high"]) == pytest.approx((ci.low, ci.high))
    assert rep.verdict(d) == "reproduces" and rep.verdict(rep.difference(b, a)) == "reversed"
    assert rep.verdict(rep.difference(a, a + rng.normal(0, 0.01, 8))) == "within noise"
    assert rep.verdict(d, higher_is_better=False) == "reversed"  # for a loss, a larger mean is worse
    assert rep.verdict(rep.difference(a[:1], b)) == "too few values"


def test_ordering_checks_follow_the_paper_order():
    rng = np.random.default_rng(1)
    means = {"balanced": 0.8, "eqn8": 0.6, "dense": 0.4, "uniform": 0.4, "lstm": 0.2, "eqn7": 0.1}
    models = pd.DataFrame([{"config": c, "acc": m + rng.normal(0, 0.01)} for c, m in means.items() for _ in range(5)])
    checks = rep.ordering_checks(models, "acc", rep.PAPER_FIG1_ORDER, rep.PAPER_FIG1_TIES)
    assert list(checks["pair"]) == [
        "balanced > eqn8",
        "eqn8 > dense",
        "dense ≈ uniform",
        "uniform > lstm",
        "lstm > eqn7",
    ]
    assert list(checks["verdict"]) == [
        "reproduces",
        "reproduces",
        "reproduces (within noise)",
        "reproduces",
        "reproduces",
    ]
    summary = rep.config_summary(models, "acc", rep.PAPER_FIG1_ORDER)
    assert list(summary["n"]) == [5] * 6 and (summary["ci95_low"] < summary["mean"]).all()


def test_table_iv_beside_paper_and_row_spearman():
    models, _ = classify(final_per_model(synthetic_results("rad", 400, 3, seed=2, sampler="normal_size")))
    beside = rep.table_iv_beside_paper(models)
    assert len(beside) == 10 and set(beside["metric"]) == {"hidden_proportion", "model_density"}
    assert beside.loc[beside["metric"] == "hidden_proportion", "paper"].tolist() == [1.791, 1.351, 1.352, 1.373, 1.431]
    assert beside["n"].sum() == 2 * len(models)
    rho = rep.row_spearman(beside)
    assert set(rho["metric"]) == {"hidden_proportion", "model_density"} and rho["cells"].min() >= 3
    assert rho["spearman"].between(-1, 1).all()


def test_table_beside_paper_figure_draws_every_row_and_empty_cells(tmp_path):
    from sparse_rnn_jax.analysis.figures import table_beside_paper

    models, _ = classify(final_per_model(synthetic_results("rad", 400, 3, seed=2, sampler="normal_size")))
    beside = rep.table_iv_beside_paper(models)
    beside.loc[beside.index[4], ["n", "mean", "ci95_low", "ci95_high"]] = [0, np.nan, np.nan, np.nan]  # an empty cell
    path = table_beside_paper(beside, 2.303, tmp_path / "t.png", "Table IV")
    assert path.exists() and path.stat().st_size > 10_000
    from PIL import Image

    width, height = Image.open(path).size
    assert width > 1.8 * height  # two panels side by side
