"""Hyperparameter samplers of the paper's sweeps (MISSION.md section 6, from the reference scripts).

Each sampled network has 19 hyperparameters (6 block densities, 6 init means, 6 init stds, learning
rate) plus its hidden size:

  normal       lr ~ N(1e-3, 4e-4) clipped >= 1e-6;  h ~ N(hidden_mean, hidden_std) clipped >= 10
               (900, 400 for Adroit Hammer; the reference's RAD variant used 500, 200);
               density ~ |N(0.5, 0.25)| clipped to [0.02, 1];  mean ~ N(0, 0.0025);
               std ~ N(0.05, 0.015) clipped >= 1e-4
  normal_size  as ``normal``, but h solved from a trainable-weight budget (Table IV: 50,000)
  uniform      lr ~ U(1e-5, 1e-3);  h ~ U(1, 1000);  density ~ U(0, 1];  mean ~ U(-0.005, 0.005);
               std ~ U(1e-6, 0.1)

As in the reference, values are rounded: lr to 5 decimals, densities to 2, means and stds to 3.
A density that rounds to 0 becomes 0.01 (the smallest on the grid: a block keeps at least one weight);
an lr that rounds to 0 becomes 1e-5; a std that rounds to 0 stays 0 (the block starts at its mean).
``normal_size`` draws whose budget cannot be met even at h = 1 are redrawn (counted in ``SampleResult``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.core.solvers import BudgetError, hidden_dim_for_budget
from sparse_rnn_jax.core.spec import BLOCKS, BlockSpec, NetworkSpec

SAMPLERS: tuple[str, ...] = ("normal", "normal_size", "uniform")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Distribution parameters (defaults: the reference scripts')."""

    hidden_mean: float = 900.0
    hidden_std: float = 400.0
    hidden_min: int = 10
    uniform_hidden_max: int = 1000
    activation: str = "relu"


@dataclasses.dataclass(frozen=True)
class SampleResult:
    """Drawn specs and how many draws were rejected because the budget could not be met."""

    specs: list[NetworkSpec]
    redraws: int  # normal_size draws rejected because the budget could not be met


def _draw_blocks(
    rng: np.random.Generator, sampler: str
) -> tuple[dict[str, float], dict[str, float], dict[str, float], float]:
    if sampler in ("normal", "normal_size"):
        lr = max(float(rng.normal(1e-3, 4e-4)), 1e-6)
        dens = np.clip(np.abs(rng.normal(0.5, 0.25, 6)), 0.02, 1.0)
        means = rng.normal(0.0, 0.0025, 6)
        stds = np.maximum(rng.normal(0.05, 0.015, 6), 1e-4)
    elif sampler == "uniform":
        lr = float(rng.uniform(1e-5, 1e-3))
        dens = 1.0 - rng.uniform(0.0, 1.0, 6)  # U(0, 1]
        means = rng.uniform(-0.005, 0.005, 6)
        stds = rng.uniform(1e-6, 0.1, 6)
    else:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    lr = round(lr, 5) or 1e-5
    d = {b: min(1.0, max(0.01, round(float(v), 2))) for b, v in zip(BLOCKS, dens)}
    m = {b: round(float(v), 3) + 0.0 for b, v in zip(BLOCKS, means)}  # + 0.0 turns -0.0 into 0.0
    s = {b: round(float(v), 3) for b, v in zip(BLOCKS, stds)}
    return d, m, s, lr


def sample_specs(
    sampler: str,
    num: int,
    seed: int,
    input_dim: int,
    output_dim: int,
    budget: float | None = None,
    config: SamplerConfig = SamplerConfig(),
) -> SampleResult:
    """Draws ``num`` NetworkSpecs (named ``sampler``) deterministically from ``seed``."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    if num < 0:
        raise ValueError(f"number of models must be >= 0, got {num}")
    if sampler == "normal_size" and budget is None:
        raise ValueError("sampler 'normal_size' needs a budget")
    rng = core_rng(seed, 0x5A3D)
    specs: list[NetworkSpec] = []
    redraws = 0
    while len(specs) < num:
        d, m, s, lr = _draw_blocks(rng, sampler)
        if sampler == "normal":
            h = max(config.hidden_min, int(round(rng.normal(config.hidden_mean, config.hidden_std))))
        elif sampler == "uniform":
            h = int(rng.integers(1, config.uniform_hidden_max + 1))
        else:
            try:
                h = hidden_dim_for_budget(d, input_dim, output_dim, budget)
            except BudgetError:
                redraws += 1
                if redraws > 100 * max(num, 1):
                    raise ValueError(
                        f"budget {budget:,.0f} is too small for input_dim={input_dim}, output_dim={output_dim}: "
                        "almost no sampled densities can meet it"
                    ) from None
                continue
        blocks = {b: BlockSpec(d[b], m[b], s[b]) for b in BLOCKS}
        specs.append(
            NetworkSpec(input_dim, h, output_dim, blocks, activation=config.activation, learning_rate=lr, name=sampler)
        )
    return SampleResult(specs, redraws)
