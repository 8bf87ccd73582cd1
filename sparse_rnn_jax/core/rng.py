"""The one construction of a numpy random stream: PCG64 seeded by a SeedSequence of integer keys."""

from __future__ import annotations

import numpy as np


def rng(*key: int) -> np.random.Generator:
    """``np.random.Generator(PCG64(SeedSequence([k0, k1, ...])))``: an independent, reproducible stream per key."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in key])))


def derived_seed(*key: int) -> int:
    """A 32-bit integer seed derived from integer keys (``SeedSequence(key).generate_state(1)[0]``)."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])
