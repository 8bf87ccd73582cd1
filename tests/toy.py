"""A small synthetic sequence-regression task for engine tests (fast on CPU)."""

from __future__ import annotations

import numpy as np

from sparse_rnn_jax.core.cell_spec import CELLS, CellSpec
from sparse_rnn_jax.core.leaky_spec import LeakySpec
from sparse_rnn_jax.core.samplers import sample_specs
from sparse_rnn_jax.core.spec import make_spec
from sparse_rnn_jax.engine.population import Member, model_seed
from sparse_rnn_jax.engine.task import regression_task
from sparse_rnn_jax.models.registry import get_family, named_specs

X, Y, T = 6, 3, 7


def toy_data(n: int = 96, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, T, X)).astype(np.float32)
    actions = np.tanh(0.8 * obs[..., :Y] + 0.4 * np.roll(obs, 1, axis=1)[..., Y : 2 * Y]).astype(np.float32)
    mask = np.ones((n, T), bool)
    mask[: n // 4, T - 2 :] = False  # some shorter episodes
    return {"x": obs, "targets": actions, "step_mask": mask}


TOY_TASK = regression_task("toy", X, Y)


def toy_task():
    return TOY_TASK


def toy_members(n: int = 6, seed: int = 0, lr: float = 3e-3, max_hidden: int = 40) -> list[Member]:
    specs = sample_specs("uniform", n, seed, X, Y).specs
    out = []
    for i, s in enumerate(specs):
        s = s.replace(hidden_dim=1 + s.hidden_dim % max_hidden, learning_rate=lr)
        out.append(Member(i, s, model_seed(seed, i), "uniform"))
    return out


def family_spec(family: str, input_dim: int, hidden_dim: int, output_dim: int, **block_kwargs):
    """A spec of any registered family: the block RNN from ``make_spec(..., **block_kwargs)``, a leaky one
    (alpha 0.3) on that block RNN, a baseline cell of the same dims, or any other family's first named
    configuration at ``hidden_dim`` (``Family.named_spec``)."""
    if family.startswith("leaky_") or family == "block":
        base = make_spec(input_dim, hidden_dim, output_dim, **block_kwargs)
        return base if family == "block" else LeakySpec(base, family.removeprefix("leaky_"), 0.3)
    if family in CELLS:
        return CellSpec(family, input_dim, hidden_dim, output_dim)
    fam = get_family(family)
    return named_specs(fam.config_names[:1], input_dim, output_dim, hidden_dim=hidden_dim)[0]
