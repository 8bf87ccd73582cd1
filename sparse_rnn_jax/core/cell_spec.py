"""Baseline recurrent cells at matched budgets, as specs: which cell, its dims and learning rate, and its
trainable counts (numpy only; their arrays and equations live in ``sparse_rnn_jax.models.cells``).

Accounting: trainable *weights* (W_i, W_h, W_yh; biases excluded) are what a budget counts, as for the block
RNNs; ``cell_counts`` also reports the biases and their total. The hidden proportion of a cell is
weights(W_h) / (weights(W_i) + weights(W_h)): the share of the weights computing h' that receive h.
"""

from __future__ import annotations

import dataclasses
import math

CELLS: tuple[str, ...] = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES: dict[str, int] = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A baseline cell: which cell, its dims and learning rate (``name`` labels it in results)."""

    cell: str
    input_dim: int
    hidden_dim: int
    output_dim: int
    learning_rate: float = 1e-4
    name: str = ""

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        for f in ("input_dim", "hidden_dim", "output_dim"):
            v = getattr(self, f)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{f} must be an integer >= 1, got {v!r}")
        if not (
            isinstance(self.learning_rate, (int, float))
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not self.name:
            object.__setattr__(self, "name", self.cell)

    @property
    def family(self) -> str:
        """The engine's family name: the cell's name."""
        return self.cell

    @property
    def activation(self) -> str:
        """relu for rnn_relu, tanh otherwise."""
        return {"rnn_relu": "relu"}.get(self.cell, "tanh")

    def replace(self, **changes) -> "CellSpec":
        """Copy with fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class CellCounts:
    """Trainable counts of a cell network, exactly as trained."""

    input_weights: int  # W_i
    hidden_weights: int  # W_h
    readout_weights: int  # W_yh
    biases: int  # b, b_y (and b_hn)

    @property
    def weights(self) -> int:
        """Trainable weights (W_i, W_h, W_yh)."""
        return self.input_weights + self.hidden_weights + self.readout_weights

    @property
    def total(self) -> int:
        """Weights and biases."""
        return self.weights + self.biases

    @property
    def hidden_proportion(self) -> float:
        """weights(W_h) / (weights(W_i) + weights(W_h))."""
        return self.hidden_weights / (self.input_weights + self.hidden_weights)


def cell_counts(cell: str, input_dim: int, hidden_dim: int, output_dim: int) -> CellCounts:
    """Trainable counts of ``cell`` at the given dims, exactly as trained."""
    g, x, h, y = GATES[cell], input_dim, hidden_dim, output_dim
    biases = g * h + y + (h if cell == "gru" else 0)
    return CellCounts(g * h * x, g * h * h, y * h, biases)


def cell_hidden_for_budget(cell: str, input_dim: int, output_dim: int, budget: float) -> int:
    """The hidden size whose trainable weights (biases excluded) are closest to ``budget``."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    g, x, y = GATES[cell], input_dim, output_dim
    weights = lambda h: cell_counts(cell, x, h, y).weights  # noqa: E731
    if weights(1) > budget * 1.01:
        raise ValueError(
            f"budget {budget:,.0f} is too small for a {cell} on input_dim={x}, output_dim={y}: "
            f"hidden_dim=1 already has {weights(1):,} trainable weights"
        )
    root = (-(g * x + y) + math.sqrt((g * x + y) ** 2 + 4 * g * budget)) / (2 * g)
    return min({max(1, math.floor(root)), max(1, math.ceil(root))}, key=lambda h: abs(weights(h) - budget))


def cell_spec(
    cell: str,
    input_dim: int,
    output_dim: int,
    *,
    hidden_dim: int | None = None,
    budget: float | None = None,
    learning_rate: float = 1e-4,
) -> CellSpec:
    """A cell sized by ``hidden_dim`` or by a trainable-weight ``budget`` (exactly one)."""
    if (hidden_dim is None) == (budget is None):
        raise ValueError("give exactly one of hidden_dim and budget")
    if hidden_dim is None:
        hidden_dim = cell_hidden_for_budget(cell, input_dim, output_dim, budget)
    return CellSpec(cell, input_dim, hidden_dim, output_dim, learning_rate)
