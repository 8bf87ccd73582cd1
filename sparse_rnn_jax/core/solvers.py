"""Solvers: the hidden size that meets a trainable-weight budget, and the a-priori balancer (Eqn 13).

Trainable weights (biases excluded) as a function of the hidden size h, for densities s_b:

    P(h) = s_hh h^2 + (s_hx |x| + s_hy |y| + s_yh |y|) h + (s_yx |x||y| + s_yy |y|^2)

The balancer picks densities from |x|, |y| and the budget alone so that the hidden proportion
(Eqn 12) hits a target (0.5 by default), keeping every block dense except the one that dominates the
top row (see BUILD_NOTES.md, "The a-priori balancer").
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping

from sparse_rnn_jax.core.spec import BLOCKS, BlockSpec, NetworkSpec

DENSITY_ROUNDING = ("below", "up", "down", "nearest", "none")


class BudgetError(ValueError):
    """The budget cannot be met for the given dims and densities."""


def _fixed_and_linear(densities: Mapping[str, float], input_dim: int, output_dim: int) -> tuple[float, float, float]:
    x, y = input_dim, output_dim
    quad = densities["hh"]
    lin = densities["hx"] * x + densities["hy"] * y + densities["yh"] * y
    const = densities["yx"] * x * y + densities["yy"] * y * y
    return quad, lin, const


def trainable_at(h: float, densities: Mapping[str, float], input_dim: int, output_dim: int) -> float:
    """Expected trainable weights P(h) for hidden size h (may be fractional)."""
    quad, lin, const = _fixed_and_linear(densities, input_dim, output_dim)
    return quad * h * h + lin * h + const


def hidden_dim_for_budget(densities: Mapping[str, float], input_dim: int, output_dim: int, budget: float) -> int:
    """The integer hidden size whose expected trainable-weight count is closest to ``budget``.

    Solves the quadratic P(h) = budget for its positive root and returns whichever neighbouring
    integer (>= 1) lands nearest. Raises BudgetError when even h = 1 exceeds the budget.
    """
    if not budget > 0 or math.isinf(budget):
        raise BudgetError(f"budget must be a positive number, got {budget}")
    quad, lin, const = _fixed_and_linear(densities, input_dim, output_dim)
    if not (quad > 0 or lin > 0):
        raise BudgetError("no trainable weight grows with the hidden size: hx, hh, hy and yh all have density 0")
    if trainable_at(1, densities, input_dim, output_dim) > budget * 1.01:
        raise BudgetError(
            f"budget {budget:,.0f} is too small for input_dim={input_dim}, output_dim={output_dim} at these "
            "densities: a network with hidden_dim=1 already has "
            f"{trainable_at(1, densities, input_dim, output_dim):,.0f} "
            "trainable weights"
        )
    c = const - budget
    if quad > 0:
        root = (-lin + math.sqrt(lin * lin - 4 * quad * c)) / (2 * quad)
    else:
        root = -c / lin
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(sorted(candidates), key=lambda h: abs(trainable_at(h, densities, input_dim, output_dim) - budget))


def _round_density(d: float, decimals: int, mode: str) -> float:
    if mode == "none":
        return min(1.0, d)
    step = 10.0**-decimals
    if mode == "up":
        r = math.ceil(d / step - 1e-9) * step
    elif mode == "down":
        r = math.floor(d / step + 1e-9) * step
    elif mode == "nearest":
        r = round(d / step) * step
    else:
        raise ValueError(f"density_rounding must be one of {DENSITY_ROUNDING}, got {mode!r}")
    return round(min(1.0, max(step, r)), decimals)


def balanced_densities(
    input_dim: int,
    output_dim: int,
    budget: float,
    target: float = 0.5,
    density_decimals: int = 2,
    density_rounding: str = "below",
) -> dict[str, float]:
    """Densities of the a-priori balanced network (Eqn 13 generalised).

    Rule: start from the dense network at the budget. If its hidden proportion is above the target,
    hh dominates the top row and only hh is sparsified; otherwise the larger of hx/hy is sparsified
    (both, at one shared density, when sparsifying one alone cannot reach the target). The density is
    solved jointly with h so that the hidden proportion equals ``target`` and the budget is met, then
    rounded to ``density_decimals`` (the reference works on a 0.01 grid). The default ``"below"`` rounds to
    the side that keeps the hidden proportion at or just below the target: up for a sparsified hx/hy, down
    for a sparsified hh. On RAD at 100k this reproduces the paper's Eqn 13 exactly (hx f08, h = 185, 0.47).
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target hidden proportion must be in (0, 1), got {target}")
    if density_rounding not in DENSITY_ROUNDING:
        raise ValueError(f"density_rounding must be one of {DENSITY_ROUNDING}, got {density_rounding!r}")
    x, y, b = float(input_dim), float(output_dim), float(budget)
    dense = {blk: 1.0 for blk in BLOCKS}
    h0 = hidden_dim_for_budget(dense, input_dim, output_dim, budget)
    r = target / (1.0 - target)  # hh : (hx + hy) trainable ratio at the target
    const = x * y + y * y  # yx and yy stay dense
    densities = dict(dense)
    if h0 / (x + h0 + y) > target:
        # hh dominates: s_hh h^2 = r (x + y) h;  budget: (1 + r)(x + y) h + y h + const = b.
        h = (b - const) / ((1.0 + r) * (x + y) + y)
        densities["hh"] = r * (x + y) / h
    else:
        big, small = ("hx", "hy") if x >= y else ("hy", "hx")
        big_dim, small_dim = (x, y) if x >= y else (y, x)
        # One block: s_big big_dim h = h^2 / r - small_dim h;  budget: (1 + 1/r) h^2 + y h + const - b = 0.
        a = 1.0 + 1.0 / r
        h = (-y + math.sqrt(y * y - 4 * a * (const - b))) / (2 * a)
        s = (h / r - small_dim) / big_dim
        if s * big_dim * h >= 1.0:
            densities[big] = s
        else:
            # Both input blocks share one density s: s (x + y) h = h^2 / r (same h as above).
            s = h / (r * (x + y))
            densities[big] = densities[small] = s
    raw = dict(densities)
    for blk in BLOCKS:
        if densities[blk] < 1.0:
            mode = density_rounding
            if mode == "below":
                mode = "down" if blk == "hh" else "up"
            densities[blk] = _round_density(densities[blk], density_decimals, mode)
    if density_rounding != "none":
        _warn_if_off_target(raw, densities, input_dim, output_dim, budget, target, density_decimals)
    return densities


