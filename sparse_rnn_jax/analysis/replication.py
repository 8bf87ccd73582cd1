"""The paper's findings beside ours, with seeds and 95 % intervals: Table III/IV cells and their order (Table IV
from an unstratified or a stratified run, ``analysis.stratified``), the dominant block's density against the
failure rate (Fig. 7b/9b), the Fig. 1 questions on the named configurations on RAD asked of one or more seed sets,
the Adroit Hammer named configurations, and the parent network's cross-validated R2.

Table cells: a post-stratification estimate with a stratified-bootstrap 95 % interval and the share at chance
beside it; neighbouring cells compared by the bootstrap difference. Configurations: a mean over seeds with its
95 % t-interval, a pair's difference with a Welch interval. Every section's p-values are Holm-corrected
(``stratified.holm``) and a verdict is read from the corrected p-value: a Fig. 1 finding "reproduces" only when it
holds on every seed set given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sparse_rnn_jax.analysis.stratified import (
    cell_estimates,
    holm,
    neighbour_tests,
    run_population_counts,
    spearman_interval,
    stratum_weights,
)
from sparse_rnn_jax.analysis.tables import PAPER_TABLES, UC, t_interval
from sparse_rnn_jax.core.accounting import BUCKET_LABELS

PAPER_FIG1_ORDER: tuple[str, ...] = ("balanced", "eqn8", "dense", "uniform", "lstm", "eqn7")
"""The paper's Fig. 1/2 on RAD, best first: balanced > eqn8 > dense ~ uniform > LSTM, eqn7 far worse."""
PAPER_FIG1_TIES: tuple[tuple[str, str], ...] = (("dense", "uniform"),)
PAPER_AH_BEST = "eqn7"
"""The paper's Eqn 7 configuration was the best of its mixed configurations on Adroit Hammer."""


def difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict:
    """mean(a) - mean(b) with a Welch ``level`` interval and the Welch t-test p-value (NaN with < 2 values each)."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {
        "n_a": a.size,
        "n_b": b.size,
        "diff": float(a.mean() - b.mean()) if a.size and b.size else math.nan,
        "low": math.nan,
        "high": math.nan,
        "p": math.nan,
    }
    if a.size < 2 or b.size < 2:
        return out
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return {**out, "low": out["diff"], "high": out["diff"], "p": 0.0 if out["diff"] else 1.0}
    df = (va + vb) ** 2 / ((va**2 / (a.size - 1)) + (vb**2 / (b.size - 1)))
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    p = float(2 * stats.t.sf(abs(out["diff"]) / se, df))
    return {**out, "low": out["diff"] - half, "high": out["diff"] + half, "p": p}


def verdict(d: dict, higher_is_better: bool = True) -> str:
    """ "reproduces" when the interval of (first - second) lies above 0 (below, for losses), "reversed" when on the
    other side, "within noise" when it contains 0."""
    if not math.isfinite(d["low"]):
        return "too few values"
    low, high = (d["low"], d["high"]) if higher_is_better else (-d["high"], -d["low"])
    return "reproduces" if low > 0 else "reversed" if high < 0 else "within noise"


ALPHA = 0.05
"""Family-wise error rate of each section's Holm-corrected tests."""
FLAT = 0.01
"""A published step between neighbouring cells smaller than this (in loss) counts as flat."""


