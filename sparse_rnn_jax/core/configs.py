"""Named configurations of the paper (Sec. IV): dense, uniform, eqn7, eqn8, balanced; and the baseline cells.

Densities per block (the paper's f20 = 0.20, f100 = 1.0):

    eqn7 (best on Adroit Hammer, worst on RAD):  hx 1.0  hh 0.2  hy 0.2 / yx 1.0  yh 1.0  yy 0.2
    eqn8 (its inverse, best tuned config on RAD): hx 0.2  hh 1.0  hy 1.0 / yx 0.2  yh 0.2  yy 1.0
    balanced: the a-priori rule of Eqn 13 (``solvers.balanced_densities``)

Each is built with a given hidden size or one solved from a trainable-weight budget.
"""

from __future__ import annotations

from typing import Sequence

from sparse_rnn_jax.core.cell_spec import CELLS, CellSpec, cell_spec
from sparse_rnn_jax.core.solvers import balanced_densities, hidden_dim_for_budget
from sparse_rnn_jax.core.spec import BLOCKS, NetworkSpec, make_spec

NAMED_CONFIGS: tuple[str, ...] = ("dense", "uniform", "eqn7", "eqn8", "balanced")
EQN7 = {"hx": 1.0, "hh": 0.2, "hy": 0.2, "yx": 1.0, "yh": 1.0, "yy": 0.2}
EQN8 = {"hx": 0.2, "hh": 1.0, "hy": 1.0, "yx": 0.2, "yh": 0.2, "yy": 1.0}
DEFAULT_UNIFORM_DENSITY = 0.2


def config_densities(
    config: str,
    input_dim: int,
    output_dim: int,
    budget: float | None = None,
    density: float = DEFAULT_UNIFORM_DENSITY,
    balance_target: float = 0.5,
) -> dict[str, float]:
    """Per-block densities of a named configuration (``balanced`` needs the budget)."""
    if config == "dense":
        return {b: 1.0 for b in BLOCKS}
    if config == "uniform":
        return {b: float(density) for b in BLOCKS}
    if config == "eqn7":
        return dict(EQN7)
    if config == "eqn8":
        return dict(EQN8)
    if config == "balanced":
        if budget is None:
            raise ValueError("config 'balanced' needs a budget (it is defined by the budget, not a hidden size)")
        return balanced_densities(input_dim, output_dim, budget, target=balance_target)
    raise ValueError(f"unknown config {config!r}; expected one of {NAMED_CONFIGS}")


def named_spec(
    config: str,
    input_dim: int,
    output_dim: int,
    *,
    hidden_dim: int | None = None,
    budget: float | None = None,
    density: float = DEFAULT_UNIFORM_DENSITY,
    balance_target: float = 0.5,
    init_mean: float = 0.0,
    init_std: float = 0.05,
    **spec_kwargs,
) -> NetworkSpec:
    """A named configuration with ``hidden_dim`` given, or solved from ``budget`` (exactly one of them)."""
    if (hidden_dim is None) == (budget is None):
        raise ValueError("give exactly one of hidden_dim and budget")
    densities = config_densities(config, input_dim, output_dim, budget, density, balance_target)
    if hidden_dim is None:
        hidden_dim = hidden_dim_for_budget(densities, input_dim, output_dim, budget)
    spec_kwargs.setdefault("name", config)
    return make_spec(input_dim, hidden_dim, output_dim, densities, init_mean, init_std, **spec_kwargs)


def named_specs(
    configs: Sequence[str],
    input_dim: int,
    output_dim: int,
    *,
    budget: float | None = None,
    hidden_dim: int | None = None,
    learning_rate: float = 1e-4,
    uniform_density: float = 0.2,
    activation: str = "relu",
) -> list[NetworkSpec | CellSpec]:
    """One spec per named configuration (init N(0, 0.05), the reference's) or baseline cell
    (``CELLS``: a ``CellSpec`` at the same budget or hidden size)."""
    out = []
    for c in configs:
        if c in CELLS:
            out.append(
                cell_spec(
                    c,
                    input_dim,
                    output_dim,
                    budget=budget,
                    hidden_dim=hidden_dim if budget is None else None,
                    learning_rate=learning_rate,
                )
            )
            continue
        if c not in NAMED_CONFIGS:
            raise ValueError(f"unknown config {c!r}; expected one of {NAMED_CONFIGS + CELLS}")
        out.append(
            named_spec(
                c,
                input_dim,
                output_dim,
                budget=budget,
                hidden_dim=hidden_dim if budget is None else None,
                density=uniform_density,
                learning_rate=learning_rate,
                activation=activation,
            )
        )
    return out
