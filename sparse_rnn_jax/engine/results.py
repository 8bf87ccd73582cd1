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
  leak_mode str, leak_alpha float  leaky block RNNs (``core.leaky_spec.LeakySpec``): fixed | learned | gated and
                        α (or α0);
                        "none" and NaN for every other model
  hh_graph str|None     random-graph kind of the hh mask ("er", "ws", "ba"; ``models.graphs``), None without one
  hh_graph_beta float   the Watts-Strogatz rewiring probability (NaN unless hh_graph is "ws")
  graph_{nodes,edges,density,mean_betweenness,clustering,avg_path_length} float  properties of the realised
                        hh graph (``models.graphs.graph_properties``; NaN without a graph)
Per-model scores from environment rollouts (Adroit Hammer) live in ``scores.parquet``, keyed by model_id.
The spec columns come from each model's family (``Family.result_columns``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable

import pandas as pd
from etils import epath

from sparse_rnn_jax.engine.workdir import RESULTS_FILE, RUN_FILE, SCORES_FILE, read_parquet, write_parquet_atomic
from sparse_rnn_jax.models.family import SPEC_COLUMNS
from sparse_rnn_jax.models.graphs import GRAPH_COLUMNS
from sparse_rnn_jax.models.registry import family_of

RESULT_COLUMNS: tuple[str, ...] = (
    (
        "model_id",
        "bucket",
        "seed",
        "config",
        "task",
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "diverged",
        "trainable_params_exact",
    )
    + SPEC_COLUMNS
    + GRAPH_COLUMNS
)


def spec_columns(spec, seed: int | None = None) -> dict:
    """The spec's columns of the results table (its family's ``result_columns``), graph properties of the hh
    graph drawn from ``seed`` included."""
    return family_of(spec).result_columns(spec, seed)


@dataclasses.dataclass
class ResultsTable:
    """The results table in memory, keyed by (model_id, epoch); ``merge`` rewrites ``path`` atomically when
    ``write`` (the lead process of a multi-process run)."""

    path: epath.Path
    frame: pd.DataFrame
    write: bool = True

    @classmethod
    def load(cls, path: epath.Path, write: bool = True) -> "ResultsTable":
        """The table at ``path`` (empty with ``RESULT_COLUMNS`` when there is none)."""
        frame = read_parquet(path) if path.is_file() else pd.DataFrame(columns=list(RESULT_COLUMNS))
        return cls(path, frame, write)

    def done_epochs(self, model_id: int) -> int:
        """The last epoch recorded for ``model_id`` (0 when none)."""
        rows = self.frame.loc[self.frame["model_id"] == model_id, "epoch"]
        return int(rows.max()) if len(rows) else 0

    def merge(self, rows: list[dict]) -> None:
        """Adds or replaces rows keyed by (model_id, epoch) and rewrites the file atomically."""
        new = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        frame = new if self.frame.empty else pd.concat([self.frame, new], ignore_index=True)
        frame = frame.drop_duplicates(["model_id", "epoch"], keep="last").sort_values(["model_id", "epoch"])
        self.frame = frame.reset_index(drop=True)
        if self.write:
            write_parquet_atomic(self.frame, self.path)


def read_results(dirs: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Concatenates ``results.parquet`` of each workdir (adds a ``run`` column naming the folder and a
    ``chance_loss`` column, the task's chance loss from its run.json, NaN without one) and joins
    ``scores.parquet`` where present."""
    frames = []
    for d in dirs:
        d = epath.Path(d)
        path = d / RESULTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {RESULTS_FILE} in {d}")
        df = read_parquet(path)
        scores = d / SCORES_FILE
        if scores.is_file():
            df = df.merge(read_parquet(scores), on="model_id", how="left")
        df.insert(0, "run", str(d))
        record = json.loads((d / RUN_FILE).read_text()) if (d / RUN_FILE).is_file() else {}
        chance = record.get("chance_loss") if isinstance(record, dict) else None
        df["chance_loss"] = float(chance) if isinstance(chance, (int, float)) else float("nan")
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