def table_beside_paper_frame(
    models: pd.DataFrame,
    table: str = "IV",
    population_counts: Mapping | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per metric (hidden proportion, model density) and cell: n trained, the population it stands for, our
    estimate of the capped minimum validation loss [95 % CI], the share at chance [95 % CI], the share exploded or
    diverged [95 % CI], the mean of the learners alone (networks that did not fail: neither at chance nor exploded)
    [95 % CI] and the paper's published mean. Also the neighbouring-cell
    tests of each row (Holm-corrected over both rows, with the paper's step and a verdict) and each row's
    Spearman rho with the paper's cells [bootstrap 95 % CI]. ``models``: ``convergence.classify``'s rows."""
    rows, tests, rhos = [], [], []
    weights = stratum_weights(models, population_counts)
    failed = models["failed"].to_numpy(bool) if "failed" in models else np.zeros(len(models), bool)
    learners = ~failed  # neither at chance nor exploded/diverged
    blown_flags = models["exploded"].to_numpy(bool) if "exploded" in models else np.zeros(len(models), bool)
    exploded = models.assign(exploded_share=blown_flags.astype(float))  # exploded or diverged
    for metric in ("hidden_proportion", "model_density"):
        cells, boot = cell_estimates(models, population_counts, metric, n_boot=n_boot, seed=seed)
        learn, _ = cell_estimates(
            models[learners], population_counts, metric, n_boot=n_boot, seed=seed, weights=weights[learners]
        )
        blown, _ = cell_estimates(exploded, population_counts, metric, value="exploded_share", n_boot=n_boot, seed=seed)
        paper = PAPER_TABLES[table][metric]
        for k, r in cells.iterrows():
            rows.append(
                {
                    "metric": metric,
                    **r.to_dict(),
                    "learners_n": int(learn["n"].iloc[k]),
                    "learners_mean": learn["mean"].iloc[k],
                    "learners_low": learn["ci95_low"].iloc[k],
                    "learners_high": learn["ci95_high"].iloc[k],
                    "exploded": blown["mean"].iloc[k],
                    "exploded_low": blown["ci95_low"].iloc[k],
                    "exploded_high": blown["ci95_high"].iloc[k],
                    "paper": math.nan if paper[k] == UC else float(paper[k]),
                    "paper_uc": paper[k] == UC,
                }
            )
        t = neighbour_tests(cells, boot)
        label = {lab: k for k, lab in enumerate(BUCKET_LABELS)}
        steps = []
        for pair in t["pair"]:
            a, b = (label[x] for x in pair.split(" -> "))
            pa, pb = paper[a], paper[b]
            steps.append(math.nan if UC in (pa, pb) else float(pb) - float(pa))
        tests.append(t.assign(metric=metric, paper_step=steps))
        rhos.append({"metric": metric, **spearman_interval(cells, boot, paper)})
    tests = pd.concat(tests, ignore_index=True)
    tests["p_holm"] = holm(tests["p"])
    tests["verdict"] = [_step_verdict(r) for _, r in tests.iterrows()]
    return pd.DataFrame(rows), tests, pd.DataFrame(rhos)


def _step_verdict(r) -> str:
    """A neighbouring-cell step against the paper's: ours is a rise or fall only at Holm p < ALPHA."""
    ours = 0 if not r["p_holm"] < ALPHA else int(np.sign(r["diff"]))
    if not math.isfinite(r["paper_step"]):
        return "paper: uc" if ours == 0 else ("rises" if ours > 0 else "falls") + " (paper: uc)"
    paper = 0 if abs(r["paper_step"]) < FLAT else int(np.sign(r["paper_step"]))
    if ours == 0:
        return "flat in both" if paper == 0 else "within noise (paper: " + ("rises)" if paper > 0 else "falls)")
    if paper == 0:
        return ("rises" if ours > 0 else "falls") + " (paper: flat)"
    return "agrees" if ours == paper else "opposite"


def config_summary(models: pd.DataFrame, value: str, configs: Sequence[str] | None = None) -> pd.DataFrame:
    """Per configuration: n (seeds), mean and 95 % interval of ``value`` (one number per model)."""
    configs = list(configs or sorted(models["config"].unique()))
    rows = []
    for c in configs:
        v = models.loc[models["config"] == c, value].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        low, high = t_interval(v)
        rows.append(
            {
                "config": c,
                "n": v.size,
                "mean": float(v.mean()) if v.size else math.nan,
                "ci95_low": low,
                "ci95_high": high,
            }
        )
    return pd.DataFrame(rows)


def one_sample(values: np.ndarray, level: float = 0.95) -> dict:
    """mean(values) with its t-interval and the one-sample t-test p-value against 0 (NaN with < 2 values)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    out = {"n_a": v.size, "n_b": 0, "diff": float(v.mean()) if v.size else math.nan}
    if v.size < 2:
        return {**out, "low": math.nan, "high": math.nan, "p": math.nan}
    low, high = t_interval(v, level)
    sd = v.std(ddof=1)
    p = float(stats.ttest_1samp(v, 0.0).pvalue) if sd > 0 else (0.0 if out["diff"] else 1.0)
    return {**out, "low": low, "high": high, "p": p}


def per_model_curve_stats(rows: pd.DataFrame, early_fraction: float = 0.2) -> pd.DataFrame:
    """Per model (``config``, ``model_id``): ``early_accuracy`` (mean validation accuracy over the first
    ``early_fraction`` of the epochs, at least one: how fast it learns), ``final_accuracy`` (last epoch),
    ``best_accuracy`` and ``late_rise`` (last epoch's validation loss minus its minimum: > 0 when it overfits late)."""
    last = int(rows["epoch"].max())
    early_end = max(1, int(round(early_fraction * last)))
    out = []
    for (config, mid), g in rows.groupby(["config", "model_id"], sort=True):
        g = g.sort_values("epoch")
        acc = g["val_accuracy"].to_numpy(float) if "val_accuracy" in g else np.full(len(g), np.nan)
        loss = g["val_loss"].to_numpy(float)
        out.append(
            {
                "config": config,
                "model_id": int(mid),
                "early_accuracy": float(np.nanmean(acc[g["epoch"].to_numpy() <= early_end])),
                "final_accuracy": float(acc[-1]),
                "best_accuracy": float(np.nanmax(acc)) if np.isfinite(acc).any() else math.nan,
                "late_rise": float(loss[-1] - np.nanmin(loss)) if np.isfinite(loss).any() else math.nan,
            }
        )
    return pd.DataFrame(out)


FIG1_QUESTIONS: tuple[tuple[str, str, str, str | None], ...] = (
    ("balanced converges faster than eqn8", "early_accuracy", "balanced", "eqn8"),
    ("balanced ends ahead of eqn8", "final_accuracy", "balanced", "eqn8"),
    ("balanced > eqn8 (best accuracy)", "best_accuracy", "balanced", "eqn8"),
    ("eqn8 > dense (best accuracy)", "best_accuracy", "eqn8", "dense"),
    ("uniform > lstm (best accuracy)", "best_accuracy", "uniform", "lstm"),
    ("lstm > eqn7 (best accuracy)", "best_accuracy", "lstm", "eqn7"),
    ("balanced overfits late (last val loss above its minimum)", "late_rise", "balanced", None),
)
"""The paper's Fig. 1/2 claims as directional tests (question, per-model statistic, a, b): a > b, or a > 0 when
b is None. Its tie (dense catches up with uniform) is ``FIG1_TIE``."""
FIG1_TIE = ("dense catches up with uniform (final accuracy)", "final_accuracy", "dense", "uniform")


def fig1_tests(stats_frame: pd.DataFrame) -> pd.DataFrame:
    """The Fig. 1 questions on one seed set's per-model statistics (``per_model_curve_stats``, with an optional
    ``at_chance`` column): difference [95 % CI], p, Holm-corrected p over the directional questions, and a verdict
    (holds / reversed / within noise; the tie: "tie within noise" or "not a tie"). A question whose every model
    ended at chance carries no information about the claim: it is reported as such and left out of the Holm
    family."""

    def values(config: str, col: str) -> np.ndarray:
        return stats_frame.loc[stats_frame["config"] == config, col].to_numpy(float)

    def all_at_chance(*configs) -> bool:
        if "at_chance" not in stats_frame:
            return False
        return all(stats_frame.loc[stats_frame["config"] == c, "at_chance"].astype(bool).all() for c in configs)

    rows = []
    for question, col, a, b in FIG1_QUESTIONS:
        if not (stats_frame["config"] == a).any() or (b is not None and not (stats_frame["config"] == b).any()):
            continue
        d = one_sample(values(a, col)) if b is None else difference(values(a, col), values(b, col))
        uninformative = all_at_chance(*(c for c in (a, b) if c is not None))
        rows.append({"question": question, "statistic": col, **d, "at_chance": uninformative})
    out = pd.DataFrame(rows)
    if len(out):
        informative = ~out["at_chance"].to_numpy(bool)
        out["p_holm"] = math.nan
        out.loc[informative, "p_holm"] = holm(out.loc[informative, "p"])
        out["verdict"] = [
            "every seed at chance (no information)"
            if r["at_chance"]
            else "too few values"
            if not math.isfinite(r["p_holm"])
            else ("holds" if r["diff"] > 0 else "reversed")
            if r["p_holm"] < ALPHA
            else "within noise"
            for _, r in out.iterrows()
        ]
        out = out.drop(columns="at_chance")
    question, col, a, b = FIG1_TIE
    if {a, b} <= set(stats_frame["config"]):
        d = difference(values(a, col), values(b, col))
        tie = "tie within noise" if d["p"] >= ALPHA else "not a tie"
        out = pd.concat(
            [out, pd.DataFrame([{"question": question, "statistic": col, **d, "p_holm": math.nan, "verdict": tie}])],
            ignore_index=True,
        )
    return out


def combined_verdict(verdicts: Sequence[str]) -> str:
    """One finding over several seed sets: "reproduces" when it holds on every set (a tie: within noise on every
    set), "reversed" when reversed on every set, "within noise" when within noise on every set, else "not
    confirmed" with each set's verdict."""
    v = list(verdicts)
    if all(x == "holds" for x in v):
        return "reproduces"
    if all(x == "tie within noise" for x in v):
        return "reproduces (within noise)"
    if all(x == "reversed" for x in v):
        return "reversed"
    if all(x == "within noise" for x in v):
        return "within noise"
    if all(x == "not a tie" for x in v):
        return "not reproduced (not a tie)"
    if all(x.startswith("every seed at chance") for x in v):
        return "no information (every seed at chance)"
    return "not confirmed (" + " / ".join(v) + ")"


def fmt_interval(mean: float, low: float, high: float, digits: int = 3) -> str:
    """ "m [lo, hi]" (just "m" without an interval)."""
    if not math.isfinite(mean):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown(frame: pd.DataFrame, columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """A small markdown table of ``columns`` (floats to 3 decimals)."""
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in frame.iterrows():
        cells = []
        for c in columns:
            v = r[c]
            cells.append(
                f"{v:.3f}"
                if isinstance(v, (float, np.floating)) and math.isfinite(v)
                else "-"
                if isinstance(v, (float, np.floating))
                else str(v)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _models(results_dir):
    """(per-epoch rows, classified per-model rows, the task's failure rule) of one run."""
    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.engine.results import final_per_model, read_results

    rows = read_results([results_dir])
    models, rules = classify(final_per_model(rows))
    return rows, models, next(iter(rules.values()))


def _parent_r2(models: pd.DataFrame, rule, folds: int, trees: int, seed: int) -> dict:
    """k-fold R2 of the paper's random forest (depth 10) on the run's models: pooled, per fold, and the fold
    mean's 95 % interval."""
    from sparse_rnn_jax.analysis.predictor import PAPER_MAX_DEPTH, cv_forest, regression_data

    sampled = models[~models["config"].isin(PAPER_FIG1_ORDER + ("uniform",))]
    score, _ = cv_forest(regression_data(sampled, rule), folds, trees, PAPER_MAX_DEPTH, seed)
    low, high = t_interval(np.asarray(score.r2_folds))
    return {
        "models": len(sampled),
        "folds": folds,
        "trees": trees,
        "r2": score.r2,
        "r2_fold_mean": float(np.mean(score.r2_folds)),
        "ci95_low": low,
        "ci95_high": high,
        "spearman": score.spearman,
    }


def _table_section(
    run, table: str, out: Path, folds: int, trees: int, seed: int, log
) -> tuple[list[str], pd.DataFrame]:
    """The markdown of one Table III/IV run (``table``), its CSVs and figures under ``out``, and its
    neighbouring-cell steps (metric, pair, verdict, ...)."""
    from sparse_rnn_jax.analysis.figures import dominant_block, dominant_block_failures, table_beside_paper
    from sparse_rnn_jax.analysis.stratified import binned_estimates

    rows, models, rule = _models(run)
    models = models[~models["config"].isin(PAPER_FIG1_ORDER + ("uniform",))]
    name = Path(str(run)).name
    counts = run_population_counts(run)
    log(f"table {table} ({name}): cell estimates, {len(models):,} networks")
    beside, tests, rho = table_beside_paper_frame(models, table, counts, seed=seed)
    beside.to_csv(out / f"table_{table}_{name}.csv", index=False)
    tests.to_csv(out / f"table_{table}_{name}_steps.csv", index=False)
    epochs = int(rows["epoch"].max())
    population = int(sum(counts.values())) if counts else len(models)
    fig = table_beside_paper(
        beside,
        rule.chance,
        out / "figures" / f"table_{table}_{name}.png",
        f"Table {table}: {len(models):,} trained networks standing for a population of {population:,}",
    )
    how = (
        f"a stratified subsample of a drawn population of {population:,} networks (hidden-proportion cell x "
        "model-density cell); every estimate is weighted by population count / trained count of its stratum"
        if counts
        else "the whole drawn population, unweighted"
    )
    length = _run_scale(run, table)[1]
    md = [
        f"## Table {table}: `{run}`",
        "",
        f"{len(models):,} networks trained for {epochs} epochs{' (' + length + ')' if length else ''}: {how}.",
        "",
        f"![Table {table} beside the paper's](figures/{fig.name})",
        "",
        "Per cell: networks trained (n) and the population they stand for, the estimated mean of the capped minimum "
        "validation loss [stratified-bootstrap 95 % CI], the estimated shares at chance and exploded or diverged "
        "[95 % CI], the mean of the learners alone (networks that did not fail) and the paper's published mean "
        "(uc: the paper's unstable convergence; the paper trained "
        f"{_paper_steps(table)[0]:,} steps of {PAPER_LENGTHS[table][2]}).",
        "",
    ]
    f = beside.copy()
    f["ours"] = [fmt_interval(r["mean"], r["ci95_low"], r["ci95_high"]) for _, r in f.iterrows()]
    f["chance"] = [fmt_interval(r["at_chance"], r["at_chance_low"], r["at_chance_high"], 2) for _, r in f.iterrows()]
    f["blown"] = [fmt_interval(r["exploded"], r["exploded_low"], r["exploded_high"], 2) for _, r in f.iterrows()]
    f["learn"] = [
        fmt_interval(r["learners_mean"], r["learners_low"], r["learners_high"]) + f" ({r['learners_n']})"
        for _, r in f.iterrows()
    ]
    f["pop"] = [f"{p:,.0f}" for p in f["population"]]
    f["paper_text"] = ["uc" if r["paper_uc"] else f"{r['paper']:.3f}" for _, r in f.iterrows()]
    md += [
        markdown(
            f,
            ["metric", "cell", "n", "pop", "ours", "chance", "blown", "learn", "paper_text"],
            [
                "metric",
                "cell",
                "n",
                "population",
                "mean [95 % CI]",
                "at chance [95 % CI]",
                "exploded [95 % CI]",
                "learners (n)",
                "paper",
            ],
        ),
        "",
        f"Neighbouring cells (right minus left; bootstrap 95 % CI and p, Holm-corrected over the {len(tests)} "
        "steps), against the paper's step (flat: under 0.01):",
        "",
    ]
    t = tests.copy()
    t["difference"] = [fmt_interval(*r) for r in t[["diff", "low", "high"]].to_numpy()]
    t["paper"] = [f"{x:+.3f}" if math.isfinite(x) else "uc" for x in t["paper_step"]]
    md += [
        markdown(
            t,
            ["metric", "pair", "difference", "p_holm", "paper", "verdict"],
            ["row", "step", "ours [95 % CI]", "Holm p", "paper", "verdict"],
        ),
        "",
        "Each row's order against the paper's: Spearman's rho over the cells both fill [bootstrap 95 % CI]:",
        "",
    ]
    rho["rho"] = [fmt_interval(r["spearman"], r["low"], r["high"]) for _, r in rho.iterrows()]
    md += [markdown(rho, ["metric", "rho", "cells"], ["row", "rho [95 % CI]", "cells"]), ""]
    # Fig. 7b / 9b: the dominant block's density against the share of networks that fail
    s0 = models.iloc[0]
    dom = dominant_block(int(s0["input_dim"]), int(np.median(models["hidden_dim"])), int(s0["output_dim"]))
    col = f"density_{dom}"
    edges = np.linspace(0, 1, 11)
    bins = np.clip(np.digitize(models[col].to_numpy(float), edges[1:-1]), 0, 9)
    labels = [f"{a:.1f}–{b:.1f}" for a, b in zip(edges[:-1], edges[1:])]
    failed = models.assign(failed_share=models["failed"].astype(float))
    est, _ = binned_estimates(failed, bins, labels, counts, value="failed_share", seed=seed)
    est.to_csv(out / f"fig_dominant_{name}.csv", index=False)
    fig = dominant_block_failures(
        models,
        stratum_weights(models, counts),
        est,
        dom,
        rule,
        out / "figures" / f"dominant_block_{name}.png",
        f"Fig. {'9b' if table == 'IV' else '7b'} at CPU scale: density of {dom} (the dominant block)",
    )
    md += [
        f"Fig. {'9b' if table == 'IV' else '7b'}: the density of the dominant block ({dom}) against the minimum "
        "validation loss, and the share of networks that fail (at chance, exploded or diverged) per density decile "
        "[95 % CI]; the paper: a sparser dominant block fails less often.",
        "",
        f"![dominant block](figures/{fig.name})",
        "",
    ]
    est["failed"] = [fmt_interval(r["mean"], r["ci95_low"], r["ci95_high"], 2) for _, r in est.iterrows()]
    md += [markdown(est[est["n"] > 0], ["cell", "n", "failed"], [f"density of {dom}", "n", "failed [95 % CI]"]), ""]
    log(f"table {table} ({name}): fitting the parent network's cross-validation")
    r2 = _parent_r2(models, rule, folds, trees, seed)
    md += [
        f"Parent network (random forest, {r2['trees']} trees of depth 10, {r2['folds']}-fold cross-validation "
        f"on the {r2['models']:,} trained networks, unweighted): pooled R2 {r2['r2']:.3f}; per-fold mean "
        f"{fmt_interval(r2['r2_fold_mean'], r2['ci95_low'], r2['ci95_high'])}; Spearman {r2['spearman']:.3f}.",
        "",
    ]
    return md, tests


def combined_step_verdict(verdicts: Sequence[str]) -> str:
    """One neighbouring-cell step over several seed sets (``_step_verdict`` per set): the verdict when every set
    gives the same one, else "not confirmed" with each set's."""
    v = list(verdicts)
    return v[0] if len(set(v)) == 1 else "not confirmed (" + " / ".join(v) + ")"


def _steps_over_seed_sets(steps: Sequence[pd.DataFrame], names: Sequence[str], table: str, out: Path) -> list[str]:
    """The markdown (and a CSV) of each neighbouring-cell step's verdict per seed set and over every set."""
    per_set = [t.set_index(["metric", "pair"])["verdict"] for t in steps]
    both = pd.concat(per_set, axis=1, keys=list(names))
    both = both.fillna("not measured")  # a step whose cells one set leaves empty
    both["over every seed set"] = [combined_step_verdict(r.tolist()) for _, r in both.iterrows()]
    both = both.reset_index()
    both.to_csv(out / f"table_{table}_steps_over_seed_sets.csv", index=False)
    return [
        f"### Table {table}: the steps over {len(names)} seed sets",
        "",
        "A step is a finding only when every seed set (a fresh population draw, subsample and training seeds) gives "
        "the same verdict:",
        "",
        markdown(both, ["metric", "pair"] + list(names) + ["over every seed set"]),
        "",
    ]


PAPER_LENGTHS: dict[str, tuple[int, int, int]] = {"IV": (30_000, 25, 16), "III": (4_500, 25, 64)}
"""The paper's training length per experiment as (training sequences, epochs, batch size): RAD (Table IV and
Fig. 1) 30,000 sequences x 25 epochs in minibatches of 16 (46,875 steps); Adroit Hammer (Table III) 4,500 episodes
x 25 epochs in minibatches of 64 (70 an epoch, 1,750 steps)."""


def _paper_steps(table: str) -> tuple[int, int]:
    """(steps, sequences) of the paper's training for ``table`` ("III" or "IV"; Fig. 1 is "IV"'s)."""
    n, epochs, batch = PAPER_LENGTHS[table]
    return n // batch * epochs, n * epochs


def _run_scale(run, table: str = "IV") -> tuple[str, str]:
    """(short label, sentence) of a run's training length against the paper's for ``table`` (from its run.json),
    e.g. ("full length", "46,875 steps of 16 (100 % of the paper's 46,875) on gpu"); empty strings when
    unreadable."""
    import json

    try:
        rec = json.loads((Path(str(run)) / "run.json").read_text())
        train, data = rec["config"]["train"], rec["config"]["data"]
        batch, epochs = int(train["batch_size"]), int(train["epochs"])
        steps = int(data["train_size"]) // batch * epochs
        sequences = int(data["train_size"]) * epochs
    except (OSError, ValueError, KeyError, TypeError):
        return "", ""
    paper_steps, paper_sequences = _paper_steps(table)
    share = steps / paper_steps
    label = "full length" if share >= 0.999 and sequences >= paper_sequences else f"{share:.0%} of the paper's steps"
    paper_batch = PAPER_LENGTHS[table][2]
    seq_share = (
        "" if batch == paper_batch else f"; {sequences / paper_sequences:.1%} of its {paper_sequences:,} sequences"
    )
    return label, (
        f"{steps:,} steps of {batch} ({share:.0%} of the paper's {paper_steps:,} steps of {paper_batch}{seq_share}) "
        f"on {rec.get('platform', '?')}"
    )


def _over_seed_sets(per_set: Sequence[pd.Series], names: Sequence[str], csv: Path, title: str, lead: str) -> list[str]:
    """The markdown (and ``csv``) of each finding's verdict per seed set and over every set (``combined_verdict``):
    ``per_set`` holds one verdict Series per set, indexed by the finding."""
    both = pd.concat(per_set, axis=1, keys=names)
    both["verdict over every seed set"] = [combined_verdict(r.dropna().tolist()) for _, r in both.iterrows()]
    both = both.reset_index()
    both.to_csv(csv, index=False)
    return [title, "", lead, "", markdown(both, ["question"] + list(names) + ["verdict over every seed set"]), ""]


def _fig1_section(runs: Sequence, out: Path, sensitivity=None) -> list[str]:
    """The Fig. 1 questions asked of every seed set in ``runs`` (each a finished named-configuration sweep), their
    combined verdicts, curves per set, and the ``sensitivity`` run's answers labelled as such."""
    from sparse_rnn_jax.analysis.figures import curves_by_config

    labels = {_run_scale(r)[0] for r in runs}
    md = [f"## Fig. 1{' at ' + labels.pop() if len(labels) == 1 and '' not in labels else ''}", ""]
    per_set, names = [], []
    for k, run in enumerate(list(runs) + ([sensitivity] if sensitivity else [])):
        rows, models, rule = _models(run)
        name = Path(str(run)).name
        is_sens = sensitivity is not None and k == len(runs)
        epochs = int(rows["epoch"].max())
        lr = sorted(models["learning_rate"].unique()) if "learning_rate" in models else []
        seeds = models.groupby("config")["model_id"].nunique()
        scale, scale_words = _run_scale(run)
        fig = curves_by_config(
            rows, rule, out / "figures" / f"fig1_{name}.png", f"Fig. 1{' (' + scale + ')' if scale else ''}: {name}"
        )
        cs = per_model_curve_stats(rows)
        if "at_chance" in models:
            cs = cs.merge(models[["model_id", "at_chance"]], on="model_id", how="left")
        cs.to_csv(out / f"fig1_{name}_per_model.csv", index=False)
        tests = fig1_tests(cs)
        tests.to_csv(out / f"fig1_{name}_tests.csv", index=False)
        summary = config_summary(cs, "best_accuracy", [c for c in PAPER_FIG1_ORDER if (cs["config"] == c).any()])
        final = config_summary(cs, "final_accuracy", list(summary["config"]))
        early = config_summary(cs, "early_accuracy", list(summary["config"]))
        summary["best"] = [fmt_interval(*r) for r in summary[["mean", "ci95_low", "ci95_high"]].to_numpy()]
        summary["last"] = [fmt_interval(*r) for r in final[["mean", "ci95_low", "ci95_high"]].to_numpy()]
        summary["early"] = [fmt_interval(*r) for r in early[["mean", "ci95_low", "ci95_high"]].to_numpy()]
        at_chance = models.groupby("config")["at_chance"].mean() if "at_chance" in models else None
        summary["at chance"] = [
            f"{at_chance.get(c, math.nan):.0%}" if at_chance is not None else "-" for c in summary["config"]
        ]
        title = f"### {'Sensitivity (not the replication): ' if is_sens else ''}`{run}`"
        md += [
            title,
            "",
            f"{epochs} epochs, learning rate {', '.join(f'{x:g}' for x in lr)}, seeds per configuration "
            f"{int(seeds.min())}–{int(seeds.max())}" + (f"; {scale_words}." if scale_words else "."),
            "",
            f"![Fig. 1 {name}](figures/{fig.name})",
            "",
            "Validation accuracy per configuration (mean [95 % CI] over seeds): over the first fifth of the epochs, "
            "best, and at the last epoch; the share of seeds that ended at chance:",
            "",
            markdown(summary, ["config", "n", "early", "best", "last", "at chance"]),
            "",
            "The paper's claims as tests (Welch difference [95 % CI]; Holm-corrected over the directional ones):",
            "",
        ]
        t = tests.copy()
        t["difference"] = [fmt_interval(*r) for r in t[["diff", "low", "high"]].to_numpy()]
        md += [markdown(t, ["question", "difference", "p", "p_holm", "verdict"]), ""]
        if not is_sens:
            per_set.append(tests.set_index("question")["verdict"])
            names.append(name)
    if len(per_set) >= 1:
        md += _over_seed_sets(
            per_set,
            names,
            out / "fig1_verdicts.csv",
            f"### The Fig. 1 findings over {len(names)} seed set(s)",
            "A finding reproduces only when it holds on every seed set:",
        )
    return md


def _ah_section(runs: Sequence, out: Path) -> list[str]:
    """The Adroit Hammer named configurations of every seed set in ``runs``: per set the return and minimum
    validation loss per configuration, eqn7 (the paper's best mixed configuration there) against each other one
    (Welch, Holm over the set's tests; "holds" = eqn7 better, "reversed" = eqn7 worse), the curves; then each
    comparison's verdict over the sets (``combined_verdict``)."""
    from sparse_rnn_jax.analysis.figures import curves_by_config

    md, per_set, names = [], [], []
    for run in runs:
        rows, models, rule = _models(run)
        name = Path(str(run)).name
        configs = [c for c in ("eqn7", "eqn8", "dense", "uniform", "balanced") if (models["config"] == c).any()]
        parts = []
        for value, label, higher in (("eval_return_mean", "return", True), ("min_val_loss", "min val loss", False)):
            if value not in models or not np.isfinite(models[value]).any():
                continue
            s = config_summary(models, value, configs)
            s["text"] = [
                fmt_interval(*r, digits=1 if higher else 4) for r in s[["mean", "ci95_low", "ci95_high"]].to_numpy()
            ]
            parts.append((label, s, higher, value))
        md += [f"## Adroit Hammer named configurations: `{run}`", ""]
        all_checks = []
        for label, s, higher, value in parts:
            others = [c for c in configs if c != PAPER_AH_BEST]
            all_checks.append(
                pd.DataFrame(
                    [
                        {
                            "measure": label,
                            "pair": f"{PAPER_AH_BEST} vs {c}",
                            **difference(
                                models.loc[models["config"] == PAPER_AH_BEST, value].to_numpy(float),
                                models.loc[models["config"] == c, value].to_numpy(float),
                            ),
                            "higher": higher,
                        }
                        for c in others
                    ]
                )
            )
            md += [
                f"{label} per configuration (mean [95 % CI] over seeds):",
                "",
                markdown(s, ["config", "n", "text"], ["config", "n", label]),
                "",
            ]
        if all_checks:
            checks = pd.concat(all_checks, ignore_index=True)
            checks["p_holm"] = holm(checks["p"])
            checks["verdict"] = [
                "within noise"
                if not r["p_holm"] < ALPHA
                else ("holds" if (r["diff"] > 0) == bool(r["higher"]) else "reversed")
                for _, r in checks.iterrows()
            ]
            checks["difference"] = [
                fmt_interval(r["diff"], r["low"], r["high"], digits=1 if r["higher"] else 4)
                for _, r in checks.iterrows()
            ]
            checks["question"] = [f"{m}: {pair}" for m, pair in zip(checks["measure"], checks["pair"])]
            checks.to_csv(out / f"ah_{name}_tests.csv", index=False)
            md += [
                f"{PAPER_AH_BEST} against each other configuration (Welch; Holm-corrected over the {len(checks)} "
                f"tests; holds = {PAPER_AH_BEST} better, reversed = worse):",
                "",
                markdown(checks, ["measure", "pair", "difference", "p", "p_holm", "verdict"]),
                "",
            ]
            per_set.append(checks.set_index("question")["verdict"])
            names.append(name)
        fig = curves_by_config(
            rows, rule, out / "figures" / f"ah_{name}.png", f"Adroit Hammer named configurations: {name}"
        )
        md += [f"![Adroit Hammer named configurations {name}](figures/{fig.name})", ""]
    if len(per_set) > 1:
        md += _over_seed_sets(
            per_set,
            names,
            out / "ah_verdicts.csv",
            f"### The Adroit Hammer findings over {len(names)} seed sets",
            f"{PAPER_AH_BEST} against each configuration; a finding reproduces only when it holds on every seed set:",
        )
    return md


def write_report(
    out,
    table_iv: Sequence | str | None = None,
    fig1: Sequence | str | None = None,
    ah=None,
    table_iii=None,
    fig1_sensitivity=None,
    folds: int = 5,
    trees: int = 1000,
    seed: int = 0,
    log=print,
) -> Path:
    """``out/replication.md`` (and CSVs and figures beside it) from the runs given: Table IV runs (each: cells
    beside the paper's, neighbouring steps, the rows' Spearman, Fig. 9b, the parent network's R2), Table III seed
    sets (each the same, with Fig. 7b; each step's verdict over the sets), Fig. 1 seed sets (named configurations
    on RAD: curves, the paper's claims as Holm-corrected tests per set, verdicts over the sets) with an optional
    sensitivity run, and Adroit Hammer named-config seed sets (returns per config, eqn7's comparisons per set and
    over the sets). Returns the markdown's path."""

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    md = ["# Replication", ""]
    as_list = lambda v: [] if v is None else [v] if isinstance(v, (str, Path)) else list(v)  # noqa: E731
    for run in as_list(table_iv):
        md += _table_section(run, "IV", out, folds, trees, seed, log)[0]
    steps, names = [], []
    for run in as_list(table_iii):  # seed sets of one experiment
        section, tests = _table_section(run, "III", out, folds, trees, seed, log)
        md += section
        steps.append(tests)
        names.append(Path(str(run)).name)
    if len(steps) > 1:
        md += _steps_over_seed_sets(steps, names, "III", out)
    if as_list(fig1) or fig1_sensitivity:
        md += _fig1_section(as_list(fig1), out, fig1_sensitivity)
    if as_list(ah):
        md += _ah_section(as_list(ah), out)
    path = out / "replication.md"
    path.write_text("\n".join(md))
    return path
