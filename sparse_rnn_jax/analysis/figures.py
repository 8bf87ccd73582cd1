"""The paper's figures as PNG files (matplotlib's Agg canvas; no pyplot state).

* ``curves_by_config``          validation accuracy (or loss) per epoch per config, mean and sd over models (Fig. 1/2)
* ``curves_by_hidden_proportion`` every model's curve coloured by hidden-proportion band (Fig. 6)
* ``weight_space``              proportional drawings of the weight space with trainable counts (Fig. 3-5, 7a, 9a)
* ``loss_vs_metrics``           minimum validation loss against hidden proportion, model density and the
                                dominant block's density (Fig. 7b, 8, 9b)
* ``predicted_vs_actual``       the parent network's held-out predictions (Fig. 10)
* ``feature_importance``        the forest's feature importances
* ``scores_vs_hidden_proportion`` environment scores against hidden proportion

Each function writes one PNG and returns its path. Losses are drawn capped (``convergence``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from sparse_rnn_jax.analysis.convergence import FailureRule, cap_curves
from sparse_rnn_jax.analysis.tables import BUCKET_EDGES, BUCKET_LABELS, bucket_index, bucket_summary
from sparse_rnn_jax.core.spec import BLOCKS, TOP_ROW

DPI = 110
CONFIG_COLOURS: dict[str, str] = {
    # The paper's Fig. 1/2 colours where it names them.
    "balanced": "#ff7f0e",  # orange
    "eqn8": "#800000",  # maroon (tuned)
    "dense": "#006400",  # dark green
    "uniform": "#74c476",  # light green
    "lstm": "#7b3294",  # purple
    "eqn7": "#1f77b4",  # blue
    "gru": "#e377c2",
    "rnn_tanh": "#8c564b",
    "rnn_relu": "#7f7f7f",
}
_SPARE_COLOURS = ("#17becf", "#bcbd22", "#d62728", "#9467bd", "#2ca02c", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5")
CONFIG_ORDER = ("balanced", "eqn8", "dense", "uniform", "eqn7", "lstm", "gru", "rnn_tanh", "rnn_relu")
BAND_COLOURS = ("#d7191c", "#f17c2a", "#c9a400", "#4a9fd4", "#1c4f9c")  # hidden-proportion bands, low red -> high blue
DOMINANT_COLOUR = "#1f77b4"
MIN_COLUMN_SHARE = 0.14
MIN_ROW_SHARE = 0.22
"""Weight-space drawings: a column (row) narrower than this share of the total width (height) is widened
to it, so the thin |y| (and small |h|) blocks stay readable; labels give the true dims."""


def config_colours(configs: Sequence[str]) -> dict[str, str]:
    """A colour for every config name: the paper's for named ones, distinct spares for the rest."""
    spare = itertools.cycle(_SPARE_COLOURS)
    return {c: CONFIG_COLOURS.get(c) or next(spare) for c in configs}


def ordered_configs(configs: Sequence[str]) -> list[str]:
    """Named configurations in the figures' order, then any others alphabetically."""
    known = [c for c in CONFIG_ORDER if c in configs]
    return known + sorted(c for c in set(configs) if c not in CONFIG_ORDER)


