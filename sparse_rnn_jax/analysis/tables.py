"""The paper's Tables III/IV: minimum validation loss summarised by bucket of a [0, 1] metric.

Each model's minimum validation loss (over epochs, capped as in ``convergence``) is grouped by its hidden
proportion (Eqn 12) or its model density (trainable / all weight-space entries; the paper calls this
"model sparsity") into the buckets < .2, .2-.4, .4-.6, .6-.8, >= .8, and summarised by mean with its count and
95 % t-interval, the standard deviation, the inter-quartile range, the share of models at chance and the share
that exploded. Every non-empty cell shows its mean and n; ``uc`` (``convergence.is_uc``) is a marker beside the
number, e.g. "1.431 uc (n=16)".

The paper's published values (MISSION.md section 7) are kept here and shown beside ours only when a run is the
paper's experiment (``paper_table_id``: task, environment, dims, budget and sampler match).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.convergence import is_uc
from sparse_rnn_jax.core.accounting import BUCKET_LABELS, bucket_index
from sparse_rnn_jax.core.configs import NAMED_CONFIGS
from sparse_rnn_jax.core.samplers import SAMPLERS

METRIC_LABELS: dict[str, str] = {
    "hidden_proportion": "Hidden proportion",
    "model_density": "Model density (paper: model sparsity)",
}
UC = "uc"
EMPTY = "-"
MIN_CI_MODELS = 3
"""Fewer models than this: no 95 % interval (a t-interval on 2 values spans +-12.7 standard errors)."""

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
PAPER_EXPERIMENTS: dict[str, dict] = {
    "IV": {
        "task": "rad",
        "environment": None,
        "dims": (2500, 10),
        "budget": PAPER_RAD_BUDGET,
        "samplers": ("normal_size", "uniform_size"),
        "text": "RAD, 2,500 -> 10, ~50,000 trainable weights, sampled by normal_size (or uniform_size)",
    },
    "III": {
        "task": "ah",
        "environment": "AdroitHandHammer-v1",
        "dims": (46, 26),
        "budget": None,
        "samplers": ("normal",),
        "text": "Adroit Hammer (AdroitHandHammer-v1), 46 -> 26, sampled by normal, trainable count free",
    },
}
"""What makes a run the paper's experiment: task, environment (None: the task has none), dims, budget (median
trainable weights of the sampled models within ``PAPER_BUDGET_TOLERANCE``; None: free) and the samplers."""


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` t-interval of the mean of ``values`` (NaN, NaN for fewer than 2 values)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.nan, math.nan
    half = float(t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()) - half, float(v.mean()) + half


def _flags(models: pd.DataFrame, name: str) -> np.ndarray:
    return models[name].to_numpy(dtype=bool) if name in models else np.zeros(len(models), bool)


def bucket_summary(models: pd.DataFrame, metric: str, value: str = "capped_min_val_loss") -> pd.DataFrame:
    """One row per bucket of ``metric``: n, mean, ci95_low, ci95_high, median, std, iqr, n_failed,
    failed_fraction, n_at_chance, at_chance_fraction, n_exploded, exploded_fraction, uc.

    ``models`` holds one row per model with ``metric``, ``value`` and the flags of ``convergence.classify``
    (``failed``, ``at_chance``, ``exploded``; absent flags count as False). Statistics are over the models with
    a finite ``value``; ``std`` is the sample standard deviation; the interval is the t-interval of the mean.
    """
    idx = bucket_index(models[metric])
    vals = models[value].to_numpy(dtype=float)
    failed, at_chance, exploded = (_flags(models, f) for f in ("failed", "at_chance", "exploded"))
    rows = []
    for k, label in enumerate(BUCKET_LABELS):
        sel = idx == k
        v = vals[sel & np.isfinite(vals)]
        n = int(sel.sum())
        counts = {f: int(flag[sel].sum()) for f, flag in (("failed", failed), ("at_chance", at_chance))}
        n_exploded = int(exploded[sel].sum())
        q1, q3 = np.quantile(v, [0.25, 0.75]) if v.size else (math.nan, math.nan)
        low, high = t_interval(v) if v.size >= MIN_CI_MODELS else (math.nan, math.nan)
        rows.append(
            {
                "bucket": label,
                "n": n,
                "mean": float(v.mean()) if v.size else math.nan,
                "ci95_low": low,
                "ci95_high": high,
                "median": float(np.median(v)) if v.size else math.nan,
                "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                "iqr": float(q3 - q1),
                "n_failed": counts["failed"],
                "failed_fraction": counts["failed"] / n if n else math.nan,
                "n_at_chance": counts["at_chance"],
                "at_chance_fraction": counts["at_chance"] / n if n else math.nan,
                "n_exploded": n_exploded,
                "exploded_fraction": n_exploded / n if n else math.nan,
                "uc": is_uc(n, n_exploded),
            }
        )
    return pd.DataFrame(rows).set_index("bucket")


def paper_table_id(models: pd.DataFrame, environment: str | None = None) -> str | None:
    """ "IV" or "III" when one experiment's per-model rows are the paper's experiment (``PAPER_EXPERIMENTS``:
    task, environment, dims, budget and the samplers of the sampled models all match), else None.

    ``environment`` defaults to the rows' ``environment`` column (the report's; None when absent).
    """
    why = paper_mismatch(models, environment)
    return next((table for table, reason in why.items() if reason is None), None)


def paper_mismatch(models: pd.DataFrame, environment: str | None = None) -> dict[str, str | None]:
    """For each of the paper's tables, None when ``models`` are its experiment, else the first difference."""
    out: dict[str, str | None] = {}
    if environment is None and "environment" in models and len(models):
        env = models["environment"].iloc[0]
        environment = None if env is None or (isinstance(env, float) and math.isnan(env)) else str(env)
    for table, exp in PAPER_EXPERIMENTS.items():
        out[table] = _mismatch(models, exp, environment)
    return out


