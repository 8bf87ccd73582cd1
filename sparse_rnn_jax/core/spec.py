"""Network specification of a varied-density block RNN (paper Sec. II, Eqn 5).

The weight space has six blocks, named row (output) then column (input):

    h_{t+1} = act(W_hx x_{t+1} + W_hh h_t + W_hy y_t + b_h)
    y_{t+1} =     W_yx x_{t+1} + W_yh h_t + W_yy y_t + b_y

Each block has its own *density* (fraction of trainable entries; the paper's f20 has density 0.20 and the
paper calls this number "sparsity"), its own Gaussian init mean and init std. Biases are dense.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

BLOCKS: tuple[str, ...] = ("hx", "hh", "hy", "yx", "yh", "yy")
TOP_ROW: tuple[str, ...] = ("hx", "hh", "hy")
ACTIVATIONS: tuple[str, ...] = ("relu", "tanh")
COMPUTE_DTYPES: tuple[str, ...] = ("float32", "bfloat16")
"""Operand dtypes of the products with the data (``models.precision``); float32 is the default."""


def check_compute_dtype(compute_dtype: str) -> str:
    """``compute_dtype`` if it is one of ``COMPUTE_DTYPES``; a ValueError naming them otherwise."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
    return compute_dtype


HYPERPARAMETER_FEATURES: tuple[str, ...] = (
    tuple(f"density_{b}" for b in BLOCKS)
    + tuple(f"init_mean_{b}" for b in BLOCKS)
    + tuple(f"init_std_{b}" for b in BLOCKS)
    + ("learning_rate",)
)
"""The paper's 19 hyperparameters of a sampled network; with ``hidden_proportion`` they are the parent
network's 20 features."""


