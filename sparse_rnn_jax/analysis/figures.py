"""The paper's figures as PNG files (matplotlib's Agg canvas; no pyplot state).

* ``curves_by_config``          validation accuracy and loss per epoch per config: mean over the config's models with
                                a shaded 95 % t-interval (n >= ``MIN_CI_MODELS``; fewer: dashed, no interval), n in
                                the legend, the task's chance level as a dotted line (Fig. 1/2)
* ``curves_by_hidden_proportion`` every model's curve coloured by hidden-proportion band (Fig. 6)
* ``weight_space``              proportional drawings of the weight space with trainable counts (Fig. 3-5, 7a, 9a)
* ``loss_vs_metrics``           minimum validation loss against hidden proportion, model density and the
                                dominant block's density (Fig. 7b, 8, 9b)
* ``predicted_vs_actual``       the parent network's held-out predictions (Fig. 10)
* ``feature_importance``        the forest's permutation importances on held-out folds (mean ± sd)
* ``scores_vs_hidden_proportion`` environment scores against hidden proportion

Each function writes one PNG and returns its path. Losses are drawn capped (``convergence``). Colours are
colour-blind safe: Okabe & Ito's palette for the paper's named configurations and the samplers (each its own
colour and marker; eqn7 reddish purple, normal_size black), Paul Tol's muted palette for the baseline cells and
any other config.
"""

from __future__ import annotations

import itertools
import math
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
from sparse_rnn_jax.analysis.tables import MIN_CI_MODELS, bucket_summary, t_interval
from sparse_rnn_jax.core.accounting import BUCKET_EDGES, BUCKET_LABELS, bucket_index
from sparse_rnn_jax.core.spec import BLOCKS, TOP_ROW

DPI = 110
CONFIG_COLOURS: dict[str, str] = {
    # Okabe & Ito (2008), colour-blind safe, one colour per named configuration and sampler.
    "balanced": "#D55E00",  # vermillion
    "eqn8": "#0072B2",  # blue
    "dense": "#009E73",  # bluish green
    "uniform": "#E69F00",  # orange
    "eqn7": "#CC79A7",  # reddish purple
    "normal_size": "#000000",  # black
    "normal": "#000000",  # black (the AH sampler; it and normal_size are not mixed)
    "uniform_size": "#56B4E9",  # sky blue
    # Paul Tol's muted palette (colour-blind safe) for the baseline cells.
    "lstm": "#332288",  # indigo
    "gru": "#999933",  # olive
    "rnn_tanh": "#882255",  # wine
    "rnn_relu": "#44AA99",  # teal
}
_SPARE_COLOURS = ("#88CCEE", "#117733", "#DDCC77", "#AA4499", "#661100", "#6699CC", "#888888")  # Tol muted, rest
CONFIG_MARKERS: dict[str, str] = {
    "balanced": "o",
    "eqn8": "s",
    "dense": "^",
    "uniform": "v",
    "eqn7": "D",
    "normal_size": "x",
    "normal": "x",
    "uniform_size": "+",
    "lstm": "P",
    "gru": "*",
    "rnn_tanh": "h",
    "rnn_relu": "<",
}
_SPARE_MARKERS = (">", "p", "d", "H", "8", "1", "2")
CONFIG_ORDER = (
    "balanced",
    "eqn8",
    "dense",
    "uniform",
    "eqn7",
    "normal_size",
    "uniform_size",
    "normal",
    "lstm",
    "gru",
    "rnn_tanh",
    "rnn_relu",
)
BAND_COLOURS = ("#d7191c", "#f17c2a", "#c9a400", "#4a9fd4", "#1c4f9c")  # hidden-proportion bands, low red -> high blue
DOMINANT_COLOUR = "#0072B2"
CHANCE_COLOUR = "#555555"
OK_COLOUR = "#0072B2"  # converged models (Okabe-Ito blue)
FAILED_COLOUR = "#D55E00"  # failed models (Okabe-Ito vermillion)

MIN_COLUMN_SHARE = 0.03
MIN_ROW_SHARE = 0.05
"""Weight-space drawings are to scale, except that a column (row) narrower than this share of the total width
(height) is widened to it, so that it stays visible; such a dim is marked * in the drawing and the title says
so. Labels give the true dims and counts."""


