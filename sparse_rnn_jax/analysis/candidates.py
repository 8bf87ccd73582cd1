"""Candidate specs at a budget, ranked by the parent network's predicted minimum validation loss.

Candidates (no child is trained): the named configs (dense, uniform, eqn7, eqn8, balanced) and balanced
variants at other target hidden proportions, each at every given learning rate, plus specs drawn by the
``normal_size`` sampler at the budget (each with its own sampled learning rate and inits).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sparse_rnn_jax.analysis.defaults import DEFAULT_BALANCE_TARGETS, DEFAULT_LEARNING_RATES, RANKERS
from sparse_rnn_jax.analysis.predictor import ParentPredictor, spec_features
from sparse_rnn_jax.core.accounting import expected_accounting
from sparse_rnn_jax.core.configs import NAMED_CONFIGS, named_specs
from sparse_rnn_jax.core.samplers import sample_specs
from sparse_rnn_jax.core.solvers import BudgetError, balanced_spec
from sparse_rnn_jax.core.spec import NetworkSpec
from sparse_rnn_jax.core.spec_text import spec_to_text

FOREST_QUANTILES: tuple[float, float] = (10, 90)
"""Percentiles over the forest's trees that bound a candidate's predicted interval."""
TOP_COMPARED = 5
"""How many of the best-ranked candidates the uncertainty line compares with the best."""


def candidate_specs(
    input_dim: int,
    output_dim: int,
    budget: float,
    num_sampled: int = 200,
    seed: int = 0,
    balance_targets: Sequence[float] = DEFAULT_BALANCE_TARGETS,
    learning_rates: Sequence[float] = DEFAULT_LEARNING_RATES,
) -> list[NetworkSpec]:
    """Named configs and balanced variants (``balanced@<target>``) at each learning rate, then
    ``num_sampled`` ``normal_size`` draws. Configs whose budget cannot be met are left out."""
    specs: list[NetworkSpec] = []
    for lr in learning_rates:
        for config in NAMED_CONFIGS:
            try:
                specs += named_specs([config], input_dim, output_dim, budget=budget, learning_rate=lr)
            except BudgetError:
                continue
        for target in balance_targets:
            if abs(target - 0.5) < 1e-9:
                continue  # that is "balanced" itself
            try:
                specs.append(
                    balanced_spec(
                        input_dim, output_dim, budget, target=target, learning_rate=lr, name=f"balanced@{target:.2f}"
                    )
                )
            except (BudgetError, ValueError):
                continue
    if num_sampled > 0:
        try:
            drawn = sample_specs("normal_size", num_sampled, seed, input_dim, output_dim, budget=budget).specs
        except ValueError:
            drawn = []
        specs += [s.replace(name=f"normal_size#{i}") for i, s in enumerate(drawn)]
    return specs


def rank_candidates(predictor: ParentPredictor, specs: Sequence[NetworkSpec], ranker: str = "forest") -> list[dict]:
    """One dict per spec, best (lowest predicted minimum validation loss) first.

    Keys: rank, config, spec (``core.spec_text``), hidden_dim, densities, learning_rate, hidden_proportion,
    trainable_params, predicted_min_val_loss (raw units, by ``ranker``: the forest, the MLP or their mean),
    predicted_min_val_loss_forest, predicted_min_val_loss_mlp (None without an MLP), predicted_interval (the
    forest's ``FOREST_QUANTILES`` over trees, raw units), predicted_min_loss_per_chance (None when the predictor
    does not record its task's chance loss), outside_training_range (features beyond the predictor's training
    data).
    """
    if ranker not in RANKERS:
        raise ValueError(f"ranker must be one of {RANKERS}, got {ranker!r}")
    if ranker != "forest" and predictor.mlp is None:
        raise ValueError(f"ranker {ranker!r} needs a predictor with an MLP; this one has only the forest")
    features = spec_features(specs)
    pred = predictor.predict(features)
    forest, mlp = pred["forest"], pred.get("mlp")
    score = {"forest": forest, "mlp": mlp, "mean": None if mlp is None else (forest + mlp) / 2}[ranker]
    spread = predictor.forest.quantiles(features, FOREST_QUANTILES)
    outside = predictor.out_of_range(features)
    chance = predictor.meta.get("chance_loss")
    chance = float(chance) if chance is not None and np.isfinite(chance) and chance > 0 else None
    rows = []
    for i, spec in enumerate(specs):
        acc = expected_accounting(spec)
        rows.append(
            {
                "config": spec.name,
                "spec": spec_to_text(spec),
                "hidden_dim": spec.hidden_dim,
                "densities": spec.densities(),
                "learning_rate": spec.learning_rate,
                "hidden_proportion": acc.hidden_proportion,
                "trainable_params": acc.trainable_params,
                "predicted_min_val_loss": float(score[i]),
                "predicted_min_val_loss_forest": float(forest[i]),
                "predicted_min_val_loss_mlp": None if mlp is None else float(mlp[i]),
                "predicted_interval": [float(spread[0, i]), float(spread[1, i])],
                "predicted_min_loss_per_chance": None if chance is None else float(score[i]) / chance,
                "outside_training_range": outside[i],
            }
        )
    order = np.argsort([r["predicted_min_val_loss"] for r in rows], kind="stable")
    ranked = [rows[i] for i in order]
    for k, r in enumerate(ranked, 1):
        r["rank"] = k
    return [{"rank": r.pop("rank"), **r} for r in ranked]


def ranking_uncertainty(ranked: Sequence[dict], key: str, error: float, source: str) -> dict:
    """How far the ranking can be trusted: which of the ``TOP_COMPARED`` best candidates (and the best-ranked
    balanced one) are predicted within ``error`` of the best (``key``: the predicted value, best first).

    Returns {"error", "error_source", "within_of_best" (count among the top, the best included), "compared",
    "balanced_rank", "balanced_within" (None without a balanced candidate)}."""
    if not ranked:
        return {"error": error, "error_source": source, "within_of_best": 0, "compared": 0}
    best = ranked[0][key]
    top = ranked[:TOP_COMPARED]
    balanced = next((r for r in ranked if r["config"].split("@lr")[0] == "balanced"), None)
    return {
        "error": float(error),
        "error_source": source,
        "within_of_best": int(sum(r[key] - best <= error for r in top)),
        "compared": len(top),
        "balanced_rank": None if balanced is None else int(balanced["rank"]),
        "balanced_within": None if balanced is None else bool(balanced[key] - best <= error),
    }


def uncertainty_text(u: dict, units: str = "") -> str:
    """One line saying whether the best candidates are told apart by the predictor's error."""
    if not u.get("compared"):
        return ""
    e = f"±{u['error']:.3g}{units} ({u['error_source']})"
    n, k = u["within_of_best"], u["compared"]
    if n > 1:
        some = f"All {k}" if n == k else f"{n} of the {k}"
        text = f"{some} best candidates are predicted within {e} of the best: their order is within the error"
    else:
        text = f"The best candidate is ahead of the next {k - 1} by more than {e}"
    if u.get("balanced_rank") is not None and u["balanced_rank"] > 1:
        text += f"; balanced (rank {u['balanced_rank']}) is " + (
            "within that error of the best" if u["balanced_within"] else "further than that from the best"
        )
    return text + ". Train several with their seeds to decide (--train_top)."