BALANCE_TOLERANCE = 0.05
"""The balancer warns when rounding its densities to the grid moves the hidden proportion further than this from
its target (BUILD_NOTES.md, "The a-priori balancer")."""


def _warn_if_off_target(raw, densities, input_dim, output_dim, budget, target, decimals) -> None:
    try:
        h = hidden_dim_for_budget(densities, input_dim, output_dim, budget)
    except BudgetError:
        return
    top = densities["hx"] * input_dim + densities["hh"] * h + densities["hy"] * output_dim
    proportion = densities["hh"] * h / top
    if abs(proportion - target) > BALANCE_TOLERANCE:
        moved = ", ".join(f"{b} {raw[b]:.3g} -> {densities[b]:g}" for b in BLOCKS if raw[b] != densities[b])
        warnings.warn(
            f"balanced densities for |x|={input_dim}, |y|={output_dim}, budget {budget:g}: rounding to the "
            f"{10.0**-decimals:g} grid ({moved}) gives hidden proportion {proportion:.3f}, not {target:g}; "
            "density_rounding='none' keeps the target",
            stacklevel=3,
        )


def balanced_spec(
    input_dim: int,
    output_dim: int,
    budget: float,
    target: float = 0.5,
    init_mean: float = 0.0,
    init_std: float = 0.05,
    density_decimals: int = 2,
    density_rounding: str = "below",
    **spec_kwargs,
) -> NetworkSpec:
    """The a-priori balanced NetworkSpec: balanced densities, h re-solved from the budget after rounding."""
    densities = balanced_densities(input_dim, output_dim, budget, target, density_decimals, density_rounding)
    h = hidden_dim_for_budget(densities, input_dim, output_dim, budget)
    blocks = {blk: BlockSpec(densities[blk], init_mean, init_std) for blk in BLOCKS}
    spec_kwargs.setdefault("name", "balanced")
    return NetworkSpec(input_dim, h, output_dim, blocks, **spec_kwargs)
