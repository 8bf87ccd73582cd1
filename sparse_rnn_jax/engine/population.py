"""Populations: many models of different densities and hidden sizes as stacked, padded pytrees.

Models are grouped into hidden-size *buckets*; every model of a bucket is zero-padded to the bucket's
largest hidden size (padded units change nothing, see ``model.py``), and a bucket is trained in *chunks*
of at most ``max_models`` models (memory), each chunk one jitted program vmapped over its models.

Padding efficiency = useful / executed matrix FLOPs, where useful counts each model at its own hidden
size and executed at its bucket's padded size (``Family.matmul_flops``; the dense weight arrays are
multiplied whole, masked entries included, in both).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from sparse_rnn_jax.core.rng import derived_seed
from sparse_rnn_jax.models.registry import family_of, get_family


@dataclasses.dataclass(frozen=True)
class Member:
    """One model of a sweep: its spec, its own seed (masks and initial weights) and its id."""

    model_id: int
    spec: Any  # NetworkSpec, CellSpec, LeakySpec: any spec whose ``family`` is registered
    seed: int
    config: str


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Models trained together as one program: ``members`` padded to ``padded_hidden_dim``.

    ``ghosts`` extra copies of the last member pad the chunk to a multiple of the device count; their
    results are discarded.
    """

    bucket: int
    index: int
    padded_hidden_dim: int
    members: tuple[Member, ...]
    ghosts: int = 0

    @property
    def size(self) -> int:
        """Models executed: real members plus ghosts."""
        return len(self.members) + self.ghosts

    @property
    def family(self) -> str:
        """The model family of the chunk's members (one family per chunk)."""
        return self.members[0].spec.family

    @property
    def activation(self) -> str:
        """The hidden activation of the chunk's members (one per chunk)."""
        return self.members[0].spec.activation

    @property
    def key(self) -> str:
        """A stable name of the chunk: bucket and index (``b000c0000``)."""
        return f"b{self.bucket:03d}c{self.index:04d}"


AUTO_MEMORY_SHARE = 0.5
"""Share of a device's memory the chunks of an automatically sized sweep may fill."""
BYTES_PER_WEIGHT_ENTRY = 40
"""Device bytes per weight-space entry of a model in training: the weights, Adam's two moments, the gradients,
the updated copies (4 bytes each) and the mask, plus XLA's temporaries (measured on RAD shapes)."""
MAX_AUTO_MODELS = 4096


def weight_entries(spec) -> float:
    """All weight-space entries of a model (its family's matrix FLOPs per step / 2: one MAC per entry)."""
    return family_of(spec).matmul_flops(spec.input_dim, spec.hidden_dim, spec.output_dim) / 2.0


