"""hh masks from random graphs on the hidden units, and the graph properties used as features.

A ``spec.GraphSpec`` on a ``NetworkSpec`` replaces the uniform hh mask by the adjacency of a random
networkx graph on the h hidden units (node i = hidden unit i), drawn from the model's own seed
(``graph_seed``; networkx generators take an integer seed, so the graph is reproducible for a given
networkx version). The graph's size parameter is chosen so that the mask's density, entries / h², is
close to the hh density of the spec:

* ``er``  Erdos-Renyi G(n, p) with p = density (``networkx.gnp_random_graph``); realised density
  about p (h - 1) / h, since the diagonal stays empty.
* ``ws``  Watts-Strogatz (``networkx.watts_strogatz_graph``): a ring where each node links to its k/2
  nearest neighbours on each side, each edge rewired with probability beta; k = 2 round(density h / 2),
  clipped to [2, h - 1] (k even; the density is then k / h). The graph may be disconnected.
* ``ba``  Barabasi-Albert (``networkx.barabasi_albert_graph``): m(h - m) edges (a star of m + 1 nodes,
  then every new node attaches m edges), density 2 m (h - m) / h², at most 1/2 (m = h/2); m is the
  integer in [1, h - 1] whose density is nearest the target, so hh densities above 0.5 give ~0.5.

**Undirected graphs map to the directed hh mask in both directions**: an edge {i, j} makes W_hh[i, j]
and W_hh[j, i] trainable. **No self-loops**: the diagonal of a graph hh mask is False (networkx's
generators make simple graphs). Graphs on 1 or 2 units may have no edge at all (an all-zero hh block);
the ``mask_mode`` of a sweep does not apply to a graph mask.

Properties (``graph_properties``) of the undirected graph of a mask (edge {i, j} when mask[i, j] or
mask[j, i], i != j), as ``GRAPH_PROPERTIES``:

  nodes, edges              h and the number of undirected edges
  density                   networkx's graph density 2 edges / (h (h - 1))
  mean_betweenness          networkx's normalised betweenness centrality averaged over all nodes
  clustering                networkx's ``average_clustering`` (nodes of degree < 2 count as 0)
  avg_path_length           average shortest-path length within the largest connected component
                            (the one with the lowest node index on ties; 0 for a single node)

They are computed with numpy/scipy, not networkx, using the identity
sum_v betweenness(v) = sum over connected pairs (d(s, t) - 1), so mean betweenness =
sum over ordered connected pairs (d - 1) / (h (h - 1) (h - 2)) comes from the same breadth-first distances
as the path length (tests compare every property with networkx). Up to ``EXACT_MAX_NODES`` units
every distance is computed; above, breadth-first searches start from ``SAMPLE_SOURCES`` sources drawn
without replacement (the analogue of networkx's ``betweenness_centrality(k=...)``), which estimates both
distance-based properties without bias; nodes, edges, density and clustering stay exact.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from sparse_rnn_jax.core.rng import derived_seed
from sparse_rnn_jax.core.spec import GRAPH_KINDS, GraphSpec

GRAPH_PROPERTIES: tuple[str, ...] = ("nodes", "edges", "density", "mean_betweenness", "clustering", "avg_path_length")
GRAPH_COLUMNS: tuple[str, ...] = ("hh_graph", "hh_graph_beta") + tuple(f"graph_{p}" for p in GRAPH_PROPERTIES)
"""The results-table columns of a model's hh graph (``graph_columns``)."""
EXACT_MAX_NODES = 500
SAMPLE_SOURCES = 500


def graph_seed(seed: int) -> int:
    """The integer seed of a model's hh graph, derived from the model's seed."""
    return derived_seed(seed, 1, 0x6EA9)


def size_parameter(kind: str, n: int, density: float) -> float:
    """The generator's size parameter for a target mask density: p (er), k (ws) or m (ba)."""
    if kind == "er":
        return float(min(max(density, 0.0), 1.0))
    if kind == "ws":
        half = int(round(density * n / 2))
        return int(min(max(2 * half, 2), n - 1)) if n >= 3 else 0
    if kind == "ba":
        if n < 2:
            return 0
        ms = np.arange(1, n)
        return int(ms[np.argmin(np.abs(2 * ms * (n - ms) / n**2 - density))])
    raise ValueError(f"graph kind must be one of {GRAPH_KINDS}, got {kind!r}")


def random_graph(kind: str, n: int, density: float, seed: int, beta: float = 0.1):
    """A networkx graph of ``kind`` on nodes 0..n-1 whose mask density is near ``density`` (module docstring)."""
    import networkx as nx

    param = size_parameter(kind, n, density)
    if kind == "er":
        return nx.gnp_random_graph(n, param, seed=seed)
    if kind == "ws":
        return nx.watts_strogatz_graph(n, param, beta, seed=seed) if param >= 2 else nx.empty_graph(n)
    return nx.barabasi_albert_graph(n, param, seed=seed) if param >= 1 else nx.empty_graph(n)


