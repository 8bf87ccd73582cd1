"""The embedded Reber grammar: a deterministic string generator, a recogniser and engine-ready arrays.

Symbols (one-hot index in this order): ``SYMBOLS = "BTPSXVE"``.

The Reber automaton (states 1-6; every state has at most two outgoing symbols, so the automaton is
deterministic and a string has exactly one path):

    1 -T-> 2   1 -P-> 3
    2 -S-> 2   2 -X-> 4
    3 -T-> 3   3 -V-> 5
    4 -X-> 3   4 -S-> 6
    5 -P-> 4   5 -V-> 6

A Reber string is B, a path from state 1 to state 6, then E (the shortest is BTXSE). The **embedded**
grammar wraps one Reber string between a matching pair of symbols: B T <reber> T E or B P <reber> P E.
Predicting the symbol after the inner E needs the symbol seen right after the first B: the long-range
dependency that makes the embedded grammar hard for simple RNNs (the shortest string, BTBTXSETE, has 9
symbols; the median about 12 with the branching below).

Generation: every branch is taken with probability 1/2 (both the embedding symbol and each state's
two successors), drawn with numpy's PCG64 from a seed. Strings longer than ``max_len`` are rejected
and redrawn, so the length distribution is the grammar's, truncated at ``max_len``.

Two tasks, both on padded arrays of ``max_len`` steps (one step per symbol, padded steps all-zero):

* **next symbol** (``next_symbol_arrays``): input = the string without its final E (L - 1 steps);
  target at step t = the multi-hot SET of symbols that may legally follow symbols 0..t (one or two
  symbols everywhere, except after the inner E where only the remembered T or P is legal).
  ``{"x": f32[N, T, 7], "targets": f32[N, T, 7], "step_mask": bool[N, T], "lengths": int32[N]}``
  with ``lengths`` = valid steps (L - 1).
* **classification** (``classification_arrays``): input = the whole string (L steps); label 1 for a
  grammatical string, 0 for an ungrammatical one, read at the last valid step (``lengths - 1``).
  ``{"x": f32[N, T, 7], "label": int32[N], "lengths": int32[N]}``.
  Ungrammatical strings are grammatical ones with one symbol corrupted (``CORRUPTIONS``):
  ``substitute`` replaces the symbol at a uniformly drawn position by one of the 6 other symbols drawn
  uniformly; ``embedding`` swaps the closing embedding symbol (T <-> P), so only the long-range
  dependency betrays it. Both keep the length, so length carries no label information. Every corrupted
  string is checked with ``is_grammatical`` and redrawn until it is rejected. Exactly N // 2 strings
  of a split are ungrammatical, at positions drawn at random.

Splits (``load_reber``) come from distinct seeds (``split_seed``: (data seed, split index)). Short
strings are few (the grammar has only a handful of strings of length <= 10), so the same string may
occur in several splits, as in the usual Reber benchmarks; ``ReberSplit.strings`` keeps them for checks.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from sparse_rnn_jax.core.rng import rng as core_rng

SYMBOLS = "BTPSXVE"
NUM_SYMBOLS = len(SYMBOLS)
INDEX = {s: i for i, s in enumerate(SYMBOLS)}
VARIANTS: tuple[str, ...] = ("next_symbol", "classification")
CORRUPTIONS: tuple[str, ...] = ("substitute", "embedding")
SPLITS: tuple[str, ...] = ("train", "val", "test")
MIN_EMBEDDED_LENGTH = 9  # BTBTXSETE
DEFAULT_MAX_LEN = 30

# The Reber automaton: state -> ((symbol, next state), (symbol, next state)); state 6 is final.
REBER_TRANSITIONS: dict[int, tuple[tuple[str, int], tuple[str, int]]] = {
    1: (("T", 2), ("P", 3)),
    2: (("S", 2), ("X", 4)),
    3: (("T", 3), ("V", 5)),
    4: (("X", 3), ("S", 6)),
    5: (("P", 4), ("V", 6)),
}
REBER_FINAL = 6


# ------------------------------------------------------------------------------------- the automaton
# States of the embedded grammar: "start" (expects B), "open" (expects T or P), ("inner", m, q) with the
# embedding symbol m and q = 0 (expects the inner B) or a Reber state 1-6 (6 expects the inner E),
# ("close", m) (expects m), "end" (expects the final E), "accept" (nothing more).


def _embedded_transitions(state) -> dict[str, object]:
    """The symbols legal in ``state`` and the state each leads to."""
    if state == "start":
        return {"B": "open"}
    if state == "open":
        return {"T": ("inner", "T", 0), "P": ("inner", "P", 0)}
    if state == "end":
        return {"E": "accept"}
    if state == "accept":
        return {}
    if state[0] == "close":
        return {state[1]: "end"}
    _, m, q = state
    if q == 0:
        return {"B": ("inner", m, 1)}
    if q == REBER_FINAL:
        return {"E": ("close", m)}
    return {sym: ("inner", m, nxt) for sym, nxt in REBER_TRANSITIONS[q]}


def _walk(string: str):
    """The automaton's states after each prefix of ``string`` (len(string) + 1 states), stopping at the
    first illegal symbol: returns (states, ok)."""
    state, states = "start", ["start"]
    for ch in string:
        nxt = _embedded_transitions(state).get(ch)
        if nxt is None:
            return states, False
        state = nxt
        states.append(state)
    return states, True


def is_grammatical(string: str) -> bool:
    """Whether ``string`` (over ``SYMBOLS``) is an embedded Reber string."""
    states, ok = _walk(string)
    return ok and states[-1] == "accept"


def legal_next(prefix: str) -> str:
    """The symbols (in ``SYMBOLS`` order) that may follow the grammatical prefix ``prefix``; "" after a
    complete string. Raises ValueError when ``prefix`` already left the grammar."""
    states, ok = _walk(prefix)
    if not ok:
        raise ValueError(f"{prefix!r} is not a prefix of an embedded Reber string")
    allowed = _embedded_transitions(states[-1])
    return "".join(s for s in SYMBOLS if s in allowed)


def legal_next_sets(string: str) -> list[str]:
    """``legal_next(string[:t + 1])`` for every t: the set that must follow each symbol."""
    states, ok = _walk(string)
    if not ok:
        raise ValueError(f"{string!r} is not a prefix of an embedded Reber string")
    return ["".join(s for s in SYMBOLS if s in _embedded_transitions(q)) for q in states[1:]]


# ------------------------------------------------------------------------------------------ strings


def _reber_string(rng: np.random.Generator) -> str:
    out, state = ["B"], 1
    while state != REBER_FINAL:
        sym, state = REBER_TRANSITIONS[state][int(rng.integers(2))]
        out.append(sym)
    out.append("E")
    return "".join(out)


def embedded_reber_string(rng: np.random.Generator) -> str:
    """One embedded Reber string, every branch with probability 1/2."""
    m = "TP"[int(rng.integers(2))]
    return "B" + m + _reber_string(rng) + m + "E"


def generate_strings(n: int, seed: int | Sequence[int], max_len: int = DEFAULT_MAX_LEN) -> list[str]:
    """``n`` embedded Reber strings of at most ``max_len`` symbols (longer ones redrawn), from ``seed``."""
    _check_sizes(n, max_len)
    rng = _rng(seed)
    out = []
    while len(out) < n:
        s = embedded_reber_string(rng)
        if len(s) <= max_len:
            out.append(s)
    return out


def corrupt(string: str, rng: np.random.Generator, corruption: str = "substitute") -> str:
    """An ungrammatical string made from the grammatical ``string`` by one corruption (``CORRUPTIONS``,
    see the module docstring), redrawn until ``is_grammatical`` rejects it."""
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {corruption!r}")
    if corruption == "embedding":
        # The closing embedding symbol is the second to last; swapping it always breaks the match.
        swapped = string[:-2] + {"T": "P", "P": "T"}[string[-2]] + string[-1]
        assert not is_grammatical(swapped)
        return swapped
    while True:
        pos = int(rng.integers(len(string)))
        others = [s for s in SYMBOLS if s != string[pos]]
        bad = string[:pos] + others[int(rng.integers(len(others)))] + string[pos + 1 :]
        if not is_grammatical(bad):
            return bad


def classification_strings(
    n: int, seed: int | Sequence[int], max_len: int = DEFAULT_MAX_LEN, corruption: str = "substitute"
) -> tuple[list[str], np.ndarray]:
    """``n`` strings and labels int32[n] (1 grammatical, 0 ungrammatical; exactly n // 2 zeros)."""
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {corruption!r}")
    strings = generate_strings(n, seed, max_len)
    rng = _rng(seed, 1)
    labels = np.ones(n, np.int32)
    labels[rng.permutation(n)[: n // 2]] = 0
    strings = [s if labels[i] else corrupt(s, rng, corruption) for i, s in enumerate(strings)]
    return strings, labels


# ------------------------------------------------------------------------------------------- arrays


def one_hot(strings: Sequence[str], max_len: int) -> np.ndarray:
    """f32[N, max_len, 7]: one row per symbol, all-zero rows after a string's end."""
    x = np.zeros((len(strings), max_len, NUM_SYMBOLS), np.float32)
    for i, s in enumerate(strings):
        if len(s) > max_len:
            raise ValueError(f"string {i} has {len(s)} symbols > max_len {max_len}")
        x[i, np.arange(len(s)), [INDEX[c] for c in s]] = 1.0
    return x


def decode(x: np.ndarray) -> str:
    """The string of one one-hot sequence f32[T, 7] (all-zero rows end it)."""
    out = []
    for row in np.asarray(x):
        if not row.any():
            break
        out.append(SYMBOLS[int(np.argmax(row))])
    return "".join(out)


def next_symbol_arrays(strings: Sequence[str], max_len: int) -> dict[str, np.ndarray]:
    """Arrays of the next-symbol task (module docstring) for grammatical ``strings``."""
    n = len(strings)
    x = one_hot([s[:-1] for s in strings], max_len)
    targets = np.zeros((n, max_len, NUM_SYMBOLS), np.float32)
    lengths = np.asarray([len(s) - 1 for s in strings], np.int32)
    multi_hot: dict[str, np.ndarray] = {}  # strings repeat a lot: one table per distinct string
    for i, s in enumerate(strings):
        if s not in multi_hot:
            table = np.zeros((len(s) - 1, NUM_SYMBOLS), np.float32)
            for t, legal in enumerate(legal_next_sets(s[:-1])):
                table[t, [INDEX[c] for c in legal]] = 1.0
            multi_hot[s] = table
        targets[i, : len(s) - 1] = multi_hot[s]
    step_mask = np.arange(max_len)[None, :] < lengths[:, None]
    return {"x": x, "targets": targets, "step_mask": step_mask, "lengths": lengths}


def classification_arrays(strings: Sequence[str], labels: np.ndarray, max_len: int) -> dict[str, np.ndarray]:
    """Arrays of the classification task (module docstring)."""
    return {
        "x": one_hot(strings, max_len),
        "label": np.asarray(labels, np.int32),
        "lengths": np.asarray([len(s) for s in strings], np.int32),
    }


# ------------------------------------------------------------------------------------------- splits


@dataclasses.dataclass(frozen=True)
class ReberConfig:
    """A Reber data set: the variant, split sizes, the length cap, the corruption and the seed."""

    variant: str = "next_symbol"
    train_size: int = 10_000
    val_size: int = 1_000
    test_size: int = 1_000
    max_len: int = DEFAULT_MAX_LEN
    corruption: str = "substitute"
    seed: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"ReberConfig.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"ReberConfig.corruption must be one of {CORRUPTIONS}, got {self.corruption!r}")
        for name in ("train_size", "val_size", "test_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReberConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_len < MIN_EMBEDDED_LENGTH:
            raise ValueError(
                f"ReberConfig.max_len must be >= {MIN_EMBEDDED_LENGTH} (the shortest string), got {self.max_len}"
            )
        if self.seed < 0:
            raise ValueError(f"ReberConfig.seed must be >= 0, got {self.seed}")

    def size(self, split: str) -> int:
        """Strings in ``split`` (train, val or test)."""
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}[split]

    @property
    def dims(self) -> tuple[int, int]:
        """(input_dim, output_dim): (7, 7) for next symbol, (7, 2) for classification."""
        return (NUM_SYMBOLS, NUM_SYMBOLS) if self.variant == "next_symbol" else (NUM_SYMBOLS, 2)


@dataclasses.dataclass(frozen=True)
class ReberSplit:
    """One split: its strings (and labels for classification) and the engine's arrays."""

    strings: tuple[str, ...]
    arrays: Mapping[str, np.ndarray]


def split_seed(seed: int, split: str) -> tuple[int, int]:
    """The generator seed of a split: distinct per split, the same for both variants."""
    return (int(seed), SPLITS.index(split))


def make_split(config: ReberConfig, split: str) -> ReberSplit:
    """One split's strings (and labels) and the engine's arrays, deterministic from the config."""
    n, seed = config.size(split), split_seed(config.seed, split)
    if config.variant == "next_symbol":
        strings = generate_strings(n, seed, config.max_len)
        return ReberSplit(tuple(strings), next_symbol_arrays(strings, config.max_len))
    strings, labels = classification_strings(n, seed, config.max_len, config.corruption)
    return ReberSplit(tuple(strings), classification_arrays(strings, labels, config.max_len))


def load_reber(config: ReberConfig, splits: Sequence[str] = SPLITS) -> dict[str, ReberSplit]:
    """The requested splits of ``config`` (generated in memory; a few seconds for 100,000 strings)."""
    return {s: make_split(config, s) for s in splits}


def _check_sizes(n: int, max_len: int) -> None:
    if n < 0:
        raise ValueError(f"number of strings must be >= 0, got {n}")
    if max_len < MIN_EMBEDDED_LENGTH:
        raise ValueError(f"max_len must be >= {MIN_EMBEDDED_LENGTH} (the shortest string), got {max_len}")


def _rng(seed: int | Sequence[int], stream: int = 0) -> np.random.Generator:
    key = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
    return core_rng(*key, 0x7EBE, stream)
