"""The paper's findings beside ours, with seeds and 95 % intervals: Table IV cells and their order, the Fig. 1
ordering of the named configurations on RAD, the Adroit Hammer named configurations, and the parent network's
cross-validated R2.

Every comparison is of per-model (or per-seed) numbers: a mean with its 95 % t-interval (``tables.t_interval``),
and, for a pair of configurations, the difference of means with a Welch 95 % interval; a difference whose
interval contains 0 is reported as "within noise".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sparse_rnn_jax.analysis.tables import PAPER_TABLES, UC, bucket_summary, t_interval
from sparse_rnn_jax.core.accounting import BUCKET_LABELS

PAPER_FIG1_ORDER: tuple[str, ...] = ("balanced", "eqn8", "dense", "uniform", "lstm", "eqn7")
"""The paper's Fig. 1/2 on RAD, best first: balanced > eqn8 > dense ~ uniform > LSTM, eqn7 far worse."""
PAPER_FIG1_TIES: tuple[tuple[str, str], ...] = (("dense", "uniform"),)
PAPER_AH_BEST = "eqn7"
"""The paper's Eqn 7 configuration was the best of its mixed configurations on Adroit Hammer."""


def difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict:
    """mean(a) - mean(b) with a Welch ``level`` interval and the Welch t-test p-value (NaN with < 2 values each)."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {
        "n_a": a.size,
        "n_b": b.size,
        "diff": float(a.mean() - b.mean()) if a.size and b.size else math.nan,
        "low": math.nan,
        "high": math.nan,
        "p": math.nan,
    }
    if a.size < 2 or b.size < 2:
        return out
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return {**out, "low": out["diff"], "high": out["diff"], "p": 0.0 if out["diff"] else 1.0}
    df = (va + vb) ** 2 / ((va**2 / (a.size - 1)) + (vb**2 / (b.size - 1)))
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    p = float(2 * stats.t.sf(abs(out["diff"]) / se, df))
    return {**out, "low": out["diff"] - half, "high": out["diff"] + half, "p": p}


def verdict(d: dict, higher_is_better: bool = True) -> str:
    """ "reproduces" when the interval of (first - second) lies above 0 (below, for losses), "reversed" when on the
    other side, "within noise" when it contains 0."""
    if not math.isfinite(d["low"]):
        return "too few values"
    low, high = (d["low"], d["high"]) if higher_is_better else (-d["high"], -d["low"])
    return "reproduces" if low > 0 else "reversed" if high < 0 else "within noise"


def table_iv_beside_paper(models: pd.DataFrame, table: str = "IV") -> pd.DataFrame:
    """Per metric (hidden proportion, model density) and cell: our n, mean, 95 % interval, uc marker and share at
    chance beside the paper's published mean. ``models``: ``convergence.classify``'s per-model rows."""
    rows = []
    for metric in ("hidden_proportion", "model_density"):
        summary = bucket_summary(models, metric)
        for k, (_, r) in enumerate(summary.iterrows()):
            paper = PAPER_TABLES[table][metric][k]
            rows.append(
                {
                    "metric": metric,
                    "cell": BUCKET_LABELS[k],
                    "n": int(r["n"]),
                    "mean": r["mean"],
                    "ci95_low": r.get("ci95_low", math.nan),
                    "ci95_high": r.get("ci95_high", math.nan),
                    "uc": bool(r["uc"]),
                    "share_at_chance": r["at_chance_fraction"],
                    "paper": math.nan if paper == UC else float(paper),
                    "paper_uc": paper == UC,
                }
            )
    return pd.DataFrame(rows)


def row_spearman(beside: pd.DataFrame) -> pd.DataFrame:
    """Per metric: Spearman's rank correlation of our cell means with the paper's, over the cells where both have
    a number, and how many cells that is."""
    out = []
    for metric, g in beside.groupby("metric", sort=False):
        ok = g["mean"].notna() & g["paper"].notna() & (g["n"] > 0)
        rho = stats.spearmanr(g.loc[ok, "mean"], g.loc[ok, "paper"]).statistic if ok.sum() >= 3 else math.nan
        out.append({"metric": metric, "spearman": float(rho), "cells": int(ok.sum())})
    return pd.DataFrame(out)


def config_summary(models: pd.DataFrame, value: str, configs: Sequence[str] | None = None) -> pd.DataFrame:
    """Per configuration: n (seeds), mean and 95 % interval of ``value`` (one number per model)."""
    configs = list(configs or sorted(models["config"].unique()))
    rows = []
    for c in configs:
        v = models.loc[models["config"] == c, value].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        low, high = t_interval(v)
        rows.append(
            {
                "config": c,
                "n": v.size,
                "mean": float(v.mean()) if v.size else math.nan,
                "ci95_low": low,
                "ci95_high": high,
            }
        )
    return pd.DataFrame(rows)


def ordering_checks(
    models: pd.DataFrame,
    value: str,
    order: Sequence[str],
    ties: Sequence[tuple[str, str]] = (),
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Each adjacent pair of the paper's ``order`` (best first), and each pair in ``ties`` (claimed equal): the
    difference of means with its Welch interval and the verdict; a claimed tie "reproduces" when its interval
    contains 0."""
    present = [c for c in order if (models["config"] == c).any()]
    tied = {frozenset(t) for t in ties}
    rows = []
    for a, b in zip(present[:-1], present[1:]):
        d = difference(*(models.loc[models["config"] == c, value].to_numpy(dtype=float) for c in (a, b)))
        claim = "≈" if frozenset((a, b)) in tied else ">"
        v = verdict(d, higher_is_better)
        if claim == "≈":
            v = "reproduces (within noise)" if v == "within noise" else f"not a tie ({v})"
        rows.append({"pair": f"{a} {claim} {b}", **d, "verdict": v})
    return pd.DataFrame(rows)


