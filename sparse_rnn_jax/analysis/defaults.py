"""Defaults of the analysis that the entry points show in ``--help`` (no heavy imports, so ``--help`` stays fast)."""

from __future__ import annotations

PAPER_TREES = 1000
"""Random forest trees of the parent network (the paper's 1,000)."""
PAPER_MAX_DEPTH = 10
"""Random forest max depth (the paper's 10)."""
DEFAULT_FOLDS = 5
"""Cross-validation folds of the parent network."""
DEFAULT_BALANCE_TARGETS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6)
"""Target hidden proportions of the balanced candidates ``recommend`` ranks."""
DEFAULT_LEARNING_RATES: tuple[float, ...] = (1e-4, 1e-3)
"""Learning rates of the named and balanced candidates."""
RANKERS: tuple[str, ...] = ("forest", "mlp", "mean")
"""Which prediction ranks the candidates: the forest, the MLP or their mean."""
