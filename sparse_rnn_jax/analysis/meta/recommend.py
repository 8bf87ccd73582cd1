"""Recommendations for any task from the cross-task parent: ranked candidates before any training, and their
validation on a user's data.

``recommend_for_task`` needs only the task's descriptor (input and output dims, sequence length, loss kind;
training size optional, default the zoo's median) and a budget. Candidates are those of ``analysis.candidates``
(the named configs and balanced variants at each learning rate, ``normal_size`` draws at the budget), ranked by
the parent's predicted normalised minimum validation loss (1 = the task's chance loss). A candidate is
``extrapolating`` when a feature of it (the task's descriptors included) lies outside the range of the zoo's
models. The a-priori balanced spec (Eqn 13) is always returned.

``validate`` trains the top-k candidates, the balanced and the dense one, each with several seeds, as one
population on a user's npz task (``tasks.npz``) via ``tasks.run.train_and_evaluate``, and compares the
predicted with the actual normalised minimum loss (mean and 95 % t-interval over seeds).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from sparse_rnn_jax.analysis.candidates import candidate_specs
from sparse_rnn_jax.analysis.defaults import DEFAULT_BALANCE_TARGETS, DEFAULT_LEARNING_RATES
from sparse_rnn_jax.analysis.meta.parent import TASK_FEATURES, CrossTaskParent, spec_meta_features, task_features
from sparse_rnn_jax.core.accounting import describe_dict, expected_accounting
from sparse_rnn_jax.core.solvers import balanced_spec
from sparse_rnn_jax.core.spec_text import spec_to_text

DEFAULT_TOP_K = 3
DEFAULT_SEEDS = 3


def npz_descriptor(path: str, loss: str = "") -> dict:
    """The descriptor of a user's npz task file (dims, padded sequence length, loss, training size, chance loss;
    ``tasks.npz``); a one-line ValueError for a bad file."""
    from sparse_rnn_jax.tasks.npz import NpzConfig, descriptor

    return descriptor(NpzConfig(data=str(path), loss=loss))


def new_task_descriptor(
    *,
    data: str | None = None,
    input_dim: int | None = None,
    output_dim: int | None = None,
    seq_len: int | None = None,
    loss: str | None = None,
) -> dict:
    """The descriptor of a new task: from the npz file ``data``, else from the dims, sequence length and loss
    (all required). A one-line ValueError that starts with the argument's name otherwise."""
    if data:
        try:
            return npz_descriptor(data, loss or "")
        except ValueError as e:
            message = str(e).splitlines()[0]
            raise ValueError(message if message.startswith("data:") else f"data: {message}") from None
    given = {"input_dim": input_dim, "output_dim": output_dim, "seq_len": seq_len, "loss": loss}
    for name, value in given.items():
        if value is None:
            raise ValueError(f"{name} is required (or give data=FILE.npz)")
        if name != "loss" and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return given


def _unique_names(specs: list, learning_rates: Sequence[float]) -> list:
    """Named and balanced candidates get their learning rate in their name when there are several."""
    if len(learning_rates) < 2:
        return specs
    return [s if "#" in s.name else s.replace(name=f"{s.name}@lr{s.learning_rate:g}") for s in specs]


