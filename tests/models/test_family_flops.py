"""``train_matmul_flops`` against the program itself: the matrix FLOPs of every ``dot_general`` in the traced
gradient of each registered family's forward (scan bodies counted once per step) equal the formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.models.family import train_matmul_flops
from sparse_rnn_jax.models.registry import FAMILIES
from tests.toy import family_spec

X, H, PADDED_H, Y, B, T = 30, 7, 9, 4, 3, 5
DENSITIES = dict.fromkeys(("hx", "hh", "hy", "yx", "yh", "yy"), 0.5)


def _dot_flops(jaxpr, times: int = 1) -> int:
    """2 x MACs of every dot_general in ``jaxpr`` and its sub-jaxprs (a scan's body ``length`` times)."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            k = int(np.prod([eqn.invars[0].aval.shape[i] for i in contract]))
            total += times * 2 * k * int(np.prod(eqn.outvars[0].aval.shape))
        inner = times * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    total += _dot_flops(sub, inner)
    return total


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_train_flops_match_the_traced_gradient(name):
    family = FAMILIES[name]
    arrays = family.init(family_spec(name, X, H, Y, densities=DENSITIES), 0, PADDED_H)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(B, T, X)), jnp.float32)

    def loss(params):
        return jnp.sum(family.forward(params, arrays.masks, x, activation="tanh") ** 2)

    forward = _dot_flops(jax.make_jaxpr(loss)(arrays.params).jaxpr)
    train = _dot_flops(jax.make_jaxpr(jax.value_and_grad(loss))(arrays.params).jaxpr)
    assert forward == B * T * family.matmul_flops(X, PADDED_H, Y)
    assert train == B * T * train_matmul_flops(family, X, PADDED_H, Y)
    assert train < 3 * forward  # the input gets no gradient
