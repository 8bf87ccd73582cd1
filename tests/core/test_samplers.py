import numpy as np
import pytest

from sparse_rnn_jax.core.accounting import expected_accounting
from sparse_rnn_jax.core.configs import named_specs
from sparse_rnn_jax.core.samplers import SamplerConfig, sample_specs
from sparse_rnn_jax.core.spec import BLOCKS


def _arrays(specs, field):
    return np.array([[getattr(s.blocks[b], field) for b in BLOCKS] for s in specs])


def test_normal_sampler_ranges_rounding_and_determinism():
    specs = sample_specs("normal", 400, 0, 46, 26).specs
    assert specs == sample_specs("normal", 400, 0, 46, 26).specs
    assert specs != sample_specs("normal", 400, 1, 46, 26).specs
    d, m, s = _arrays(specs, "density"), _arrays(specs, "init_mean"), _arrays(specs, "init_std")
    assert d.min() >= 0.02 and d.max() <= 1.0 and np.allclose(d, np.round(d, 2))
    assert abs(d.mean() - 0.52) < 0.05  # |N(0.5, 0.25)| clipped
    assert np.allclose(m, np.round(m, 3)) and np.abs(m).max() < 0.02
    assert s.min() >= 0.0 and np.allclose(s, np.round(s, 3)) and abs(s.mean() - 0.05) < 0.005
    lr = np.array([x.learning_rate for x in specs])
    assert lr.min() > 0 and np.allclose(lr, np.round(lr, 5)) and abs(lr.mean() - 1e-3) < 1e-4
    h = np.array([x.hidden_dim for x in specs])
    assert h.min() >= 10 and abs(np.median(h) - 900) < 80


def test_uniform_sampler_ranges():
    specs = sample_specs("uniform", 400, 3, 2500, 10).specs
    d = _arrays(specs, "density")
    assert d.min() >= 0.01 and d.max() <= 1.0 and abs(d.mean() - 0.5) < 0.05
    h = np.array([x.hidden_dim for x in specs])
    assert h.min() >= 1 and h.max() <= 1000
    lr = np.array([x.learning_rate for x in specs])
    assert lr.min() >= 1e-5 and lr.max() <= 1e-3


def test_normal_size_meets_budget():
    res = sample_specs("normal_size", 200, 0, 2500, 10, budget=50_000)
    for s in res.specs:
        acc = expected_accounting(s)
        # within 1 %, or half a hidden unit's worth of weights for tiny h
        assert abs(acc.trainable_params - 50_000) <= max(
            500, 0.5 * (2 * s.density("hh") * s.hidden_dim + 2500 * s.density("hx") + 20)
        )
    assert res.redraws == 0


def test_named_specs_and_errors():
    specs = named_specs(["dense", "balanced"], 2500, 10, budget=100_000)
    assert [s.hidden_dim for s in specs] == [29, 185]
    with pytest.raises(ValueError, match="unknown config"):
        named_specs(["bogus"], 2500, 10, budget=1e5)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_specs("bogus", 1, 0, 3, 3)
    with pytest.raises(ValueError, match="too small"):
        sample_specs("normal_size", 5, 0, 2500, 10, budget=1_000)
    assert SamplerConfig().hidden_mean == 900


def _cells(values):
    return np.bincount(np.digitize(values, [0.2, 0.4, 0.6, 0.8]), minlength=5)


def test_uniform_size_distributions_and_budget():
    res = sample_specs("uniform_size", 600, 3, 2500, 10, budget=50_000)
    specs = res.specs
    dens = np.array([[s.density(b) for b in BLOCKS] for s in specs])
    assert dens.min() >= 0.01 and dens.max() <= 1.0
    # U(0, 1] densities: about uniform, far below normal_size's floor of 0.02 in a few percent of blocks.
    assert 0.45 < dens.mean() < 0.55 and (dens < 0.02).mean() > 0.003
    lrs = np.array([s.learning_rate for s in specs])
    assert lrs.min() >= 1e-5 and lrs.max() <= 1e-3 and 4.5e-4 < lrs.mean() < 5.5e-4
    means = np.array([[s.blocks[b].init_mean for b in BLOCKS] for s in specs])
    stds = np.array([[s.blocks[b].init_std for b in BLOCKS] for s in specs])
    assert np.abs(means).max() <= 0.005 and stds.max() <= 0.1 and 0.045 < stds.mean() < 0.055
    for s in specs[:50]:  # h solved from the budget: the nearest integer hidden size
        acc = expected_accounting(s)
        h_up = expected_accounting(s.replace(hidden_dim=s.hidden_dim + 1)).trainable_params
        h_down = expected_accounting(s.replace(hidden_dim=max(1, s.hidden_dim - 1))).trainable_params
        assert abs(acc.trainable_params - 50_000) <= min(abs(h_up - 50_000), abs(h_down - 50_000))
    assert res.redraws > 0  # draws with a density rounding to 0 are skipped, as in the reference
    assert {s.name for s in specs} == {"uniform_size"}


def test_uniform_size_reaches_every_hidden_proportion_cell_normal_size_cannot():
    hp = lambda name: np.array(  # noqa: E731
        [expected_accounting(s).hidden_proportion for s in sample_specs(name, 3254, 0, 2500, 10, 50_000).specs]
    )
    uniform, normal = _cells(hp("uniform_size")), _cells(hp("normal_size"))
    assert uniform[4] >= 5 and normal[4] == 0  # >= .8 only reachable with uniform densities
    assert uniform.sum() == normal.sum() == 3254


def test_mixtures_are_deterministic_and_split_by_weight():
    from sparse_rnn_jax.core.samplers import mixture_counts, parse_sampler

    assert parse_sampler("normal_size") == (("normal_size", 1.0),)
    assert parse_sampler("normal_size:1,uniform_size:3") == (("normal_size", 0.25), ("uniform_size", 0.75))
    assert mixture_counts(parse_sampler("normal_size:0.5,uniform_size:0.5"), 7) == [4, 3]
    assert sum(mixture_counts(parse_sampler("normal:1,uniform:1,uniform_size:1"), 100)) == 100
    a = sample_specs("normal_size:0.5,uniform_size:0.5", 20, 1, 2500, 10, 50_000).specs
    b = sample_specs("normal_size:0.5,uniform_size:0.5", 20, 1, 2500, 10, 50_000).specs
    assert a == b and [s.name for s in a] == ["normal_size"] * 10 + ["uniform_size"] * 10
    # A pure sampler keeps its own stream (existing sweeps are unchanged); mixture components draw their own.
    pure = sample_specs("normal_size", 10, 1, 2500, 10, 50_000).specs
    assert pure == sample_specs("normal_size:1", 10, 1, 2500, 10, 50_000).specs and pure != a[:10]
    for bad in ("nope", "normal:0", "normal:x", "normal:1,normal:2", ""):
        with pytest.raises(ValueError, match="sampler"):
            parse_sampler(bad)
    with pytest.raises(ValueError, match="budget"):
        sample_specs("normal:0.5,uniform_size:0.5", 4, 0, 10, 2)
