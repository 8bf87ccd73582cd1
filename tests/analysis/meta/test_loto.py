"""Leave-one-task-out on a synthetic meta-dataset whose loss is planted in one feature (hidden proportion), and
the metrics it is built from."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparse_rnn_jax.analysis.meta.loto import (
    Group,
    expected_best_of,
    leave_one_task_out,
    loto_markdown,
    pick_regrets,
    rank_correlation,
)
from sparse_rnn_jax.analysis.meta.parent import FEATURES, fit_parent
from tests.analysis.meta.synthetic_meta import synthetic_meta


def test_expected_best_of_three_matches_enumeration():
    import itertools

    a = np.array([0.5, 0.1, 0.9, 0.3, 0.7])
    brute = np.mean([min(c) for c in itertools.combinations(a, 3)])
    assert expected_best_of(a) == pytest.approx(brute)
    assert expected_best_of(a[:2]) == 0.1


def test_pick_regrets_and_ties():
    actual = np.array([0.4, 0.2, 0.6, 0.3])
    assert pick_regrets(actual, np.array([1.0, 0.0, 2.0, 3.0])) == (0.0, 0.0)
    top1, top3 = pick_regrets(actual, np.array([0.0, 5.0, 0.0, 4.0]))  # tie between 0.4 and 0.6
    assert top1 == pytest.approx(0.3) and top3 == pytest.approx(0.1)
    assert math.isnan(rank_correlation(np.ones(4), actual))


def test_fixed_picks_keep_their_config_under_resampling():
    g = Group("t", "t/b1", np.array([0.5, 0.2, 0.8]), {"p": np.array([0.1, 0.0, 0.2])}, {"balanced": 0, "dense": 2})
    m = g.metrics(np.array([1, 1, 1]))
    assert m[("balanced", "regret_top1")] == pytest.approx(0.3) and m[("dense", "regret_top1")] == pytest.approx(0.6)
    assert m[("p", "regret_top1")] == pytest.approx(0.0)


@pytest.fixture(scope="module")
def planted():
    frame = synthetic_meta(returns_task="gamma")
    return frame, leave_one_task_out(frame, trees=60, mlp=False, bootstrap=100)


def test_the_cross_task_forest_recovers_the_planted_feature(planted):
    frame, result = planted
    assert result["tasks"] == sorted(frame["task"].unique())
    s = {(r["method"], r["metric"]): r for r in result["summary"]}
    assert s[("forest", "spearman")]["mean"] > 0.6 and s[("forest", "spearman")]["lo"] > 0.3
    assert s[("forest", "regret_top1")]["mean"] < 0.05
    assert s[("forest", "regret_top1")]["mean"] < s[("random", "regret_top1")]["mean"] / 3
    # The planted optimum (hidden proportion 0.15) is far from the balanced rule's 0.5: the forest beats it.
    assert s[("forest", "regret_top1")]["vs_balanced_hi"] < 0 and not s[("forest", "regret_top1")]["within_noise"]
    for r in result["per_task"]:
        if math.isfinite(r["value"]) and math.isfinite(r["lo"]):
            assert r["lo"] - 1e-9 <= r["hi"]
    parent = fit_parent(frame, trees=60, mlp=False)
    importances = parent.meta["importances"]
    assert max(importances, key=importances.get) == "hidden_proportion"
    assert set(importances) == set(FEATURES)


def test_returns_are_reported_where_they_exist(planted):
    _, result = planted
    rows = {r["versus"]: r for r in result["returns"]}
    assert {r["task"] for r in result["returns"]} == {"gamma"}
    assert rows["actual_loss"]["spearman"] > 0.8  # the planted return is 1 - loss + noise
    assert rows["per_task_predicted_return"]["spearman"] > 0.5


def test_markdown_names_every_method_and_task(planted):
    frame, result = planted
    text = loto_markdown(result)
    for label in ("cross-task forest", "per-task forest", "balanced rule", "dense", "random pick", "differs"):
        assert label in text
    for t in frame["task"].unique():
        assert f"| {t} |" in text


def test_needs_two_tasks():
    with pytest.raises(ValueError, match="at least 2 tasks"):
        leave_one_task_out(synthetic_meta(tasks=("alpha",)), trees=5, mlp=False, bootstrap=5)


def _siblings():
    """alpha and its sibling alpha2 (identical descriptors, one family "a") plant their optimum at hidden
    proportion 0.85; every other task at 0.15."""
    import pandas as pd

    from tests.analysis.meta.synthetic_meta import planted as plant

    frame = synthetic_meta(tasks=("alpha", "beta", "gamma", "delta"), seed=1)
    sib = frame[frame["task"] == "alpha"].assign(task="alpha2", run=lambda d: "alpha2/" + d["run"].str[6:])
    frame = pd.concat([frame, sib], ignore_index=True)
    mine = frame["task"].isin(["alpha", "alpha2"])
    frame.loc[mine, "norm_min_loss"] = plant(frame.loc[mine, "hidden_proportion"].to_numpy(), 0.85)
    frame["family"] = np.where(mine, "a", frame["task"])
    return frame


def test_a_sibling_in_training_flatters_leave_one_task_out():
    from sparse_rnn_jax.analysis.meta.loto import groups_of, holdout_predictions, holdout_units

    frame = _siblings()
    assert set(holdout_units(frame, "family")) == {"a", "beta", "gamma", "delta"}
    regret = {}
    for by in ("task", "family"):
        pred = holdout_predictions(frame, by=by, trees=40, mlp=False, rank=None)
        g = next(g for g in groups_of(frame, pred) if g.task == "alpha")
        regret[by] = g.metrics()[("forest", "regret_top1")]
    # By task, alpha2 (same descriptors, same optimum) teaches the forest alpha's answer; by family it cannot.
    assert regret["task"] < 0.1 < regret["family"]


def test_rank_target_is_within_run_and_hp05_is_a_ranked_baseline(planted):
    from sparse_rnn_jax.analysis.meta.parent import rank_target

    frame, result = planted
    rel, rk = rank_target(frame, "relative"), rank_target(frame, "rank")
    for _, pos in frame.groupby("run").indices.items():
        assert np.median(rel[pos]) == pytest.approx(0.0) and rk[pos].min() == 0.0 and rk[pos].max() == 1.0
    s = {(r["method"], r["metric"]): r for r in result["summary"]}
    assert s[("hp05", "spearman")]["mean"] < s[("forest", "spearman")]["mean"]  # optimum 0.15, not 0.5
    assert s[("rank_forest", "spearman")]["mean"] > 0.6
    assert s[("forest", "regret_top1")]["vs_random_hi"] < 0 and "vs_random" not in s[("random", "regret_top1")]
    assert result["settings"]["holdout"] == "task"


def test_the_simulated_race_reads_the_recorded_curves():
    rng = np.random.default_rng(0)
    c, epochs = 14, 20
    final = rng.uniform(0.2, 0.9, c)
    final[5] = 0.05  # the best candidate, ranked 5th by the predictor: the race must find it from the curves
    curves = final[:, None] + 0.5 * np.exp(-np.arange(epochs)[None, :] / 4.0)
    pred = np.argsort(np.argsort(final)).astype(float)
    pred[5] = 4.5
    g = Group("t", "t/b1", curves.min(axis=1), {"rank_model": pred}, {"balanced": 0, "dense": 1}, curves, final)
    regret, fraction = g.race()
    assert regret == 0.0 and fraction <= 0.2
    assert g.metrics()[("race", "regret_top1")] == 0.0 and ("race", "regret_top1") not in g.metrics(np.arange(c))


def test_the_simulated_race_fits_a_fifth_of_the_full_sweep_at_few_epochs():
    # 42 candidates x 12 epochs (the generated zoo's runs): 12 entrants trained fully would cost 144 model-epochs,
    # so halving them at 0.2 of that cannot fit; a fifth of the full sweep (every candidate, 504) does
    rng = np.random.default_rng(1)
    c, epochs = 42, 12
    final = rng.uniform(0.2, 0.9, c)
    curves = final[:, None] + 0.5 * np.exp(-np.arange(epochs)[None, :] / 3.0)
    g = Group(
        "t", "t/b1", curves.min(axis=1), {"rank_model": final + rng.normal(0, 0.05, c)}, {"balanced": 0}, curves, final
    )
    regret, fraction = g.race()
    assert np.isfinite(regret) and 0.1 < fraction <= 0.2