def predictor_recommendation(
    predictor: ParentPredictor,
    folder: str,
    input_dim: int,
    output_dim: int,
    budget: float,
    *,
    num_candidates: int = 200,
    seed: int = 0,
    balance_targets: Sequence[float] = DEFAULT_BALANCE_TARGETS,
    learning_rates: Sequence[float] = DEFAULT_LEARNING_RATES,
    ranker: str = "forest",
    seeds: int = 3,
    budget_slack: tuple[float, float] = (0.9, 1.1),
    command_root: str = "runs/recommend",
) -> dict:
    """Candidates at ``budget`` ranked by a task's own parent network (``rank_candidates``), as {"predictor": what
    it is and how well it cross-validated, "candidates", "uncertainty" (against the forest's cross-validated MAE)}.
    Each candidate gets the ``command`` that trains it with ``seeds`` seeds like the predictor's first run (its
    task, data and training, from its run.json; None when that run cannot be read)."""
    import math

    specs = candidate_specs(input_dim, output_dim, budget, num_candidates, seed, balance_targets, learning_rates)
    ranked = rank_candidates(predictor, specs, ranker)
    cv = predictor.meta.get("cross_validation", {})
    lo, hi = predictor.meta.get("trainable_params_range", [0.0, math.inf])
    info = {
        "path": str(folder),
        "task": predictor.meta.get("task"),
        "n_models": predictor.meta.get("n_models"),
        "ranker": ranker,
        "cv_r2_forest": cv.get("forest", {}).get("r2"),
        "cv_r2_mlp": cv.get("mlp", {}).get("r2"),
        "cv_mae_forest": cv.get("forest", {}).get("mae"),
        "chance_loss": predictor.meta.get("chance_loss"),
        "trained_trainable_params": [lo, hi],
        "budget_within_training_range": bool(budget_slack[0] * lo <= budget <= budget_slack[1] * hi),
        "runs": predictor.meta.get("runs", []),
    }
    base = _first_run_config(info["runs"])
    for r in ranked:
        r["command"] = None if base is None else predictor_command(base, r["spec"], seeds, command_root, r["config"])
    info["command_run"] = None if base is None else info["runs"][0]
    out = {"predictor": info, "candidates": ranked}
    mae = info["cv_mae_forest"]
    if mae is not None:
        out["uncertainty"] = ranking_uncertainty(
            ranked, "predicted_min_val_loss", mae, "the forest's cross-validated mean absolute error"
        )
    return out


