"""Weight-space accounting (paper Eqn 10-12): trainable weights, model density, hidden proportion.

*Expected* counts are rows x cols x density (Eqn 10); *exact* counts come from realised boolean masks.
Biases are always dense and trainable and are reported separately, never inside ``trainable_params``.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from sparse_rnn_jax.core.spec import BLOCKS, TOP_ROW, NetworkSpec

BUCKET_EDGES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
"""Edges of the paper's Table III/IV cells of the hidden proportion and the model density."""
BUCKET_LABELS: tuple[str, ...] = ("< .2", ".2–.4", ".4–.6", ".6–.8", "≥ .8")


def bucket_index(values) -> np.ndarray:
    """The Table III/IV cell (0..4, ``BUCKET_LABELS``) of each value in [0, 1]."""
    return np.digitize(np.asarray(values, dtype=float), BUCKET_EDGES)


@dataclasses.dataclass(frozen=True)
class BlockCount:
    """One block's rows, columns, density and trainable weights (expected or exact)."""

    rows: int
    cols: int
    density: float
    trainable: float  # expected (may be fractional) or exact (integer-valued)

    @property
    def entries(self) -> int:
        """All weight-space entries of the block (rows x cols)."""
        return self.rows * self.cols


@dataclasses.dataclass(frozen=True)
class Accounting:
    """Trainable-weight accounting of one network.

    Attributes:
      blocks: per block rows, cols, density and trainable weights.
      trainable_params: sum of trainable block weights (Eqn 11), biases excluded.
      weight_entries: all weight-space entries (sum of rows x cols).
      bias_params: |h| + |y| (always dense, always trainable).
      model_density: trainable_params / weight_entries.
      hidden_proportion: trainable(hh) / (trainable(hx) + trainable(hh) + trainable(hy)) (Eqn 12).
    """

    blocks: Mapping[str, BlockCount]
    trainable_params: float
    weight_entries: int
    bias_params: int
    model_density: float
    hidden_proportion: float

    def as_dict(self) -> dict:
        """JSON-able accounting."""
        return {
            "trainable_params": self.trainable_params,
            "weight_entries": self.weight_entries,
            "bias_params": self.bias_params,
            "model_density": self.model_density,
            "hidden_proportion": self.hidden_proportion,
            "blocks": {b: dataclasses.asdict(c) for b, c in self.blocks.items()},
        }


def _summarise(spec: NetworkSpec, trainable: Mapping[str, float]) -> Accounting:
    blocks = {}
    for b in BLOCKS:
        rows, cols = spec.block_shape(b)
        blocks[b] = BlockCount(rows, cols, spec.density(b), float(trainable[b]))
    total = sum(c.trainable for c in blocks.values())
    entries = sum(c.entries for c in blocks.values())
    top = sum(blocks[b].trainable for b in TOP_ROW)
    return Accounting(
        blocks=blocks,
        trainable_params=total,
        weight_entries=entries,
        bias_params=spec.hidden_dim + spec.output_dim,
        model_density=total / entries,
        hidden_proportion=blocks["hh"].trainable / top if top > 0 else 0.0,
    )


def expected_accounting(spec: NetworkSpec) -> Accounting:
    """Accounting from dims x density (Eqn 10-12); counts may be fractional."""
    trainable = {}
    for b in BLOCKS:
        rows, cols = spec.block_shape(b)
        trainable[b] = rows * cols * spec.density(b)
    return _summarise(spec, trainable)


def exact_accounting(spec: NetworkSpec, masks: Mapping[str, np.ndarray]) -> Accounting:
    """Accounting counted from realised masks ``masks[block]: bool[rows, cols]`` (padding allowed:
    only entries inside the spec's true shape are counted)."""
    trainable = {}
    for b in BLOCKS:
        rows, cols = spec.block_shape(b)
        m = np.asarray(masks[b])
        if m.shape[0] < rows or m.shape[1] < cols:
            raise ValueError(f"mask {b} has shape {m.shape}, smaller than the block {rows}x{cols}")
        trainable[b] = int(np.count_nonzero(m[:rows, :cols]))
        if np.count_nonzero(m) != trainable[b]:
            raise ValueError(f"mask {b} has trainable entries outside the block's {rows}x{cols} region")
    return _summarise(spec, trainable)


def hidden_proportion(spec: NetworkSpec) -> float:
    """Expected hidden proportion (Eqn 12)."""
    return expected_accounting(spec).hidden_proportion


def describe_dict(spec: NetworkSpec) -> dict:
    """The JSON form of a spec's expected accounting (``experiments.describe --json``)."""
    acc = expected_accounting(spec)
    return {
        "config": spec.name,
        "input_dim": spec.input_dim,
        "hidden_dim": spec.hidden_dim,
        "output_dim": spec.output_dim,
        "trainable_params": acc.trainable_params,
        "bias_params": acc.bias_params,
        "weight_entries": acc.weight_entries,
        "model_density": acc.model_density,
        "hidden_proportion": acc.hidden_proportion,
        "blocks": {
            b: {"rows": c.rows, "cols": c.cols, "density": c.density, "trainable": c.trainable}
            for b, c in acc.blocks.items()
        },
    }


JSON_DIGITS = 6
"""Decimals of the floats in a network's JSON description (``rounded``): counts such as 0.16 x 147,980 = 23,676.8
come out without float noise."""


def rounded(obj, digits: int = JSON_DIGITS):
    """``obj`` (dicts, lists, numbers) with every float rounded to ``digits`` decimals and integral floats kept."""
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, float):
        return round(obj, digits)
    return obj
