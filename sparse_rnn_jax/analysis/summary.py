"""The printout at the end of a sweep: the paper's Table III/IV form with the analysis' ``uc`` rule, how many
models diverged or beat chance, the best model, environment scores and the named configurations (of every
registered family: ``Family.config_names``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.convergence import classify
from sparse_rnn_jax.analysis.tables import bucket_summary, cell_text
from sparse_rnn_jax.core.accounting import BUCKET_LABELS
from sparse_rnn_jax.engine.results import final_per_model
from sparse_rnn_jax.models.registry import named_configs


def summary_table(per_model: pd.DataFrame) -> str:
    """Minimum validation loss per hidden-proportion and model-density bucket in the paper's Table III/IV
    form: each cell "mean (n=N)", with the ``uc`` marker of the analysis' one rule (``analysis.convergence``),
    and under each metric the share of models at chance and the share that exploded."""
    models, rules = classify(per_model)
    chance = bool(rules) and next(iter(rules.values())).source == "chance"
    metrics = {"hidden_proportion": "Hidden Proportion", "model_density": "Model Density (sparsity)"}
    table: list[tuple[str, list[str]]] = []
    for column, label in metrics.items():
        summary = bucket_summary(models, column)
        cells = list(summary.iterrows())
        table.append((label, [cell_text(r) for _, r in cells]))
        for name, share in (
            (" at chance" if chance else " failed to learn", "at_chance_fraction"),
            (" exploded/diverged", "exploded_fraction"),
        ):
            table.append((name, [f"{r[share]:.0%}" if r["n"] else "-" for _, r in cells]))
    width = max(len(c) for _, cells in table for c in cells + list(BUCKET_LABELS)) + 2
    lines = [f"{'':<26}" + "".join(f"{n:>{width}}" for n in BUCKET_LABELS)]
    lines += [f"{name:<26}" + "".join(f"{c:>{width}}" for c in cells) for name, cells in table]
    return "\n".join(lines)


def _wall_time(record: dict) -> str:
    """The run's training time; a run trained in several sessions (resumed, or extended to more epochs) says the
    time is their total and gives the last one's."""
    total = f"{record['wall_time_s']:.0f} s"
    sessions = int(record.get("sessions") or 1)
    if sessions < 2:
        return total
    last = record.get("session_wall_time_s")
    return f"{total} in all over {sessions} sessions" + (f", the last {last:.0f} s," if last is not None else "")


def sweep_summary(frame: pd.DataFrame, record: dict, scores: pd.DataFrame | None = None) -> str:
    """The end-of-sweep printout of a results table and its run record (run.json); ``scores`` per model."""
    per_model = final_per_model(frame).assign(chance_loss=record.get("chance_loss", np.nan))
    chance = float(record.get("chance_loss", np.nan))
    has_accuracy = bool(np.isfinite(per_model["best_val_accuracy"]).any())
    lines = [
        "",
        f"{len(per_model)} models x {int(frame['epoch'].max())} epochs in {_wall_time(record)} "
        f"({record['platform']}, {len(record['devices'])} device(s))",
        "Minimum validation loss (mean per bucket, the paper's Table III/IV form; uc = unstable convergence: more "
        "than 25 % of the bucket's models exploded, diverged or non-finite):",
        summary_table(per_model),
    ]
    n_div = int(per_model["diverged"].sum())
    final = per_model["final_val_loss"]
    line = f"diverged: {n_div}/{len(per_model)}"
    if np.isfinite(chance):
        line += f"; final validation loss below chance ({chance:.3f}): {int((final < chance).sum())}/{len(per_model)}"
    lines.append(line)
    best = per_model.loc[per_model["min_val_loss"].idxmin()]
    msg = (
        f"best model: id {int(best['model_id'])} ({best['config']}, h={int(best['hidden_dim'])}, hidden proportion "
        f"{best['hidden_proportion']:.2f}) min val loss {best['min_val_loss']:.3f}"
    )
    if has_accuracy:
        msg += f", best val accuracy {per_model['best_val_accuracy'].max():.1%}"
    lines.append(msg)
    if scores is not None and len(scores):
        scores = scores.merge(per_model[["model_id", "config", "hidden_proportion", "min_val_loss"]], on="model_id")
        lines.append(f"environment scores ({int(scores['eval_episodes'].iloc[0])} episodes per model):")
        cols = [
            "model_id",
            "config",
            "hidden_proportion",
            "min_val_loss",
            "eval_return_mean",
            "eval_success_rate",
            "d4rl_score",
        ]
        lines.append(
            scores.sort_values("eval_return_mean", ascending=False)[cols]
            .head(10)
            .to_string(index=False, float_format=lambda v: f"{v:.3f}")
        )
    named = per_model[per_model["config"].isin(named_configs())]  # every registered family's named configurations
    if len(named):
        columns = dict(
            models=("model_id", "size"),
            hidden_dim=("hidden_dim", "first"),
            hidden_proportion=("hidden_proportion", "first"),
            min_val_loss=("min_val_loss", "mean"),
        )
        if has_accuracy:
            columns["best_val_accuracy"] = ("best_val_accuracy", "mean")
        agg = named.groupby("config").agg(**columns)
        lines.append("named configurations (mean over repeats):")
        lines.append(agg.to_string(float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)