def config_colours(configs: Sequence[str]) -> dict[str, str]:
    """A colour for every config name: the fixed ones above for named configs, samplers and cells, distinct
    colour-blind-safe spares for the rest."""
    spare = itertools.cycle(_SPARE_COLOURS)
    return {c: CONFIG_COLOURS.get(c) or next(spare) for c in configs}


def config_markers(configs: Sequence[str]) -> dict[str, str]:
    """A marker for every config name (the colour's second cue, for greyscale and colour-blind readers)."""
    spare = itertools.cycle(_SPARE_MARKERS)
    return {c: CONFIG_MARKERS.get(c) or next(spare) for c in configs}


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


def _scatter_converged_failed(
    ax, x: np.ndarray, y: np.ndarray, ok: np.ndarray, bad: np.ndarray, size: float | np.ndarray
) -> None:
    """Converged models (``ok``) as faint dots, failed ones (``bad``) as crosses, each labelled with its n;
    ``size``: one marker area, or one per model."""
    sized = (lambda sel: size[sel]) if np.ndim(size) else (lambda sel: size)
    ax.scatter(x[ok], y[ok], s=sized(ok), alpha=0.5, color=OK_COLOUR, lw=0, label=f"converged (n={ok.sum()})")
    ax.scatter(
        x[bad],
        y[bad],
        s=sized(bad),
        alpha=0.6,
        color=FAILED_COLOUR,
        marker="x",
        lw=0.8,
        label=f"failed to converge (n={bad.sum()})",
    )


def _marker_size(n: int) -> float:
    return float(np.clip(3000.0 / max(n, 1), 4, 30))


def _metric_label(metric: str) -> str:
    return {"val_accuracy": "validation accuracy", "val_loss": "validation loss (capped)"}[metric]


def chance_levels(rows: pd.DataFrame) -> dict[str, float]:
    """The task's chance level per curve metric: ``val_loss`` from the ``chance_loss`` column (run.json's, joined by
    ``engine.results.read_results``), and ``val_accuracy`` = 1/|y| where that chance loss is ln |y| (uniform
    guessing among |y| classes). Empty where the task has no chance loss."""
    out: dict[str, float] = {}
    if "chance_loss" not in rows:
        return out
    c = rows["chance_loss"].to_numpy(dtype=float)
    c = c[np.isfinite(c)]
    if not c.size:
        return out
    out["val_loss"] = float(c[0])
    y = int(rows["output_dim"].iloc[0]) if "output_dim" in rows and len(rows) else 0
    if y > 1 and abs(float(c[0]) - math.log(y)) < 1e-6:
        out["val_accuracy"] = 1.0 / y
    return out


def _draw_chance(ax, metric: str, chance: Mapping[str, float]) -> None:
    if metric in chance:
        what = "chance loss" if metric == "val_loss" else "chance accuracy"
        ax.axhline(chance[metric], color=CHANCE_COLOUR, ls=":", lw=1.4, label=f"{what} ({chance[metric]:.3g})")


