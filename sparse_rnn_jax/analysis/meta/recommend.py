"""Recommendations for any task from the cross-task parent: ranked candidates before any training, and their
validation on a user's data.

``recommend_for_task`` needs only the task's descriptor (input and output dims, sequence length, loss kind;
training size optional, default the zoo's median) and a budget. Candidates are those of ``analysis.candidates``
(the named configs and balanced variants at each learning rate, ``normal_size`` draws at the budget), ranked by
the parent's predicted normalised minimum validation loss (1 = the task's chance loss). A candidate is
``extrapolating`` when a feature of it (the task's descriptors included) lies outside the range of the zoo's
models. The a-priori balanced spec (Eqn 13) is always returned.

``validate`` trains the top-k candidates, the balanced and the dense one, each with several seeds, as one
population on a user's npz task (``tasks.npz``) or any registered task via ``run.train.train_and_evaluate``, and
compares the predicted with the actual normalised minimum loss (mean and 95 % t-interval over seeds), and, where the
task scores its models in an environment, with the return normalised against a random policy
(``newtask.environment_scores``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from sparse_rnn_jax.analysis.candidates import FOREST_QUANTILES, candidate_specs, ranking_uncertainty, uncertainty_text
from sparse_rnn_jax.analysis.defaults import DEFAULT_BALANCE_TARGETS, DEFAULT_LEARNING_RATES
from sparse_rnn_jax.analysis.meta.parent import TASK_FEATURES, CrossTaskParent, spec_meta_features, task_features
from sparse_rnn_jax.core.accounting import describe_dict, expected_accounting
from sparse_rnn_jax.core.solvers import balanced_spec
from sparse_rnn_jax.core.spec_text import spec_to_text

DEFAULT_TOP_K = 3
DEFAULT_SEEDS = 3
DEFAULT_BATCH_SIZE = 32
DEFAULT_COMMAND_ROOT = "runs/recommend"
"""Where the printed commands train each candidate (``runs/recommend/<config>``)."""
PLACEHOLDER_DATA = "FILE.npz"
"""The data file of the printed commands when the task was given by its dims (replace it with the task's file)."""


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
    spread = parent.forest.quantiles(features, FOREST_QUANTILES)
    outside = parent.out_of_range(features)
    chance = task["chance_loss"]
    rows = []
    for i, s in enumerate(specs):
        acc = expected_accounting(s)
        interval = [float(spread[0, i]), float(spread[1, i])]
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
                "predicted_interval": interval,
                "predicted_min_val_loss": None if chance is None else float(score[i]) * chance,
                "predicted_interval_raw": None if chance is None else [v * chance for v in interval],
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
        keys = ("rank", "spec", "learning_rate", "predicted_min_loss", "predicted_interval", "predicted_min_val_loss")
        balanced.update({k: best_balanced[k] for k in keys + ("predicted_interval_raw", "predicted_curve")})
        balanced["extrapolating"] = best_balanced["extrapolating"]
    else:
        balanced["spec"] = spec_to_text(spec)
    loto = parent.meta.get("leave_one_task_out") or {}
    regret = next((r for r in loto.get("summary", []) if (r["method"], r["metric"]) == ("forest", "regret_top1")), None)
    error = float(np.median([r["predicted_interval"][1] - r["predicted_interval"][0] for r in ranked[:3]]) / 2)
    return {
        "task": task,
        "budget": float(budget),
        "balanced": balanced,
        "candidates": ranked,
        "uncertainty": ranking_uncertainty(
            ranked,
            "predicted_min_loss",
            error,
            f"half the forest's {FOREST_QUANTILES[0]}-{FOREST_QUANTILES[1]} % spread over trees (median of the top 3)",
        )
        | ({"leave_one_task_out_regret_top1": regret["mean"]} if regret else {}),
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


def _prediction(r: dict, width: int = 0) -> str:
    """``0.61 [0.55, 0.70]`` (÷ chance) and, when the chance loss is known, ``= 1.40 raw``."""
    lo, hi = r["predicted_interval"]
    text = f"{r['predicted_min_loss']:.3f} [{lo:.3f}, {hi:.3f}]"
    return text.rjust(width)


def recommendation_text(rec: dict, top: int = 20) -> str:
    """The recommendation as a few lines and a table for a terminal (with its training or validation when it has
    one)."""
    from sparse_rnn_jax.core.spec import BLOCKS

    t = rec["task"]
    p = rec["predictor"]
    chance = t.get("chance_loss")
    lines = [
        f"Task: |x| {t['input_dim']}, |y| {t['output_dim']}, {t['seq_len']} steps, loss {t['loss']}, "
        f"{t['train_size']:,} training sequences ({t['train_size_source']}); budget {rec['budget']:,.0f}",
        f"Cross-task parent ({p['ranker']}) trained on {p['n_models']:,} models of {len(p['tasks'])} zoo tasks: "
        + ", ".join(p["tasks"]),
        "Predicted loss: the minimum validation loss / the task's chance loss (1 = chance, 0 = perfect)"
        + (f"; x {chance:.4g} (the chance loss) gives the raw loss a sweep prints" if chance else "")
        + f". [lo, hi]: the {FOREST_QUANTILES[0]:g}th-{FOREST_QUANTILES[1]:g}th percentile over the forest's trees.",
    ]
    if rec["task_outside_zoo"]:
        lines.append("note: the task lies outside the zoo's range in " + ", ".join(rec["task_outside_zoo"]))
    b = rec["balanced"]
    if "predicted_min_loss" in b:
        raw = f" (raw {b['predicted_min_val_loss']:.3f})" if b.get("predicted_min_val_loss") is not None else ""
        lines.append(
            f"A-priori balanced (Eqn 13): |h| {b['hidden_dim']}, hidden proportion {b['hidden_proportion']:.3f}, "
            f"predicted {_prediction(b)} / chance{raw} at lr {b['learning_rate']:g} (rank {b['rank']})"
        )
    head = f"{'rank':>4}  {'config':<24}{'|h|':>6}" + "".join(f"{k:>6}" for k in BLOCKS)
    raw_head = f"{'raw':>8}" if chance else ""
    lines += ["", head + f"{'lr':>9}{'hid.prop':>10}{'predicted/chance [lo, hi]':>27}{raw_head}  curve/chance"]
    ranked = rec["candidates"]
    for r in ranked[:top]:
        c = r["predicted_curve"]
        raw = f"{r['predicted_min_val_loss']:>8.3f}" if chance else ""
        lines.append(
            f"{r['rank']:>4}  {r['config']:<24}{r['hidden_dim']:>6}"
            + "".join(f"{r['densities'][k]:>6.2f}" for k in BLOCKS)
            + f"{r['learning_rate']:>9.2g}{r['hidden_proportion']:>10.3f}{_prediction(r, 27)}{raw}"
            + f"  {c[0]:.2f} -> {c[-1]:.2f}"
            + (" *" if r["extrapolating"] else "")
        )
    if any(r["extrapolating"] for r in ranked[:top]):
        lines.append(
            "* outside the zoo's range (extrapolating): "
            + ", ".join(sorted({f for r in ranked[:top] for f in r["outside_range"]}))
        )
    lines.append(
        f"({min(top, len(ranked))} of {len(ranked)} candidates shown; curve/chance: the predicted mean validation "
        "loss / chance at the first and last of 10 points through training, a mean over models, so it can end above "
        "the predicted minimum, which is each model's best epoch)"
    )
    if rec.get("uncertainty"):
        lines.append(uncertainty_text(rec["uncertainty"]))
    for key, label in (
        ("lofo", "Leave-one-family-out regret of the top pick (mean over zoo tasks, 95 % CI over families): "),
        ("leave_one_task_out", "Leave-one-task-out regret of the top pick (mean over zoo tasks, 95 % CI): "),
    ):
        summary = {(s["method"], s["metric"]): s for s in p.get(key, [])}
        parts = [
            f"{m} {s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]"
            for m in ("forest", "balanced", "random")
            if (s := summary.get((m, "regret_top1")))
        ]
        if parts:  # the family hold-out when the parent has it, else the task hold-out
            lines.append(label + "; ".join(parts))
            break
    if ranked and "command" in ranked[0]:
        tr = rec["training"]
        lines += [
            "",
            f"Train the best candidate ({tr['seeds']} seeds, {tr['epochs']} epochs; --json gives every candidate's "
            "command" + (f"; put your data file for {tr['data']}" if tr["data_is_placeholder"] else "") + "):",
            "  " + ranked[0]["command"],
        ]
    if "trained" in rec:
        lines += ["", validation_text(rec["trained"], "Trained the top candidates")]
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


def zoo_epochs(rec: dict) -> int:
    """The training length the parent's predictions refer to: the zoo's longest run."""
    return max(int(t["epochs"]) for t in rec["predictor"]["task_descriptors"])


def training_config(
    rec: dict,
    texts: Sequence[str],
    data_path: str | None,
    *,
    seeds: int = DEFAULT_SEEDS,
    epochs: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    loss: str = "",
    task: str = "npz",
    task_config=None,
):
    """The run config that trains the spec ``texts`` with ``seeds`` seeds each for ``epochs`` (default: the zoo's):
    on the npz task ``data_path`` (``PLACEHOLDER_DATA`` when None), or on the registered ``task`` with its
    ``task_config`` (``newtask.rung_config_factory``, the race's run configs)."""
    from sparse_rnn_jax.analysis.meta.newtask import rung_config_factory

    make = rung_config_factory(
        task,
        task_config,
        data_path or PLACEHOLDER_DATA,
        loss,
        seed,
        seeds=seeds,
        batch_size=batch_size,
        max_buckets=2,
    )
    return make(texts, epochs or zoo_epochs(rec))


def attach_commands(
    rec: dict,
    data_path: str | None,
    *,
    root: str = DEFAULT_COMMAND_ROOT,
    seeds: int = DEFAULT_SEEDS,
    epochs: int | None = None,
    seed: int = 0,
    loss: str = "",
    task: str = "npz",
    task_config=None,
) -> None:
    """Gives every candidate (and the balanced spec) a ``command``: the ``experiments.sweep`` line that trains it
    with ``seeds`` seeds on ``data_path`` (``PLACEHOLDER_DATA`` when None: replace it with the task's file), or on
    the registered ``task`` with ``task_config``, into ``root/<config>``; records the settings in
    ``rec["training"]``."""
    from sparse_rnn_jax.run.command import sweep_command

    on = dict(seeds=seeds, epochs=epochs, seed=seed, loss=loss, task=task, task_config=task_config)
    for r in rec["candidates"]:
        config = training_config(rec, [r["spec"]], data_path, **on)
        r["command"] = sweep_command(config, f"{root}/{safe_name(r['config'])}")
    b = rec["balanced"]
    config = training_config(rec, [b["spec"]], data_path, **on)
    b["command"] = sweep_command(config, f"{root}/balanced")
    npz = task == "npz"
    rec["training"] = {
        "task": task,
        "data": (data_path or PLACEHOLDER_DATA) if npz else None,
        "data_is_placeholder": npz and data_path is None,
        "seeds": seeds,
        "epochs": epochs or zoo_epochs(rec),
        "batch_size": DEFAULT_BATCH_SIZE,
    }


def safe_name(name: str) -> str:
    """A candidate's name as a folder name (``@`` and ``#`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def train_top(rec: dict, data_path: str | None, workdir: str | Path | None = None, *, k: int = 1, **options) -> dict:
    """Trains the ``k`` best-ranked candidates x ``seeds`` as one population on the npz task ``data_path`` (or the
    registered ``task`` with ``task_config``) in ``workdir`` and returns ``train_candidates``' dict (``options``:
    its options: seeds, epochs, seed, loss, task, task_config, log, progress)."""
    options = {"prefix": "recommend_top_", **options}
    return train_candidates(rec, rec["candidates"][:k], data_path, workdir, **options)


def validate(
    rec: dict, data_path: str | None, workdir: str | Path | None = None, *, top_k: int = DEFAULT_TOP_K, **options
):
    """Trains the chosen candidates (``chosen_for_validation``: the top-k, balanced and dense) x ``seeds`` as one
    population (``train_candidates``, which takes ``options``: seeds, epochs, batch_size, seed, loss, task,
    task_config, log, progress) on the npz task ``data_path`` or the registered ``task``."""
    options = {"prefix": "recommend_validate_", **options}
    return train_candidates(rec, chosen_for_validation(rec, top_k), data_path, workdir, **options)


def _mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    from sparse_rnn_jax.analysis.tables import t_interval

    lo, hi = t_interval(values)
    return (float(values.mean()) if values.size else math.nan), lo, hi


def train_candidates(
    rec: dict,
    chosen: Sequence[dict],
    data_path: str | None,
    workdir: str | Path | None = None,
    *,
    log: Callable[[str], None] = print,
    progress: bool = False,
    prefix: str = "recommend_",
    **training,
) -> dict:
    """Trains ``chosen`` candidates x ``seeds`` as one population on the npz task ``data_path`` (or the registered
    ``task`` with ``task_config``) in ``workdir`` (default: a new ``<prefix>*`` folder in the current directory) for
    ``epochs`` (default: the zoo's); ``training``: ``training_config``'s options (seeds, epochs, batch_size, seed,
    loss, task, task_config). Returns {"workdir", "command" (reruns it), "chance_loss", "epochs", "rows":
    [{rank, config, seeds, predicted_min_loss, actual_mean, actual_lo, actual_hi, actual_min_val_loss}],
    "spearman", "spearman_loss", "scored_by", "return_baseline"} (losses / chance but ``actual_min_val_loss``, raw).

    Where the task scores its models in an environment, each row also holds ``return_mean/lo/hi`` and
    ``normalised_mean/lo/hi`` (100 x (R - random) / (expert - random), ``newtask.environment_scores``), scored_by
    is "normalised_return" and ``spearman`` is the rank correlation of the predicted loss with minus the
    normalised return (positive: the prediction orders them right, as for the loss); ``spearman_loss`` is always
    the one with the actual loss. Raises ``run.train.RunError`` before any work on bad input."""
    import tempfile

    import pandas as pd

    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.analysis.meta.loto import rank_correlation
    from sparse_rnn_jax.analysis.meta.newtask import chance_of, environment_scores
    from sparse_rnn_jax.engine.results import final_per_model, read_results
    from sparse_rnn_jax.run.command import sweep_command
    from sparse_rnn_jax.run.train import train_and_evaluate

    epochs = training.pop("epochs", None) or zoo_epochs(rec)
    workdir = workdir or tempfile.mkdtemp(prefix=prefix, dir=".")
    config = training_config(rec, [c["spec"] for c in chosen], data_path, epochs=epochs, **training)
    result = train_and_evaluate(config, workdir, log=log, progress=progress)
    chance = chance_of(result.record.get("chance_loss"), rec["task"].get("chance_loss"))
    models = final_per_model(read_results([workdir])).assign(chance_loss=chance)
    models, _ = classify(models)
    models = models.reset_index(drop=True)
    models["norm"] = models["capped_min_val_loss"] / chance
    normalised, baseline = environment_scores(models, config.task, config.data)
    if normalised is not None:
        models["normalised_return"] = normalised
    rows = []
    for c in chosen:
        picked = models.loc[models["config"] == c["config"]]
        v = picked["norm"].to_numpy(float)
        mean, lo, hi = _mean_ci(v)
        row = {
            "rank": c["rank"],
            "config": c["config"],
            "seeds": int(v.size),
            "predicted_min_loss": c["predicted_min_loss"],
            "actual_mean": mean,
            "actual_lo": lo,
            "actual_hi": hi,
            "actual_min_val_loss": float(picked["min_val_loss"].mean()) if v.size else math.nan,
        }
        if normalised is not None:
            for key, column in (("return", "eval_return_mean"), ("normalised", "normalised_return")):
                row[f"{key}_mean"], row[f"{key}_lo"], row[f"{key}_hi"] = _mean_ci(picked[column].to_numpy(float))
        rows.append(row)
    table = pd.DataFrame(rows)
    predicted = table["predicted_min_loss"].to_numpy()
    rho_loss = rank_correlation(predicted, table["actual_mean"].to_numpy())
    by_return = normalised is not None and np.isfinite(table["normalised_mean"].to_numpy(float)).all()
    return {
        "workdir": str(workdir),
        "command": sweep_command(config, str(workdir)),
        "chance_loss": chance,
        "epochs": epochs,
        "rows": rows,
        "scored_by": "normalised_return" if by_return else "norm_min_loss",
        "spearman": rank_correlation(predicted, -table["normalised_mean"].to_numpy(float)) if by_return else rho_loss,
        "spearman_loss": rho_loss,
        "return_baseline": baseline,
    }


def validation_text(val: dict, title: str = "Validation") -> str:
    """Predicted vs actual normalised minimum loss per trained candidate (and normalised return where the task is
    scored in an environment), their rank correlation and the command that reruns the training."""
    from sparse_rnn_jax.analysis.meta.newtask import baseline_text

    by_return = val.get("scored_by") == "normalised_return"
    lines = [
        f"{title} in {val['workdir']} ({val['epochs']} epochs; losses / chance loss {val['chance_loss']:.4g}; "
        "actual: mean [95 % CI] over seeds; raw: the mean minimum validation loss a sweep prints"
        + ("; return: the mean environment return, normalised: vs a random policy" if by_return else "")
        + "):",
        f"{'rank':>4}  {'config':<24}{'seeds':>6}{'predicted':>11}  actual (raw)"
        + ("  |  return  normalised [95 % CI]" if by_return else ""),
    ]
    for r in val["rows"]:
        ci = "" if not math.isfinite(r["actual_lo"]) else f" [{r['actual_lo']:.3f}, {r['actual_hi']:.3f}]"
        line = (
            f"{r['rank']:>4}  {r['config']:<24}{r['seeds']:>6}{r['predicted_min_loss']:>11.3f}"
            f"  {r['actual_mean']:.3f}{ci}"
            + (f" ({r['actual_min_val_loss']:.3f})" if "actual_min_val_loss" in r else "")
        )
        if by_return:
            lo, hi = r["normalised_lo"], r["normalised_hi"]
            nci = f" [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) else ""
            line += f"  |  {r['return_mean']:.4g}  {r['normalised_mean']:.2f}{nci}"
        lines.append(line)
    rho = val["spearman"]
    if len(val["rows"]) > 1:
        against = "minus the normalised return" if by_return else "actual mean"
        text = f"rank correlation (predicted vs {against}): {'-' if not math.isfinite(rho) else f'{rho:.2f}'}"
        if by_return and math.isfinite(val["spearman_loss"]):
            text += f"; vs the actual loss: {val['spearman_loss']:.2f}"
        lines.append(text)
    if val.get("return_baseline"):
        lines.append(baseline_text(val["return_baseline"]))
    if val.get("command"):
        lines.append(f"rerun (resumes; a larger --epochs continues): {val['command']}")
    return "\n".join(lines)
