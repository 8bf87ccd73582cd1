"""Spec texts (``core.spec_text``) round-trip exactly, name what is wrong, and become population members."""

from __future__ import annotations

import pytest

from sparse_rnn_jax.core.samplers import sample_specs
from sparse_rnn_jax.core.solvers import balanced_spec
from sparse_rnn_jax.core.spec_text import check_spec_text, spec_from_text, spec_to_text
from sparse_rnn_jax.engine.config import PopulationConfig
from sparse_rnn_jax.engine.members import build_members


def test_round_trip_is_exact_and_comma_free():
    specs = sample_specs("uniform_size", 20, 3, 784, 10, budget=20_000).specs
    specs.append(balanced_spec(784, 10, 20_000, target=0.3, learning_rate=1e-3, name="balanced@0.30@lr0.001"))
    for s in specs:
        text = spec_to_text(s)
        assert "," not in text
        assert spec_from_text(text, 784, 10) == s


@pytest.mark.parametrize(
    "text,message",
    [
        ("dense", "expected NAME"),
        ("a b:h=3", "name"),
        ("x:h=3:lr=0.1", "missing"),
        ("x:h=3:lr=0.1:hx=1/0/0.05:hh=1/0/0.05:hy=1/0/0.05:yx=1/0/0.05:yh=1/0/0.05:yy=1/0/0.05:zz=1", "unknown"),
        ("x:h=3.5:lr=0.1:hx=1/0/0.05:hh=1/0/0.05:hy=1/0/0.05:yx=1/0/0.05:yh=1/0/0.05:yy=1/0/0.05", "h must be"),
        ("x:h=3:lr=0.1:hx=0/0/0.05:hh=1/0/0.05:hy=1/0/0.05:yx=1/0/0.05:yh=1/0/0.05:yy=1/0/0.05", "density_hx"),
    ],
)
def test_bad_texts_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        check_spec_text(text)


def test_explicit_specs_are_one_member_each_after_the_named_configs():
    text = spec_to_text(balanced_spec(28, 10, 2_000, target=0.3, name="b30"))
    pop = PopulationConfig(num_models=2, budget=2_000, configs=("dense",), config_repeats=2, specs=(text, text))
    members = build_members(pop, 0, 28, 10)
    assert pop.size == len(members) == 6
    assert [m.config for m in members[2:]] == ["dense", "dense", "b30", "b30"]
    assert members[4].spec == members[5].spec and members[4].seed != members[5].seed
    only = build_members(PopulationConfig(num_models=0, specs=(text,)), 0, 28, 10)
    assert len(only) == 1 and only[0].spec.hidden_dim == members[4].spec.hidden_dim
    with pytest.raises(ValueError, match="missing"):
        PopulationConfig(num_models=0, specs=("x:h=3",))


def test_spec_repeats_equal_repeating_each_text():
    a = spec_to_text(balanced_spec(28, 10, 2_000, target=0.3, name="b30"))
    b = spec_to_text(balanced_spec(28, 10, 2_000, target=0.6, name="b60"))
    repeated = PopulationConfig(num_models=0, specs=(a, b), spec_repeats=3)
    written = PopulationConfig(num_models=0, specs=(a, a, a, b, b, b))
    assert repeated.size == 6
    assert build_members(repeated, 0, 28, 10) == build_members(written, 0, 28, 10)
    with pytest.raises(ValueError, match="spec_repeats"):
        PopulationConfig(num_models=0, specs=(a,), spec_repeats=0)
