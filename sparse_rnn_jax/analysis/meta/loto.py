"""Leave-one-family-out (the headline) and leave-one-task-out evaluation of the cross-task parent against simple
ways to choose a network.

Hold-out unit (``by``): a **family** (``dataset.families``: every variant of one generator, e.g. the three RAD
entries, Reber's two variants, sequential and permuted MNIST) or a single task. For each unit: fit the parent on
the other units, predict the unit's models, and score the predictions within each of its runs (one task at one
budget: the models a user at that budget chooses among), then average over the task's budgets. Held out by task, a
sibling of the task (same generator, often identical descriptors) stays in the training set, which flatters the
parent; held out by family it does not. Candidates: each sampled model, and each named config (its seeds pooled:
its actual loss is the mean over seeds, so a pick of it is a pick of the config, not of a lucky seed). All losses
are the meta-dataset's normalised minimum validation losses (1 = chance).

Methods: ``forest`` and ``mlp`` (the cross-task parent's normalised-loss output, never trained on the unit),
``rank_forest`` (the parent's within-(task, budget) target, ``parent.RANK_TARGET``: it learns which network is
better than another on the same task and budget, with the task's descriptors as context), ``rank_model`` (the
same target from the model's features alone, ``parent.MODEL_FEATURES``), ``per_task`` (a forest
cross-validated on the task's own models, grouped k-fold: a named config's seeds, identical feature rows, are one
group; what a per-task parent reaches after a sweep of the task), ``hp05`` (the order "hidden proportion closest
to 0.5 first", no fit), ``balanced`` (the a-priori rule alone), ``dense``, and ``random`` (the expected value over
uniform picks). Metrics: ``spearman`` (predicted vs actual rank of the candidates), ``regret_top1`` (loss of the
top pick minus the best candidate's) and ``regret_top3`` (best of the top three picks minus the best; for
``random`` the expected best of three distinct uniform picks). A single fixed pick (balanced, dense) has no rank
correlation and no top three.

95 % CIs: per task, percentile bootstrap over the task's candidates (resampled with replacement within each run,
the fixed baselines always present); for the means over tasks, a cluster bootstrap over the hold-out units
(families resampled with all their tasks). Each method's mean regret is compared, paired within each bootstrap
resample, with the balanced rule's top-1 regret and with a random pick's (for best-of-top-3: with the rule's one
pick and random's best of three): a difference whose CI holds 0 is "within noise".

Environment tasks (a return per model, ``norm_return``): the rank correlation of the return with the actual loss,
with the parent's predicted loss (its held-out prediction) and with a per-task forest that predicts the return
itself (grouped k-fold on the task's models).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Callable

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.meta.dataset import curve_columns, families
from sparse_rnn_jax.analysis.meta.parent import (
    DEFAULT_MAX_DEPTH,
    FEATURES,
    MODEL_FEATURES,
    RANK_TARGET,
    fit_forest_multi,
    fit_mlp,
    meta_features,
    rank_target,
    targets,
)
from sparse_rnn_jax.analysis.predictor import MLPConfig, RegressionData, cv_forest, row_groups
from sparse_rnn_jax.core.configs import NAMED_CONFIGS

PREDICTORS: tuple[str, ...] = ("forest", "mlp", "rank_forest", "rank_model", "per_task")
BASELINES: tuple[str, ...] = ("race", "hp05", "balanced", "dense", "random")
HOLDOUTS: tuple[str, ...] = ("family", "task")
"""Hold-out units: a family (every variant of one generator; the headline) or a single task."""
METRICS: tuple[str, ...] = ("spearman", "regret_top1", "regret_top3")
LOTO_TREES = 200
BOOTSTRAP = 1000
PER_TASK_FOLDS = 5
MIN_RETURN_MODELS = 5


def candidate_keys(frame: pd.DataFrame) -> np.ndarray:
    """One key per row: the named config (its seeds are one candidate) or ``<sampler>#<model_id>``."""
    config = frame["config"].astype(str).to_numpy()
    ids = frame["model_id"].astype(int).to_numpy()
    return np.array([c if c in NAMED_CONFIGS else f"{c}#{i}" for c, i in zip(config, ids)])


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of ``a`` and ``b`` (average ranks for ties); NaN when either is constant or n < 3."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def expected_best_of(actual: np.ndarray, k: int = 3) -> float:
    """The expected minimum of ``k`` distinct uniform picks from ``actual`` (all of them when fewer)."""
    a = np.sort(np.asarray(actual, float))
    n = a.size
    if n <= k:
        return float(a.min())
    ranks = np.arange(1, n + 1)
    weights = np.array([math.comb(n - r, k - 1) for r in ranks], float) / math.comb(n, k)
    return float((weights * a).sum())


