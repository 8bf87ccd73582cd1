import numpy as np
import pytest

from sparse_rnn_jax.core.accounting import expected_accounting
from sparse_rnn_jax.core.configs import NAMED_CONFIGS, named_spec
from sparse_rnn_jax.core.solvers import (
    BudgetError,
    balanced_densities,
    balanced_spec,
    hidden_dim_for_budget,
    trainable_at,
)
from sparse_rnn_jax.core.spec import BLOCKS


def _within_budget(count, budget, densities, h, x, y):
    # Integer h: the count can miss the budget by at most half a step of P(h); otherwise within 1 %.
    step = trainable_at(h + 1, densities, x, y) - trainable_at(h, densities, x, y)
    return abs(count - budget) <= max(0.01 * budget, step / 2 + 1e-6)


def test_budget_solver_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(300):
        x, y = int(rng.integers(1, 3000)), int(rng.integers(1, 60))
        dens = {b: float(rng.uniform(0.01, 1.0)) for b in BLOCKS}
        floor = trainable_at(1, dens, x, y)
        budget = float(floor * rng.uniform(1.5, 50) + rng.uniform(0, 1e5))
        h = hidden_dim_for_budget(dens, x, y, budget)
        count = trainable_at(h, dens, x, y)
        assert _within_budget(count, budget, dens, h, x, y)
        assert abs(count - budget) <= abs(trainable_at(h + 1, dens, x, y) - budget)
        if h > 1:
            assert abs(count - budget) <= abs(trainable_at(h - 1, dens, x, y) - budget)


def test_budget_too_small_raises():
    with pytest.raises(BudgetError, match="too small"):
        hidden_dim_for_budget({b: 1.0 for b in BLOCKS}, 2500, 10, 1000)


@pytest.mark.parametrize("config", NAMED_CONFIGS)
def test_paper_hidden_sizes_at_100k(config):
    expected = {"dense": 29, "eqn7": 30, "eqn8": 145, "balanced": 185}
    spec = named_spec(config, 2500, 10, budget=100_000)
    if config in expected:
        assert spec.hidden_dim == expected[config]
    assert expected_accounting(spec).trainable_params == pytest.approx(100_000, rel=0.01)


def test_balancer_adroit_hammer_sparsifies_hh():
    for budget in (20_000, 100_000, 400_000):
        spec = balanced_spec(46, 26, budget)
        acc = expected_accounting(spec)
        assert spec.density("hh") < 1.0
        assert all(spec.density(b) == 1.0 for b in BLOCKS if b != "hh")
        assert 0.45 <= acc.hidden_proportion <= 0.5
        assert acc.trainable_params == pytest.approx(budget, rel=0.01)


def test_balancer_target_is_settable_and_random_dims_balance():
    rng = np.random.default_rng(1)
    for _ in range(100):
        x, y = int(rng.integers(2, 4000)), int(rng.integers(1, 50))
        budget = float(rng.uniform(3, 40) * (x * y + y * y) + rng.uniform(1e4, 2e5))
        target = float(rng.uniform(0.2, 0.7))
        spec = balanced_spec(x, y, budget, target=target, density_rounding="none")
        acc = expected_accounting(spec)
        assert acc.hidden_proportion == pytest.approx(target, abs=0.03), (x, y, budget, target)
        assert acc.trainable_params == pytest.approx(budget, rel=0.01) or spec.hidden_dim < 20
        assert sum(spec.density(b) < 1.0 for b in BLOCKS) <= 2


def test_balanced_densities_rounding_modes():
    up = balanced_densities(2500, 10, 100_000)["hx"]
    near = balanced_densities(2500, 10, 100_000, density_rounding="nearest")["hx"]
    raw = balanced_densities(2500, 10, 100_000, density_rounding="none")["hx"]
    assert up == 0.08 and near == 0.07 and 0.07 < raw < 0.08
    with pytest.raises(ValueError, match="target"):
        balanced_densities(2500, 10, 100_000, target=1.0)
