"""The paper's Tables III/IV: minimum validation loss summarised by bucket of a [0, 1] metric.

Each model's minimum validation loss (over epochs, capped as in ``convergence``) is grouped by its hidden
proportion (Eqn 12) or its model density (trainable / all weight-space entries; the paper calls this
"model sparsity") into the buckets < .2, .2-.4, .4-.6, .6-.8, >= .8, and summarised by mean, with the
count, the standard deviation, the inter-quartile range and the share of models that failed to
converge. A cell is ``uc`` by ``convergence.is_uc``.

The paper's published values (MISSION.md section 7) are kept here and shown beside ours when a run is
the paper's experiment: task ``rad`` at ~50,000 trainable weights -> Table IV; task ``ah`` sampled with
``normal`` -> Table III.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.convergence import is_uc

BUCKET_EDGES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
BUCKET_LABELS: tuple[str, ...] = ("< .2", ".2–.4", ".4–.6", ".6–.8", "≥ .8")
METRIC_LABELS: dict[str, str] = {
    "hidden_proportion": "Hidden proportion",
    "model_density": "Model density (paper: model sparsity)",
}
UC = "uc"
EMPTY = "-"

PAPER_TABLES: dict[str, dict] = {
    "III": {
        "caption": "Table III — Adroit Hammer, 2,083 models, trainable count free",
        "hidden_proportion": (0.071, 0.069, 0.068, UC, UC),
        "model_density": (0.068, UC, UC, UC, UC),
    },
    "IV": {
        "caption": "Table IV — RAD, 3,254 models at ~50k trainable",
        "hidden_proportion": (1.791, 1.351, 1.352, 1.373, 1.431),
        "model_density": (1.381, 1.511, 1.810, 2.026, 2.091),
    },
}
PAPER_RAD_BUDGET = 50_000
PAPER_BUDGET_TOLERANCE = 0.05


def bucket_index(values: np.ndarray | pd.Series) -> np.ndarray:
    """Bucket 0..4 of each value in [0, 1] (< .2, .2-.4, .4-.6, .6-.8, >= .8)."""
    return np.digitize(np.asarray(values, dtype=float), BUCKET_EDGES)


def bucket_summary(models: pd.DataFrame, metric: str, value: str = "capped_min_val_loss") -> pd.DataFrame:
    """One row per bucket of ``metric``: n, n_failed, failed_fraction, mean, median, std, iqr, uc.

    ``models`` holds one row per model with ``metric``, ``value`` and ``failed`` (``convergence.classify``).
    Statistics are over the models with a finite ``value``; ``std`` is the sample standard deviation.
    """
    idx = bucket_index(models[metric])
    vals = models[value].to_numpy(dtype=float)
    failed = models["failed"].to_numpy(dtype=bool) if "failed" in models else np.zeros(len(models), bool)
    rows = []
    for k, label in enumerate(BUCKET_LABELS):
        sel = idx == k
        v = vals[sel & np.isfinite(vals)]
        n, n_failed = int(sel.sum()), int(failed[sel].sum())
        q1, q3 = np.quantile(v, [0.25, 0.75]) if v.size else (math.nan, math.nan)
        rows.append(
            {
                "bucket": label,
                "n": n,
                "n_failed": n_failed,
                "failed_fraction": n_failed / n if n else math.nan,
                "mean": float(v.mean()) if v.size else math.nan,
                "median": float(np.median(v)) if v.size else math.nan,
                "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                "iqr": float(q3 - q1),
                "uc": is_uc(n, n_failed),
            }
        )
    return pd.DataFrame(rows).set_index("bucket")


def paper_table_id(models: pd.DataFrame) -> str | None:
    """ "IV" for a RAD sweep at ~50k trainable weights, "III" for an AH sweep sampled with ``normal``, else None.

    ``models`` holds one task's per-model rows.
    """
    if models.empty:
        return None
    task = str(models["task"].iloc[0])
    if task == "rad":
        median = float(np.median(models["trainable_params"].to_numpy(dtype=float)))
        if abs(median - PAPER_RAD_BUDGET) <= PAPER_BUDGET_TOLERANCE * PAPER_RAD_BUDGET:
            return "IV"
    if task == "ah" and (models["config"] == "normal").mean() > 0.5:
        return "III"
    return None


def _fmt(x: float, digits: int = 3) -> str:
    return EMPTY if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def cell_text(row: pd.Series, digits: int = 3) -> str:
    """The table's headline cell: the mean, ``uc``, or ``-`` for an empty bucket."""
    if row["n"] == 0:
        return EMPTY
    return UC if row["uc"] else _fmt(row["mean"], digits)


def markdown_table(summaries: Mapping[str, pd.DataFrame], paper: str | None = None, digits: int = 3) -> str:
    """The paper's layout: one block of rows per metric (mean; n; std; IQR; failed) with the
    published row beside it when ``paper`` names Table III or IV."""
    header = "| metric | " + " | ".join(BUCKET_LABELS) + " |"
    lines = [header, "|---|" + "---|" * len(BUCKET_LABELS)]
    for metric, s in summaries.items():
        label = METRIC_LABELS.get(metric, metric)
        rows = [
            (f"**{label}** — mean min val loss", [cell_text(r, digits) for _, r in s.iterrows()]),
            ("  n models", [str(int(r["n"])) for _, r in s.iterrows()]),
            ("  std", [_fmt(r["std"], digits) for _, r in s.iterrows()]),
            ("  IQR", [_fmt(r["iqr"], digits) for _, r in s.iterrows()]),
            ("  failed to converge", [f"{r['failed_fraction']:.0%}" if r["n"] else EMPTY for _, r in s.iterrows()]),
        ]
        if paper is not None and metric in PAPER_TABLES[paper]:
            published = [v if isinstance(v, str) else f"{v:.3f}" for v in PAPER_TABLES[paper][metric]]
            rows.insert(1, (f"  paper, Table {paper}", published))
        for name, cells in rows:
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summaries_frame(summaries: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All summaries in one long frame (metric, bucket, statistics), for CSV."""
    frames = [s.reset_index().assign(metric=m) for m, s in summaries.items()]
    out = pd.concat(frames, ignore_index=True)
    return out[["metric"] + [c for c in out.columns if c != "metric"]]


def score_summary(models: pd.DataFrame, columns: Sequence[str], metric: str = "hidden_proportion") -> pd.DataFrame:
    """Mean and count of environment-score ``columns`` per bucket of ``metric`` (rows without a score skipped)."""
    idx = bucket_index(models[metric])
    rows = []
    for k, label in enumerate(BUCKET_LABELS):
        sel = idx == k
        row = {"bucket": label}
        for c in columns:
            v = models.loc[sel, c].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            row[f"{c}_mean"] = float(v.mean()) if v.size else math.nan
            row[f"{c}_n"] = int(v.size)
        rows.append(row)
    return pd.DataFrame(rows).set_index("bucket")
