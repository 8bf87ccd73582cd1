"""The post-stratification estimator (analysis.stratified): its intervals cover the population's cell means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.analysis.stratified import cell_estimates, holm, neighbour_tests, spearman_interval, strata_of
from sparse_rnn_jax.core.accounting import BUCKET_LABELS, bucket_index, expected_accounting
from sparse_rnn_jax.core.samplers import sample_specs


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """The paper's Table IV draw (3,254 networks, the lite run's sampler) with a synthetic bimodal outcome: a
    network is at chance (loss ~ 2.303) with a probability that falls with its hidden proportion, else a learner
    whose loss depends on its hidden proportion and model density."""
    specs = sample_specs("normal_size:0.5,uniform_size:0.5", 3254, 0, 2500, 10, 50_000).specs
    acc = [expected_accounting(s) for s in specs]
    hp = np.array([a.hidden_proportion for a in acc])
    md = np.array([a.model_density for a in acc])
    rng = np.random.default_rng(7)
    at_chance = rng.random(hp.size) < np.clip(0.97 - 1.2 * hp, 0.05, 1.0)
    learner = 1.2 + 0.6 * (hp - 0.5) ** 2 + 0.4 * md + rng.normal(0, 0.15, hp.size)
    loss = np.where(at_chance, 2.303 + rng.normal(0, 0.002, hp.size), learner)
    return pd.DataFrame(
        {"hidden_proportion": hp, "model_density": md, "capped_min_val_loss": loss, "at_chance": at_chance}
    )


def _subsample(pop: pd.DataFrame, k: int, rng: np.random.Generator) -> pd.DataFrame:
    strata = np.array([f"{a},{b}" for a, b in strata_of(pop)])
    keep = []
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        keep += list(rng.permutation(idx)[:k])
    return pop.iloc[sorted(keep)]


def test_weighted_intervals_cover_the_population_cell_means(population):
    counts: dict = {}
    for s in strata_of(population):
        counts[s] = counts.get(s, 0) + 1
    truth = {
        metric: population.groupby(bucket_index(population[metric]))["capped_min_val_loss"].mean()
        for metric in ("hidden_proportion", "model_density")
    }
    rng = np.random.default_rng(0)
    covered = total = 0
    unweighted_covered = 0
    for rep in range(60):
        sample = _subsample(population, 30, rng)
        for metric in truth:
            cells, _ = cell_estimates(sample, counts, metric, n_boot=300, seed=rep)
            plain, _ = cell_estimates(sample, None, metric, n_boot=300, seed=rep)
            for k in range(len(BUCKET_LABELS)):
                if k not in truth[metric].index or cells["n"].iloc[k] < 2:
                    continue
                t = truth[metric].loc[k]
                covered += cells["ci95_low"].iloc[k] <= t <= cells["ci95_high"].iloc[k]
                unweighted_covered += plain["ci95_low"].iloc[k] <= t <= plain["ci95_high"].iloc[k]
                total += 1
    assert total >= 500
    assert covered / total >= 0.90
    # without the weights the subsample misstates the mixed cells (the check has power)
    assert unweighted_covered / total < 0.85


def test_weights_reproduce_the_population_mean_exactly_when_every_stratum_is_whole(population):
    counts: dict = {}
    for s in strata_of(population):
        counts[s] = counts.get(s, 0) + 1
    cells, boot = cell_estimates(population, counts, "hidden_proportion", n_boot=50)
    truth = population.groupby(bucket_index(population["hidden_proportion"]))["capped_min_val_loss"].mean()
    assert np.allclose(cells["mean"].to_numpy(), truth.reindex(range(5)).to_numpy())
    assert np.allclose(cells["population"].sum(), len(population))
    tests = neighbour_tests(cells, boot)
    assert len(tests) == 4 and (tests["p"] > 0).all()


def test_spearman_interval_brackets_rho():
    cells = pd.DataFrame({"cell": list(BUCKET_LABELS), "n": [30] * 5, "mean": [1.0, 2.0, 3.0, 4.0, 5.0]})
    boot = np.array([[1, 2, 3, 4, 5], [2, 1, 3, 4, 5], [1, 2, 3, 5, 4]] * 10, dtype=float)
    r = spearman_interval(cells, boot, [1, 2, 3, 4, 5])
    assert r["spearman"] == pytest.approx(1.0) and r["low"] < 1.0 <= r["high"] + 1e-9 and r["cells"] == 5
    assert np.isnan(spearman_interval(cells, boot, ["uc", "uc", "uc", 1, 2])["spearman"])


def test_holm_adjusts_in_the_given_order():
    adj = holm([0.01, 0.04, 0.03, np.nan])
    assert np.allclose(adj[:3], [0.03, 0.06, 0.06]) and np.isnan(adj[3])
    assert np.all(holm([0.5, 0.9]) <= 1.0)