def epoch_checks(
    rows: pd.DataFrame, a: str, b: str, metric: str = "val_accuracy", higher_is_better: bool = True
) -> pd.DataFrame:
    """Configuration ``a`` against ``b`` at every epoch (per-epoch rows of the results table): the difference of
    their models' mean ``metric`` with its Welch interval and the verdict; how fast each converges."""
    out = []
    for epoch, g in rows.groupby("epoch", sort=True):
        d = difference(*(g.loc[g["config"] == c, metric].to_numpy(dtype=float) for c in (a, b)))
        out.append({"epoch": int(epoch), "pair": f"{a} vs {b}", **d, "verdict": verdict(d, higher_is_better)})
    return pd.DataFrame(out)


def fmt_interval(mean: float, low: float, high: float, digits: int = 3) -> str:
    """ "m [lo, hi]" (just "m" without an interval)."""
    if not math.isfinite(mean):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown(frame: pd.DataFrame, columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """A small markdown table of ``columns`` (floats to 3 decimals)."""
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in frame.iterrows():
        cells = []
        for c in columns:
            v = r[c]
            cells.append(
                f"{v:.3f}"
                if isinstance(v, (float, np.floating)) and math.isfinite(v)
                else "-"
                if isinstance(v, (float, np.floating))
                else str(v)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _models(results_dir):
    """(per-epoch rows, classified per-model rows, the task's failure rule) of one run."""
    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.engine.results import final_per_model, read_results

    rows = read_results([results_dir])
    models, rules = classify(final_per_model(rows))
    return rows, models, next(iter(rules.values()))


def _parent_r2(models: pd.DataFrame, rule, folds: int, trees: int, seed: int) -> dict:
    """k-fold R2 of the paper's random forest (depth 10) on the run's models: pooled, per fold, and the fold
    mean's 95 % interval."""
    from sparse_rnn_jax.analysis.predictor import PAPER_MAX_DEPTH, cv_forest, regression_data

    sampled = models[~models["config"].isin(PAPER_FIG1_ORDER + ("uniform",))]
    score, _ = cv_forest(regression_data(sampled, rule), folds, trees, PAPER_MAX_DEPTH, seed)
    low, high = t_interval(np.asarray(score.r2_folds))
    return {
        "models": len(sampled),
        "folds": folds,
        "trees": trees,
        "r2": score.r2,
        "r2_fold_mean": float(np.mean(score.r2_folds)),
        "ci95_low": low,
        "ci95_high": high,
        "spearman": score.spearman,
    }


def write_report(
    out, table_iv=None, fig1=None, ah=None, folds: int = 5, trees: int = 1000, seed: int = 0, log=print
) -> Path:
    """``out/replication.md`` (and CSVs and figures beside it) from the runs given: a Table IV run (its cells beside
    the paper's, the rows' Spearman, the parent network's R2), a Fig. 1 run (named configs on RAD, several seeds:
    curves, summary and the paper's ordering) and an Adroit Hammer named-config run (returns per config and eqn7's
    comparisons). Returns the markdown's path."""
    from sparse_rnn_jax.analysis.figures import curves_by_config, table_beside_paper

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    md = ["# Replication at CPU scale", ""]
    if table_iv is not None:
        rows, models, rule = _models(table_iv)
        beside = table_iv_beside_paper(models)
        beside.to_csv(out / "table_iv_lite.csv", index=False)
        rho = row_spearman(beside)
        fig = table_beside_paper(
            beside, rule.chance, out / "figures" / "table_iv_lite.png", f"Table IV: {len(models):,} models"
        )
        md += [
            f"## Table IV (lite): {len(models):,} models, `{table_iv}`",
            "",
            f"![Table IV beside the paper's](figures/{fig.name})",
            "",
            "Minimum validation loss per cell: our mean [95 % t-interval] (n), the share of models at chance, and "
            "the paper's published mean. `uc` marks a cell whose loss is not meaningful (more than 25 % of its "
            "models exploded).",
            "",
        ]
        beside["ours"] = [
            fmt_interval(r["mean"], r["ci95_low"], r["ci95_high"]) + (" uc" if r["uc"] else "")
            for _, r in beside.iterrows()
        ]
        beside["paper_text"] = ["uc" if r["paper_uc"] else f"{r['paper']:.3f}" for _, r in beside.iterrows()]
        md += [
            markdown(
                beside,
                ["metric", "cell", "n", "ours", "share_at_chance", "paper_text"],
                ["metric", "cell", "n", "ours [95 % CI]", "at chance", "paper"],
            ),
            "",
        ]
        md += [
            "Spearman rank correlation of each row's cell means with the paper's (over cells both fill):",
            "",
            markdown(rho, ["metric", "spearman", "cells"]),
            "",
        ]
        log("table IV: fitting the parent network's cross-validation")
        r2 = _parent_r2(models, rule, folds, trees, seed)
        md += [
            f"Parent network (random forest, {r2['trees']} trees of depth 10, {r2['folds']}-fold cross-validation "
            f"on the {r2['models']:,} sampled models): pooled R2 {r2['r2']:.3f}; per-fold mean "
            f"{fmt_interval(r2['r2_fold_mean'], r2['ci95_low'], r2['ci95_high'])}; Spearman {r2['spearman']:.3f}.",
            "",
        ]
    if fig1 is not None:
        rows, models, rule = _models(fig1)
        metric = "best_val_accuracy" if np.isfinite(models["best_val_accuracy"]).any() else "min_val_loss"
        higher = metric == "best_val_accuracy"
        fig = curves_by_config(rows, rule, out / "figures" / "fig1_cpu.png", "Fig. 1 at CPU scale (RAD, ~100k)")
        summary = config_summary(models, metric, [c for c in PAPER_FIG1_ORDER if (models["config"] == c).any()])
        final = config_summary(
            models.assign(final=models.get("val_accuracy", models["final_val_loss"])), "final", list(summary["config"])
        )
        summary["best"] = [fmt_interval(*r) for r in summary[["mean", "ci95_low", "ci95_high"]].to_numpy()]
        summary["last"] = [fmt_interval(*r) for r in final[["mean", "ci95_low", "ci95_high"]].to_numpy()]
        checks = ordering_checks(models, metric, PAPER_FIG1_ORDER, PAPER_FIG1_TIES, higher_is_better=higher)
        checks["difference"] = [fmt_interval(*r) for r in checks[["diff", "low", "high"]].to_numpy()]
        md += [
            f"## Fig. 1 at CPU scale: `{fig1}`",
            "",
            f"![Fig. 1 at CPU scale](figures/{fig.name})",
            "",
            f"{metric.replace('_', ' ')} per configuration (mean [95 % CI] over seeds) and at the last epoch:",
            "",
            markdown(summary, ["config", "n", "best", "last"]),
            "",
            "The paper's ordering, pair by pair (difference of means, Welch 95 % interval):",
            "",
            markdown(checks, ["pair", "difference", "p", "verdict"]),
            "",
        ]
        if metric == "best_val_accuracy" and {"balanced", "eqn8"} <= set(models["config"]):
            speed = epoch_checks(rows, "balanced", "eqn8")
            speed["difference"] = [fmt_interval(*r) for r in speed[["diff", "low", "high"]].to_numpy()]
            md += [
                "The paper also finds the balanced network converging faster than the tuned eqn8 one; validation "
                "accuracy of balanced minus eqn8 at every epoch:",
                "",
                markdown(speed, ["epoch", "difference", "p", "verdict"]),
                "",
            ]
            speed.to_csv(out / "fig1_balanced_vs_eqn8.csv", index=False)
        summary.to_csv(out / "fig1_configs.csv", index=False)
        checks.to_csv(out / "fig1_ordering.csv", index=False)
    if ah is not None:
        rows, models, rule = _models(ah)
        configs = [c for c in ("eqn7", "eqn8", "dense", "uniform", "balanced") if (models["config"] == c).any()]
        parts = []
        for value, label, higher in (("eval_return_mean", "return", True), ("min_val_loss", "min val loss", False)):
            if value not in models or not np.isfinite(models[value]).any():
                continue
            s = config_summary(models, value, configs)
            s["text"] = [
                fmt_interval(*r, digits=1 if higher else 4) for r in s[["mean", "ci95_low", "ci95_high"]].to_numpy()
            ]
            parts.append((label, s, higher, value))
        md += [f"## Adroit Hammer named configurations: `{ah}`", ""]
        for label, s, higher, value in parts:
            md += [
                f"{label} per configuration (mean [95 % CI] over seeds):",
                "",
                markdown(s, ["config", "n", "text"], ["config", "n", label]),
                "",
            ]
            others = [c for c in configs if c != PAPER_AH_BEST]
            checks = pd.DataFrame(
                [
                    {
                        "pair": f"{PAPER_AH_BEST} vs {c}",
                        **difference(
                            models.loc[models["config"] == PAPER_AH_BEST, value].to_numpy(float),
                            models.loc[models["config"] == c, value].to_numpy(float),
                        ),
                    }
                    for c in others
                ]
            )
            checks["verdict"] = [verdict(r, higher) for _, r in checks.iterrows()]
            checks["difference"] = [
                fmt_interval(*r, digits=1 if higher else 4) for r in checks[["diff", "low", "high"]].to_numpy()
            ]
            md += [
                f"eqn7 against each other configuration ({label}):",
                "",
                markdown(checks, ["pair", "difference", "p", "verdict"]),
                "",
            ]
        fig = curves_by_config(rows, rule, out / "figures" / "ah_named.png", "Adroit Hammer named configurations")
        md += [f"![Adroit Hammer named configurations](figures/{fig.name})", ""]
    path = out / "replication.md"
    path.write_text("\n".join(md))
    return path