def pick_regrets(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(regret of the top-1 pick, regret of the best of the top-3 picks) of ``predicted`` (lowest first); tied
    top predictions share the pick (their mean actual loss)."""
    best = actual.min()
    top = predicted == predicted.min()
    order = np.argsort(predicted, kind="stable")
    return float(actual[top].mean() - best), float(actual[order[:3]].min() - best)


@dataclasses.dataclass
class Group:
    """The candidates of one run (a task at one budget): actual f64[c], predictions per method f64[c], and the
    index of each named config present."""

    task: str
    run: str
    actual: np.ndarray
    predicted: dict[str, np.ndarray]
    named: dict[str, int]
    curves: np.ndarray | None = None
    hidden_proportion: np.ndarray | None = None

    def race(self) -> tuple[float, float]:
        """(regret of the race's winner, its compute fraction): the race of ``analysis.meta.race`` simulated on
        the recorded curves (a rung of e epochs sees each entrant's minimum over its first e epochs, which a
        retraining with the same spec and seed reproduces), entrants chosen by the ranking forest's held-out
        prediction (else the forest's), within ``DEFAULT_FRACTION`` of the full sweep's compute (every candidate of
        the run trained for every epoch); the fraction is of that full sweep. NaN without curves or when even one
        epoch per entrant does not fit."""
        from sparse_rnn_jax.analysis.meta.race import DEFAULT_DIVERSE, DEFAULT_FRACTION, DEFAULT_TOP, rung_plan

        ranker = self.predicted.get("rank_model", self.predicted.get("forest"))
        if self.curves is None or ranker is None:
            return math.nan, math.nan
        order = list(np.argsort(ranker, kind="stable"))
        chosen = order[:DEFAULT_TOP]
        rest = order[DEFAULT_TOP:]
        if rest and self.hidden_proportion is not None:
            hp = self.hidden_proportion[rest]
            edges = np.quantile(hp, np.linspace(0, 1, DEFAULT_DIVERSE + 1))
            for k in range(DEFAULT_DIVERSE):
                pick = next((c for c, v in zip(rest, hp) if edges[k] <= v <= edges[k + 1] and c not in chosen), None)
                if pick is not None:
                    chosen.append(pick)
        chosen += [i for n, i in self.named.items() if n in ("balanced", "dense") and i not in chosen]
        epochs = int(np.isfinite(self.curves).sum(axis=1).min())
        try:
            plan = rung_plan(len(chosen), epochs, budget=DEFAULT_FRACTION * self.actual.size * epochs)
        except ValueError:  # too few epochs for a race within the default budget
            return math.nan, math.nan
        alive = chosen
        for step in plan:
            alive = alive[: step["models"]]
            seen = np.nanmin(self.curves[alive, : step["epochs"]], axis=1)
            alive = [alive[i] for i in np.argsort(seen, kind="stable")]
        cost = sum(r["models"] * r["epochs"] for r in plan) / (self.actual.size * epochs)
        return float(self.actual[alive[0]] - self.actual.min()), float(cost)

    def metrics(self, idx: np.ndarray | None = None) -> dict[tuple[str, str], float]:
        """(method, metric) -> value over the candidates ``idx`` (default: all; the named configs are always
        added, so the fixed picks stay available)."""
        full = idx is None
        if idx is None:
            idx = np.arange(self.actual.size)
        keep = np.concatenate([idx, [i for i in self.named.values()]]).astype(int)
        actual = self.actual[keep]
        best = actual.min()
        out = {}
        for method, pred in self.predicted.items():
            p = pred[keep]
            top1, top3 = pick_regrets(actual, p)
            out[(method, "spearman")] = rank_correlation(p, actual)
            out[(method, "regret_top1")] = top1
            out[(method, "regret_top3")] = top3
        for name in ("balanced", "dense"):
            out[(name, "spearman")] = math.nan
            out[(name, "regret_top1")] = self.actual[self.named[name]] - best if name in self.named else math.nan
            out[(name, "regret_top3")] = math.nan
        if full and self.curves is not None:
            regret, _ = self.race()
            out[("race", "spearman")], out[("race", "regret_top1")], out[("race", "regret_top3")] = (
                math.nan,
                regret,
                math.nan,
            )
        out[("random", "spearman")] = math.nan
        out[("random", "regret_top1")] = float(actual.mean() - best)
        out[("random", "regret_top3")] = expected_best_of(actual) - best
        return out


def groups_of(frame: pd.DataFrame, predictions: dict[str, np.ndarray]) -> list[Group]:
    """The runs of ``frame`` as candidate groups (rows of a candidate averaged), with each method's row
    predictions ``predictions[method]: f64[len(frame)]`` averaged the same way."""
    keys = candidate_keys(frame)
    out = []
    for (task, run), rows in frame.groupby(["task", "run"], sort=True):
        pos = frame.index.get_indexer(rows.index)
        k = keys[pos]
        uniq, inv = np.unique(k, return_inverse=True)
        counts = np.bincount(inv)

        def mean(v, inv=inv, counts=counts, c=len(uniq)):
            return np.bincount(inv, weights=v, minlength=c) / counts

        actual = mean(frame["norm_min_loss"].to_numpy(float)[pos])
        predicted = {m: mean(np.asarray(p, float)[pos]) for m, p in predictions.items()}
        named = {str(u): i for i, u in enumerate(uniq) if u in NAMED_CONFIGS}
        cols = curve_columns(frame)
        curves = None
        if cols:
            raw = frame[cols].to_numpy(float)[pos]
            curves = np.stack([np.nanmean(raw[inv == c], axis=0) for c in range(len(uniq))])
        hp = mean(frame["hidden_proportion"].to_numpy(float)[pos])
        out.append(Group(str(task), str(run), actual, predicted, named, curves, hp))
    return out


def holdout_units(frame: pd.DataFrame, by: str) -> np.ndarray:
    """str[n]: each row's hold-out unit, its family (``by="family"``) or its task (``by="task"``)."""
    if by not in HOLDOUTS:
        raise ValueError(f"hold out by one of {HOLDOUTS}, got {by!r}")
    return families(frame) if by == "family" else frame["task"].astype(str).to_numpy()


def hp05_order(frame: pd.DataFrame) -> np.ndarray:
    """f64[n]: the "hidden proportion closest to 0.5 first" order as a score (lower is picked first)."""
    return np.abs(frame["hidden_proportion"].to_numpy(float) - 0.5)


def holdout_predictions(
    frame: pd.DataFrame,
    *,
    by: str = "family",
    trees: int = LOTO_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    seed: int = 0,
    mlp: bool = True,
    mlp_config: MLPConfig = MLPConfig(),
    rank: str | None = RANK_TARGET,
    folds: int = PER_TASK_FOLDS,
    log: Callable[[str], None] = lambda _s: None,
) -> dict[str, np.ndarray]:
    """Per row of ``frame`` (index 0..n-1): the cross-task forest's (and MLP's, and with ``rank`` the ranking
    forest's) prediction made without the row's hold-out unit (``by``), the per-task forest's grouped out-of-fold
    prediction and the ``hp05`` order. f64[n] each."""
    frame = frame.reset_index(drop=True)
    features = meta_features(frame)
    min_loss, curves = targets(frame)
    outputs = np.concatenate([min_loss[:, None], curves], axis=1)
    relative = rank_target(frame, rank) if rank else None
    units = holdout_units(frame, by)
    names = ("forest",) + (("mlp",) if mlp else ()) + (("rank_forest", "rank_model") if rank else ()) + ("per_task",)
    model = np.array([f in MODEL_FEATURES for f in FEATURES])
    out = {m: np.full(len(frame), np.nan) for m in names}
    for u in sorted(set(units)):
        test = units == u
        train = ~test
        log(f"leave-one-{by}-out: {u} ({int(test.sum())} models held out)")
        if not train.any():
            continue
        n = int(test.sum())
        forest = fit_forest_multi(features[train], outputs[train], trees, max_depth, seed)
        out["forest"][test] = np.asarray(forest.predict(features[test])).reshape(n, -1)[:, 0]
        if rank:
            ranker = fit_forest_multi(features[train], relative[train, None], trees, max_depth, seed)
            out["rank_forest"][test] = np.asarray(ranker.predict(features[test])).reshape(n, -1)[:, 0]
            ranker = fit_forest_multi(features[train][:, model], relative[train, None], trees, max_depth, seed)
            out["rank_model"][test] = np.asarray(ranker.predict(features[test][:, model])).reshape(n, -1)[:, 0]
        if mlp:
            net = fit_mlp(features[train], min_loss[train], curves[train], seed, mlp_config)
            out["mlp"][test] = net.predict(features[test])[:, 0]
    tasks = frame["task"].astype(str).to_numpy()
    for t in sorted(set(tasks)):
        test = np.flatnonzero(tasks == t)
        data = RegressionData(features[test], FEATURES, min_loss[test], None, np.zeros(test.size, bool))
        distinct = int(row_groups(features[test]).max()) + 1
        if distinct >= 4:  # folds of >= 2 distinct models each
            score, _ = cv_forest(data, min(folds, distinct // 2), trees, max_depth, seed)
            out["per_task"][test] = score.predicted
    out["hp05"] = hp05_order(frame)
    return out


def loto_predictions(frame: pd.DataFrame, **kwargs) -> dict[str, np.ndarray]:
    """``holdout_predictions`` held out by task."""
    return holdout_predictions(frame, by="task", **kwargs)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    s = np.asarray(samples, float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return math.nan, math.nan
    return float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))


def _nanmean(values) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _paired(row: dict, name: str, v: np.ndarray, base: np.ndarray, draws: list[np.ndarray]) -> None:
    """Adds ``<name>``, ``<name>_lo``, ``<name>_hi`` and ``within_noise_<name>`` to ``row``: the mean of
    ``v - base`` over tasks and its interval over the task index sets ``draws``."""
    d = v - base
    row[name] = _nanmean(d)
    row[f"{name}_lo"], row[f"{name}_hi"] = _interval([_nanmean(d[i]) for i in draws])
    row[f"within_noise_{name}"] = bool(row[f"{name}_lo"] <= 0 <= row[f"{name}_hi"])


def score_groups(
    groups: list[Group], bootstrap: int = BOOTSTRAP, seed: int = 0, units: dict[str, str] | None = None
) -> dict:
    """Per-task values with bootstrap CIs over candidates, and the means over tasks with a cluster bootstrap over
    the hold-out ``units`` (task -> unit; default: each task its own unit) (module docstring). Returns
    {"per_task": [...], "summary": [...]}."""
    rng = np.random.default_rng(seed)
    tasks = sorted({g.task for g in groups})
    keys = sorted({k for g in groups for k in g.metrics()})
    value = {t: {} for t in tasks}
    per_task = []
    for t in tasks:
        mine = [g for g in groups if g.task == t]
        point = [g.metrics() for g in mine]
        boot = {k: np.empty(bootstrap) for k in keys}
        for b in range(bootstrap):
            reps = [g.metrics(rng.integers(0, g.actual.size, g.actual.size)) for g in mine]
            for k in keys:
                boot[k][b] = _nanmean([r.get(k, math.nan) for r in reps])
        for k in keys:
            v = _nanmean([p[k] for p in point])
            value[t][k] = v
            lo, hi = _interval(boot[k]) if math.isfinite(v) else (math.nan, math.nan)
            per_task.append(
                {
                    "task": t,
                    "method": k[0],
                    "metric": k[1],
                    "value": v,
                    "lo": lo,
                    "hi": hi,
                    "candidates": int(sum(g.actual.size for g in mine)),
                }
            )
    units = {t: (units or {}).get(t, t) for t in tasks}
    clusters = [np.array([i for i, t in enumerate(tasks) if units[t] == u]) for u in sorted(set(units.values()))]
    draws = [
        np.concatenate([clusters[j] for j in rng.integers(0, len(clusters), len(clusters))]) for _ in range(bootstrap)
    ]
    summary = []
    for k in keys:
        v = np.array([value[t][k] for t in tasks])
        if not np.isfinite(v).any():
            continue
        row = {"method": k[0], "metric": k[1], "mean": _nanmean(v), "n_tasks": int(np.isfinite(v).sum())}
        row["n_units"] = len(clusters)
        row["lo"], row["hi"] = _interval([_nanmean(v[i]) for i in draws])
        if k[1].startswith("regret"):
            if k[0] != "balanced":
                _paired(row, "vs_balanced", v, np.array([value[t][("balanced", "regret_top1")] for t in tasks]), draws)
                row["within_noise"] = row.pop("within_noise_vs_balanced")
            if k[0] != "random":
                base = np.array([value[t][("random", k[1])] for t in tasks])
                _paired(row, "vs_random", v, base, draws)
        summary.append(row)
    return {"per_task": per_task, "summary": summary}


def return_scores(
    frame: pd.DataFrame,
    parent_prediction: np.ndarray,
    *,
    trees: int = LOTO_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    seed: int = 0,
    folds: int = PER_TASK_FOLDS,
    bootstrap: int = BOOTSTRAP,
) -> list[dict]:
    """For each task with environment returns: rank correlations of the return with the actual loss, the
    parent's predicted loss and a per-task forest's predicted return (k-fold), each with a bootstrap 95 % CI over
    the models."""
    frame = frame.reset_index(drop=True)
    features = meta_features(frame)
    rng = np.random.default_rng(seed)
    out = []
    for t, rows in frame.groupby("task", sort=True):
        pos = rows.index.to_numpy()
        ret = rows["norm_return"].to_numpy(float)
        ok = np.isfinite(ret)
        if ok.sum() < MIN_RETURN_MODELS:
            continue
        pos, ret = pos[ok], ret[ok]
        loss = frame["norm_min_loss"].to_numpy(float)[pos]
        data = RegressionData(features[pos], FEATURES, ret, None, np.zeros(len(pos), bool))
        score, _ = cv_forest(data, min(folds, len(pos) // 2), trees, max_depth, seed)
        pairs = {
            "actual_loss": -loss,
            "parent_predicted_loss": -np.asarray(parent_prediction, float)[pos],
            "per_task_predicted_return": score.predicted,
        }
        for name, pred in pairs.items():
            boot = []
            for _ in range(bootstrap):
                i = rng.integers(0, len(pos), len(pos))
                boot.append(rank_correlation(pred[i], ret[i]))
            lo, hi = _interval(boot)
            out.append(
                {
                    "task": str(t),
                    "versus": name,
                    "spearman": rank_correlation(pred, ret),
                    "lo": lo,
                    "hi": hi,
                    "models": len(pos),
                }
            )
    return out


def holdout_defaults() -> dict:
    """``holdout_predictions``' keyword arguments at their defaults (by, trees, max_depth, seed, mlp, mlp_config,
    rank, folds, log)."""
    params = inspect.signature(holdout_predictions).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def leave_one_out(frame: pd.DataFrame, *, bootstrap: int = BOOTSTRAP, **options) -> dict:
    """The full evaluation (module docstring) of the meta-dataset ``frame`` held out by ``by`` (family or task;
    >= 2 units) as a JSON-able dict: settings, tasks, units (task -> unit), per_task, summary, returns.
    ``options``: ``holdout_predictions``' keyword arguments (``holdout_defaults``)."""
    settings = {**holdout_defaults(), **options}
    by, trees, max_depth, seed, folds = (settings[k] for k in ("by", "trees", "max_depth", "seed", "folds"))
    frame = frame.reset_index(drop=True)
    tasks = sorted(frame["task"].unique())
    unit_of = holdout_units(frame, by)
    if len(set(unit_of)) < 2:
        plural = "families" if by == "family" else "tasks"
        raise ValueError(f"leave-one-{by}-out needs at least 2 {plural}, got {len(set(unit_of))}")
    predictions = holdout_predictions(frame, **settings)
    units = dict(zip(frame["task"].astype(str), unit_of))
    scores = score_groups(groups_of(frame, predictions), bootstrap, seed, units)
    returns = return_scores(
        frame, predictions["forest"], trees=trees, max_depth=max_depth, seed=seed, folds=folds, bootstrap=bootstrap
    )
    return {
        "settings": {
            "holdout": by,
            "trees": trees,
            "max_depth": max_depth,
            "mlp": settings["mlp"],
            "rank_target": settings["rank"],
            "per_task_folds": folds,
            "per_task_groups": "identical feature rows (a named config's seeds) are one group",
            "bootstrap": bootstrap,
            "seed": seed,
            "models": int(len(frame)),
        },
        "tasks": tasks,
        "units": {t: units[t] for t in tasks},
        **scores,
        "returns": returns,
    }


def leave_one_task_out(frame: pd.DataFrame, **kwargs) -> dict:
    """``leave_one_out`` held out by task (a task's siblings stay in the training set)."""
    return leave_one_out(frame, by="task", **kwargs)


def leave_one_family_out(frame: pd.DataFrame, **kwargs) -> dict:
    """``leave_one_out`` held out by family (the headline evaluation)."""
    return leave_one_out(frame, by="family", **kwargs)


METHOD_LABELS = {
    "forest": "cross-task forest",
    "mlp": "cross-task MLP",
    "rank_forest": "ranking forest (task context)",
    "rank_model": "ranking forest (model features)",
    "per_task": "per-task forest (grouped k-fold)",
    "hp05": "hidden proportion closest to 0.5",
    "race": "race (<= 0.2 of the compute, simulated)",
    "balanced": "balanced rule",
    "dense": "dense",
    "random": "random pick",
}


def _ci(v, lo, hi, digits: int = 3) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if lo is None or not math.isfinite(lo):
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def loto_markdown(result: dict) -> str:
    """The summary (means over tasks) and per-task tables of ``leave_one_out`` as markdown."""
    summary = {(r["method"], r["metric"]): r for r in result["summary"]}
    methods = [m for m in PREDICTORS + BASELINES if any(k[0] == m for k in summary)]
    rankers = [m for m in methods if (m, "spearman") in summary]
    lines = [
        "| method | Spearman | regret top-1 | regret best-of-top-3 | top-1 regret minus balanced's | |"
        " top-1 regret minus random's |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        cells = []
        for metric in METRICS:
            r = summary.get((m, metric))
            cells.append(_ci(r["mean"], r["lo"], r["hi"]) if r else "-")
        r = summary.get((m, "regret_top1"), {})
        diff = _ci(r.get("vs_balanced"), r.get("vs_balanced_lo"), r.get("vs_balanced_hi"))
        verdict = "" if "within_noise" not in r else ("within noise" if r["within_noise"] else "differs")
        vs_random = _ci(r.get("vs_random"), r.get("vs_random_lo"), r.get("vs_random_hi"))
        lines.append(f"| {METHOD_LABELS[m]} | " + " | ".join(cells) + f" | {diff} | {verdict} | {vs_random} |")
    per = {(r["task"], r["method"], r["metric"]): r for r in result["per_task"]}
    head = ["task", "candidates"] + [f"{METHOD_LABELS[m]} rho" for m in rankers]
    head += [f"{METHOD_LABELS[m]} regret" for m in methods]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in result["tasks"]:
        any_row = per.get((t, "random", "regret_top1"))
        cells = [t, str(any_row["candidates"]) if any_row else "-"]
        for m in rankers:
            r = per.get((t, m, "spearman"))
            cells.append(_ci(r["value"], r["lo"], r["hi"], 2) if r else "-")
        for m in methods:
            r = per.get((t, m, "regret_top1"))
            cells.append(_ci(r["value"], r["lo"], r["hi"]) if r else "-")
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("returns"):
        lines += ["", "| task | return vs | Spearman | models |", "|---|---|---|---|"]
        for r in result["returns"]:
            lines.append(f"| {r['task']} | {r['versus']} | {_ci(r['spearman'], r['lo'], r['hi'], 2)} | {r['models']} |")
    return "\n".join(lines)
