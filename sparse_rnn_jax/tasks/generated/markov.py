"""Markov-source classification (``--task=markov``): each class is a random Markov chain over K symbols (its
transition rows drawn from a Dirichlet with concentration ``concentration``: small values make chains easy to
tell apart); a sequence of one-hot symbols sampled from one chain is classified at its last step
(cross-entropy). Class count, alphabet size, length and concentration are the family's parameters.

Arrays: ``x`` f32[N, T, K], ``labels`` int32[N].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sparse_rnn_jax.tasks.base import check_int, task_field
from sparse_rnn_jax.tasks.generated.base import Family, GeneratedConfig, check_float, task_rng

NAME = "markov"


@dataclasses.dataclass(frozen=True)
class MarkovConfig(GeneratedConfig):
    """A Markov-source classification task."""

    num_classes: int = task_field(3, "Chains (classes |y|).")
    num_symbols: int = task_field(4, "Alphabet size K (inputs).")
    seq_len: int = task_field(20, "Steps per sequence.")
    concentration: float = task_field(1.0, "Dirichlet concentration of the transition rows.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_classes", self.num_classes, 2)
        check_int("num_symbols", self.num_symbols, 2)
        check_int("seq_len", self.seq_len, 2)
        check_float("concentration", self.concentration, 0.01, 100.0)


def make(config: MarkovConfig, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    c, k, t = config.num_classes, config.num_symbols, config.seq_len
    chains = task_rng(NAME, config).dirichlet(np.full(k, config.concentration), size=(c, k))  # [c, k, k]
    cum = np.cumsum(chains, axis=-1)
    labels = rng.integers(0, c, size=n)
    symbols = np.empty((n, t), np.int64)
    symbols[:, 0] = rng.integers(0, k, size=n)
    u = rng.random((n, t))
    for s in range(1, t):
        rows = cum[labels, symbols[:, s - 1]]  # [n, k]
        symbols[:, s] = np.minimum((u[:, s, None] > rows).sum(axis=1), k - 1)
    return {"x": np.eye(k, dtype=np.float32)[symbols], "labels": labels.astype(np.int32)}


def dims(config: MarkovConfig) -> tuple[int, int]:
    return config.num_symbols, config.num_classes


RANGES = {
    "num_classes": (2, 10, "logint"),
    "num_symbols": (2, 16, "logint"),
    "seq_len": (5, 48, "logint"),
    "concentration": (0.3, 5.0, "logfloat"),
}
FAMILY = Family(NAME, "last", MarkovConfig, make, dims, lambda c: c.seq_len, RANGES)
TASK = FAMILY.task()
descriptor = FAMILY.descriptor
load = FAMILY.load