def recommend_for_task(
    descriptor: Mapping,
    budget: float,
    *,
    parent: CrossTaskParent | None = None,
    num_sampled: int = 200,
    seed: int = 0,
    balance_target: float = 0.5,
    balance_targets: Sequence[float] = DEFAULT_BALANCE_TARGETS,
    learning_rates: Sequence[float] = DEFAULT_LEARNING_RATES,
    ranker: str = "forest",
) -> dict:
    """The recommendation as a JSON-able dict with keys task, budget, balanced, candidates (best first: rank,
    config, spec, hidden_dim, densities, learning_rate, hidden_proportion, trainable_params, predicted_min_loss,
    predicted_curve, extrapolating, outside_range), task_outside_zoo and predictor. ``descriptor``: input_dim,
    output_dim, seq_len, loss and optionally train_size and chance_loss."""
    parent = parent or CrossTaskParent.load(mlp=ranker != "forest")
    x, y = int(descriptor["input_dim"]), int(descriptor["output_dim"])
    tasks = parent.meta["tasks"]
    train_size = descriptor.get("train_size")
    size_source = "given"
    if train_size is None:
        train_size = float(np.median([t["train_size"] for t in tasks]))
        size_source = "the zoo's median"
    task = {
        "input_dim": x,
        "output_dim": y,
        "seq_len": int(descriptor["seq_len"]),
        "loss": str(descriptor["loss"]),
        "train_size": int(train_size),
        "train_size_source": size_source,
        "chance_loss": descriptor.get("chance_loss", math.log(y) if descriptor["loss"] == "ce" and y > 1 else None),
    }
    spec = balanced_spec(x, y, budget, target=balance_target)
    specs = _unique_names(
        candidate_specs(x, y, budget, num_sampled, seed, balance_targets, learning_rates), list(learning_rates)
    )
    features = spec_meta_features(specs, task, budget)
    score, curve = parent.rank_scores(features, ranker)
    outside = parent.out_of_range(features)
    rows = []
    for i, s in enumerate(specs):
        acc = expected_accounting(s)
        rows.append(
            {
                "config": s.name,
                "spec": spec_to_text(s),
                "hidden_dim": s.hidden_dim,
                "densities": s.densities(),
                "learning_rate": s.learning_rate,
                "hidden_proportion": acc.hidden_proportion,
                "trainable_params": acc.trainable_params,
                "predicted_min_loss": float(score[i]),
                "predicted_curve": [float(v) for v in curve[i]],
                "extrapolating": bool(outside[i]),
                "outside_range": outside[i],
            }
        )
    order = np.argsort([r["predicted_min_loss"] for r in rows], kind="stable")
    ranked = [{"rank": k, **rows[i]} for k, i in enumerate(order, 1)]
    task_vec = task_features(x, y, task["seq_len"], task["loss"], task["train_size"], budget)
    lo = np.asarray(parent.meta["feature_min"])[: len(TASK_FEATURES)]
    hi = np.asarray(parent.meta["feature_max"])[: len(TASK_FEATURES)]
    task_outside = [f for f, v, a, b in zip(TASK_FEATURES, task_vec, lo, hi) if v < a - 1e-9 or v > b + 1e-9]
    balanced = describe_dict(spec)
    balanced["densities"] = spec.densities()
    best_balanced = next((r for r in ranked if r["config"].split("@lr")[0] == "balanced"), None)
    if best_balanced is not None:
        balanced.update(
            {k: best_balanced[k] for k in ("rank", "learning_rate", "predicted_min_loss", "predicted_curve")}
        )
        balanced["extrapolating"] = best_balanced["extrapolating"]
    loto = parent.meta.get("leave_one_task_out") or {}
    return {
        "task": task,
        "budget": float(budget),
        "balanced": balanced,
        "candidates": ranked,
        "task_outside_zoo": task_outside,
        "predictor": {
            "kind": "cross-task parent",
            "ranker": ranker,
            "tasks": [t["task"] for t in tasks],
            "task_descriptors": tasks,
            "n_models": parent.meta.get("n_models"),
            "curve_points": parent.meta.get("curve_points"),
            "target": parent.meta.get("target"),
            "leave_one_task_out": loto.get("summary", []),
            "lofo": (parent.meta.get("lofo") or {}).get("summary", []),
        },
    }


def recommendation_text(rec: dict, top: int = 20) -> str:
    """The recommendation as a few lines and a table for a terminal (with its validation when it has one)."""
    from sparse_rnn_jax.core.spec import BLOCKS

    t = rec["task"]
    p = rec["predictor"]
    lines = [
        f"Task: |x| {t['input_dim']}, |y| {t['output_dim']}, {t['seq_len']} steps, loss {t['loss']}, "
        f"{t['train_size']:,} training sequences ({t['train_size_source']}); budget {rec['budget']:,.0f}",
        f"Cross-task parent ({p['ranker']}) trained on {p['n_models']:,} models of {len(p['tasks'])} zoo tasks: "
        + ", ".join(p["tasks"]),
        "Predicted loss: minimum validation loss / the task's chance loss (1 = chance, 0 = perfect).",
    ]
    if rec["task_outside_zoo"]:
        lines.append("note: the task lies outside the zoo's range in " + ", ".join(rec["task_outside_zoo"]))
    b = rec["balanced"]
    if "predicted_min_loss" in b:
        lines.append(
            f"A-priori balanced (Eqn 13): |h| {b['hidden_dim']}, hidden proportion {b['hidden_proportion']:.3f}, "
            f"predicted {b['predicted_min_loss']:.3f} at lr {b['learning_rate']:g} (rank {b['rank']})"
        )
    head = f"{'rank':>4}  {'config':<24}{'|h|':>6}" + "".join(f"{k:>6}" for k in BLOCKS)
    lines += ["", head + f"{'lr':>9}{'hid.prop':>10}{'predicted':>11}  curve (first -> last)"]
    ranked = rec["candidates"]
    for r in ranked[:top]:
        c = r["predicted_curve"]
        lines.append(
            f"{r['rank']:>4}  {r['config']:<24}{r['hidden_dim']:>6}"
            + "".join(f"{r['densities'][k]:>6.2f}" for k in BLOCKS)
            + f"{r['learning_rate']:>9.2g}{r['hidden_proportion']:>10.3f}{r['predicted_min_loss']:>11.3f}"
            + f"  {c[0]:.2f} -> {c[-1]:.2f}"
            + (" *" if r["extrapolating"] else "")
        )
    if any(r["extrapolating"] for r in ranked[:top]):
        lines.append(
            "* outside the zoo's range (extrapolating): "
            + ", ".join(sorted({f for r in ranked[:top] for f in r["outside_range"]}))
        )
    lines.append(f"({min(top, len(ranked))} of {len(ranked)} candidates shown)")
    lofo = {(s["method"], s["metric"]): s for s in p.get("lofo", [])}
    summary = {(s["method"], s["metric"]): s for s in p["leave_one_task_out"]}
    if lofo:
        parts = []
        for m in ("forest", "balanced", "random"):
            s = lofo.get((m, "regret_top1"))
            if s:
                parts.append(f"{m} {s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]")
        lines.append(
            "Leave-one-family-out regret of the top pick (mean over zoo tasks, 95 % CI over families): "
            + "; ".join(parts)
        )
    elif summary:
        parts = []
        for m in ("forest", "balanced", "random"):
            s = summary.get((m, "regret_top1"))
            if s:
                parts.append(f"{m} {s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]")
        lines.append("Leave-one-task-out regret of the top pick (mean over zoo tasks, 95 % CI): " + "; ".join(parts))
    if "validation" in rec:
        lines += ["", validation_text(rec["validation"])]
    return "\n".join(lines)