def save_figure(fig: Figure, path: Path) -> Path:
    """Writes ``fig`` as a PNG at ``path`` (folders created) and returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def curve_metric(rows: pd.DataFrame) -> str:
    """``val_accuracy`` when the task has one, else ``val_loss``."""
    acc = rows["val_accuracy"].to_numpy(dtype=float) if "val_accuracy" in rows else np.array([])
    return "val_accuracy" if np.isfinite(acc).any() else "val_loss"


def _curves(rows: pd.DataFrame, metric: str, rule: FailureRule) -> pd.DataFrame:
    """models x epochs table of ``metric``: losses capped (a non-finite loss drawn at the cap), accuracies
    of diverged epochs left NaN, epochs a model never reached (pooled runs of different lengths) NaN."""
    keys = ["run", "model_id"] if "run" in rows else ["model_id"]
    series = rows.set_index(keys + ["epoch"])[metric]
    table = series.unstack("epoch")
    if metric == "val_loss":
        reached = pd.Series(True, index=series.index).unstack("epoch", fill_value=False).to_numpy(dtype=bool)
        capped = np.where(reached, cap_curves(table.to_numpy(dtype=float), rule.cap), np.nan)
        table = pd.DataFrame(capped, index=table.index, columns=table.columns)
    return table


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Column means over finite entries (NaN for a column without any)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    total = np.where(finite, values, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanstd(values: np.ndarray) -> np.ndarray:
    mean = _nanmean(values)
    return np.sqrt(_nanmean((values - mean) ** 2))


def _marker_size(n: int) -> float:
    return float(np.clip(3000.0 / max(n, 1), 4, 30))


def _metric_label(metric: str) -> str:
    return {"val_accuracy": "validation accuracy", "val_loss": "validation loss (capped)"}[metric]


def curves_by_config(rows: pd.DataFrame, rule: FailureRule, path: Path, title: str = "") -> Path:
    """Fig. 1/2: mean (line) and sd (band) over models of each config's per-epoch validation metric."""
    metric = curve_metric(rows)
    fig = Figure(figsize=(9.5, 4.5))
    ax = fig.subplots()
    configs = ordered_configs(rows["config"].unique().tolist())
    colours = config_colours(configs)
    for c in configs:
        table = _curves(rows[rows["config"] == c], metric, rule)
        epochs = table.columns.to_numpy(dtype=float)
        values = table.to_numpy(dtype=float)
        mean, sd = _nanmean(values), _nanstd(values)
        ax.plot(epochs, mean, color=colours[c], lw=2, marker="o", ms=3, label=f"{c} (n={len(values)})")
        if len(values) > 1:
            ax.fill_between(epochs, mean - sd, mean + sd, color=colours[c], alpha=0.18, lw=0)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(_metric_label(metric))
    ax.set_title(title or f"{_metric_label(metric)} per epoch, mean ± sd over models", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=2 if len(configs) > 14 else 1)
    return save_figure(fig, path)


def _robust_ylim(values: np.ndarray) -> tuple[float, float] | None:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    lo, hi = np.quantile(v, [0.005, 0.995])
    pad = 0.05 * (hi - lo or abs(hi) or 1.0)
    return lo - pad, hi + pad


def curves_by_hidden_proportion(
    rows: pd.DataFrame, models: pd.DataFrame, rule: FailureRule, path: Path, title: str = ""
) -> Path:
    """Fig. 6: each model's per-epoch validation metric, coloured by its hidden-proportion band,
    with each band's mean curve drawn thick."""
    metric = curve_metric(rows)
    table = _curves(rows, metric, rule)
    keys = list(table.index.names)
    hp = models.set_index(keys)["hidden_proportion"].reindex(table.index).to_numpy(dtype=float)
    band = bucket_index(hp)
    epochs = table.columns.to_numpy(dtype=float)
    values = table.to_numpy(dtype=float)
    fig = Figure(figsize=(9.5, 4.5))
    ax = fig.subplots()
    bands = [(k, label, values[band == k]) for k, label in enumerate(BUCKET_LABELS) if (band == k).any()]
    for k, _, sel in bands:  # every model first, then the band means on top
        alpha = float(np.clip(25.0 / len(sel), 0.04, 0.6))
        segments = [np.column_stack([epochs, v]) for v in sel]
        ax.add_collection(LineCollection(segments, colors=BAND_COLOURS[k], linewidths=0.7, alpha=alpha))
    for k, label, sel in bands:
        mean = _nanmean(sel)
        ax.plot(
            epochs,
            mean,
            color=BAND_COLOURS[k],
            lw=2.5,
            label=f"hidden proportion {label} (n={len(sel)})",
            path_effects=[patheffects.withStroke(linewidth=4, foreground="black")],
        )
    ax.set_xlim(epochs.min() - 0.2, epochs.max() + 0.2)
    ylim = _robust_ylim(values)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(_metric_label(metric))
    ax.set_title(
        title or f"{_metric_label(metric)} per model by hidden-proportion band (thick: band mean)", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="thin: models; thick: mean", title_fontsize=8
    )
    return save_figure(fig, path)


