"""Stratified subsamples of a sampled population, and the post-stratification estimate of its cell means.

A Table IV population (3,254 draws) is dominated by one corner: ~94 % of its networks have hidden proportion < .2,
so its sparse cells (hidden proportion >= .8: 8 networks) carry little information however long they train.
``stratify="table_iv"`` keeps the population's draw as it is and trains a subsample instead: strata are
(hidden-proportion cell x model-density cell) of the paper's five cells each (``accounting.bucket_index`` of the
expected accounting), up to ``per_stratum`` networks of each, taken in draw order; a stratum that holds some but
fewer networks than that is filled with further draws of the same sampler (a separate stream, rejection on the
stratum). A stratum the population never reaches stays empty: it has no weight in the population.

Each trained network then stands for ``population count / sampled count`` networks of its stratum
(post-stratification weights), so a weighted mean over the subsample estimates the mean over the drawn population
(``analysis.stratified``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from sparse_rnn_jax.core.accounting import BUCKET_LABELS, bucket_index, expected_accounting
from sparse_rnn_jax.core.spec import NetworkSpec

STRATIFICATIONS: tuple[str, ...] = ("none", "table_iv")
"""``none``: train the whole draw; ``table_iv``: a (hidden-proportion cell x model-density cell) subsample."""
MAX_EXTRA_DRAWS = 1_000_000
"""Further draws tried, at most, to fill the sparse strata (a stratum still short then stays short)."""
EXTRA_BATCH = 5_000
"""Further draws per call of the sampler."""

Stratum = tuple[int, int]


def table_iv_stratum(hidden_proportion: float, model_density: float) -> Stratum:
    """The (hidden-proportion cell, model-density cell) of a network, cells 0..4 as ``BUCKET_LABELS``."""
    return int(bucket_index(hidden_proportion)), int(bucket_index(model_density))


def spec_stratum(spec: NetworkSpec) -> Stratum:
    """``table_iv_stratum`` of a spec's expected accounting (the results table's columns)."""
    acc = expected_accounting(spec)
    return table_iv_stratum(acc.hidden_proportion, acc.model_density)


def stratum_label(stratum: Stratum) -> str:
    """``"hp .2–.4 x density < .2"``."""
    return f"hp {BUCKET_LABELS[stratum[0]]} x density {BUCKET_LABELS[stratum[1]]}"


def stratum_key(stratum: Stratum) -> str:
    """A JSON key for a stratum: ``"1,0"``."""
    return f"{stratum[0]},{stratum[1]}"


def parse_stratum_key(key: str) -> Stratum:
    """``"1,0"`` -> (1, 0)."""
    a, b = key.split(",")
    return int(a), int(b)


@dataclasses.dataclass(frozen=True)
class StratifiedSample:
    """A stratified subsample of a population.

    specs: the subsample, the population's members first (in draw order), then the further draws.
    population_index: each spec's index in the population's draw (-1 for a further draw).
    strata: each spec's stratum.
    population_counts: networks per stratum in the population (the weights' numerators).
    sampled_counts: networks per stratum in the subsample.
    extra_draws: further draws made (accepted or not).
    """

    specs: list[NetworkSpec]
    population_index: list[int]
    strata: list[Stratum]
    population_counts: dict[Stratum, int]
    sampled_counts: dict[Stratum, int]
    extra_draws: int

    def weights(self) -> np.ndarray:
        """Each spec's post-stratification weight: population count / sampled count of its stratum."""
        return np.array([self.population_counts[s] / self.sampled_counts[s] for s in self.strata], dtype=float)

    def as_dict(self) -> dict:
        """JSON form (strata as ``stratum_key``)."""
        return {
            "population": int(sum(self.population_counts.values())),
            "sampled": len(self.specs),
            "extra_draws": self.extra_draws,
            "strata": {
                stratum_key(s): {"population": self.population_counts[s], "sampled": self.sampled_counts.get(s, 0)}
                for s in sorted(self.population_counts)
            },
        }


def stratified_sample(
    population: Sequence[NetworkSpec],
    per_stratum: int,
    draw_more: Callable[[int], Sequence[NetworkSpec]],
    max_extra_draws: int = MAX_EXTRA_DRAWS,
) -> StratifiedSample:
    """Up to ``per_stratum`` networks of each stratum the ``population`` reaches (module docstring).
    ``draw_more(k)``: the k-th batch of further draws from the population's sampler (independent of the
    population's own stream and of other batches; deterministic)."""
    if per_stratum < 1:
        raise ValueError(f"per_stratum must be >= 1, got {per_stratum}")
    strata = [spec_stratum(s) for s in population]
    counts: dict[Stratum, int] = {}
    for s in strata:
        counts[s] = counts.get(s, 0) + 1
    taken: dict[Stratum, int] = {}
    specs, index, kept = [], [], []
    for i, (spec, s) in enumerate(zip(population, strata)):
        if taken.get(s, 0) < per_stratum:
            taken[s] = taken.get(s, 0) + 1
            specs.append(spec)
            index.append(i)
            kept.append(s)
    extra, k = 0, 0
    while any(taken[s] < per_stratum for s in counts) and extra < max_extra_draws:
        batch = list(draw_more(k))
        k += 1
        if not batch:
            break
        for spec in batch:
            extra += 1
            s = spec_stratum(spec)
            if s in counts and taken[s] < per_stratum:
                taken[s] += 1
                specs.append(spec)
                index.append(-1)
                kept.append(s)
    return StratifiedSample(specs, index, kept, counts, taken, extra)
