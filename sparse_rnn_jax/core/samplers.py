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
  uniform_size as ``uniform``, but h solved from the budget (the reference RAD runner's second branch);
               its densities reach far below normal_size's floor of 0.02, which is what makes hidden
               proportions >= 0.8 reachable at 50,000 weights

As in the reference, values are rounded: lr to 5 decimals, densities to 2, means and stds to 3.
A density that rounds to 0 becomes 0.01 (the smallest on the grid: a block keeps at least one weight);
an lr that rounds to 0 becomes 1e-5; a std that rounds to 0 stays 0 (the block starts at its mean).
``normal_size`` draws whose budget cannot be met even at h = 1 are redrawn (counted in ``SampleResult``).
``uniform_size`` follows the reference runner, which skips every draw that fails: a draw with a density that
rounds to 0 or a budget that cannot be met is redrawn (counted).

**Mixtures** (``parse_sampler``): ``"normal_size:0.5,uniform_size:0.5"`` draws round(weight x num) models from
each sampler (largest remainders), in the order given, each from its own stream; the models keep their
sampler's name. A single sampler name is the pure sampler (its stream unchanged).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.core.solvers import BudgetError, hidden_dim_for_budget
from sparse_rnn_jax.core.spec import BLOCKS, BlockSpec, NetworkSpec

SAMPLERS: tuple[str, ...] = ("normal", "normal_size", "uniform", "uniform_size")
SIZED_SAMPLERS: tuple[str, ...] = ("normal_size", "uniform_size")
"""Samplers that solve the hidden size from a budget."""


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
    elif sampler in ("uniform", "uniform_size"):
        lr = float(rng.uniform(1e-5, 1e-3))
        dens = 1.0 - rng.uniform(0.0, 1.0, 6)  # U(0, 1]
        means = rng.uniform(-0.005, 0.005, 6)
        stds = rng.uniform(1e-6, 0.1, 6)
    else:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    lr = round(lr, 5) or 1e-5
    if sampler == "uniform_size" and any(round(float(v), 2) == 0 for v in dens):
        return None  # the reference skips a draw with a zero density
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
    stream: int = 0,
) -> SampleResult:
    """Draws ``num`` NetworkSpecs deterministically from ``seed`` with a sampler or a mixture (``parse_sampler``);
    each spec is named after its sampler. ``stream`` selects an independent stream of the same seed."""
    components = parse_sampler(sampler)
    if num < 0:
        raise ValueError(f"number of models must be >= 0, got {num}")
    if any(name in SIZED_SAMPLERS for name, _ in components) and budget is None:
        raise ValueError(f"sampler {sampler!r} needs a budget")
    if len(components) > 1:
        specs, redraws = [], 0
        for i, ((name, _), count) in enumerate(zip(components, mixture_counts(components, num))):
            part = sample_specs(name, count, seed, input_dim, output_dim, budget, config, stream=i + 1)
            specs += part.specs
            redraws += part.redraws
        return SampleResult(specs, redraws)
    sampler = components[0][0]
    rng = core_rng(seed, 0x5A3D) if stream == 0 else core_rng(seed, 0x5A3D, stream)
    specs: list[NetworkSpec] = []
    redraws = 0
    while len(specs) < num:
        drawn = _draw_blocks(rng, sampler)
        h = None
        if drawn is not None:
            d, m, s, lr = drawn
            if sampler == "normal":
                h = max(config.hidden_min, int(round(rng.normal(config.hidden_mean, config.hidden_std))))
            elif sampler == "uniform":
                h = int(rng.integers(1, config.uniform_hidden_max + 1))
            else:
                try:
                    h = hidden_dim_for_budget(d, input_dim, output_dim, budget)
                except BudgetError:
                    h = None
        if h is None:
            redraws += 1
            if redraws > 100 * max(num, 1):
                raise ValueError(
                    f"budget {budget:,.0f} is too small for input_dim={input_dim}, output_dim={output_dim}: "
                    "almost no sampled densities can meet it"
                )
            continue
        blocks = {b: BlockSpec(d[b], m[b], s[b]) for b in BLOCKS}
        specs.append(
            NetworkSpec(input_dim, h, output_dim, blocks, activation=config.activation, learning_rate=lr, name=sampler)
        )
    return SampleResult(specs, redraws)


def parse_sampler(text: str) -> tuple[tuple[str, float], ...]:
    """``"normal_size"`` -> (("normal_size", 1.0),); ``"normal_size:0.5,uniform_size:0.5"`` -> the components with
    their weights (positive; normalised to sum 1). A ValueError names a bad part."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"sampler must be one of {SAMPLERS} or a mixture name:weight,..., got {text!r}")
    parts = []
    for item in text.split(","):
        name, _, weight = item.strip().partition(":")
        if name not in SAMPLERS:
            raise ValueError(f"sampler: unknown sampler {name!r} in {text!r}; expected any of {SAMPLERS}")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"sampler: weight {weight!r} of {name} is not a number") from None
        if not (w > 0 and np.isfinite(w)):
            raise ValueError(f"sampler: weight of {name} must be > 0, got {weight}")
        parts.append((name, w))
    if len({n for n, _ in parts}) != len(parts):
        raise ValueError(f"sampler: a sampler appears twice in {text!r}")
    total = sum(w for _, w in parts)
    return tuple((n, w / total) for n, w in parts)


def mixture_counts(components, num: int) -> list[int]:
    """Models per component of a mixture: round(weight x num) with the largest remainders, summing to num."""
    raw = np.asarray([w for _, w in components], np.float64) * num
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: num - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]
