"""Leave-one-task-out evaluation of the cross-task parent against simple ways to choose a network.

For each zoo task: fit the parent on the other tasks, predict the task's models, and score the predictions
within each of its runs (one budget: the models a user at that budget chooses among), then average over the
task's budgets. Candidates: each sampled model, and each named config (its seeds pooled: its actual loss is the
mean over seeds, so a pick of it is a pick of the config, not of a lucky seed). All losses are the meta-dataset's
normalised minimum validation losses (1 = chance).

Methods: ``forest`` and ``mlp`` (the cross-task parent, never trained on the task), ``per_task`` (a forest
cross-validated on the task's own models, k-fold: what a per-task parent reaches after a sweep of the task),
``balanced`` (the a-priori rule alone), ``dense``, and ``random`` (the expected value over uniform picks).
Metrics: ``spearman`` (predicted vs actual rank of the candidates), ``regret_top1`` (loss of the top pick minus
the best candidate's) and ``regret_top3`` (best of the top three picks minus the best; for ``random`` the expected
best of three distinct uniform picks). A single fixed pick (balanced, dense) has no rank correlation and no
top three.

95 % CIs: per task, percentile bootstrap over the task's candidates (resampled with replacement within each run,
the fixed baselines always present); for the means over tasks, bootstrap over tasks. Each method's mean regret
is also compared with the balanced rule's top-1 regret (paired by task; for best-of-top-3 that compares three
trainings with the rule's one): a difference whose CI holds 0 is "within noise".

Environment tasks (a return per model, ``norm_return``): the rank correlation of the return with the actual loss,
with the parent's predicted loss (its leave-one-task-out prediction) and with a per-task forest that predicts the
return itself (k-fold on the task's models).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.meta.parent import (
    DEFAULT_MAX_DEPTH,
    FEATURES,
    fit_forest_multi,
    fit_mlp,
    meta_features,
    targets,
)
from sparse_rnn_jax.analysis.predictor import MLPConfig, RegressionData, cv_forest
from sparse_rnn_jax.core.configs import NAMED_CONFIGS

PREDICTORS: tuple[str, ...] = ("forest", "mlp", "per_task")
BASELINES: tuple[str, ...] = ("balanced", "dense", "random")
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

    def metrics(self, idx: np.ndarray | None = None) -> dict[tuple[str, str], float]:
        """(method, metric) -> value over the candidates ``idx`` (default: all; the named configs are always
        added, so the fixed picks stay available)."""
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
        out.append(Group(str(task), str(run), actual, predicted, named))
    return out


def loto_predictions(
    frame: pd.DataFrame,
    *,
    trees: int = LOTO_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    seed: int = 0,
    mlp: bool = True,
    mlp_config: MLPConfig = MLPConfig(),
    folds: int = PER_TASK_FOLDS,
    log: Callable[[str], None] = lambda _s: None,
) -> dict[str, np.ndarray]:
    """Per row of ``frame`` (index 0..n-1): the cross-task forest's (and MLP's) prediction made without the row's
    task, and the per-task forest's out-of-fold prediction. f64[n] each."""
    frame = frame.reset_index(drop=True)
    features = meta_features(frame)
    min_loss, curves = targets(frame)
    outputs = np.concatenate([min_loss[:, None], curves], axis=1)
    tasks = frame["task"].to_numpy()
    out = {m: np.full(len(frame), np.nan) for m in (("forest", "mlp") if mlp else ("forest",)) + ("per_task",)}
    for t in sorted(set(tasks)):
        test = tasks == t
        train = ~test
        log(f"leave-one-task-out: {t} ({int(test.sum())} models held out)")
        if train.any():
            forest = fit_forest_multi(features[train], outputs[train], trees, max_depth, seed)
            out["forest"][test] = np.asarray(forest.predict(features[test])).reshape(int(test.sum()), -1)[:, 0]
            if mlp:
                model = fit_mlp(features[train], min_loss[train], curves[train], seed, mlp_config)
                out["mlp"][test] = model.predict(features[test])[:, 0]
        n = int(test.sum())
        if n >= 4:  # folds of >= 2 models each
            data = RegressionData(features[test], FEATURES, min_loss[test], None, np.zeros(n, bool))
            score, _ = cv_forest(data, min(folds, n // 2), trees, max_depth, seed)
            out["per_task"][test] = score.predicted
    return out


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


def score_groups(groups: list[Group], bootstrap: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Per-task values with bootstrap CIs over candidates, and the means over tasks with bootstrap CIs over tasks
    (module docstring). Returns {"per_task": [...], "summary": [...]}."""
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
                boot[k][b] = _nanmean([r[k] for r in reps])
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
    summary = []
    idx = rng.integers(0, len(tasks), size=(bootstrap, len(tasks)))
    for k in keys:
        v = np.array([value[t][k] for t in tasks])
        if not np.isfinite(v).any():
            continue
        row = {"method": k[0], "metric": k[1], "mean": _nanmean(v), "n_tasks": int(np.isfinite(v).sum())}
        row["lo"], row["hi"] = _interval([_nanmean(v[i]) for i in idx])
        if k[1].startswith("regret") and k[0] != "balanced":
            d = v - np.array([value[t][("balanced", "regret_top1")] for t in tasks])
            row["vs_balanced"] = _nanmean(d)
            row["vs_balanced_lo"], row["vs_balanced_hi"] = _interval([_nanmean(d[i]) for i in idx])
            row["within_noise"] = bool(row["vs_balanced_lo"] <= 0 <= row["vs_balanced_hi"])
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


def leave_one_task_out(
    frame: pd.DataFrame,
    *,
    trees: int = LOTO_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    seed: int = 0,
    mlp: bool = True,
    mlp_config: MLPConfig = MLPConfig(),
    folds: int = PER_TASK_FOLDS,
    bootstrap: int = BOOTSTRAP,
    log: Callable[[str], None] = lambda _s: None,
) -> dict:
    """The full evaluation (module docstring) of the meta-dataset ``frame`` (>= 2 tasks) as a JSON-able dict:
    settings, tasks, per_task, summary, returns."""
    frame = frame.reset_index(drop=True)
    tasks = sorted(frame["task"].unique())
    if len(tasks) < 2:
        raise ValueError(f"leave-one-task-out needs at least 2 tasks, got {len(tasks)}")
    predictions = loto_predictions(
        frame, trees=trees, max_depth=max_depth, seed=seed, mlp=mlp, mlp_config=mlp_config, folds=folds, log=log
    )
    scores = score_groups(groups_of(frame, predictions), bootstrap, seed)
    returns = return_scores(
        frame, predictions["forest"], trees=trees, max_depth=max_depth, seed=seed, folds=folds, bootstrap=bootstrap
    )
    return {
        "settings": {
            "trees": trees,
            "max_depth": max_depth,
            "mlp": mlp,
            "per_task_folds": folds,
            "bootstrap": bootstrap,
            "seed": seed,
            "models": int(len(frame)),
        },
        "tasks": tasks,
        **scores,
        "returns": returns,
    }


METHOD_LABELS = {
    "forest": "cross-task forest",
    "mlp": "cross-task MLP",
    "per_task": "per-task forest (k-fold)",
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
    """The summary (means over tasks) and per-task tables of ``leave_one_task_out`` as markdown."""
    summary = {(r["method"], r["metric"]): r for r in result["summary"]}
    methods = [m for m in PREDICTORS + BASELINES if any(k[0] == m for k in summary)]
    lines = [
        "| method | Spearman | regret top-1 | regret best-of-top-3 | top-1 regret minus balanced's | |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        cells = []
        for metric in METRICS:
            r = summary.get((m, metric))
            cells.append(_ci(r["mean"], r["lo"], r["hi"]) if r else "-")
        r = summary.get((m, "regret_top1"), {})
        diff = _ci(r.get("vs_balanced"), r.get("vs_balanced_lo"), r.get("vs_balanced_hi"))
        verdict = "" if "within_noise" not in r else ("within noise" if r["within_noise"] else "differs")
        lines.append(f"| {METHOD_LABELS[m]} | " + " | ".join(cells) + f" | {diff} | {verdict} |")
    per = {(r["task"], r["method"], r["metric"]): r for r in result["per_task"]}
    head = ["task", "candidates"] + [f"{METHOD_LABELS[m]} rho" for m in PREDICTORS if m in methods]
    head += [f"{METHOD_LABELS[m]} regret" for m in methods]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in result["tasks"]:
        any_row = per.get((t, "random", "regret_top1"))
        cells = [t, str(any_row["candidates"]) if any_row else "-"]
        for m in PREDICTORS:
            if m in methods:
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
