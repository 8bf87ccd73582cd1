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