def adjacency_mask(graph, n: int) -> np.ndarray:
    """bool[n, n], True in both directions of every edge of an undirected graph on nodes 0..n-1."""
    mask = np.zeros((n, n), bool)
    edges = np.asarray(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    mask[edges[:, 0], edges[:, 1]] = True
    mask[edges[:, 1], edges[:, 0]] = True
    np.fill_diagonal(mask, False)
    return mask


def hh_graph_mask(graph: GraphSpec, hidden_dim: int, density: float, seed: int) -> np.ndarray:
    """bool[hidden_dim, hidden_dim]: the hh mask of a model with this graph, hh density and seed."""
    g = random_graph(graph.kind, int(hidden_dim), float(density), graph_seed(seed), float(graph.beta))
    return adjacency_mask(g, int(hidden_dim))


def graph_properties(mask: np.ndarray, seed: int = 0) -> dict[str, float]:
    """``GRAPH_PROPERTIES`` of the undirected graph of ``mask: bool[n, n]`` (module docstring); ``seed``
    picks the sampled sources above ``EXACT_MAX_NODES`` nodes."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components, shortest_path

    mask = np.asarray(mask, bool)
    n = mask.shape[0]
    if mask.shape != (n, n):
        raise ValueError(f"mask must be square, got shape {mask.shape}")
    adj = mask | mask.T
    np.fill_diagonal(adj, False)
    degree = adj.sum(axis=1)
    edges = int(degree.sum()) // 2
    a = adj.astype(np.float32)
    triangles = ((a @ a) * a).sum(axis=1) / 2.0  # triangles through each node (exact integers in float32)
    pairs = degree * (degree - 1) / 2.0
    clustering = float(np.where(pairs > 0, triangles / np.maximum(pairs, 1), 0.0).mean()) if n else 0.0

    graph = csr_matrix(adj)
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    largest = np.flatnonzero(labels == int(np.argmax(sizes)))
    exact = n <= EXACT_MAX_NODES
    rng = np.random.default_rng([int(seed), 0xB7])
    sources = np.arange(n) if exact else np.sort(rng.choice(n, SAMPLE_SOURCES, replace=False))
    dist = shortest_path(graph, method="D", unweighted=True, directed=False, indices=sources)
    finite = np.isfinite(dist) & (dist > 0)
    # Sum over ordered connected pairs (s, t), s != t, of d(s, t) - 1, scaled from the sampled sources.
    interior = float(np.where(finite, dist - 1.0, 0.0).sum()) * n / len(sources)
    mean_betweenness = interior / (n * (n - 1) * (n - 2)) if n > 2 else 0.0

    c = len(largest)
    if c < 2:
        avg_path = 0.0
    elif exact:
        avg_path = float(dist[np.ix_(largest, largest)].sum()) / (c * (c - 1))
    else:
        lcc_sources = np.sort(rng.choice(largest, min(SAMPLE_SOURCES, c), replace=False))
        d = shortest_path(graph, method="D", unweighted=True, directed=False, indices=lcc_sources)[:, largest]
        avg_path = float(d.sum()) / (len(lcc_sources) * (c - 1))
    return {
        "nodes": float(n),
        "edges": float(edges),
        "density": 2.0 * edges / (n * (n - 1)) if n > 1 else 0.0,
        "mean_betweenness": mean_betweenness,
        "clustering": clustering,
        "avg_path_length": avg_path,
    }


@functools.lru_cache(maxsize=4096)
def hh_graph_properties(graph: GraphSpec, hidden_dim: int, density: float, seed: int) -> dict[str, float]:
    """``graph_properties`` of the realised hh mask of a model (cached per graph, size, density and seed)."""
    return graph_properties(hh_graph_mask(graph, hidden_dim, density, seed), seed)


def empty_properties() -> dict[str, float]:
    """NaN for every property (a model without a graph)."""
    return {p: math.nan for p in GRAPH_PROPERTIES}


def graph_columns(graph: GraphSpec | None, hidden_dim: int, density: float, seed: int | None = None) -> dict:
    """``GRAPH_COLUMNS`` of a model: its hh graph's kind and the properties of the graph drawn from ``seed``
    (NaN when there is no graph, or no seed is given)."""
    props = (
        empty_properties()
        if graph is None or seed is None
        else hh_graph_properties(graph, hidden_dim, density, int(seed))
    )
    row = {
        "hh_graph": None if graph is None else graph.kind,
        "hh_graph_beta": float(graph.beta) if graph is not None and graph.kind == "ws" else float("nan"),
    }
    row.update({f"graph_{p}": props[p] for p in GRAPH_PROPERTIES})
    return row
