"""A race among the cross-task parent's candidates: successive halving trained by the engine, so a user gets a
measured winner for a fraction of the compute of training every candidate fully.

Entrants (``race_entrants``): the parent's ``top`` picks, ``diverse`` others (the best-predicted candidate of each
hidden-proportion quantile bin of the rest, so the race does not only test the parent's taste), the best-ranked
balanced candidate and the best-ranked dense one. Rungs (``rung_plan``): rung i trains the ``n_i`` survivors for
``e_i = min(E, e0 * eta^i)`` epochs as one population (one ``run.train.train_and_evaluate`` run with explicit specs:
one compiled program per rung); the best ``max(1, n_i // eta)`` go on; the last rung trains the single winner for
the full ``E`` epochs, so its curve is measured end to end. Each rung retrains its survivors from scratch (the
same spec and seed: their first epochs repeat the previous rung's), so the compute of a rung is ``n_i * e_i``
model-epochs; ``e0`` is the largest that keeps the total within the budget (default ``DEFAULT_FRACTION`` of
training every entrant for ``E`` epochs), and where even ``e0 = 1`` does not fit, eta is raised until it does
(``fit_eta``: fewer survivors per rung). ``compute_fraction`` = the race's model-epochs / (entrants x E).

Score: the normalised minimum validation loss (1 = the task's chance loss, lower is better), or, where the task
scores its models in an environment (``eval_return_mean`` in the run's scores), the normalised return (higher is
better): 100 x (R - random) / (expert - random) against a random-policy baseline (``newtask.environment_scores``,
``tasks.adroit.baseline``), the raw mean return where the task has no normalisation.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

DEFAULT_ETA = 3
DEFAULT_TOP = 6
DEFAULT_DIVERSE = 4
DEFAULT_FRACTION = 0.2
"""The default race budget as a fraction of training every entrant for the full epochs."""


def _base(config: str) -> str:
    return config.split("@lr")[0]


def race_entrants(rec: dict, top: int = DEFAULT_TOP, diverse: int = DEFAULT_DIVERSE) -> list[dict]:
    """The race's entrants from a recommendation (``recommend.recommend_for_task``: candidates best first): the
    ``top`` picks, ``diverse`` more (the best-ranked of each hidden-proportion quantile bin of the others), then the
    best-ranked balanced and dense candidates when not already in. Each entrant is its candidate dict plus
    ``entered_as`` (top | diverse | balanced | dense)."""
    ranked = list(rec["candidates"])
    chosen = [{**c, "entered_as": "top"} for c in ranked[:top]]
    rest = ranked[top:]
    if diverse > 0 and rest:
        hp = np.array([c["hidden_proportion"] for c in rest])
        edges = np.quantile(hp, np.linspace(0, 1, diverse + 1))
        for k in range(diverse):
            inside = [c for c, v in zip(rest, hp) if edges[k] <= v <= edges[k + 1]]
            pick = next((c for c in inside if all(c["config"] != o["config"] for o in chosen)), None)
            if pick is not None:
                chosen.append({**pick, "entered_as": "diverse"})
    for name in ("balanced", "dense"):
        best = next((c for c in ranked if _base(c["config"]) == name), None)
        if best is not None and all(best["config"] != o["config"] for o in chosen):
            chosen.append({**best, "entered_as": name})
    return chosen


def rung_sizes(n: int, eta: int) -> list[int]:
    """Models per rung: n, then max(1, n_i // eta) until one is left (a single entrant: one rung)."""
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append(max(1, sizes[-1] // eta))
    return sizes


def _plan(n: int, epochs: int, eta: int, e0: int) -> list[dict]:
    """The rungs of successive halving with first-rung epochs ``e0`` (``rung_plan``)."""
    rows = [{"models": m, "epochs": min(epochs, e0 * eta**i)} for i, m in enumerate(rung_sizes(n, eta))]
    rows[-1]["epochs"] = epochs
    if len(rows) > 1 and rows[-2]["epochs"] == epochs:  # the winner is already measured in full
        rows.pop()
    return rows


def _cost(rows: Sequence[dict]) -> int:
    return sum(r["models"] * r["epochs"] for r in rows)


def fit_eta(n: int, epochs: int, budget: float | None = None, eta: int = DEFAULT_ETA) -> int:
    """The smallest eta >= ``eta`` whose race of one first-rung epoch fits the budget (default ``DEFAULT_FRACTION``
    x n x E): a tight budget keeps fewer survivors per rung rather than failing (at eta = n one rung of n x 1
    epoch, then the winner for E). A ValueError naming ``race_budget`` when even that does not fit."""
    if n < 1 or epochs < 1 or eta < 2:
        raise ValueError(f"need >= 1 entrant, >= 1 epoch and eta >= 2, got {n}, {epochs}, {eta}")
    budget = DEFAULT_FRACTION * n * epochs if budget is None else float(budget)
    for e in range(eta, max(eta, n) + 1):
        if _cost(_plan(n, epochs, e, 1)) <= budget:
            return e
    raise ValueError(
        f"race_budget: {budget:g} model-epochs is too small for {n} entrants at {epochs} epochs "
        f"(successive halving needs at least {_cost(_plan(n, epochs, max(eta, n), 1))})"
    )


def rung_plan(n: int, epochs: int, budget: float | None = None, eta: int = DEFAULT_ETA) -> list[dict]:
    """[{"models", "epochs"}] of each rung (module docstring) for ``n`` entrants, ``epochs`` = E and a budget in
    model-epochs (default ``DEFAULT_FRACTION`` x n x E), at ``fit_eta``'s eta (``eta`` when it fits). A ValueError
    naming ``race_budget`` when even one epoch per entrant and a single survivor do not fit."""
    budget = DEFAULT_FRACTION * n * epochs if budget is None else float(budget)
    eta = fit_eta(n, epochs, budget, eta)
    e0 = 1
    while e0 < epochs and _cost(_plan(n, epochs, eta, e0 + 1)) <= budget:
        e0 += 1
    return _plan(n, epochs, eta, e0)


def _scores(folder: Path, chance: float, task: str, task_config) -> tuple[dict[str, dict], str, dict | None]:
    """Per config of a rung's run in ``folder`` (its results joined with its environment scores, if any):
    {score, norm_min_loss, curve, return, normalised_return}, the score's kind and the return baseline (or None)."""
    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.analysis.meta.newtask import environment_scores
    from sparse_rnn_jax.engine.results import final_per_model, read_results

    models = final_per_model(read_results([folder])).assign(chance_loss=chance)
    models, rules = classify(models)
    models = models.reset_index(drop=True)
    rule = next(iter(rules.values()))
    epochs = sorted(int(c.rsplit("_", 1)[1]) for c in models.columns if c.startswith("val_loss_epoch_"))
    returns = models["eval_return_mean"].to_numpy(float) if "eval_return_mean" in models else None
    by_return = returns is not None and np.isfinite(returns).all()
    normalised, baseline = environment_scores(models, task, task_config) if by_return else (None, None)
    by_normalised = normalised is not None and np.isfinite(normalised).all()
    out = {}
    for i, row in models.iterrows():
        curve = [float(min(row[f"val_loss_epoch_{k}"], rule.cap) / chance) for k in epochs]
        norm = float(row["capped_min_val_loss"] / chance)
        ret = float(returns[i]) if returns is not None else math.nan
        score = float(normalised[i]) if normalised is not None else math.nan
        out[str(row["config"])] = {
            "score": -score if by_normalised else (-ret if by_return else norm),
            "norm_min_loss": norm,
            "return": ret,
            "normalised_return": score,
            "curve": [c if math.isfinite(c) else None for c in curve],
        }
    kind = "normalised_return" if by_normalised else ("return" if by_return else "norm_min_loss")
    return out, kind, baseline


def run_race(
    rec: dict,
    make_config: Callable[[Sequence[str], int], object],
    workdir: str | Path,
    *,
    epochs: int,
    budget: float | None = None,
    eta: int = DEFAULT_ETA,
    top: int = DEFAULT_TOP,
    diverse: int = DEFAULT_DIVERSE,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> dict:
    """Runs the race (module docstring) for the recommendation ``rec``. ``make_config(spec_texts, epochs)`` builds
    the ``run.config.RunConfig`` of one rung (its task and data fixed by the caller); rung i trains in
    ``workdir/rung_<i>``. Returns a JSON-able dict: entrants, rungs (models, epochs, workdir, results best first,
    survivors), winner (its candidate, score and measured curve), scored_by, compute_model_epochs,
    full_model_epochs and compute_fraction. Raises ``run.train.RunError`` (bad input, before work) and
    ValueError (a budget too small)."""
    from sparse_rnn_jax.analysis.meta.newtask import chance_of
    from sparse_rnn_jax.run.train import train_and_evaluate

    entrants = race_entrants(rec, top, diverse)
    by_config = {c["config"]: c for c in entrants}
    eta = fit_eta(len(entrants), epochs, budget, eta)
    plan = rung_plan(len(entrants), epochs, budget, eta)
    workdir = Path(workdir)
    alive = [c["config"] for c in entrants]
    rungs, used, scored_by, last, baseline = [], 0, "norm_min_loss", {}, None
    for i, step in enumerate(plan):
        alive = alive[: step["models"]]
        folder = workdir / f"rung_{i}"
        log(f"race rung {i}: {len(alive)} models x {step['epochs']} epochs in {folder}")
        config = make_config([by_config[c]["spec"] for c in alive], step["epochs"])
        result = train_and_evaluate(config, folder, log=log, progress=progress, tensorboard=False)
        chance = chance_of(result.record.get("chance_loss"), rec["task"].get("chance_loss"))
        scores, scored_by, baseline = _scores(folder, chance, config.task, config.data)
        used += len(alive) * step["epochs"]
        order = sorted(alive, key=lambda c: (scores[c]["score"], by_config[c]["rank"]))
        keep = plan[i + 1]["models"] if i + 1 < len(plan) else 1
        rungs.append(
            {
                "rung": i,
                "models": len(alive),
                "epochs": step["epochs"],
                "workdir": str(folder),
                "results": [
                    {
                        "config": c,
                        "score": scores[c]["score"],
                        "norm_min_loss": scores[c]["norm_min_loss"],
                        "return": scores[c]["return"],
                        "normalised_return": scores[c]["normalised_return"],
                        "predicted_rank": by_config[c]["rank"],
                    }
                    for c in order
                ],
                "survivors": order[:keep],
            }
        )
        alive, last = order, scores
    winner = alive[0]
    full = len(entrants) * epochs
    return {
        "entrants": [
            {k: c[k] for k in ("rank", "config", "spec", "entered_as", "hidden_proportion", "predicted_min_loss")}
            for c in entrants
        ],
        "eta": eta,
        "epochs": epochs,
        "rungs": rungs,
        "scored_by": scored_by,
        "return_baseline": baseline,
        "winner": {
            **{k: by_config[winner][k] for k in ("rank", "config", "spec", "entered_as", "predicted_min_loss")},
            "norm_min_loss": last[winner]["norm_min_loss"],
            "return": last[winner]["return"],
            "normalised_return": last[winner]["normalised_return"],
            "curve": last[winner]["curve"],
        },
        "compute_model_epochs": used,
        "full_model_epochs": full,
        "compute_fraction": used / full,
    }


def _result_text(x: dict) -> str:
    """A rung result or the winner: its loss, and its return (normalised) where it has one."""
    text = f"loss {x['norm_min_loss']:.3f}"
    if math.isfinite(x.get("return", math.nan)):
        text += f", return {x['return']:.4g}"
        if math.isfinite(x.get("normalised_return", math.nan)):
            text += f" (normalised {x['normalised_return']:.2f})"
    return text


def race_text(race: dict) -> str:
    """The race as a few lines for a terminal."""
    from sparse_rnn_jax.analysis.meta.newtask import baseline_text

    lines = [
        f"Race: {len(race['entrants'])} entrants, successive halving (eta {race['eta']}), scored by "
        f"{race['scored_by']}; {race['compute_model_epochs']} model-epochs = {race['compute_fraction']:.2f} of "
        f"training every entrant for {race['epochs']} epochs"
    ]
    for r in race["rungs"]:
        best = "; ".join(f"{x['config']} {_result_text(x)}" for x in r["results"][:3])
        lines.append(f"  rung {r['rung']}: {r['models']} x {r['epochs']} epochs; best {best}")
    w = race["winner"]
    lines.append(
        f"Winner: {w['config']} (entered as {w['entered_as']}, predicted rank {w['rank']}): normalised minimum "
        + _result_text(w)
    )
    lines.append(f"  spec: {w['spec']}")
    if race.get("return_baseline"):
        lines.append("  " + baseline_text(race["return_baseline"]))
    return "\n".join(lines)
