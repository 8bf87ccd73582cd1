"""The results table of a sweep: one row per (model, epoch), written atomically as parquet.

Columns (``RESULT_COLUMNS``):
  model_id int          index of the model in the sweep (stable across reruns)
  bucket int            hidden-size bucket the model trained in
  seed int              the model's own seed (masks and initial weights)
  config str            named configuration ("dense", "balanced", ...) or the sampler's name
  task str              "rad", "ah", ...
  epoch int             1-based epoch
  train_loss float      mean training loss over the epoch's minibatches
  val_loss float        validation loss after the epoch (cross-entropy for RAD, MSE for AH)
  val_accuracy float    validation accuracy (NaN where the task has none)
  diverged bool         the model hit a non-finite loss or weight at or before this epoch (then frozen)
  hidden_dim, input_dim, output_dim int
  trainable_params float  expected trainable weights (Eqn 11, biases excluded)
  trainable_params_exact int  counted from the realised masks
  model_density float   trainable / all weight-space entries (the paper's "model sparsity")
  hidden_proportion float  Eqn 12
  learning_rate float
  activation str
  density_{hx,hh,hy,yx,yh,yy}, init_mean_{...}, init_std_{...} float
  leak_mode str, leak_alpha float  leaky block RNNs (``leaky.LeakySpec``): fixed | learned | gated and α (or α0);
                        "none" and NaN for every other model
  hh_graph str|None     random-graph kind of the hh mask ("er", "ws", "ba"; ``graphs``), None without one
  hh_graph_beta float   the Watts-Strogatz rewiring probability (NaN unless hh_graph is "ws")
  graph_{nodes,edges,density,mean_betweenness,clustering,avg_path_length} float  properties of the realised
                        hh graph (``graphs.graph_properties``; NaN without a graph)
Per-model scores from environment rollouts (Adroit Hammer) live in ``scores.parquet``, keyed by model_id.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Iterable

import pandas as pd
from etils import epath

from sparse_rnn_jax.accounting import expected_accounting
from sparse_rnn_jax.cells import CellSpec, cell_counts
from sparse_rnn_jax.leaky import LeakySpec
from sparse_rnn_jax.graphs import GRAPH_PROPERTIES, empty_properties, hh_graph_properties
from sparse_rnn_jax.spec import BLOCKS

SPEC_COLUMNS: tuple[str, ...] = (
    ("hidden_dim", "input_dim", "output_dim", "trainable_params", "model_density", "hidden_proportion", "learning_rate", "activation")
    + tuple(f"density_{b}" for b in BLOCKS)
    + tuple(f"init_mean_{b}" for b in BLOCKS)
    + tuple(f"init_std_{b}" for b in BLOCKS)
    + ("leak_mode", "leak_alpha")
)
GRAPH_COLUMNS: tuple[str, ...] = ("hh_graph", "hh_graph_beta") + tuple(f"graph_{p}" for p in GRAPH_PROPERTIES)
RESULT_COLUMNS: tuple[str, ...] = (
    "model_id", "bucket", "seed", "config", "task", "epoch", "train_loss", "val_loss", "val_accuracy", "diverged",
    "trainable_params_exact",
) + SPEC_COLUMNS + GRAPH_COLUMNS
HYPERPARAMETER_FEATURES: tuple[str, ...] = (
    tuple(f"density_{b}" for b in BLOCKS)
    + tuple(f"init_mean_{b}" for b in BLOCKS)
    + tuple(f"init_std_{b}" for b in BLOCKS)
    + ("learning_rate",)
)
"""The paper's 19 hyperparameters; with ``hidden_proportion`` they are the parent network's 20 features."""


def graph_columns(spec, seed: int | None = None) -> dict:
    """``GRAPH_COLUMNS`` of a model: its hh graph's kind and the properties of the graph drawn from ``seed``
    (NaN when the spec has no graph, or no seed is given)."""
    graph = getattr(spec, "hh_graph", None)
    if graph is None or seed is None:
        props = empty_properties()
    else:
        props = hh_graph_properties(graph, spec.hidden_dim, spec.blocks["hh"].density, int(seed))
    row = {
        "hh_graph": None if graph is None else graph.kind,
        "hh_graph_beta": float(graph.beta) if graph is not None and graph.kind == "ws" else float("nan"),
    }
    row.update({f"graph_{p}": props[p] for p in GRAPH_PROPERTIES})
    return row


def spec_columns(spec, seed: int | None = None) -> dict:
    """The spec's columns of the results table, ``graph_columns(spec, seed)`` included. A baseline cell
    (``cells.CellSpec``) has no blocks: its density, init mean and init std columns are NaN, its model
    density 1 and its hidden proportion weights(W_h) / (weights(W_i) + weights(W_h)) (see ``cells``)."""
    if isinstance(spec, LeakySpec):  # the base's columns, the leak mode and α, counts with a gate's weights
        return {**spec_columns(spec.base, seed), **spec.result_columns()}
    if isinstance(spec, CellSpec):
        counts = cell_counts(spec.cell, spec.input_dim, spec.hidden_dim, spec.output_dim)
        row = {
            "hidden_dim": spec.hidden_dim, "input_dim": spec.input_dim, "output_dim": spec.output_dim,
            "trainable_params": float(counts.weights), "model_density": 1.0,
            "hidden_proportion": counts.hidden_proportion, "learning_rate": spec.learning_rate,
            "activation": spec.activation,
        }
        row.update({c: float("nan") for c in SPEC_COLUMNS if c.startswith(("density_", "init_mean_", "init_std_"))})
        row.update(leak_mode="none", leak_alpha=float("nan"))
        row.update(graph_columns(spec, seed))
        return row
    acc = expected_accounting(spec)
    row = {
        "hidden_dim": spec.hidden_dim,
        "input_dim": spec.input_dim,
        "output_dim": spec.output_dim,
        "trainable_params": acc.trainable_params,
        "model_density": acc.model_density,
        "hidden_proportion": acc.hidden_proportion,
        "learning_rate": spec.learning_rate,
        "activation": spec.activation,
    }
    for b in BLOCKS:
        row[f"density_{b}"] = spec.blocks[b].density
        row[f"init_mean_{b}"] = spec.blocks[b].init_mean
        row[f"init_std_{b}"] = spec.blocks[b].init_std
    row.update(leak_mode="none", leak_alpha=float("nan"))
    row.update(graph_columns(spec, seed))
    return row


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a cloud URL (gs://, s3://, ...) rather than a local path."""
    return "://" in os.fspath(path)


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Writes ``data`` to ``path`` whole or not at all: locally via a temporary file in the same folder and an
    atomic rename; on a cloud store (gs://) as one object upload, which is atomic there."""
    if is_remote(path):
        target = epath.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Writes ``df`` to ``path`` (local or gs://) atomically."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_bytes_atomic(buf.getvalue(), path)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a parquet file from a local path or a cloud URL."""
    return pd.read_parquet(io.BytesIO(epath.Path(path).read_bytes()))


def read_results(dirs: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Concatenates ``results.parquet`` of each workdir (adds a ``run`` column naming the folder) and joins
    ``scores.parquet`` where present."""
    frames = []
    for d in dirs:
        d = epath.Path(d)
        path = d / "results.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no results.parquet in {d}")
        df = read_parquet(path)
        scores = d / "scores.parquet"
        if scores.is_file():
            df = df.merge(read_parquet(scores), on="model_id", how="left")
        df.insert(0, "run", str(d))
        frames.append(df)
    if not frames:
        raise ValueError("no results folders given")
    return pd.concat(frames, ignore_index=True)


def final_per_model(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, model): spec columns, ``min_val_loss`` over epochs, final epoch's metrics,
    ``diverged`` at the end, and ``val_loss_epoch_{k}`` curves."""
    keys = ["run", "model_id"] if "run" in df.columns else ["model_id"]
    df = df.sort_values(keys + ["epoch"])
    g = df.groupby(keys, sort=True)
    last = g.tail(1).set_index(keys)
    last = last.assign(
        min_val_loss=g["val_loss"].min(),
        best_val_accuracy=g["val_accuracy"].max(),
        final_val_loss=last["val_loss"],
        epochs=g["epoch"].max(),
    )
    curves = df.pivot_table(index=keys, columns="epoch", values="val_loss")
    curves.columns = [f"val_loss_epoch_{int(c)}" for c in curves.columns]
    return last.join(curves).reset_index()
