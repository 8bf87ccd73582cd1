"""Table III/IV cells estimated under the drawn population, with intervals that survive a bimodal distribution.

A run's networks fall into strata (``core.strata``: hidden-proportion cell x model-density cell). A network of
stratum s stands for ``N_s / n_s`` networks of the population (``N_s`` drawn, ``n_s`` trained: a stratified
run's subsample; an unstratified run has ``N_s = n_s``, weight 1). A cell's estimate is the weighted mean of its
networks (the post-stratification estimator: sum over its strata of N_s x the stratum's mean, over sum of N_s),
and its 95 % interval the percentile interval of a stratified bootstrap (each stratum resampled with replacement
at its own size), so the at-chance spike and the learners' tail are resampled as they are, without a normal
approximation. The share of networks at chance is estimated the same way, beside every mean.

Between neighbouring cells of a row: the difference of their estimates with its bootstrap interval and a
two-sided bootstrap p-value; a section's p-values are Holm-corrected (``holm``). The order of a row against the
paper's: Spearman's rho of the cell means with the paper's, with the bootstrap distribution's 95 % interval.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sparse_rnn_jax.core.accounting import BUCKET_LABELS, bucket_index
from sparse_rnn_jax.core.strata import Stratum

METRICS: tuple[str, ...] = ("hidden_proportion", "model_density")
N_BOOT = 2000
"""Bootstrap resamples of every interval."""


def strata_of(models: pd.DataFrame) -> list[Stratum]:
    """Each network's stratum from its ``hidden_proportion`` and ``model_density`` columns (expected accounting,
    as the sampler saw it)."""
    hp = bucket_index(models["hidden_proportion"].to_numpy(float))
    md = bucket_index(models["model_density"].to_numpy(float))
    return [(int(a), int(b)) for a, b in zip(hp, md)]


def stratum_weights(models: pd.DataFrame, population_counts: Mapping[Stratum, int] | None) -> np.ndarray:
    """Each network's post-stratification weight ``N_s / n_s`` (1 everywhere without ``population_counts``).
    A network of a stratum the population does not hold gets weight 0."""
    strata = strata_of(models)
    if population_counts is None:
        return np.ones(len(models))
    sampled: dict[Stratum, int] = {}
    for s in strata:
        sampled[s] = sampled.get(s, 0) + 1
    return np.array([population_counts.get(s, 0) / sampled[s] for s in strata], dtype=float)


def _groups(strata: Sequence[Stratum]) -> list[np.ndarray]:
    keys: dict[Stratum, list[int]] = {}
    for i, s in enumerate(strata):
        keys.setdefault(s, []).append(i)
    return [np.asarray(v) for v in keys.values()]


def bootstrap_indices(strata: Sequence[Stratum], n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` stratified resamples: int[n_boot, n] of row indices, each stratum resampled within itself."""
    rng = np.random.default_rng(seed)
    groups = _groups(strata)
    out = np.empty((n_boot, len(strata)), dtype=np.int64)
    col = 0
    for g in groups:
        out[:, col : col + g.size] = g[rng.integers(0, g.size, size=(n_boot, g.size))]
        col += g.size
    return out


def _bin_means(
    values: np.ndarray, weights: np.ndarray, bins: np.ndarray, n_bins: int, idx: np.ndarray | None
) -> np.ndarray:
    """float[B, n_bins] (B = 1 without ``idx``) weighted means per bin; NaN where a bin has no weight."""
    if idx is None:
        idx = np.arange(values.size)[None, :]
    v, w, c = values[idx], weights[idx], bins[idx]
    out = np.full((idx.shape[0], n_bins), np.nan)
    for k in range(n_bins):
        wk = np.where(c == k, w, 0.0)
        tot = wk.sum(axis=1)
        out[:, k] = np.where(tot > 0, (wk * v).sum(axis=1) / np.where(tot > 0, tot, 1.0), np.nan)
    return out