def dominant_block(input_dim: int, hidden_dim: int, output_dim: int) -> str:
    """The top-row block with the most entries (hx on RAD, hh on Adroit Hammer at the sweep's sizes)."""
    entries = {"hx": input_dim, "hh": hidden_dim, "hy": output_dim}
    return max(TOP_ROW, key=lambda b: entries[b])


def drawn_shares(dims: Sequence[int], minimum: float) -> np.ndarray:
    """Shares of the drawing proportional to ``dims``, thin ones widened to ``minimum`` (the rest shrunk)."""
    dims = np.asarray(dims, dtype=float)
    share = dims / dims.sum()
    thin = np.zeros(len(share), bool)
    for _ in range(len(share)):
        thin |= share < minimum
        rest = 1.0 - minimum * thin.sum()
        share = np.where(thin, minimum, dims * rest / dims[~thin].sum() if (~thin).any() else 0.0)
    return share


def _draw_weight_space(ax, layout: Mapping, dominant: str) -> None:
    x, h, y = layout["input_dim"], layout["hidden_dim"], layout["output_dim"]
    col = dict(zip("xhy", drawn_shares([x, h, y], MIN_COLUMN_SHARE)))
    row = dict(zip("hy", drawn_shares([h, y], MIN_ROW_SHARE)))
    col_left = {"x": 0.0, "h": col["x"], "y": col["x"] + col["h"]}
    row_top = {"h": 1.0, "y": 1.0 - row["h"]}
    dims = {"x": x, "h": h, "y": y}
    for b in BLOCKS:
        r, c = b[0], b[1]
        density = float(layout["densities"][b])
        trainable = dims[r] * dims[c] * density
        left, top, w, ht = col_left[c], row_top[r], col[c], row[r]
        colour = DOMINANT_COLOUR if b == dominant else "#8c8c8c"
        ax.add_patch(
            Rectangle((left, top - ht), w, ht, facecolor=colour, alpha=0.12 + 0.6 * density, edgecolor="black", lw=1.0)
        )
        small = w < 0.25 or ht < 0.3
        ax.text(
            left + w / 2,
            top - ht / 2,
            f"{b}\n{trainable:,.0f}\nf{100 * density:02.0f}",
            ha="center",
            va="center",
            fontsize=7 if small else 9,
            linespacing=1.0,
            fontweight="bold" if b == dominant else None,
        )
    for c in "xhy":
        ax.text(col_left[c] + col[c] / 2, 1.015, f"{c}: {dims[c]:,}", ha="center", va="bottom", fontsize=7)
    for r in "hy":
        ax.text(
            -0.015, row_top[r] - row[r] / 2, f"{r}: {dims[r]:,}", ha="right", va="center", fontsize=7.5, rotation=90
        )
    ax.set_xlim(-0.06, 1.0)
    ax.set_ylim(0.0, 1.08)
    ax.set_aspect("auto")
    ax.axis("off")


def weight_space(layouts: Sequence[Mapping], path: Path, dominant: str, title: str = "") -> Path:
    """Fig. 3-5, 7a, 9a: one panel per layout (``title``, ``input_dim``, ``hidden_dim``, ``output_dim``,
    ``densities``, ``hidden_proportion``, ``trainable_params``); columns |x|, |h|, |y|, rows |h|, |y| in
    proportion (a thin row or column is widened to ``MIN_DRAWN_SHARE``), each block labelled with its
    expected trainable weights and density (f<percent>); the dominant top-row block in blue, shade ~ density."""
    n = len(layouts)
    cols = min(3, n)
    rows_n = int(np.ceil(n / cols))
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows_n))
    axes = np.atleast_1d(fig.subplots(rows_n, cols)).ravel()
    for ax, layout in zip(axes, layouts):
        _draw_weight_space(ax, layout, dominant)
        ax.set_title(
            f"{layout['title']}\n|h|={layout['hidden_dim']:,}  trainable {layout['trainable_params']:,.0f}  "
            f"hidden prop. {layout['hidden_proportion']:.2f}",
            fontsize=9,
        )
    for ax in axes[n:]:
        ax.axis("off")
    fig.suptitle(
        title or f"weight space drawn to scale (thin blocks widened; blue: dominant block {dominant})", fontsize=10
    )
    fig.tight_layout()
    return save_figure(fig, path)