def chosen_for_validation(rec: dict, top_k: int = DEFAULT_TOP_K) -> list[dict]:
    """The top-k candidates, then the best-ranked balanced and dense candidates (when not among them)."""
    ranked = rec["candidates"]
    chosen = list(ranked[:top_k])
    for name in ("balanced", "dense"):
        best = next((r for r in ranked if r["config"].split("@lr")[0] == name), None)
        if best is not None and all(best["config"] != c["config"] for c in chosen):
            chosen.append(best)
    return chosen


def validate(
    rec: dict,
    data_path: str,
    workdir: str | Path | None = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    seeds: int = DEFAULT_SEEDS,
    epochs: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    loss: str = "",
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> dict:
    """Trains the chosen candidates (``chosen_for_validation``) x ``seeds`` as one population on the npz task
    ``data_path`` in ``workdir`` (default: a new ``recommend_validate_*`` folder in the current directory) for
    ``epochs`` (default: the zoo's) and returns {"workdir", "chance_loss", "epochs", "rows": [{rank, config, seeds,
    predicted_min_loss, actual_mean, actual_lo, actual_hi}], "spearman"} (normalised losses). Raises
    ``tasks.run.RunError`` before any work on bad input."""
    import tempfile

    import pandas as pd

    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.analysis.meta.loto import rank_correlation
    from sparse_rnn_jax.analysis.tables import t_interval
    from sparse_rnn_jax.engine.config import PopulationConfig, SweepConfig
    from sparse_rnn_jax.engine.results import final_per_model
    from sparse_rnn_jax.tasks.npz import NpzConfig
    from sparse_rnn_jax.tasks.run import train_and_evaluate
    from sparse_rnn_jax.tasks.run_config import RunConfig

    epochs = epochs or max(t["epochs"] for t in rec["predictor"]["task_descriptors"])
    workdir = workdir or tempfile.mkdtemp(prefix="recommend_validate_", dir=".")
    chosen = chosen_for_validation(rec, top_k)
    texts = tuple(c["spec"] for c in chosen for _ in range(seeds))
    config = RunConfig(
        "npz",
        NpzConfig(data=str(data_path), loss=loss),
        PopulationConfig(num_models=0, specs=texts),
        SweepConfig(epochs=epochs, batch_size=batch_size, seed=seed, max_buckets=2),
    )
    result = train_and_evaluate(config, workdir, log=log, progress=progress)
    frame = result.frame.assign(run=str(workdir))
    chance = float(result.record["chance_loss"])
    models = final_per_model(frame).assign(chance_loss=chance)
    models, _ = classify(models)
    models["norm"] = models["capped_min_val_loss"] / chance
    rows = []
    for c in chosen:
        v = models.loc[models["config"] == c["config"], "norm"].to_numpy(float)
        mean = float(v.mean()) if v.size else math.nan
        lo, hi = t_interval(v)
        rows.append(
            {
                "rank": c["rank"],
                "config": c["config"],
                "seeds": int(v.size),
                "predicted_min_loss": c["predicted_min_loss"],
                "actual_mean": mean,
                "actual_lo": lo,
                "actual_hi": hi,
            }
        )
    table = pd.DataFrame(rows)
    rho = rank_correlation(table["predicted_min_loss"].to_numpy(), table["actual_mean"].to_numpy())
    return {"workdir": str(workdir), "chance_loss": chance, "epochs": epochs, "rows": rows, "spearman": rho}


def validation_text(val: dict) -> str:
    """Predicted vs actual normalised minimum loss per validated candidate, and their rank correlation."""
    lines = [
        f"Validation in {val['workdir']} ({val['epochs']} epochs; losses / chance loss {val['chance_loss']:.4g}; "
        "actual: mean [95 % CI] over seeds):",
        f"{'rank':>4}  {'config':<24}{'seeds':>6}{'predicted':>11}  actual",
    ]
    for r in val["rows"]:
        ci = "" if not math.isfinite(r["actual_lo"]) else f" [{r['actual_lo']:.3f}, {r['actual_hi']:.3f}]"
        lines.append(
            f"{r['rank']:>4}  {r['config']:<24}{r['seeds']:>6}{r['predicted_min_loss']:>11.3f}"
            f"  {r['actual_mean']:.3f}{ci}"
        )
    rho = val["spearman"]
    lines.append(f"rank correlation (predicted vs actual mean): {'-' if not math.isfinite(rho) else f'{rho:.2f}'}")
    return "\n".join(lines)
