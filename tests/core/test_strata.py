"""Stratified subsamples of a sampled population (core.strata) and their members (engine.members)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sparse_rnn_jax.core.samplers import sample_specs
from sparse_rnn_jax.core.strata import spec_stratum, stratified_sample
from sparse_rnn_jax.engine.config import PopulationConfig
from sparse_rnn_jax.engine.members import build_members, stratified_members

MIX = "normal_size:0.5,uniform_size:0.5"


def _draw(n: int, seed: int):
    return sample_specs(MIX, n, seed, 2500, 10, 50_000).specs


def test_stratified_sample_caps_each_stratum_and_fills_sparse_ones():
    population = _draw(400, 0)
    sample = stratified_sample(population, 5, lambda k: _draw(2000, 100 + k))
    counts = sample.population_counts
    assert sum(counts.values()) == 400
    for s, n in counts.items():
        assert sample.sampled_counts[s] == 5  # a stratum with fewer than 5 was filled by further draws
    assert [spec_stratum(x) for x in sample.specs] == sample.strata
    # population members first, in draw order, and each one really is the population's
    idx = [i for i in sample.population_index if i >= 0]
    assert idx == sorted(idx)
    assert all(sample.specs[k] is population[i] for k, i in enumerate(idx))
    # the weights stand for the population: they sum to its size
    assert np.isclose(sample.weights().sum(), 400)
    # a stratum absent from the population gets no further draws
    assert set(sample.strata) == set(counts)


def test_stratified_sample_without_further_draws_takes_everything_of_small_strata():
    population = _draw(300, 1)
    sample = stratified_sample(population, 10, lambda k: [])
    for s, n in sample.population_counts.items():
        assert sample.sampled_counts[s] == min(n, 10)
    assert sample.extra_draws == 0


def test_stratified_sample_rejects_a_bad_size():
    with pytest.raises(ValueError, match="per_stratum"):
        stratified_sample(_draw(10, 0), 0, lambda k: [])


def test_stratified_members_are_deterministic_and_fill_every_table_iv_cell():
    p = PopulationConfig(
        num_models=3254, sampler=MIX, budget=50_000, stratify="table_iv", per_stratum=8, config_repeats=0
    )
    a = build_members(p, 0, 2500, 10)
    b = build_members(p, 0, 2500, 10)
    assert [m.spec for m in a] == [m.spec for m in b] and [m.seed for m in a] == [m.seed for m in b]
    sample = stratified_members(p, 0, 2500, 10)
    assert len(a) == len(sample.specs) <= p.size
    hp_cells = {s[0] for s in sample.strata}
    assert hp_cells == {0, 1, 2, 3, 4}  # the paper's draw reaches every cell (>= .8: 8 networks)
    assert all(n == 8 for n in sample.sampled_counts.values())  # sparse strata filled by further draws
    unstratified = build_members(dataclasses.replace(p, stratify="none"), 0, 2500, 10)
    assert len(unstratified) == 3254
    # the subsample's population members are the unstratified run's own draws
    assert all(sample.specs[k] == unstratified[i].spec for k, i in enumerate(sample.population_index) if i >= 0)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"stratify": "cells"}, "stratify"),
        ({"stratify": "table_iv", "per_stratum": 0}, "per_stratum"),
        ({"stratify": "table_iv", "num_models": 0, "configs": ("dense",)}, "stratify"),
    ],
)
def test_population_config_rejects_bad_stratification(kw, match):
    base = {"num_models": 10, "sampler": MIX, "budget": 50_000, "config_repeats": 1}
    with pytest.raises(ValueError, match=match):
        PopulationConfig(**{**base, **kw})