def _mismatch(models: pd.DataFrame, exp: Mapping, environment: str | None) -> str | None:
    if models.empty:
        return "no models"
    task = str(models["task"].iloc[0])
    if task != exp["task"]:
        return f"task {task}, not {exp['task']}"
    if exp["environment"] is not None and environment != exp["environment"]:
        return f"environment {environment or 'unknown'}, not {exp['environment']}"
    dims = {(int(a), int(b)) for a, b in zip(models["input_dim"], models["output_dim"])}
    if dims != {exp["dims"]}:
        shown = ", ".join(f"{a} -> {b}" for a, b in sorted(dims))
        return f"dims {shown}, not {exp['dims'][0]} -> {exp['dims'][1]}"
    # "uniform" names both a named config and a sampler; the paper's samplers are not named configs.
    sampled = models[models["config"].isin(SAMPLERS) & ~models["config"].isin(NAMED_CONFIGS)]
    if sampled.empty:
        return "no sampled models"
    samplers = sorted(set(sampled["config"]))
    if not set(samplers) <= set(exp["samplers"]):
        return f"sampler {', '.join(samplers)}, not {' / '.join(exp['samplers'])}"
    if exp["budget"] is not None:
        median = float(np.median(sampled["trainable_params"].to_numpy(dtype=float)))
        if abs(median - exp["budget"]) > PAPER_BUDGET_TOLERANCE * exp["budget"]:
            return f"median {median:,.0f} trainable weights, not ~{exp['budget']:,}"
    return None


def _fmt(x: float, digits: int = 3) -> str:
    return EMPTY if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def cell_text(row: pd.Series, digits: int = 3) -> str:
    """The table's headline cell: "mean (n=N)", "mean uc (n=N)" when uc, or "-" for an empty bucket."""
    if row["n"] == 0:
        return EMPTY
    return f"{_fmt(row['mean'], digits)}{' ' + UC if row['uc'] else ''} (n={int(row['n'])})"


def _share(row: pd.Series, name: str) -> str:
    return f"{row[name]:.0%}" if row["n"] else EMPTY


def markdown_table(
    summaries: Mapping[str, pd.DataFrame],
    paper: str | None = None,
    digits: int = 3,
    at_chance: str = "at chance",
    paper_label: str | None = None,
) -> str:
    """The paper's layout: one block of rows per metric (mean with n and the uc marker; the published row when
    ``paper`` names Table III or IV, labelled ``paper_label`` (default "paper, Table N"); 95 % CI; the share of
    models ``at_chance``; the share that exploded)."""
    header = "| metric | " + " | ".join(BUCKET_LABELS) + " |"
    lines = [header, "|---|" + "---|" * len(BUCKET_LABELS)]
    for metric, s in summaries.items():
        label = METRIC_LABELS.get(metric, metric)
        ci = [
            f"[{_fmt(r['ci95_low'], digits)}, {_fmt(r['ci95_high'], digits)}]" if np.isfinite(r["ci95_low"]) else EMPTY
            for _, r in s.iterrows()
        ]
        rows = [
            (f"**{label}** — mean min val loss", [cell_text(r, digits) for _, r in s.iterrows()]),
            ("  95 % CI of the mean (t)", ci),
            (f"  {at_chance}", [_share(r, "at_chance_fraction") for _, r in s.iterrows()]),
            ("  exploded, non-finite or diverged", [_share(r, "exploded_fraction") for _, r in s.iterrows()]),
        ]
        if paper is not None and metric in PAPER_TABLES[paper]:
            published = [v if isinstance(v, str) else f"{v:.3f}" for v in PAPER_TABLES[paper][metric]]
            rows.insert(1, (f"  {paper_label or f'paper, Table {paper}'}", published))
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