def _check_number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_dim(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One block's density (fraction of trainable entries, in (0, 1]) and Gaussian init N(mean, std)."""

    density: float = 1.0
    init_mean: float = 0.0
    init_std: float = 0.05

    def validate(self, name: str) -> None:
        """Raises a ValueError naming the field when the density, mean or std is invalid."""
        d = _check_number(f"density_{name}", self.density)
        if not 0.0 < d <= 1.0:
            raise ValueError(f"density_{name} must be in (0, 1], got {d}")
        _check_number(f"init_mean_{name}", self.init_mean)
        s = _check_number(f"init_std_{name}", self.init_std)
        if s < 0:
            raise ValueError(f"init_std_{name} must be >= 0, got {s}")


GRAPH_KINDS: tuple[str, ...] = ("er", "ws", "ba")


@dataclasses.dataclass(frozen=True)
class GraphSpec:
    """The hh block's mask drawn as a random graph on the hidden units (``sparse_rnn_jax.models.graphs``) instead of
    uniformly: ``kind`` "er" (Erdos-Renyi), "ws" (Watts-Strogatz, rewiring probability ``beta``) or "ba"
    (Barabasi-Albert). The graph's size parameter follows the hh density; it is drawn from the model's seed."""

    kind: str
    beta: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises a ValueError naming the field when the kind or beta is invalid."""
        if self.kind not in GRAPH_KINDS:
            raise ValueError(f"hh_graph.kind must be one of {GRAPH_KINDS}, got {self.kind!r}")
        b = _check_number("hh_graph.beta", self.beta)
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"hh_graph.beta must be in [0, 1], got {b}")


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """A block RNN: dims, one BlockSpec per block, hidden activation.

    Attributes:
      input_dim: |x|.  hidden_dim: |h|.  output_dim: |y|.
      blocks: mapping block name (hx, hh, hy, yx, yh, yy) -> BlockSpec.
      activation: hidden nonlinearity, "relu" (reference) or "tanh".
      learning_rate: Adam step size used when this spec is trained (the 19th sweep hyperparameter).
      name: free label (the named configuration, e.g. "balanced").
      hh_graph: draw the hh mask as a random graph (``GraphSpec``), or None for the uniform mask.
    """

    input_dim: int
    hidden_dim: int
    output_dim: int
    blocks: Mapping[str, BlockSpec] = dataclasses.field(default_factory=lambda: {b: BlockSpec() for b in BLOCKS})
    activation: str = "relu"
    learning_rate: float = 1e-4
    name: str = "custom"
    hh_graph: GraphSpec | None = None

    def __post_init__(self) -> None:
        _check_dim("input_dim", self.input_dim)
        _check_dim("hidden_dim", self.hidden_dim)
        _check_dim("output_dim", self.output_dim)
        missing = [b for b in BLOCKS if b not in self.blocks]
        extra = [b for b in self.blocks if b not in BLOCKS]
        if missing or extra:
            raise ValueError(f"blocks must name exactly {BLOCKS}; missing {missing}, unknown {extra}")
        for b in BLOCKS:
            self.blocks[b].validate(b)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        lr = _check_number("learning_rate", self.learning_rate)
        if lr <= 0:
            raise ValueError(f"learning_rate must be > 0, got {lr}")
        if self.hh_graph is not None:
            if not isinstance(self.hh_graph, GraphSpec):
                raise ValueError(f"hh_graph must be a GraphSpec or None, got {self.hh_graph!r}")
            self.hh_graph.validate()
        # Freeze the mapping in canonical order so specs hash and compare by value.
        object.__setattr__(self, "blocks", _FrozenBlocks({b: self.blocks[b] for b in BLOCKS}))

    @property
    def family(self) -> str:
        """The engine's model family of every NetworkSpec (baseline cells are ``cells.CellSpec``)."""
        return "block"

    def block_shape(self, block: str) -> tuple[int, int]:
        """(rows, cols) of a block: rows = its output dim, cols = its input dim."""
        return block_shape(block, self.input_dim, self.hidden_dim, self.output_dim)

    def density(self, block: str) -> float:
        """The density of ``block``."""
        return float(self.blocks[block].density)

    def densities(self) -> dict[str, float]:
        """Every block's density, in ``BLOCKS`` order."""
        return {b: self.density(b) for b in BLOCKS}

    def replace(self, **changes) -> "NetworkSpec":
        """Copy with fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_blocks(self, **block_changes: Mapping[str, float]) -> "NetworkSpec":
        """Copy with some blocks' fields changed, e.g. ``spec.with_blocks(hx={"density": 0.08})``."""
        blocks = dict(self.blocks)
        for b, fields in block_changes.items():
            blocks[b] = dataclasses.replace(blocks[b], **fields)
        return dataclasses.replace(self, blocks=blocks)


class _FrozenBlocks(dict):
    """An immutable, hashable dict of BlockSpecs."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def _readonly(self, *args, **kwargs):
        raise TypeError("NetworkSpec.blocks is immutable; use NetworkSpec.with_blocks")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly  # type: ignore


def block_shape(block: str, input_dim: int, hidden_dim: int, output_dim: int) -> tuple[int, int]:
    """(rows, cols) of block ``block`` for the given dims."""
    dims = {"x": input_dim, "h": hidden_dim, "y": output_dim}
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r}; expected one of {BLOCKS}")
    return dims[block[0]], dims[block[1]]


def make_spec(
    input_dim: int,
    hidden_dim: int,
    output_dim: int,
    densities: Mapping[str, float] | float = 1.0,
    init_mean: Mapping[str, float] | float = 0.0,
    init_std: Mapping[str, float] | float = 0.05,
    **kwargs,
) -> NetworkSpec:
    """Builds a NetworkSpec from per-block (mapping) or shared (scalar) densities, means and stds."""

    def per_block(v, b):
        return v[b] if isinstance(v, Mapping) else v

    blocks = {b: BlockSpec(per_block(densities, b), per_block(init_mean, b), per_block(init_std, b)) for b in BLOCKS}
    return NetworkSpec(input_dim, hidden_dim, output_dim, blocks, **kwargs)