def loss_vs_metrics(models: pd.DataFrame, rule: FailureRule, dominant: str, path: Path, title: str = "") -> Path:
    """Fig. 7b/8/9b: minimum validation loss (capped) of each model against hidden proportion, model
    density (the paper's model sparsity) and the dominant block's density; failed models in red, bucket
    means as black steps (dashed where the bucket is uc), the failure threshold as a dotted line."""
    panels = [
        ("hidden_proportion", "hidden proportion (Eqn 12)"),
        ("model_density", "model density (paper: model sparsity)"),
        (f"density_{dominant}", f"density of {dominant} (dominant block; paper: sparsity)"),
    ]
    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 3, sharey=True)
    loss = models["capped_min_val_loss"].to_numpy(dtype=float)
    failed = models["failed"].to_numpy(dtype=bool)
    size = _marker_size(len(models))
    for ax, (col, label) in zip(axes, panels):
        v = models[col].to_numpy(dtype=float)
        ax.scatter(v[~failed], loss[~failed], s=size, alpha=0.5, color="#2c7bb6", lw=0, label="converged")
        ax.scatter(
            v[failed], loss[failed], s=size, alpha=0.6, color="#d7191c", marker="x", lw=0.8, label="failed to converge"
        )
        s = bucket_summary(models, col)
        edges = (0.0,) + BUCKET_EDGES + (1.0,)
        for k, (_, cell) in enumerate(s.iterrows()):
            if cell["n"]:
                ax.hlines(
                    cell["mean"],
                    edges[k],
                    edges[k + 1],
                    color="black",
                    lw=2,
                    linestyles="--" if cell["uc"] else "-",
                    label="bucket mean (dashed: uc)" if k == 0 else None,
                )
        if np.isfinite(rule.threshold):
            ax.axhline(rule.threshold, color="grey", ls=":", lw=1, label="failure threshold")
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("minimum validation loss (capped)")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axes[0].legend(uniq.values(), uniq.keys(), fontsize=7.5, loc="best")
    fig.suptitle(title or "minimum validation loss per model", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def predicted_vs_actual(
    actual: np.ndarray,
    predictions: Mapping[str, tuple[np.ndarray, float, float]],
    failed: np.ndarray,
    path: Path,
    title: str = "",
) -> Path:
    """Fig. 10: out-of-fold predicted against actual minimum validation loss, one panel per model name
    (``predictions[name] = (predicted, r2, mae)``); failed models in red; the diagonal dashed."""
    n = len(predictions)
    fig = Figure(figsize=(4.6 * n, 4.3))
    axes = np.atleast_1d(fig.subplots(1, n))
    lo, hi = float(np.min(actual)), float(np.max(actual))
    for ax, (name, (pred, r2, mae)) in zip(axes, predictions.items()):
        lo, hi = min(lo, float(np.min(pred))), max(hi, float(np.max(pred)))
    pad = 0.03 * (hi - lo or 1.0)
    size = _marker_size(len(actual))
    for ax, (name, (pred, r2, mae)) in zip(axes, predictions.items()):
        ax.scatter(actual[~failed], pred[~failed], s=size, alpha=0.5, color="#2c7bb6", lw=0, label="converged")
        ax.scatter(
            actual[failed],
            pred[failed],
            s=size,
            alpha=0.6,
            color="#d7191c",
            marker="x",
            lw=0.8,
            label="failed to converge",
        )
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", ls="--", lw=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.set_xlabel("actual minimum validation loss (capped)")
        ax.set_ylabel("predicted (held-out fold)")
        ax.set_title(f"{name}: R2 {r2:.3f}, MAE {mae:.3g}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def feature_importance(importances: pd.Series, path: Path, title: str = "") -> Path:
    """Horizontal bars of the forest's impurity importances, largest on top; hidden proportion highlighted."""
    imp = importances.sort_values()
    fig = Figure(figsize=(6.5, 0.28 * len(imp) + 1.2))
    ax = fig.subplots()
    colours = ["#ff7f0e" if n == "hidden_proportion" else "#1f77b4" for n in imp.index]
    ax.barh(range(len(imp)), imp.to_numpy(), color=colours)
    ax.set_yticks(range(len(imp)))
    ax.set_yticklabels(imp.index, fontsize=8)
    ax.set_xlabel("impurity importance (sums to 1)")
    ax.set_title(title or "random forest feature importances", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def scores_vs_hidden_proportion(models: pd.DataFrame, columns: Sequence[str], path: Path, title: str = "") -> Path:
    """Environment scores (e.g. eval_return_mean, d4rl_score) per model against hidden proportion,
    failed models in red, bucket means as black steps."""
    fig = Figure(figsize=(5.2 * len(columns), 4.0))
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    hp = models["hidden_proportion"].to_numpy(dtype=float)
    failed = models["failed"].to_numpy(dtype=bool)
    idx = bucket_index(hp)
    edges = (0.0,) + BUCKET_EDGES + (1.0,)
    size = _marker_size(len(models))
    for ax, col in zip(axes, columns):
        v = models[col].to_numpy(dtype=float)
        ax.scatter(hp[~failed], v[~failed], s=size, alpha=0.5, color="#2c7bb6", lw=0, label="converged")
        ax.scatter(
            hp[failed], v[failed], s=size, alpha=0.6, color="#d7191c", marker="x", lw=0.8, label="failed to converge"
        )
        label = "bucket mean"
        for k in range(len(BUCKET_LABELS)):
            sel = (idx == k) & np.isfinite(v)
            if sel.any():
                ax.hlines(v[sel].mean(), edges[k], edges[k + 1], color="black", lw=2, label=label)
                label = None
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("hidden proportion (Eqn 12)")
        ax.set_ylabel(col)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def gradient_scales_figure(scales: pd.DataFrame, path, title: str = ""):
    """Per-lag gradient scale (log scale) against lag: one thin line per model and a thick line per group
    (its geometric mean), one panel per ``weights`` value ("initial", "trained") when the column is there.
    ``scales`` needs model_id, lag, scale and ``group`` (e.g. the family). Writes a PNG; returns its path."""
    panels = [w for w in ("initial", "trained") if "weights" in scales and w in set(scales["weights"])] or [None]
    groups = ordered_configs(sorted(set(scales["group"])))
    colours = config_colours(groups)
    fig = Figure(figsize=(5.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, panel in zip(axes, panels):
        part = scales if panel is None else scales[scales["weights"] == panel]
        for g in groups:
            rows = part[part["group"] == g]
            if rows.empty:
                continue
            for _, m in rows.groupby("model_id"):
                m = m[m["scale"] > 0].sort_values("lag")
                ax.plot(m["lag"], m["scale"], color=colours[g], lw=0.6, alpha=0.35)
            positive = rows[rows["scale"] > 0]
            mean = np.exp(np.log(positive["scale"]).groupby(positive["lag"]).mean())
            ax.plot(
                mean.index, mean.to_numpy(), color=colours[g], lw=2.2, label=f"{g} (n={rows['model_id'].nunique()})"
            )
        ax.set_yscale("log")
        ax.set_xlabel("lag k (steps before the last)")
        ax.set_title(f"{panel} weights" if panel else "", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("||dh_T / dh_{T-k}||_F / sqrt(h)  (batch mean)")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)
