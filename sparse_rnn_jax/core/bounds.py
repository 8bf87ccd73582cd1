"""The bounds of every kind of number a user gives (a flag, a config field): one rule per kind, shared by the
config dataclasses and every entry point, so that a value is accepted or refused the same way everywhere.

A kind is a name (``KINDS``): integers within [low, high], or finite floats within an interval. ``check`` raises a
one-line ValueError naming the value ("seed must be an integer in [0, 4294967295], got -1"); ``problem`` returns
that text (None when the value fits). Importing this module is cheap (no numpy, no JAX).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

SEED_MAX = 2**32 - 1
"""Seeds are unsigned 32-bit integers (numpy and JAX both take them whole)."""
COUNT_MAX = 2**31 - 1
"""Counts (models, trees, steps, epochs, sequences, ...): at most the largest signed 32-bit integer."""
BATCH_MAX = 2**20
"""Sequences per minibatch or evaluation batch."""
UNROLL_MAX = 1024
"""``lax.scan`` unroll of a time loop (a larger one only multiplies compile time)."""
DIM_MAX = 10**6
"""Sizes of an input, output, hidden layer or a sequence length."""
BUDGET_MAX = 1e10
"""Trainable weights of one model (40 GB of float32 weights; the paper's largest is 10^5)."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """Integers in [low, high] (``integer``), or finite floats between low and high (``open_low``/``open_high``
    exclude the end)."""

    integer: bool
    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    def words(self) -> str:
        if self.integer:
            return f"an integer in [{int(self.low)}, {int(self.high)}]"
        lo, hi = ("(" if self.open_low else "["), (")" if self.open_high else "]")
        return f"a number in {lo}{self.low:g}, {self.high:g}{hi}"

    def fits(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.integer:
            return isinstance(value, int) and self.low <= value <= self.high
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def parse(self, text: str) -> Any:
        """``text`` as this kind's value type (ValueError when it is not a number of that type)."""
        return int(text, 10) if self.integer else float(text)


KINDS: dict[str, Kind] = {
    "seed": Kind(True, 0, SEED_MAX),
    "count": Kind(True, 1, COUNT_MAX),
    "count0": Kind(True, 0, COUNT_MAX),
    "batch": Kind(True, 1, BATCH_MAX),
    "unroll": Kind(True, 1, UNROLL_MAX),
    "dim": Kind(True, 1, DIM_MAX),
    "dim0": Kind(True, 0, DIM_MAX),
    "budget": Kind(False, 0.0, BUDGET_MAX, open_low=True),
    "positive": Kind(False, 0.0, 1e30, open_low=True),
    "nonnegative": Kind(False, 0.0, 1e30),
    "unit_open": Kind(False, 0.0, 1.0, open_low=True, open_high=True),
    "unit_half": Kind(False, 0.0, 1.0, open_low=True),
    "unit": Kind(False, 0.0, 1.0),
}
"""seed; count (>= 1) and count0 (>= 0, where 0 means none or automatic); batch; unroll; dim and dim0 (0: from the
data); budget; positive and nonnegative finite numbers; unit_open (0, 1), unit_half (0, 1], unit [0, 1]."""


def problem(name: str, value: Any, kind: str) -> str | None:
    """``"<name> must be <kind in words>, got <value>"`` unless ``value`` fits ``kind``; None when it does."""
    k = KINDS[kind]
    if k.fits(value):
        return None
    shown = repr(value) if isinstance(value, str) else str(value)
    return f"{name} must be {k.words()}, got {shown[:40]}{'...' if len(shown) > 40 else ''}"


def check(name: str, value: Any, kind: str) -> None:
    """ValueError (``problem``'s line) unless ``value`` fits ``kind``."""
    text = problem(name, value, kind)
    if text:
        raise ValueError(text)
