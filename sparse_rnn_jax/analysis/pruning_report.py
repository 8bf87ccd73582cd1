"""The magnitude-pruning section of the analysis report (``pruning.parquet`` written by ``experiments.prune``).

``pruning_section(pruning_df, out_dir)`` returns markdown: per task, how much of each model family can be
pruned before its validation accuracy (loss, for tasks without accuracy) falls, per scope, without
retraining and after the fine-tune, and a figure ``out_dir/figures/pruning_<task>.png`` of the mean metric
against the pruned fraction, one line per family in one panel per scope and stage.
``pruning_sections(results_dirs, out_dir)`` does the same for every ``pruning.parquet`` found in the
results folders ("" when there is none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparse_rnn_jax.analysis.figures import config_colours, ordered_configs, save_figure
from sparse_rnn_jax.studies.pruning.masks import SCOPES, UNPRUNED_SCOPE
from sparse_rnn_jax.studies.pruning.run import PRUNING_FILE
from sparse_rnn_jax.studies.pruning.summary import (
    ACCURACY_TOLERANCE,
    LOSS_TOLERANCE,
    learned_models,
    mean_curves,
    metric_of,
    metrics_of,
    summary_table,
)

SCOPE_TEXT = {
    "global": "one magnitude ranking over all weight arrays of a model",
    "per_block": "every weight array pruned by the fraction separately",
    "hidden": "only the hidden-to-hidden weights (W_hh; a cell's W_h)",
}


def _family_order(families: Sequence[str]) -> list[str]:
    lead = [f for f in ("block", "leaky_fixed", "leaky_learned", "leaky_gated") if f in families]
    return lead + [f for f in ordered_configs(list(families)) if f not in lead]


def pruning_figure(df: pd.DataFrame, path: str | os.PathLike, title: str = "", learned_only: bool = True) -> Path:
    """Mean validation metric of the models that learned (or all) against the pruned fraction (0 = unpruned):
    one panel per scope (columns) and stage (rows: as pruned, fine-tuned), one line per family."""
    metric = metric_of(df)
    curves = mean_curves(df, learned_only)
    scopes = [s for s in SCOPES if s in set(curves["scope"])]
    families = _family_order(sorted(set(curves["family"])))
    colours = config_colours(families)
    fig = Figure(figsize=(4.2 * max(len(scopes), 1), 6.6))
    axes = fig.subplots(2, max(len(scopes), 1), squeeze=False, sharex=True, sharey=True)
    finetune_steps = int(df["finetune_steps"].max()) if len(df) else 0
    for col, scope in enumerate(scopes):
        for row, (stage, label) in enumerate(
            (("pruned", "as pruned"), ("finetuned", f"after {finetune_steps} fine-tune steps"))
        ):
            ax = axes[row, col]
            for fam in families:
                c = curves[(curves["scope"] == scope) & (curves["family"] == fam)].sort_values("fraction")
                if len(c):
                    n = int(c["models"].max())
                    ax.plot(
                        c["fraction"], c[stage], marker="o", ms=3, lw=1.6, color=colours[fam], label=f"{fam} (n={n})"
                    )
            ax.set_title(f"{scope}: {label}", fontsize=10)
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel("fraction of trainable weights pruned")
            if col == 0:
                ax.set_ylabel(f"mean validation {metric}")
    if len(scopes):
        axes[0, 0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def _fraction_text(median: float, lo: float, hi: float) -> str:
    if not np.isfinite(median):
        return "-"
    return f"{median:.0%}" if lo == hi else f"{median:.0%} [{lo:.0%}-{hi:.0%}]"


def summary_markdown(table: pd.DataFrame, metrics: Sequence[str]) -> str:
    """The ``pruning.summary_table`` as a markdown table: per criterion, the models it is measured on, their
    mean unpruned value and the largest fraction without retraining and after the fine-tune."""
    head, rule = "| family | scope |", "|---|---|"
    for m in metrics:
        head += f" models ({m}) | unpruned {m} | {m}: no retraining | {m}: after fine-tune |"
        rule += "---|---|---|---|"
    lines = [head, rule]
    for _, r in table.iterrows():
        row = f"| {r['family']} | {r['scope']} |"
        for m in metrics:
            n = int(r[f"{m}_models"])
            row += (
                f" {n} | {r[f'unpruned_{m}']:.3f} | "
                f"{_fraction_text(r[f'{m}_pruned_median'], r[f'{m}_pruned_min'], r[f'{m}_pruned_max'])} | "
                f"{_fraction_text(r[f'{m}_finetuned_median'], r[f'{m}_finetuned_min'], r[f'{m}_finetuned_max'])} |"
                if n
                else " 0 | - | - | - |"
            )
        lines.append(row)
    return "\n".join(lines)


def tolerance_text(metrics: Sequence[str]) -> str:
    """The criteria of ``metrics`` in words (accuracy within 1 point, loss within 5 %)."""
    parts = {
        "accuracy": f"validation accuracy within {ACCURACY_TOLERANCE * 100:g} percentage point",
        "loss": f"validation loss within {LOSS_TOLERANCE:.0%}",
    }
    return " (or ".join(parts[m] for m in metrics) + (")" if len(metrics) > 1 else "") + " of the unpruned model"


def pruning_section(pruning_df: pd.DataFrame, out_dir: str | os.PathLike) -> str:
    """Markdown of the pruning results (one part per task); writes ``out_dir/figures/pruning_<task>.png``."""
    out_dir = Path(out_dir)
    parts = ["## Magnitude pruning", ""]
    for task, df in pruning_df.groupby("task", sort=True):
        metric, metrics = metric_of(df), metrics_of(df)
        fractions = sorted(set(df.loc[df["scope"] != UNPRUNED_SCOPE, "fraction"]))
        scopes = [s for s in SCOPES if s in set(df["scope"])]
        models, learned = df["model_id"].nunique(), len(learned_models(df))
        steps = int(df["finetune_steps"].max())
        parts += [
            f"### Task `{task}`",
            "",
            f"{models} trained models pruned one-shot by weight magnitude at fractions "
            f"{', '.join(f'{f:.0%}' for f in fractions)} of their trainable weights (never biases), in "
            + f"{len(scopes)} scope{'s' if len(scopes) > 1 else ''}: "
            + "; ".join(f"**{s}**, {SCOPE_TEXT[s]}" for s in scopes)
            + f". Each is evaluated as pruned and after {steps} fine-tune minibatches with the pruned weights held "
            "at 0 "
            f"(against the unpruned model fine-tuned alike). "
            + (
                (
                    f"{models - learned} of {models} models had not learned (unpruned loss at chance level) "
                    "and are left out."
                    if learned < models
                    else f"All {models} models had learned (unpruned loss below chance level)."
                )
                + (
                    f" Models at {ACCURACY_TOLERANCE:.0%} accuracy or less are left out of the accuracy columns."
                    if "accuracy" in metrics
                    else ""
                )
                if learned
                else f"None of the {models} models had learned (unpruned loss at chance level): no table; the "
                "figure shows all of them."
            ),
            "",
        ]
        if learned:
            parts += [
                f"Largest pruned fraction at which every smaller fraction keeps the {tolerance_text(metrics)}: "
                "median over models [min-max].",
                "",
                summary_markdown(summary_table(df), metrics),
                "",
            ]
        fig = pruning_figure(
            df,
            out_dir / "figures" / f"pruning_{task}.png",
            f"{task}: validation {metric} of pruned models (mean over "
            f"{'the models that learned' if learned else 'all models, none learned'})",
            learned_only=bool(learned),
        )
        rel = fig.relative_to(out_dir).as_posix()
        parts += [
            f"![{task}: pruning curves]({rel})",
            "",
            f"*{task}: mean validation {metric} against the fraction pruned, per scope, as pruned (top) and after "
            f"the fine-tune (bottom); 0 is the unpruned model.*",
            "",
        ]
    return "\n".join(parts)


def pruning_sections(results_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> str:
    """``pruning_section`` of every ``pruning.parquet`` in ``results_dirs``, pooled (models of different runs
    renumbered so that they stay apart); "" when none has one."""
    frames = [
        pd.read_parquet(Path(d) / PRUNING_FILE).assign(run=str(d))
        for d in results_dirs
        if (Path(d) / PRUNING_FILE).is_file()
    ]
    if not frames:
        return ""
    df = pd.concat(frames, ignore_index=True)
    df["model_id"] = df.groupby(["run", "model_id"], sort=True).ngroup()
    return pruning_section(df.drop(columns="run"), out_dir)


def write_pruning_outputs(df: pd.DataFrame, out: str | os.PathLike) -> str:
    """pruning_summary.csv, pruning.md and the figure from ``pruning.parquet``'s rows; returns the summary text."""
    out = Path(out)
    table = summary_table(df)
    table.to_csv(out / "pruning_summary.csv", index=False)
    (out / "pruning.md").write_text(pruning_section(df, out))
    metrics = metrics_of(df)
    return "\n".join(
        [
            f"Largest pruned fraction keeping the {tolerance_text(metrics)} "
            "(median over models that learned [min-max]):",
            summary_markdown(table, metrics),
            f"written: {out / PRUNING_FILE}, {out / 'pruning_summary.csv'}, {out / 'pruning.md'}, "
            f"{out / 'figures'}/pruning_*.png",
        ]
    )
