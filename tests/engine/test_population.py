import itertools

import numpy as np
import pytest

from sparse_rnn_jax.engine.population import make_chunks, padding_efficiency, plan_buckets, stack_chunk
from sparse_rnn_jax.models.registry import get_family
from tests.toy import toy_members


def _brute_force(hs, x, y, k):
    uniq = sorted(set(hs))
    best = np.inf
    for nb in range(1, min(k, len(uniq)) + 1):
        for cuts in itertools.combinations(range(1, len(uniq)), nb - 1):
            bounds = [0, *cuts, len(uniq)]
            cost = 0.0
            for a, b in zip(bounds[:-1], bounds[1:]):
                members = [h for h in hs if uniq[a] <= h <= uniq[b - 1]]
                cost += len(members) * get_family("block").matmul_flops(x, np.float64(uniq[b - 1]), y)
            best = min(best, cost)
    return best


def test_plan_buckets_is_optimal_and_covers_everything():
    rng = np.random.default_rng(0)
    for _ in range(20):
        hs = list(rng.integers(1, 60, size=int(rng.integers(1, 12))))
        k = int(rng.integers(1, 4))
        groups = plan_buckets(hs, 50, 4, k)
        assert sorted(i for g in groups for i in g) == list(range(len(hs)))
        assert len(groups) <= k
        cost = sum(len(g) * get_family("block").matmul_flops(50, np.float64(max(hs[i] for i in g)), 4) for g in groups)
        assert cost == pytest.approx(_brute_force(hs, 50, 4, k))


def test_chunks_ghosts_and_efficiency():
    members = toy_members(10)
    chunks = make_chunks(members, max_buckets=2, max_models=3, device_count=2)
    assert sorted(m.model_id for c in chunks for m in c.members) == list(range(10))
    for c in chunks:
        assert c.size % 2 == 0 and len(c.members) <= 3
        assert c.padded_hidden_dim == max(m.spec.hidden_dim for m in c.members) or any(
            c2.bucket == c.bucket and c2.padded_hidden_dim == c.padded_hidden_dim for c2 in chunks
        )
    eff = padding_efficiency(chunks)
    assert 0 < eff <= 1
    one_each = make_chunks(members, max_buckets=10, max_models=1)
    assert padding_efficiency(one_each) == pytest.approx(1.0)


def test_stack_chunk_shapes_and_lrs():
    members = toy_members(4)
    chunk = make_chunks(members, max_buckets=1, max_models=8, device_count=1)[0]
    params, masks, lrs = stack_chunk(chunk)
    h = chunk.padded_hidden_dim
    assert params["W_hh"].shape == (4, h, h) and masks["hx"].shape == (4, h, 6)
    assert lrs.shape == (4,)
    for i, m in enumerate(chunk.members):
        assert masks["b_h"][i].sum() == m.spec.hidden_dim


def test_automatic_chunk_size_follows_memory_and_the_largest_model():
    from sparse_rnn_jax.engine.population import (
        AUTO_MEMORY_SHARE,
        BYTES_PER_WEIGHT_ENTRY,
        MAX_AUTO_MODELS,
        resolve_chunk_models,
        weight_entries,
    )

    members = toy_members(8)
    largest = max(weight_entries(m.spec) for m in members)
    assert resolve_chunk_models(members, 7, 1e12) == 7  # an explicit cap wins
    assert resolve_chunk_models(members, 0, None) == 256  # unknown memory
    memory = 100 * largest * BYTES_PER_WEIGHT_ENTRY / AUTO_MEMORY_SHARE
    assert resolve_chunk_models(members, 0, memory) == 100
    assert resolve_chunk_models(members, 0, 2 * memory) == 200  # twice the memory, twice the models
    assert resolve_chunk_models(members, 0, 1.0) == 1  # never below one model
    assert resolve_chunk_models(members, 0, 1e30) == MAX_AUTO_MODELS
    smaller = [m for m in members if weight_entries(m.spec) < largest]
    assert resolve_chunk_models(smaller, 0, memory) > 100  # sized by the largest model present
