"""Leaky-integrator and gated block RNNs as specs: the block RNN ``base``, the leak mode and alpha, and their
trainable counts (numpy only; equations and arrays in ``sparse_rnn_jax.models.leaky``).

Accounting (``LeakySpec.result_columns``): the gate's weights W_ax and W_ah count toward ``trainable_params``
(expected: d_hx H X + d_hh H H more than the block RNN's), toward the weight-space entries of the model density
(H X + H H more), and toward the hidden proportion, whose numerator gains W_ah and denominator W_ax + W_ah.
``fixed`` and ``learned`` add no weights, so their counts equal the block RNN's.
"""

from __future__ import annotations

import dataclasses
import math

from sparse_rnn_jax.core.accounting import expected_accounting
from sparse_rnn_jax.core.spec import NetworkSpec

LEAK_MODES: tuple[str, ...] = ("fixed", "learned", "gated")
GATE_WEIGHTS: tuple[str, ...] = ("W_ax", "W_ah")
"""The gated mode's weight arrays (mask key = param key)."""


@dataclasses.dataclass(frozen=True)
class LeakySpec:
    """A leaky or gated block RNN: the block RNN ``base``, the leak ``mode`` and ``alpha``.

    alpha: the fixed α (``fixed``, in (0, 1]) or the initial α0 (``learned``: sigmoid(a) starts at α0 in
    every unit; ``gated``: sigmoid(b_a) starts at α0), in (0, 1) for those two.
    The dims, activation, learning rate and name are the base's.
    """

    base: NetworkSpec
    mode: str
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.base, NetworkSpec):
            raise ValueError(f"base must be a NetworkSpec, got {type(self.base).__name__}")
        if self.mode not in LEAK_MODES:
            raise ValueError(f"leak mode must be one of {LEAK_MODES}, got {self.mode!r}")
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a):
            raise ValueError(f"leak alpha must be a finite number, got {a!r}")
        if self.mode == "fixed" and not 0.0 < a <= 1.0:
            raise ValueError(f"leak alpha of mode 'fixed' must be in (0, 1], got {a}")
        if self.mode != "fixed" and not 0.0 < a < 1.0:
            raise ValueError(f"leak alpha (initial) of mode {self.mode!r} must be in (0, 1), got {a}")
        object.__setattr__(self, "alpha", float(a))

    @property
    def family(self) -> str:
        """The engine's family name: ``leaky_<mode>``."""
        return f"leaky_{self.mode}"

    @property
    def activation(self) -> str:
        """The base's activation."""
        return self.base.activation

    @property
    def input_dim(self) -> int:
        """The base's input size."""
        return self.base.input_dim

    @property
    def hidden_dim(self) -> int:
        """The base's hidden size."""
        return self.base.hidden_dim

    @property
    def output_dim(self) -> int:
        """The base's output size."""
        return self.base.output_dim

    @property
    def learning_rate(self) -> float:
        """The base's learning rate."""
        return self.base.learning_rate

    @property
    def name(self) -> str:
        """The base's name."""
        return self.base.name

    def replace(self, **changes) -> "LeakySpec":
        """Copy with ``base``, ``mode`` or ``alpha`` changed, or any NetworkSpec field of the base
        (``spec.replace(hidden_dim=64)``)."""
        own = {k: changes.pop(k) for k in ("base", "mode", "alpha") if k in changes}
        base = own.pop("base", self.base)
        if changes:
            base = base.replace(**changes)
        return dataclasses.replace(self, base=base, **own)

    def gate_weights_expected(self) -> float:
        """Expected trainable weights of the gate (W_ax, W_ah): d_hx H X + d_hh H H; 0 unless ``gated``."""
        if self.mode != "gated":
            return 0.0
        h, x = self.hidden_dim, self.input_dim
        return self.base.density("hx") * h * x + self.base.density("hh") * h * h

    def result_columns(self) -> dict:
        """The results-table columns that differ from the base's: ``leak_mode``, ``leak_alpha`` and, for
        ``gated``, the counts with the gate's weights (module docstring)."""
        cols: dict = {"leak_mode": self.mode, "leak_alpha": self.alpha}
        if self.mode == "gated":
            acc = expected_accounting(self.base)
            h, x = self.hidden_dim, self.input_dim
            ax, ah = self.base.density("hx") * h * x, self.base.density("hh") * h * h
            top = sum(acc.blocks[b].trainable for b in ("hx", "hh", "hy"))
            cols.update(
                trainable_params=acc.trainable_params + ax + ah,
                model_density=(acc.trainable_params + ax + ah) / (acc.weight_entries + h * x + h * h),
                hidden_proportion=(acc.blocks["hh"].trainable + ah) / (top + ax + ah),
            )
        return cols