def t_band(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``values: f[models, epochs]``: (mean, low, high) of the ``level`` t-interval
    (``tables.t_interval``) over the finite entries; the interval is NaN where a column has fewer than 2."""
    mean = _nanmean(values)
    bands = [t_interval(col[np.isfinite(col)], level) for col in np.asarray(values, dtype=float).T]
    low, high = (np.asarray(b, dtype=float) for b in zip(*bands)) if bands else (mean, mean)
    return mean, low, high


def curves_by_config(rows: pd.DataFrame, rule: FailureRule, path: Path, title: str = "") -> Path:
    """Fig. 1/2: validation accuracy (when the task has one) and validation loss per epoch of each config: the
    mean over the config's models (its seeds, or a sampler's draws) with a shaded 95 % t-interval when it has at
    least ``MIN_CI_MODELS`` models (fewer: dashed, no interval); n in the legend; the chance level dotted."""
    metrics = ["val_accuracy", "val_loss"] if curve_metric(rows) == "val_accuracy" else ["val_loss"]
    chance = chance_levels(rows)
    configs = ordered_configs(rows["config"].unique().tolist())
    colours, markers = config_colours(configs), config_markers(configs)
    fig = Figure(figsize=(5.6 * len(metrics) + 2.4, 4.5))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for c in configs:
            values = _curves(rows[rows["config"] == c], metric, rule)
            epochs = values.columns.to_numpy(dtype=float)
            values = values.to_numpy(dtype=float)
            n = len(values)
            mean, low, high = t_band(values)
            enough = n >= MIN_CI_MODELS
            if enough:
                ax.fill_between(epochs, low, high, color=colours[c], alpha=0.18, lw=0)
            ax.plot(
                epochs,
                mean,
                color=colours[c],
                lw=2,
                ls="-" if enough else "--",
                marker=markers[c],
                ms=5,
                label=f"{c} (n={n}{'' if enough else ', no CI'})",
            )
        _draw_chance(ax, metric, chance)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_metric_label(metric))
        ax.grid(alpha=0.3)
    handles, labels = axes[-1].get_legend_handles_labels()
    if len(metrics) > 1:  # the chance line of the first panel too
        more = [(h, lab) for h, lab in zip(*axes[0].get_legend_handles_labels()) if lab not in labels]
        handles, labels = handles + [h for h, _ in more], labels + [lab for _, lab in more]
    axes[-1].legend(
        handles,
        labels,
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        ncol=2 if len(configs) > 14 else 1,
        title=f"shaded: 95 % t-interval (n ≥ {MIN_CI_MODELS})",
        title_fontsize=7.5,
    )
    fig.suptitle(title or "validation metrics per epoch per config, mean and 95 % t-interval over models", fontsize=10)
    fig.tight_layout()
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
    chance = chance_levels(rows)
    _draw_chance(ax, metric, chance)
    ax.set_xlim(epochs.min() - 0.2, epochs.max() + 0.2)
    ylim = _robust_ylim(values)
    if ylim:
        lo, hi = ylim
        if metric in chance:  # keep the chance line in view
            lo, hi = min(lo, chance[metric]), max(hi, chance[metric])
        ax.set_ylim(lo, hi)
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
    wide_col = {c: d / (x + h + y) < MIN_COLUMN_SHARE for c, d in zip("xhy", (x, h, y))}
    wide_row = {r: d / (h + y) < MIN_ROW_SHARE for r, d in zip("hy", (h, y))}
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
        narrow = w < 0.12 or ht < 0.12  # a thin block: one short rotated line
        ax.text(
            left + w / 2,
            top - ht / 2,
            f"{b} {trainable:,.0f}" if narrow else f"{b}\n{trainable:,.0f}\nf{100 * density:02.0f}",
            ha="center",
            va="center",
            fontsize=6 if narrow else 7 if small else 9,
            rotation=90 if narrow and w < ht else 0,
            linespacing=1.0,
            fontweight="bold" if b == dominant else None,
        )
    for c in "xhy":
        mark = "*" if wide_col[c] else ""
        ax.text(
            col_left[c] + col[c] / 2,
            1.015,
            f"{c}: {dims[c]:,}{mark}",
            ha="center",
            va="bottom",
            fontsize=6 if col[c] < 0.1 else 7,
            rotation=90 if col[c] < 0.1 else 0,
        )
    for r in "hy":
        mark = "*" if wide_row[r] else ""
        ax.text(
            -0.015,
            row_top[r] - row[r] / 2,
            f"{r}: {dims[r]:,}{mark}",
            ha="right",
            va="center",
            fontsize=7.5,
            rotation=90,
        )
    ax.set_xlim(-0.06, 1.0)
    ax.set_ylim(0.0, 1.2)
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
        title
        or (
            f"weight space to scale (* a dim under {MIN_COLUMN_SHARE:.0%} of the width or {MIN_ROW_SHARE:.0%} of the "
            "height, widened to it)"
        ),
        fontsize=10,
    )
    from matplotlib.patches import Patch

    key = [
        Patch(facecolor=DOMINANT_COLOUR, alpha=0.72, edgecolor="black", label=f"dominant top-row block ({dominant})")
    ]
    key += [
        Patch(facecolor="#8c8c8c", alpha=0.12 + 0.6 * d, edgecolor="black", label=f"density {d:g}")
        for d in (0.1, 0.5, 1)
    ]
    fig.legend(
        handles=key,
        loc="lower center",
        ncol=4,
        fontsize=7,
        frameon=False,
        title="shade: density (f<100 x density>)",
        title_fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, path)


def loss_vs_metrics(models: pd.DataFrame, rule: FailureRule, dominant: str, path: Path, title: str = "") -> Path:
    """Fig. 7b/8/9b: minimum validation loss (capped) of each model against hidden proportion, model
    density (the paper's model sparsity) and the dominant block's density; failed models as vermillion crosses,
    bucket means as black steps (dashed where the bucket is uc), the failure threshold dash-dotted and the chance
    loss dotted."""
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
        _scatter_converged_failed(ax, v, loss, ~failed, failed, size)
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
            ax.axhline(rule.threshold, color="grey", ls="-.", lw=1, label=f"failure threshold ({rule.threshold:.3g})")
        if rule.chance is not None:
            ax.axhline(rule.chance, color=CHANCE_COLOUR, ls=":", lw=1.4, label=f"chance loss ({rule.chance:.3g})")
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
        _scatter_converged_failed(ax, actual, pred, ~failed, failed, size)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", ls="--", lw=1, label="predicted = actual")
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


def feature_importance(importances: pd.Series, path: Path, title: str = "", sd: pd.Series | None = None) -> Path:
    """Horizontal bars of permutation importances (the drop in held-out R2 when a feature is shuffled; ``sd``
    as error bars), largest on top; hidden proportion highlighted."""
    imp = importances.sort_values()
    fig = Figure(figsize=(6.8, 0.28 * len(imp) + 1.4))
    ax = fig.subplots()
    highlight = np.array([n == "hidden_proportion" for n in imp.index])
    colours = np.where(highlight, CONFIG_COLOURS["balanced"], DOMINANT_COLOUR)
    xerr = None if sd is None else sd.reindex(imp.index).to_numpy(dtype=float)
    ax.barh(range(len(imp)), imp.to_numpy(), color=colours, xerr=xerr, error_kw={"lw": 0.8, "capsize": 2})
    ax.set_yticks(range(len(imp)))
    ax.set_yticklabels(imp.index, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("drop in held-out R2 when the feature is shuffled (permutation importance)")
    ax.set_title(title or "random forest permutation importances on held-out folds", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in (CONFIG_COLOURS["balanced"], DOMINANT_COLOUR)]
    if highlight.any():
        ax.legend(
            handles,
            ["hidden proportion", "other features"],
            fontsize=7.5,
            loc="lower right",
            title="bars: mean" + ("; lines: ± sd" if sd is not None else ""),
            title_fontsize=7,
        )
    fig.tight_layout()
    return save_figure(fig, path)


def scores_vs_hidden_proportion(models: pd.DataFrame, columns: Sequence[str], path: Path, title: str = "") -> Path:
    """Environment scores (e.g. eval_return_mean, d4rl_score) per model against hidden proportion,
    failed models as vermillion crosses, bucket means as black steps."""
    fig = Figure(figsize=(5.2 * len(columns), 4.0))
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    hp = models["hidden_proportion"].to_numpy(dtype=float)
    failed = models["failed"].to_numpy(dtype=bool)
    idx = bucket_index(hp)
    edges = (0.0,) + BUCKET_EDGES + (1.0,)
    size = _marker_size(len(models))
    for ax, col in zip(axes, columns):
        v = models[col].to_numpy(dtype=float)
        ok = ~failed & np.isfinite(v)
        bad = failed & np.isfinite(v)
        _scatter_converged_failed(ax, hp, v, ok, bad, size)
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


def table_beside_paper(beside: pd.DataFrame, chance: float | None, path: Path, title: str = "") -> Path:
    """One panel per Table III/IV row (``beside``: metric, cell, n, mean, ci95_low, ci95_high, paper, as
    ``analysis.replication.table_beside_paper_frame`` gives): our cell estimates with their 95 % intervals and n, the
    paper's published means, and the task's chance loss."""
    metrics = list(dict.fromkeys(beside["metric"]))
    fig = Figure(figsize=(5.2 * len(metrics), 4.0))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    for ax, metric in zip(axes, metrics):
        part = beside[beside["metric"] == metric]
        x = np.arange(len(part))
        mean = part["mean"].to_numpy(float)
        low, high = part["ci95_low"].to_numpy(float), part["ci95_high"].to_numpy(float)
        err = np.vstack([mean - np.where(np.isfinite(low), low, mean), np.where(np.isfinite(high), high, mean) - mean])
        ax.errorbar(x - 0.06, mean, yerr=err, fmt="o", color="black", capsize=3, label="ours (mean, 95 % CI)")
        for xi, yi, n in zip(x, mean, part["n"].to_numpy()):
            if np.isfinite(yi):
                ax.annotate(f"n={int(n):,}", (xi - 0.06, yi), textcoords="offset points", xytext=(6, -12), fontsize=7)
        ax.plot(x + 0.06, part["paper"].to_numpy(float), "D", color=FAILED_COLOUR, label="paper")
        if chance is not None:
            ax.axhline(chance, color=CHANCE_COLOUR, ls=":", lw=1, label=f"chance ({chance:.3f})")
        ax.set_xticks(x, list(part["cell"]))
        ax.set_xlabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean minimum validation loss")
    axes[-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def dominant_block_failures(
    models: pd.DataFrame,
    weights: np.ndarray,
    rates: pd.DataFrame,
    dominant: str,
    rule: FailureRule,
    path: Path,
    title: str = "",
) -> Path:
    """Fig. 7b/9b: left, each network's minimum validation loss (capped) against the density of the dominant
    block (failed networks as vermillion crosses; marker area ~ its post-stratification ``weights``); right, the
    share of networks that fail per density bin (``rates``: cell, n, mean, ci95_low, ci95_high as
    ``stratified.binned_estimates`` gives) with its 95 % interval and n."""
    fig = Figure(figsize=(11, 4.2))
    ax, ax2 = fig.subplots(1, 2)
    x = models[f"density_{dominant}"].to_numpy(float)
    loss = models["capped_min_val_loss"].to_numpy(float)
    failed = models["failed"].to_numpy(bool)
    w = np.asarray(weights, float)
    size = _marker_size(len(models)) * np.clip(w / max(np.median(w[w > 0]) if (w > 0).any() else 1.0, 1e-9), 0.3, 4)
    _scatter_converged_failed(ax, x, loss, ~failed, failed, size)
    if rule.chance is not None:
        ax.axhline(rule.chance, color=CHANCE_COLOUR, ls=":", lw=1.4, label=f"chance loss ({rule.chance:.3g})")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel(f"density of {dominant} (dominant block; paper: sparsity)")
    ax.set_ylabel("minimum validation loss (capped)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="best", title="marker area ~ networks it stands for", title_fontsize=7)
    ok = rates["n"].to_numpy() > 0
    centres = np.arange(len(rates)) / len(rates) + 0.5 / len(rates)
    mean = rates["mean"].to_numpy(float)
    low, high = rates["ci95_low"].to_numpy(float), rates["ci95_high"].to_numpy(float)
    err = np.vstack([mean - np.where(np.isfinite(low), low, mean), np.where(np.isfinite(high), high, mean) - mean])
    ax2.errorbar(centres[ok], mean[ok], yerr=err[:, ok], fmt="o-", color="black", capsize=3)
    for xi, yi, n in zip(centres[ok], mean[ok], rates["n"].to_numpy()[ok]):
        ax2.annotate(f"n={int(n)}", (xi, yi), textcoords="offset points", xytext=(4, 6), fontsize=7)
    ax2.set_xlim(0, 1)
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_xlabel(f"density of {dominant} (bins of 0.1)")
    ax2.set_ylabel("share of networks that fail (95 % CI)")
    ax2.grid(alpha=0.3)
    fig.suptitle(title or f"density of the dominant block {dominant} against failure", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