def binned_estimates(
    models: pd.DataFrame,
    bins: np.ndarray,
    labels: Sequence[str],
    population_counts: Mapping[Stratum, int] | None = None,
    value: str = "capped_min_val_loss",
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
    weights: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per bin (``bins``: each network's bin index, 0..len(labels)-1): ``n`` (trained), ``population`` (the drawn
    networks it stands for), ``mean`` (the weighted estimate of ``value``) with ``ci95_low``/``ci95_high``, and
    ``at_chance`` (the weighted share of networks at chance, ``models["at_chance"]``) with its interval. Also
    returns the bootstrap means, float[n_boot, bins], for tests between bins. Networks with a non-finite
    ``value`` are left out. ``weights`` overrides the post-stratification weights (e.g. those of a larger set
    that ``models`` is a part of)."""
    keep = np.isfinite(models[value].to_numpy(float))
    m = models.loc[keep]
    bins = np.asarray(bins)[keep]
    strata = strata_of(m)
    weights = stratum_weights(m, population_counts) if weights is None else np.asarray(weights, float)[keep]
    values = m[value].to_numpy(float)
    chance = m["at_chance"].to_numpy(float) if "at_chance" in m else np.zeros(len(m))
    idx = bootstrap_indices(strata, n_boot, seed)
    k_bins = len(labels)
    boot = _bin_means(values, weights, bins, k_bins, idx)
    boot_chance = _bin_means(chance, weights, bins, k_bins, idx)
    point = _bin_means(values, weights, bins, k_bins, None)[0]
    point_chance = _bin_means(chance, weights, bins, k_bins, None)[0]
    lo, hi = 50 * (1 - level), 50 * (1 + level)

    def pct(b: np.ndarray, q: float, n: int) -> float:
        b = b[np.isfinite(b)]
        return float(np.percentile(b, q)) if n > 1 and b.size else math.nan

    rows = []
    for k, label in enumerate(labels):
        n = int((bins == k).sum())
        rows.append(
            {
                "cell": label,
                "n": n,
                "population": float(weights[bins == k].sum()),
                "mean": float(point[k]),
                "ci95_low": pct(boot[:, k], lo, n),
                "ci95_high": pct(boot[:, k], hi, n),
                "at_chance": float(point_chance[k]),
                "at_chance_low": pct(boot_chance[:, k], lo, n),
                "at_chance_high": pct(boot_chance[:, k], hi, n),
            }
        )
    return pd.DataFrame(rows), boot


def cell_estimates(
    models: pd.DataFrame,
    population_counts: Mapping[Stratum, int] | None = None,
    metric: str = "hidden_proportion",
    **options,
) -> tuple[pd.DataFrame, np.ndarray]:
    """``binned_estimates`` over the five Table III/IV cells of ``metric`` (``options``: its value, n_boot, seed,
    level and weights)."""
    bins = bucket_index(models[metric].to_numpy(float))
    return binned_estimates(models, bins, BUCKET_LABELS, population_counts, **options)


def neighbour_tests(cells: pd.DataFrame, boot: np.ndarray, level: float = 0.95) -> pd.DataFrame:
    """Each pair of neighbouring non-empty cells: the difference (right minus left) of their estimates, its
    bootstrap interval and two-sided bootstrap p-value (twice the smaller tail share of the difference's
    resamples beyond 0, at least 1 / resamples)."""
    filled = [k for k in range(len(cells)) if cells["n"].iloc[k] > 1 and np.isfinite(cells["mean"].iloc[k])]
    out = []
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    for a, b in zip(filled[:-1], filled[1:]):
        d = boot[:, b] - boot[:, a]
        d = d[np.isfinite(d)]
        p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())) if d.size else math.nan
        out.append(
            {
                "pair": f"{cells['cell'].iloc[a]} -> {cells['cell'].iloc[b]}",
                "diff": float(cells["mean"].iloc[b] - cells["mean"].iloc[a]),
                "low": float(np.percentile(d, lo)) if d.size else math.nan,
                "high": float(np.percentile(d, hi)) if d.size else math.nan,
                "p": max(float(p), 1.0 / max(d.size, 1)) if d.size else math.nan,
            }
        )
    return pd.DataFrame(out, columns=["pair", "diff", "low", "high", "p"])


def spearman_interval(cells: pd.DataFrame, boot: np.ndarray, paper: Sequence[float], level: float = 0.95) -> dict:
    """Spearman's rho of the cell means with the ``paper``'s (NaN entries: uc cells, left out) over the cells both
    fill, and the percentile interval of rho over the bootstrap cell means."""
    paper = np.asarray([p if isinstance(p, (int, float)) else math.nan for p in paper], dtype=float)
    ok = np.isfinite(paper) & np.isfinite(cells["mean"].to_numpy(float)) & (cells["n"].to_numpy() > 1)
    if ok.sum() < 3:
        return {"spearman": math.nan, "low": math.nan, "high": math.nan, "cells": int(ok.sum())}
    rho = float(stats.spearmanr(cells["mean"].to_numpy(float)[ok], paper[ok]).statistic)
    b = boot[:, ok]
    b = b[np.isfinite(b).all(axis=1)]
    rhos = np.array([stats.spearmanr(r, paper[ok]).statistic for r in b])
    rhos = rhos[np.isfinite(rhos)]
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    return {
        "spearman": rho,
        "low": float(np.percentile(rhos, lo)) if rhos.size else math.nan,
        "high": float(np.percentile(rhos, hi)) if rhos.size else math.nan,
        "cells": int(ok.sum()),
    }


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error) of ``p``, in the given order; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = order.size, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def run_population_counts(workdir) -> dict[Stratum, int] | None:
    """The drawn population's networks per stratum of a stratified run (rebuilt from its run.json: the draw is
    deterministic from the recorded config), None for a run that trained its whole draw."""
    from sparse_rnn_jax.engine.members import stratified_members
    from sparse_rnn_jax.run.config import RunConfig
    from sparse_rnn_jax.run.train import read_record

    record = read_record(workdir)
    if not record or "config" not in record:
        return None
    config = RunConfig.from_dict(record["config"])
    if config.population.stratify == "none":
        return None
    input_dim, output_dim = config.task_def.dims(config.data)
    return stratified_members(config.population, config.train.seed, input_dim, output_dim).population_counts