def resolve_chunk_models(members: Sequence[Member], max_models: int, memory_bytes: float | None) -> int:
    """The most models per chunk: ``max_models`` when > 0; else (automatic) as many of the largest model as fit in
    ``AUTO_MEMORY_SHARE`` of ``memory_bytes`` (at most ``MAX_AUTO_MODELS``; 256 when the memory is unknown)."""
    if max_models > 0:
        return int(max_models)
    if not members:
        return 1
    if memory_bytes is None:
        return 256
    largest = max(weight_entries(m.spec) for m in members)
    return int(max(1, min(MAX_AUTO_MODELS, AUTO_MEMORY_SHARE * memory_bytes // (largest * BYTES_PER_WEIGHT_ENTRY))))


def even_pieces(total: int, most: int, multiple: int = 1) -> list[tuple[int, int, int]]:
    """Splits range(total) into the fewest equal contiguous pieces of at most ``most`` items, each padded to
    the same size, a multiple of ``multiple``: (start, stop, padded size) per piece (one compiled shape)."""
    if total < 0 or most < 1 or multiple < 1:
        raise ValueError(f"even_pieces needs total >= 0, most >= 1, multiple >= 1; got {total}, {most}, {multiple}")
    if total == 0:
        return []
    most = max(multiple, most - most % multiple)
    size = math.ceil(total / math.ceil(total / most))
    padded = size + (-size) % multiple
    return [(s, min(s + size, total), padded) for s in range(0, total, size)]


def plan_buckets(
    hidden_dims: Sequence[int], input_dim: int, output_dim: int, max_buckets: int, family: str = "block"
) -> list[list[int]]:
    """Groups model indices into at most ``max_buckets`` hidden-size buckets minimising executed FLOPs.

    Exact dynamic programme over the sorted distinct hidden sizes: a bucket covering sizes (lo, hi]
    costs count x cost(hi). Returns lists of indices into ``hidden_dims``, smallest sizes first.
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be >= 1, got {max_buckets}")
    hs = np.asarray(hidden_dims, dtype=np.int64)
    if hs.size == 0:
        return []
    uniq, counts = np.unique(hs, return_counts=True)
    u = len(uniq)
    k_max = min(max_buckets, u)
    cost = get_family(family).matmul_flops(input_dim, uniq.astype(np.float64), output_dim)
    cum = np.concatenate([[0], np.cumsum(counts)])  # models with size index < i
    inf = np.inf
    # best[k][j]: min cost covering sizes [0, j) with k buckets; j in 0..u
    best = np.full((k_max + 1, u + 1), inf)
    arg = np.zeros((k_max + 1, u + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, k_max + 1):
        for j in range(1, u + 1):
            i = np.arange(0, j)  # bucket covers sizes [i, j)
            cand = best[k - 1, i] + (cum[j] - cum[i]) * cost[j - 1]
            t = int(np.argmin(cand))
            best[k, j], arg[k, j] = cand[t], t
    k = int(np.argmin(best[1:, u])) + 1
    bounds = []
    j = u
    while k > 0:
        i = arg[k, j]
        bounds.append((i, j))
        j, k = i, k - 1
    groups = []
    for i, j in reversed(bounds):
        lo, hi = uniq[i], uniq[j - 1]
        groups.append([int(n) for n in np.flatnonzero((hs >= lo) & (hs <= hi))])
    return groups


def make_chunks(members: Sequence[Member], max_buckets: int, max_models: int, device_count: int = 1) -> list[Chunk]:
    """Buckets ``members`` by hidden size, separately per (family, activation), and splits each bucket into
    equal chunks of <= ``max_models`` (rounded up to a multiple of ``device_count`` with ghosts).
    ``max_buckets`` bounds the buckets of each family."""
    if not members:
        return []
    if max_models < 1:
        raise ValueError(f"max_models must be >= 1, got {max_models}")
    x, y = members[0].spec.input_dim, members[0].spec.output_dim
    if any(m.spec.input_dim != x or m.spec.output_dim != y for m in members):
        raise ValueError("all members of a population must share input_dim and output_dim")
    families: dict[tuple[str, str], list[Member]] = {}
    for m in members:
        families.setdefault((m.spec.family, m.spec.activation), []).append(m)
    groups = []
    for (family, _), fam_members in sorted(families.items()):
        for g in plan_buckets([m.spec.hidden_dim for m in fam_members], x, y, max_buckets, family):
            groups.append([fam_members[i] for i in g])
    chunks = []
    for b, group in enumerate(groups):
        group_members = sorted(group, key=lambda m: (m.spec.hidden_dim, m.model_id))
        padded = max(m.spec.hidden_dim for m in group_members)
        for c, (start, stop, _) in enumerate(even_pieces(len(group_members), max_models)):
            part = tuple(group_members[start:stop])
            chunks.append(Chunk(b, c, padded, part, (-len(part)) % device_count))
    return chunks


def padding_efficiency(chunks: Sequence[Chunk]) -> float:
    """Useful / executed matrix FLOPs over all chunks (ghosts count as executed, not useful)."""
    useful = executed = 0.0
    for ch in chunks:
        flops = family_of(ch.members[0].spec).matmul_flops
        for m in ch.members:
            useful += flops(m.spec.input_dim, m.spec.hidden_dim, m.spec.output_dim)
        s = ch.members[0].spec
        executed += ch.size * flops(s.input_dim, ch.padded_hidden_dim, s.output_dim)
    return useful / executed if executed else 1.0


def stack_chunk(
    chunk: Chunk, mask_mode: str = "exact"
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Stacked numpy pytrees of one chunk: params and masks with a leading model axis [P, ...], and the
    learning rates f32[P]. Ghosts repeat the last member."""
    members = list(chunk.members) + [chunk.members[-1]] * chunk.ghosts
    init = family_of(chunk.members[0].spec).init
    arrays = [init(m.spec, m.seed, chunk.padded_hidden_dim, mask_mode) for m in members]
    params = {k: np.stack([a.params[k] for a in arrays]) for k in arrays[0].params}
    masks = {k: np.stack([a.masks[k] for a in arrays]) for k in arrays[0].masks}
    lrs = np.asarray([m.spec.learning_rate for m in members], dtype=np.float32)
    return params, masks, lrs


def model_seed(sweep_seed: int, model_id: int) -> int:
    """A model's own seed, derived from the sweep seed and its id (independent of its population)."""
    return derived_seed(sweep_seed, model_id, 0xB10C)
