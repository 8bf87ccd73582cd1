"""The paper's worked numbers (Fig. 3-5, Eqn 12, Eqn 13) and exact counts from realised masks."""

import numpy as np
import pytest

from sparse_rnn_jax.core.accounting import exact_accounting, expected_accounting
from sparse_rnn_jax.core.configs import EQN7, EQN8, named_spec
from sparse_rnn_jax.core.spec import BLOCKS, make_spec
from sparse_rnn_jax.models.block import init_model

# (config densities, h, the paper's realised per-block counts hx, hh, hy, yx, yh, yy)
PAPER_FIGURES = {
    "fig3_dense": ({b: 1.0 for b in BLOCKS}, 29, (72_500, 841, 290, 25_000, 290, 100)),
    "fig4_eqn8": (EQN8, 145, (72_272, 20_893, 1_445, 5_000, 289, 100)),
    "fig5_eqn7": (EQN7, 30, (74_445, 177, 60, 25_000, 298, 20)),
}


@pytest.mark.parametrize("name", sorted(PAPER_FIGURES))
def test_paper_block_counts_within_one_percent(name):
    dens, h, paper = PAPER_FIGURES[name]
    spec = make_spec(2500, h, 10, dens)
    exp = expected_accounting(spec)
    ex = exact_accounting(spec, init_model(spec, seed=1).masks)
    for b, count in zip(BLOCKS, paper):
        # The paper's counts are realised random masks: within 1 %, or within 3 binomial standard
        # deviations for blocks too small for 1 % to be meaningful (Fig. 5's hh: 177 of 30 x 30 x 0.2 = 180).
        n, d = exp.blocks[b].entries, exp.blocks[b].density
        tol = max(0.01 * count, 3 * np.sqrt(n * d * (1 - d)))
        assert abs(exp.blocks[b].trainable - count) <= tol, b
        assert abs(ex.blocks[b].trainable - count) <= tol, b


def test_eqn12_hidden_proportion_of_fig4():
    spec = make_spec(2500, 145, 10, EQN8)
    assert expected_accounting(spec).hidden_proportion == pytest.approx(0.22, abs=0.005)
    # and from the paper's own realised counts: 20,893 / (72,272 + 20,893 + 1,445)
    assert 20_893 / (72_272 + 20_893 + 1_445) == pytest.approx(0.2208, abs=1e-4)


def test_eqn13_balanced_rad():
    spec = named_spec("balanced", 2500, 10, budget=100_000)
    acc = expected_accounting(spec)
    assert spec.hidden_dim == 185
    assert spec.density("hx") == pytest.approx(0.08)
    assert all(spec.density(b) == 1.0 for b in BLOCKS if b != "hx")
    assert acc.hidden_proportion == pytest.approx(0.47, abs=0.005)
    assert acc.trainable_params == pytest.approx(100_000, rel=0.01)


def test_dense_29_is_99021_and_model_density():
    acc = expected_accounting(make_spec(2500, 29, 10))
    assert acc.trainable_params == 99_021
    assert acc.model_density == 1.0
    assert acc.bias_params == 39
    half = expected_accounting(make_spec(2500, 29, 10, 0.5))
    assert half.model_density == pytest.approx(0.5)


def test_exact_counts_match_masks_and_ignore_padding():
    spec = make_spec(30, 7, 4, {"hx": 0.3, "hh": 0.5, "hy": 1.0, "yx": 0.1, "yh": 0.9, "yy": 0.25})
    arrays = init_model(spec, seed=3, padded_hidden_dim=12)
    acc = exact_accounting(spec, arrays.masks)
    for b in BLOCKS:
        assert acc.blocks[b].trainable == np.count_nonzero(arrays.masks[b])
        assert acc.blocks[b].trainable == max(1, round(spec.density(b) * np.prod(spec.block_shape(b))))
    bad = dict(arrays.masks)
    bad["hh"] = np.ones((12, 12), bool)
    with pytest.raises(ValueError, match="outside"):
        exact_accounting(spec, bad)


def test_json_description_has_no_float_noise():
    from sparse_rnn_jax.core.accounting import rounded

    assert rounded({"t": 23676.800000000003, "b": [0.1 + 0.2, 3], "n": "x"}) == {"t": 23676.8, "b": [0.3, 3], "n": "x"}