def train_top_candidates(
    rec: dict,
    k: int,
    workdir: str,
    *,
    seeds: int = 3,
    log=print,
    progress: bool = False,
) -> dict:
    """Trains the ``k`` best candidates of ``predictor_recommendation``'s ``rec`` x ``seeds`` as one population on
    the task, data and training of the predictor's first run, into ``workdir``; returns {"workdir", "command"
    (reruns it), "epochs", "rows": [{rank, config, seeds, predicted_min_val_loss, actual_mean, actual_lo,
    actual_hi}]} (raw minimum validation losses, as a sweep prints them). A ValueError when no run of the
    predictor can be read; ``run.train.RunError`` before any work on bad input."""
    import dataclasses

    from sparse_rnn_jax.analysis.tables import t_interval
    from sparse_rnn_jax.engine.results import final_per_model
    from sparse_rnn_jax.run.command import specs_config, sweep_command
    from sparse_rnn_jax.run.train import train_and_evaluate

    base = _first_run_config(rec["predictor"].get("runs", []))
    if base is None:
        raise ValueError("train_top: none of the predictor's runs can be read (run.json with its config)")
    chosen = rec["candidates"][:k]
    train = dataclasses.replace(base.train, max_models_per_chunk=0)
    config = specs_config(
        base.task,
        base.data,
        [c["spec"] for c in chosen],
        seeds=seeds,
        train=train,
        matmul_precision=base.matmul_precision,
    )
    result = train_and_evaluate(config, workdir, log=log, progress=progress)
    models = final_per_model(result.frame)
    rows = []
    for c in chosen:
        v = models.loc[models["config"] == c["config"], "min_val_loss"].to_numpy(float)
        lo, hi = t_interval(v)
        rows.append(
            {
                "rank": c["rank"],
                "config": c["config"],
                "seeds": int(v.size),
                "predicted_min_val_loss": c["predicted_min_val_loss"],
                "actual_mean": float(v.mean()) if v.size else float("nan"),
                "actual_lo": lo,
                "actual_hi": hi,
            }
        )
    return {
        "workdir": str(workdir),
        "command": sweep_command(config, str(workdir)),
        "epochs": train.epochs,
        "rows": rows,
    }


def trained_text(trained: dict) -> str:
    """Predicted vs actual minimum validation loss of the trained candidates, and the command that reruns them."""
    lines = [
        f"Trained the top {len(trained['rows'])} in {trained['workdir']} ({trained['epochs']} epochs; raw minimum "
        "validation loss, actual: mean [95 % CI] over seeds):",
        f"{'rank':>4}  {'config':<24}{'seeds':>6}{'predicted':>11}  actual",
    ]
    for r in trained["rows"]:
        ci = f" [{r['actual_lo']:.3f}, {r['actual_hi']:.3f}]" if np.isfinite(r["actual_lo"]) else ""
        lines.append(
            f"{r['rank']:>4}  {r['config']:<24}{r['seeds']:>6}{r['predicted_min_val_loss']:>11.3f}"
            f"  {r['actual_mean']:.3f}{ci}"
        )
    lines.append(f"rerun (resumes; a larger --epochs continues): {trained['command']}")
    return "\n".join(lines)


def _first_run_config(runs: Sequence[str]):
    """The RunConfig of the first readable run of ``runs`` (None when none can be read)."""
    from sparse_rnn_jax.run.train import RunError, load_run

    for run in runs:
        try:
            return load_run(run, require_complete=False).config
        except (RunError, ValueError, OSError):
            continue
    return None


