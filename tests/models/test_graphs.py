"""hh masks from random graphs: densities, determinism, structure, properties against networkx, the engine,
and the graph regression on a planted relation."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.core.spec import BLOCKS, GraphSpec, make_spec
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.engine.sweep import TrainConfig, run_sweep
from sparse_rnn_jax.models import graphs
from sparse_rnn_jax.models.block import init_model
from sparse_rnn_jax.models.graphs import GRAPH_COLUMNS
from tests.toy import toy_data, toy_members, toy_task


def _networkx_properties(mask: np.ndarray) -> dict[str, float]:
    g = nx.from_numpy_array((mask | mask.T).astype(int))
    g.remove_edges_from(nx.selfloop_edges(g))
    lcc = g.subgraph(max(nx.connected_components(g), key=len))
    return {
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "density": nx.density(g),
        "mean_betweenness": float(np.mean(list(nx.betweenness_centrality(g).values()))),
        "clustering": nx.average_clustering(g),
        "avg_path_length": nx.average_shortest_path_length(lcc),
    }


@pytest.mark.parametrize("kind", graphs.GRAPH_KINDS)
@pytest.mark.parametrize("n, density", [(60, 0.1), (80, 0.3), (50, 0.45)])
def test_mask_density_symmetry_and_determinism(kind, n, density):
    g = GraphSpec(kind, beta=0.2)
    m = graphs.hh_graph_mask(g, n, density, seed=11)
    assert m.shape == (n, n) and m.dtype == bool
    assert (m == m.T).all() and not m.diagonal().any()  # both directions, no self-loops
    assert abs(m.mean() - density) < 0.035, (kind, m.mean())
    np.testing.assert_array_equal(m, graphs.hh_graph_mask(g, n, density, seed=11))
    assert not np.array_equal(m, graphs.hh_graph_mask(g, n, density, seed=12))


def test_ws_and_ba_structure():
    n = 60
    ring = graphs.hh_graph_mask(GraphSpec("ws", beta=0.0), n, 0.1, seed=0)  # k = 6: a ring lattice
    assert (ring.sum(axis=1) == 6).all()
    assert all(ring[i, (i + d) % n] for i in range(n) for d in (1, 2, 3))
    rewired = graphs.hh_graph_mask(GraphSpec("ws", beta=0.5), n, 0.1, seed=0)
    assert rewired.sum() == ring.sum() and not np.array_equal(rewired, ring)  # rewiring keeps the edge count
    m = graphs.size_parameter("ba", n, 0.2)
    ba = graphs.hh_graph_mask(GraphSpec("ba"), n, 0.2, seed=0)
    degree = ba.sum(axis=1)
    assert ba.sum() // 2 == m * (n - m) and degree[m + 1 :].min() >= m  # every later node attaches m edges
    assert degree.max() > 2.5 * np.median(degree)  # hubs from preferential attachment
    # BA cannot exceed density 1/2 (m = n / 2).
    assert abs(graphs.hh_graph_mask(GraphSpec("ba"), n, 0.9, seed=0).mean() - 0.5) < 0.01


@pytest.mark.parametrize("kind, n, density", [("er", 40, 0.08), ("er", 30, 0.3), ("ws", 45, 0.1), ("ba", 35, 0.15)])
def test_properties_match_networkx(kind, n, density):
    m = graphs.hh_graph_mask(GraphSpec(kind, 0.3), n, density, seed=5)
    ours, ref = graphs.graph_properties(m), _networkx_properties(m)
    for k in graphs.GRAPH_PROPERTIES:
        assert ours[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k


def test_properties_disconnected_and_tiny_graphs():
    m = np.zeros((9, 9), bool)
    for i, j in [(0, 1), (1, 2), (2, 3), (5, 6), (6, 7), (7, 5)]:  # a path of 4, a triangle, 2 isolated nodes
        m[i, j] = True
    ours, ref = graphs.graph_properties(m), _networkx_properties(m)
    for k in graphs.GRAPH_PROPERTIES:
        assert ours[k] == pytest.approx(ref[k]), k
    assert ours["avg_path_length"] == pytest.approx(5 / 3)  # on the path 0-1-2-3 (the largest component)
    one = graphs.graph_properties(np.ones((1, 1), bool))
    assert one["nodes"] == 1 and one["edges"] == 0 and one["avg_path_length"] == 0
    assert not graphs.hh_graph_mask(GraphSpec("ws"), 2, 0.5, seed=0).any()


def test_sampled_properties_above_exact_limit(monkeypatch):
    m = graphs.hh_graph_mask(GraphSpec("ws", 0.1), 120, 0.05, seed=3)
    exact = graphs.graph_properties(m)
    monkeypatch.setattr(graphs, "EXACT_MAX_NODES", 50)
    monkeypatch.setattr(graphs, "SAMPLE_SOURCES", 60)
    sampled = graphs.graph_properties(m)
    for k in ("nodes", "edges", "density", "clustering"):
        assert sampled[k] == exact[k]
    for k in ("mean_betweenness", "avg_path_length"):
        assert sampled[k] == pytest.approx(exact[k], rel=0.1)


def test_spec_validation_and_hashing():
    spec = make_spec(3, 20, 2, densities=0.3)
    a = spec.replace(hh_graph=GraphSpec("ws", 0.2))
    assert a == spec.replace(hh_graph=GraphSpec("ws", 0.2)) and hash(a) == hash(
        spec.replace(hh_graph=GraphSpec("ws", 0.2))
    )
    assert a != spec.replace(hh_graph=GraphSpec("er"))
    with pytest.raises(ValueError, match="hh_graph.kind"):
        GraphSpec("lattice")
    with pytest.raises(ValueError, match="hh_graph.beta"):
        GraphSpec("ws", beta=1.5)
    with pytest.raises(ValueError, match="hh_graph"):
        spec.replace(hh_graph="ws")


def test_init_uses_graph_mask_at_true_size_and_padding():
    spec = make_spec(4, 30, 3, densities=0.4, init_std=0.1).replace(hh_graph=GraphSpec("er"))
    arrays = init_model(spec, seed=9, padded_hidden_dim=37)
    hh = arrays.masks["hh"]
    np.testing.assert_array_equal(hh[:30, :30], graphs.hh_graph_mask(spec.hh_graph, 30, 0.4, 9))
    assert not hh[30:].any() and not hh[:, 30:].any()
    w = arrays.params["W_hh"]
    assert (w[~hh] == 0).all() and (w[hh] != 0).all()
    # The other blocks are exactly those of the same spec without a graph.
    plain = init_model(spec.replace(hh_graph=None), seed=9, padded_hidden_dim=37)
    for b in ("hx", "hy", "yx", "yh", "yy"):
        np.testing.assert_array_equal(arrays.masks[b], plain.masks[b])
        np.testing.assert_array_equal(arrays.params[f"W_{b}"], plain.params[f"W_{b}"])


def test_graph_columns():
    spec = make_spec(4, 30, 3, densities=0.4)
    plain = spec_columns(spec, seed=1)
    assert plain["hh_graph"] is None and all(np.isnan(plain[c]) for c in GRAPH_COLUMNS if c != "hh_graph")
    cols = spec_columns(spec.replace(hh_graph=GraphSpec("ws", 0.3)), seed=1)
    assert cols["hh_graph"] == "ws" and cols["hh_graph_beta"] == 0.3 and cols["graph_nodes"] == 30
    props = graphs.graph_properties(graphs.hh_graph_mask(GraphSpec("ws", 0.3), 30, 0.4, 1))
    assert all(cols[f"graph_{k}"] == props[k] for k in graphs.GRAPH_PROPERTIES)
    assert np.isnan(spec_columns(spec.replace(hh_graph=GraphSpec("er")), seed=1)["hh_graph_beta"])


def test_graph_spec_trains_in_the_engine(tmp_path):
    members = toy_members(4, max_hidden=30)
    kinds = ["er", "ws", "ba", None]
    members = [
        dataclasses.replace(
            m, spec=m.spec.replace(hidden_dim=max(m.spec.hidden_dim, 8), hh_graph=GraphSpec(k, 0.2) if k else None)
        )
        for m, k in zip(members, kinds)
    ]
    cfg = TrainConfig(epochs=2, batch_size=16, eval_batch_size=48, max_buckets=1, steps_per_call=3)
    df = run_sweep(
        members, toy_task(), toy_data(), toy_data(48, seed=1), cfg, tmp_path, progress=False, log=lambda _: None
    )
    assert all(c in df.columns for c in GRAPH_COLUMNS)
    last = df[df.epoch == 2].set_index("model_id").sort_index()
    assert [None if pd.isna(k) else k for k in last["hh_graph"]] == kinds
    for m in members[:3]:
        row = last.loc[m.model_id]
        props = graphs.hh_graph_properties(m.spec.hh_graph, m.spec.hidden_dim, m.spec.blocks["hh"].density, m.seed)
        assert row["graph_nodes"] == m.spec.hidden_dim and row["graph_edges"] == props["edges"]
        masks = init_model(m.spec, m.seed).masks
        assert row["trainable_params_exact"] == sum(int(masks[b].sum()) for b in BLOCKS)  # counts the graph's entries
        assert row["val_loss"] < df[(df.model_id == m.model_id) & (df.epoch == 1)]["val_loss"].iloc[0] * 1.05
    assert np.isnan(last.loc[3, "graph_edges"])
    on_disk = pd.read_parquet(tmp_path / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, df)


def test_graph_regression_recovers_planted_relation():
    from sparse_rnn_jax.analysis.graph_regression import GRAPH_FEATURES, fit_graph_regression, has_graph_columns

    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        n = int(rng.integers(20, 70))
        density = float(rng.uniform(0.05, 0.5))
        kind = ["er", "ws", "ba"][i % 3]
        props = graphs.graph_properties(graphs.hh_graph_mask(GraphSpec(kind, 0.2), n, density, i))
        row = {f"graph_{k}": v for k, v in props.items()}
        # Planted: loss falls with the number of nodes and rises with clustering.
        row.update(
            hh_graph=kind,
            density_hh=density,
            min_val_loss=2.0 - 0.02 * n + 1.5 * props["clustering"] + rng.normal(0, 0.02),
        )
        rows.append(row)
    models = pd.DataFrame(rows)
    assert has_graph_columns(models) and not has_graph_columns(models.assign(hh_graph=None))
    reg = fit_graph_regression(models, trees=100, max_depth=8, folds=5, compare_hyperparameters=False)
    assert reg.n_models == 80 and reg.feature_names[: len(GRAPH_FEATURES)] == GRAPH_FEATURES
    assert reg.r2 > 0.8, reg.r2
    assert set(reg.importances.index[:2]) == {"graph_nodes", "graph_clustering"}
    noise = models.assign(min_val_loss=rng.normal(size=len(models)))
    assert fit_graph_regression(noise, trees=100, folds=5, compare_hyperparameters=False).r2 < 0.3
