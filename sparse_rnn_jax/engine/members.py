"""Which models a sweep trains: ``PopulationConfig`` and the members it builds.

Members, in id order: ``num_models`` networks drawn by ``sampler`` (ids 0..num_models-1; with ``stratify``, the
stratified subsample of that draw, ``core.strata``), then every named
configuration or baseline cell of ``configs`` repeated ``config_repeats`` times (each repeat its own id and so its
own seed), at ``budget`` trainable weights (or ``hidden_dim``), then one model per explicit spec text of ``specs``
(``core.spec_text``), each ``spec_repeats`` times in a row (a text given k times is k more seeds). ``hh_graph``
draws the sampled models' hh masks as random graphs; ``leak`` turns every block RNN (sampled and named) into a
leaky or gated one with the same seed. A model's seed is derived from the sweep seed and its id
(``population.model_seed``).
"""

from __future__ import annotations

import dataclasses

from sparse_rnn_jax.core.leaky_spec import LeakySpec
from sparse_rnn_jax.core.rng import derived_seed
from sparse_rnn_jax.core.samplers import SIZED_SAMPLERS, SamplerConfig, parse_sampler, sample_specs
from sparse_rnn_jax.core.solvers import BudgetError, hidden_dim_for_budget
from sparse_rnn_jax.core.spec import BLOCKS, GraphSpec
from sparse_rnn_jax.core.spec_text import spec_from_text
from sparse_rnn_jax.core.strata import EXTRA_BATCH, StratifiedSample, stratified_sample
from sparse_rnn_jax.engine.config import PopulationConfig
from sparse_rnn_jax.engine.population import Member, model_seed
from sparse_rnn_jax.models.registry import named_specs


def check_budget(population: PopulationConfig, input_dim: int, output_dim: int) -> None:
    """Raises ValueError when the budget is too small for the dims, for the named configs or the sampler."""
    if population.budget is None:
        return
    try:
        sized = [n for n, _ in parse_sampler(population.sampler) if n in SIZED_SAMPLERS]
        if sized and population.num_models > 0:
            # The sparsest draw a sized sampler can make (normal_size: densities 0.02; uniform_size 0.01) must fit.
            floor = 0.01 if "uniform_size" in sized else 0.02
            hidden_dim_for_budget({b: floor for b in BLOCKS}, input_dim, output_dim, population.budget)
        for c in population.configs:
            named_specs(
                [c], input_dim, output_dim, budget=population.budget, uniform_density=population.uniform_density
            )
    except (BudgetError, ValueError) as e:
        raise ValueError(f"budget: {e}") from None


STRATA_STREAM = 0x57A7A
"""Key of the further draws that fill sparse strata (``derived_seed(seed, STRATA_STREAM, batch)``)."""


def sampled_population(population: PopulationConfig, seed: int, input_dim: int, output_dim: int):
    """The sampler's ``num_models`` draws (the population a stratified run subsamples)."""
    p = population
    if p.num_models == 0:
        return []
    cfg = SamplerConfig(hidden_mean=p.hidden_mean, hidden_std=p.hidden_std, activation=p.activation)
    return sample_specs(p.sampler, p.num_models, seed, input_dim, output_dim, p.budget, cfg).specs


def stratified_members(population: PopulationConfig, seed: int, input_dim: int, output_dim: int) -> StratifiedSample:
    """The stratified subsample (``core.strata``) of the sampled population, its further draws from the same
    sampler in batches seeded by ``derived_seed(seed, STRATA_STREAM, k)``."""
    p = population
    cfg = SamplerConfig(hidden_mean=p.hidden_mean, hidden_std=p.hidden_std, activation=p.activation)

    def more(k: int):
        s = derived_seed(seed, STRATA_STREAM, k)
        return sample_specs(p.sampler, EXTRA_BATCH, s, input_dim, output_dim, p.budget, cfg).specs

    return stratified_sample(sampled_population(p, seed, input_dim, output_dim), p.per_stratum, more)


def build_members(population: PopulationConfig, seed: int, input_dim: int, output_dim: int) -> list[Member]:
    """The sweep's members (module docstring), deterministic from ``seed``; with ``stratify`` the sampled
    models are the stratified subsample (``stratified_members``)."""
    p = population
    if p.stratify != "none":
        specs = stratified_members(p, seed, input_dim, output_dim).specs
    else:
        specs = sampled_population(p, seed, input_dim, output_dim)
    if p.hh_graph != "none":
        specs = [s.replace(hh_graph=GraphSpec(p.hh_graph, p.hh_graph_beta)) for s in specs]
    members = [Member(i, s, model_seed(seed, i), s.name) for i, s in enumerate(specs)]
    named = (
        named_specs(
            p.configs,
            input_dim,
            output_dim,
            budget=p.budget,
            hidden_dim=p.hidden_dim,
            learning_rate=p.config_lr,
            uniform_density=p.uniform_density,
            activation=p.activation,
        )
        if p.configs
        else []
    )
    for _ in range(p.config_repeats):
        for s in named:
            i = len(members)
            members.append(Member(i, s, model_seed(seed, i), s.name))
    for text in p.specs:
        s = spec_from_text(text, input_dim, output_dim)
        for _ in range(p.spec_repeats):
            i = len(members)
            members.append(Member(i, s, model_seed(seed, i), s.name))
    if p.leak != "none":  # the block RNNs become leaky (same seeds, so the same block weights); cells stay
        members = [
            dataclasses.replace(m, spec=LeakySpec(m.spec, p.leak, p.leak_alpha)) if m.spec.family == "block" else m
            for m in members
        ]
    return members