def predictor_command(base, text: str, seeds: int, root: str, name: str) -> str:
    """The ``experiments.sweep`` line that trains spec ``text`` with ``seeds`` seeds on the task, data and training
    of the run config ``base`` into ``root/<name>``."""
    import dataclasses
    import re

    from sparse_rnn_jax.run.command import specs_config, sweep_command

    train = dataclasses.replace(base.train, max_models_per_chunk=0)
    config = specs_config(
        base.task, base.data, [text], seeds=seeds, train=train, matmul_precision=base.matmul_precision
    )
    return sweep_command(config, f"{root}/{re.sub(r'[^A-Za-z0-9._-]', '_', name)}")


def predictor_text(rec: dict, top: int = 20) -> str:
    """``predictor_recommendation``'s dict (with the budget) as a few lines and a table for a terminal."""
    from sparse_rnn_jax.core.spec import BLOCKS

    p, ranked = rec["predictor"], rec["candidates"]
    chance = p.get("chance_loss")
    r2 = ", ".join(
        f"{name} {v:.3f}" for name, v in (("forest", p["cv_r2_forest"]), ("MLP", p["cv_r2_mlp"])) if v is not None
    )
    mae = f", MAE {p['cv_mae_forest']:.3f}" if p.get("cv_mae_forest") is not None else ""
    lines = [
        f"Candidates ranked by predicted minimum validation loss ({p['ranker']}; parent network {p['path']}, "
        f"trained on {p['n_models']:,} {p['task']} models; cross-validated R2: {r2 or '-'}{mae}).",
        "predicted: the raw minimum validation loss, as a sweep prints it"
        + (f"; /chance: divided by the task's chance loss {chance:.4g} (1 = chance)" if chance else "")
        + f"; [lo, hi]: the {FOREST_QUANTILES[0]:g}th-{FOREST_QUANTILES[1]:g}th percentile over the forest's trees.",
        "",
    ]
    head = f"{'rank':>4}  {'config':<16}{'|h|':>6}" + "".join(f"{b:>6}" for b in BLOCKS)
    lines.append(head + f"{'lr':>9}{'hid.prop':>10}{'predicted [lo, hi]':>26}" + (f"{'/chance':>9}" if chance else ""))
    for r in ranked[:top]:
        lo, hi = r["predicted_interval"]
        pred = f"{r['predicted_min_val_loss']:.3f} [{lo:.3f}, {hi:.3f}]"
        lines.append(
            f"{r['rank']:>4}  {r['config']:<16}{r['hidden_dim']:>6}"
            + "".join(f"{r['densities'][b]:>6.2f}" for b in BLOCKS)
            + f"{r['learning_rate']:>9.2g}{r['hidden_proportion']:>10.3f}{pred:>26}"
            + (f"{r['predicted_min_loss_per_chance']:>9.3f}" if chance else "")
            + (" *" if r["outside_training_range"] else "")
        )
    if any(r["outside_training_range"] for r in ranked[:top]):
        lines.append(
            "* some features lie outside the range the predictor was trained on (extrapolation): "
            + ", ".join(sorted({f for r in ranked[:top] for f in r["outside_training_range"]}))
        )
    lines.append(
        f"({min(top, len(ranked))} of {len(ranked)} candidates shown; densities per block, paper f<100 x density>)"
    )
    if rec.get("uncertainty"):
        lines.append(uncertainty_text(rec["uncertainty"]))
    if not p["budget_within_training_range"]:
        lo, hi = p["trained_trainable_params"]
        lines.append(
            f"note: the predictor was trained on models of {lo:,.0f} to {hi:,.0f} trainable weights; "
            f"the budget is outside that range, so the ranking extrapolates."
        )
    if "trained" in rec:
        lines += ["", trained_text(rec["trained"])]
    elif ranked and ranked[0].get("command"):
        lines += [
            "",
            f"Train the best candidate like {p['command_run']} was trained (--json gives every candidate's spec and "
            "command):",
            "  " + ranked[0]["command"],
        ]
    elif ranked:
        lines += [
            "",
            "Train a candidate: python -m experiments.sweep --task=... --num_models=0 --specs=SPEC "
            "--spec_repeats=3 (--json gives every candidate's spec)",
        ]
    return "\n".join(lines)
