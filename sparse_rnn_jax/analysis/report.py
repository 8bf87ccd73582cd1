"""The analysis report of one or more sweep workdirs: tables, figures, environment scores, parent network.

``analyze(results_dirs, out_dir)`` reads each workdir's ``results.parquet`` (and ``scores.parquet``),
and writes into ``out_dir`` (created if needed; other files there are left alone):

    report.md, report.html          the report (HTML when markdown-it-py is importable)
    analysis.json                   which results the report was made from, and what was written
    figures/<experiment>_*.png      the figures the report references
    tables/<experiment>_min_val_loss_buckets.csv   every number behind Tables III/IV
    predictor/<experiment>/         the fitted parent network (``predictor.ParentPredictor``)

Runs are grouped by **experiment**: (task, environment, input dim, output dim), read from each run's run.json.
An experiment is named by its environment or dataset id where the task has one (e.g. ``AdroitHandDoor-v1``;
``local/hammer/expert-v0`` when the dataset names no environment), else by its task (``rad``); when two
experiments would share a name, the dims are appended (``rad_784x10``, ``rad_2500x10``). Each experiment gets its
own section, failure rule, tables and parent network; the models of the runs of one experiment are pooled, and
runs of different dims or environments are never pooled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis import compare, figures, graph_regression
from sparse_rnn_jax.analysis.convergence import UC_MAX_EXPLODED_FRACTION, FailureRule, classify, rule_markdown
from sparse_rnn_jax.analysis.predictor import (
    DEFAULT_FOLDS,
    MIN_MODELS,
    PAPER_MAX_DEPTH,
    PAPER_TREES,
    PERMUTATION_REPEATS,
    Evaluation,
    MLPConfig,
    fit_and_evaluate,
    json_safe,
)
from sparse_rnn_jax.analysis.pruning_report import pruning_sections
from sparse_rnn_jax.analysis.tables import (
    PAPER_EXPERIMENTS,
    PAPER_TABLES,
    bucket_summary,
    markdown_table,
    paper_mismatch,
    score_summary,
    summaries_frame,
    t_interval,
)
from sparse_rnn_jax.core.configs import NAMED_CONFIGS, named_spec
from sparse_rnn_jax.core.samplers import SAMPLERS
from sparse_rnn_jax.core.spec import BLOCKS, HYPERPARAMETER_FEATURES
from sparse_rnn_jax.engine.results import final_per_model, read_results
from sparse_rnn_jax.engine.workdir import RUN_FILE, record_problem

REPORT_FILE = "report.md"
HTML_FILE = "report.html"
MANIFEST_FILE = "analysis.json"
FIGURES_DIR = "figures"
TABLES_DIR = "tables"
PREDICTOR_DIR = "predictor"
SCORE_COLUMNS = ("eval_return_mean", "d4rl_score")
REQUIRED_COLUMNS: tuple[str, ...] = (
    "model_id",
    "config",
    "task",
    "epoch",
    "val_loss",
    "val_accuracy",
    "diverged",
    "input_dim",
    "hidden_dim",
    "output_dim",
    "trainable_params",
    "model_density",
    "hidden_proportion",
) + HYPERPARAMETER_FEATURES

Log = Callable[[str], object]


class AnalysisInputError(ValueError):
    """Bad input to the analysis (missing folder or table, empty table, missing columns, unwritable output)."""


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
    """Options of ``analyze``: forest size (the paper: 1,000 trees of depth 10), folds, seed, MLP on/off,
    and given failure thresholds per task (``convergence.failure_rule``)."""

    trees: int = PAPER_TREES
    max_depth: int = PAPER_MAX_DEPTH
    folds: int = DEFAULT_FOLDS
    seed: int = 0
    mlp: bool = True
    mlp_config: MLPConfig = MLPConfig()
    failure_loss: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AnalysisResult:
    """What ``analyze`` wrote: the report paths, tables, figures and the parent network's scores (by experiment)."""

    report: Path
    html: Path | None
    figures: list[Path]
    tables: list[Path]
    predictors: dict[str, Path]
    evaluations: dict[str, Evaluation]


# ------------------------------------------------------------------------------------------ inputs


def check_inputs(results_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> None:
    """Raises AnalysisInputError (one line) for a missing results folder or table, or an unwritable ``out_dir``."""
    if not results_dirs:
        raise AnalysisInputError("no results folders given")
    seen = set()
    for d in results_dirs:
        key = Path(d).resolve()
        if key in seen:
            raise AnalysisInputError(f"results folder {d} is given twice")
        seen.add(key)
    for d in results_dirs:
        d = Path(d)
        if not d.is_dir():
            raise AnalysisInputError(f"results folder {d} does not exist")
        if not (d / "results.parquet").is_file():
            raise AnalysisInputError(f"no results.parquet in {d}")
        if (d / RUN_FILE).is_file():
            try:
                problem = record_problem(json.loads((d / RUN_FILE).read_text()))
            except (OSError, ValueError) as e:
                problem = f"unreadable ({' '.join(str(e).split())})"
            if problem:
                raise AnalysisInputError(f"results folder {d}: {RUN_FILE} is damaged: {problem}")
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise AnalysisInputError(f"output {out} exists and is not a folder")
        probe = out
    else:
        probe = next((p for p in out.absolute().parents if p.exists()), None)
        if probe is None or not probe.is_dir():
            raise AnalysisInputError(f"cannot create output folder {out}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise AnalysisInputError(f"output folder {probe} is not writable")
    for name in (REPORT_FILE, HTML_FILE, MANIFEST_FILE):
        f = out / name
        if f.exists() and (f.is_dir() or not os.access(f, os.W_OK)):
            raise AnalysisInputError(f"cannot overwrite {f}")


def unfinished_runs(results_dirs: Sequence[str | os.PathLike]) -> list[str]:
    """One line per results folder whose run.json records a run that is not complete (killed, interrupted,
    failed or still running): its results may miss models or epochs."""
    notes = []
    for d in results_dirs:
        try:
            status = json.loads((Path(d) / "run.json").read_text()).get("status", "unknown")
        except (OSError, ValueError, AttributeError):
            continue
        if status != "complete":
            notes.append(
                f"the run in {d} is {status!r}, not complete (run.json): its results may lack models or epochs"
            )
    return notes


def run_environment(record: Mapping) -> str | None:
    """The environment a run's data comes from, from its run.json ``record``: the dataset's env id, else the
    scoring env, else the dataset id; None for tasks without one (RAD, Reber)."""
    data = record.get("data") or {}
    given = (record.get("config") or {}).get("data") or {}
    for value in (data.get("env_id"), given.get("eval_env_id"), data.get("dataset_id"), given.get("dataset_id")):
        if value:
            return str(value)
    return None


def _file_name(label: str) -> str:
    """``label`` as a file or folder name: anything but letters, digits, '.', '-', '_' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label).strip("_") or "experiment"


def attach_experiments(df: pd.DataFrame) -> pd.DataFrame:
    """Adds ``environment`` (``run_environment`` of each run's run.json) and ``experiment`` (the name of the
    run's (task, environment, input_dim, output_dim) group, see the module docstring) to the results rows."""
    env_of = {}
    for run in df["run"].unique():
        path = Path(run) / RUN_FILE
        try:
            record = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            record = {}
        env_of[run] = run_environment(record)
    env = df["run"].map(env_of)
    keys = pd.DataFrame(
        {"task": df["task"].astype(str), "env": env.fillna(""), "x": df["input_dim"], "y": df["output_dim"]}
    )
    groups = keys.drop_duplicates().sort_values(["task", "env", "x", "y"])
    base = {tuple(g): (g.env or g.task) for g in groups.itertuples(index=False)}
    clash = pd.Series(list(base.values())).value_counts()
    names: dict[tuple, str] = {}
    for key, name in base.items():
        if clash[name] > 1:
            name = f"{name}_{key[2]}x{key[3]}"
        if name in names.values():  # same environment and dims under two tasks
            name = f"{key[0]}_{name}"
        names[key] = name
    experiment = [names[k] for k in keys.itertuples(index=False, name=None)]
    return df.assign(environment=env.where(env.notna(), None), experiment=experiment)


def load_results(results_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """The pooled results table with ``environment`` and ``experiment`` columns (``attach_experiments``); raises
    AnalysisInputError when unreadable, empty or missing columns."""
    try:
        df = read_results(results_dirs)
    except (OSError, ValueError, KeyError) as e:  # pyarrow errors are OSError/ValueError subclasses
        raise AnalysisInputError(
            f"cannot read results: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    if df.empty:
        raise AnalysisInputError(f"results table is empty in {', '.join(map(str, results_dirs))}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise AnalysisInputError(f"results table lacks columns {', '.join(missing)}")
    return attach_experiments(df)


# ---------------------------------------------------------------------------------------- sections


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _ci_text(values: np.ndarray) -> str:
    low, high = t_interval(values) if len(values) >= figures.MIN_CI_MODELS else (math.nan, math.nan)
    return f"[{_fmt(low)}, {_fmt(high)}]" if math.isfinite(low) else "-"


def _config_table(models: pd.DataFrame) -> str:
    """Per configuration: n models, failed, mean capped min val loss with its 95 % t-interval (n >= 3), and the
    mean best validation accuracy with its interval where the task has one."""
    has_acc = np.isfinite(models["best_val_accuracy"].to_numpy(dtype=float)).any()
    head = "| config | n models | failed | mean min val loss (capped) | 95 % CI |" + (
        " mean best val accuracy | 95 % CI |" if has_acc else ""
    )
    lines = [head, "|---|---|---|---|---|" + ("---|---|" if has_acc else "")]
    for c in figures.ordered_configs(models["config"].unique().tolist()):
        m = models[models["config"] == c]
        loss = m["capped_min_val_loss"].to_numpy(dtype=float)
        row = f"| {c} | {len(m)} | {int(m['failed'].sum())} | {_fmt(loss.mean())} | {_ci_text(loss)} |"
        if has_acc:
            acc = m["best_val_accuracy"].to_numpy(dtype=float)
            acc = acc[np.isfinite(acc)]
            row += f" {_fmt(acc.mean() if acc.size else math.nan)} | {_ci_text(acc)} |"
        lines.append(row)
    return "\n".join(lines)


def _layout_from_row(row: pd.Series, title: str) -> dict:
    return {
        "title": title,
        "input_dim": int(row["input_dim"]),
        "hidden_dim": int(row["hidden_dim"]),
        "output_dim": int(row["output_dim"]),
        "densities": {b: float(row[f"density_{b}"]) for b in BLOCKS},
        "hidden_proportion": float(row["hidden_proportion"]),
        "trainable_params": float(row["trainable_params"]),
    }


def _layout_from_spec(spec, title: str) -> dict:
    from sparse_rnn_jax.core.accounting import expected_accounting

    acc = expected_accounting(spec)
    return {
        "title": title,
        "input_dim": spec.input_dim,
        "hidden_dim": spec.hidden_dim,
        "output_dim": spec.output_dim,
        "densities": spec.densities(),
        "hidden_proportion": acc.hidden_proportion,
        "trainable_params": acc.trainable_params,
    }


def weight_space_layouts(models: pd.DataFrame) -> list[dict]:
    """Layouts to draw for a task: one model of each named config in the results (or, when there are
    none, the named configs at the task's median trainable count), and the sampled model whose hidden
    proportion is nearest the sampled models' median."""
    layouts = []
    named = [c for c in NAMED_CONFIGS if c in set(models["config"])]
    for c in named:
        layouts.append(_layout_from_row(models[models["config"] == c].iloc[0], c))
    if not named:
        first = models.iloc[0]
        budget = float(np.median(models["trainable_params"]))
        for c in NAMED_CONFIGS:
            try:
                spec = named_spec(c, int(first["input_dim"]), int(first["output_dim"]), budget=budget)
            except ValueError:
                continue
            layouts.append(_layout_from_spec(spec, f"{c} at {budget:,.0f} (not in these results)"))
    sampled = models[models["config"].isin(SAMPLERS)]
    if len(sampled):
        hp = sampled["hidden_proportion"].to_numpy(dtype=float)
        row = sampled.iloc[int(np.argmin(np.abs(hp - np.median(hp))))]
        layouts.append(_layout_from_row(row, f"typical {row['config']} model (median hidden proportion)"))
    return layouts


def _layout_table(layouts: Sequence[Mapping]) -> str:
    head = "| drawing | \\|h\\| | " + " | ".join(BLOCKS) + " | trainable | hidden proportion |"
    lines = [head, "|---|---|" + "---|" * len(BLOCKS) + "---|---|"]
    for lay in layouts:
        dims = {"x": lay["input_dim"], "h": lay["hidden_dim"], "y": lay["output_dim"]}
        cells = [
            f"{dims[b[0]] * dims[b[1]] * lay['densities'][b]:,.0f} (f{100 * lay['densities'][b]:02.0f})" for b in BLOCKS
        ]
        lines.append(
            f"| {lay['title']} | {lay['hidden_dim']:,} | "
            + " | ".join(cells)
            + f" | {lay['trainable_params']:,.0f} | {lay['hidden_proportion']:.3f} |"
        )
    return "\n".join(lines)


def _evaluation_md(ev: Evaluation) -> str:
    lines = [
        f"{ev.folds}-fold cross-validation over {ev.n_models} models (held-out R2, MAE and Spearman rank "
        f"correlation of the pooled out-of-fold predictions; R2 per fold as mean ± sd). Forest: {ev.trees} trees, "
        f"max depth {ev.max_depth}.",
        "",
        "| model | features | R2 | MAE | Spearman | R2 per fold |",
        "|---|---|---|---|---|---|",
    ]
    rows = [
        ("random forest", "20 (with hidden proportion)", ev.forest),
        ("random forest", "19 (without hidden proportion)", ev.forest_without_hp),
    ]
    if ev.mlp is not None:
        rows += [
            ("MLP", "20 (with hidden proportion)", ev.mlp),
            ("MLP", "19 (without hidden proportion)", ev.mlp_without_hp),
        ]
    for name, feats, s in rows:
        folds = np.asarray(s.r2_folds)
        lines.append(
            f"| {name} | {feats} | {s.r2:.3f} | {s.mae:.4g} | {_fmt(s.spearman)} | "
            f"{folds.mean():.3f} ± {folds.std():.3f} |"
        )
    lines += [
        "",
        f"**Ablation**: random forest R2 {ev.forest.r2:.3f} with hidden proportion vs "
        f"{ev.forest_without_hp.r2:.3f} without (change {ev.forest.r2 - ev.forest_without_hp.r2:+.3f})"
        + (
            f"; MLP {ev.mlp.r2:.3f} vs {ev.mlp_without_hp.r2:.3f} (change {ev.mlp.r2 - ev.mlp_without_hp.r2:+.3f})"
            if ev.mlp is not None
            else ""
        )
        + ".",
    ]
    if ev.mlp_curve_r2 is not None:
        lines.append(
            f"The MLP also predicts the per-epoch validation-loss curve: held-out R2 averaged over epochs "
            f"{ev.mlp_curve_r2:.3f}."
        )
    return "\n".join(lines)


def _importance_md(importances: pd.Series, sd: pd.Series, ci: pd.DataFrame | None = None) -> str:
    lines = [
        "| rank | feature | permutation importance (drop in held-out R2) | 95 % CI over folds | sd |",
        "|---|---|---|---|---|",
    ]
    for k, (name, v) in enumerate(importances.items(), 1):
        interval = (
            ""
            if ci is None or not np.isfinite(ci.loc[name, "lo"])
            else (f"[{ci.loc[name, 'lo']:.4f}, {ci.loc[name, 'hi']:.4f}]")
        )
        lines.append(f"| {k} | {name} | {v:.4f} | {interval} | {sd[name]:.4f} |")
    return "\n".join(lines)


def _reconcile_md(ev: Evaluation) -> str:
    """Why permutation importance and the ablation can disagree, with this run's numbers."""
    from sparse_rnn_jax.analysis.tables import t_interval

    name = "hidden_proportion"
    if name not in ev.importances.index:
        return ""
    rank = list(ev.importances.index).index(name) + 1
    diff = np.asarray(ev.forest.r2_folds) - np.asarray(ev.forest_without_hp.r2_folds)
    lo, hi = t_interval(diff)
    within = np.isfinite(lo) and lo <= 0 <= hi
    interval = f" [{lo:+.3f}, {hi:+.3f}] over folds" if np.isfinite(lo) else ""
    return (
        f"**Reading importance against the ablation.** Permutation importance asks how much the fitted forest leans "
        f"on a feature while the others stay as they are; the ablation refits the forest without it. The hidden "
        f"proportion is a function of the block densities and sizes, which stay in the refitted forest, so the "
        f"refit can recover most of what it carried: correlated features share their importance, and one can rank "
        f"high (here the hidden proportion ranks {rank} of {len(ev.importances)}, "
        f"{ev.importances[name]:.3f}) while removing it changes the held-out R2 by "
        f"{ev.forest.r2 - ev.forest_without_hp.r2:+.3f} (per-fold mean {diff.mean():+.3f}{interval}"
        + ("; within noise" if within else "")
        + "). Neither number alone says the hidden proportion does not matter; the ablation says the densities "
        "carry the same information."
    )


def _paper_note(models: pd.DataFrame) -> tuple[str | None, str, str | None]:
    """(the paper's table to show beside this experiment, or None; a sentence saying whether it is the paper's
    experiment, or why not; the label of the published row when the experiment is a different one)."""
    why = paper_mismatch(models)
    match = next((t for t, reason in why.items() if reason is None), None)
    if match is not None:
        return (
            match,
            (
                f"This is the paper's experiment ({PAPER_EXPERIMENTS[match]['text']}): the published values of "
                f"{PAPER_TABLES[match]['caption']} are listed under each metric."
            ),
            None,
        )
    task = str(models["task"].iloc[0])
    same_task = [t for t, exp in PAPER_EXPERIMENTS.items() if exp["task"] == task]
    if not same_task:
        return None, f"No published counterpart: the paper's Tables III/IV have no `{task}` experiment.", None
    table = same_task[0]
    return (
        table,
        f"No published counterpart: the paper's Table {table} is {PAPER_EXPERIMENTS[table]['text']}; "
        f"this experiment differs ({why[table]}). The published values are listed for orientation only, in the row "
        f"labelled as a different experiment: they are not a target for this run.",
        f"paper, Table {table} (a different experiment)",
    )


# ------------------------------------------------------------------------------------------ driver


class _Writer:
    """Collects report lines and the files written, relative to the output folder."""

    def __init__(self, out: Path):
        self.out, self.lines, self.figures, self.tables = out, [], [], []

    def add(self, *text: str) -> None:
        self.lines.extend(text)

    def figure(self, path: Path, caption: str) -> None:
        self.figures.append(path)
        self.add(f"![{caption}]({path.relative_to(self.out).as_posix()})", "", f"*{caption}*", "")


def _task_section(
    w: _Writer,
    task: str,
    rows: pd.DataFrame,
    models: pd.DataFrame,
    rule: FailureRule,
    options: AnalysisOptions,
    log: Log,
) -> tuple[Path | None, Evaluation | None]:
    fig_dir = w.out / FIGURES_DIR
    first = models.iloc[0]
    x, y = int(first["input_dim"]), int(first["output_dim"])
    name, stem = task, _file_name(task)
    env = first.get("environment")
    dominant = figures.dominant_block(x, int(np.median(models["hidden_dim"])), y)
    epochs = sorted(models["epochs"].unique().tolist())
    counts = models["config"].value_counts()
    runs = sorted(models["run"].unique()) if "run" in models else []
    w.add(
        f"## `{name}`",
        "",
        f"Task `{first['task']}`" + (f", environment `{env}`" if env else "") + f", {x:,} -> {y:,}; "
        f"{len(runs)} run(s): " + ", ".join(f"`{r}`" for r in runs) + ".",
        "",
        f"{len(models):,} models (" + ", ".join(f"{c}: {n:,}" for c, n in counts.items()) + f"), |x| = {x:,}, "
        f"|y| = {y:,}, epochs {', '.join(map(str, epochs))}, trainable weights {models['trainable_params'].min():,.0f}"
        f" to {models['trainable_params'].max():,.0f} (median {models['trainable_params'].median():,.0f}).",
        f"{rule.describe()}: {int(models['failed'].sum()):,} models failed to converge "
        f"({models['failed'].mean():.1%}). Dominant top-row block: **{dominant}**.",
        "",
        "### Per configuration",
        "",
        "Mean over each configuration's models (its seeds, or a sampler's draws) with the 95 % t-interval of the "
        f"mean where it has at least {figures.MIN_CI_MODELS} models.",
        "",
        _config_table(models),
        "",
    )

    # Tables III/IV.
    paper, paper_text, paper_label = _paper_note(models)
    summaries = {m: bucket_summary(models, m) for m in ("hidden_proportion", "model_density")}
    csv = w.out / TABLES_DIR / f"{stem}_min_val_loss_buckets.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    summaries_frame(summaries).to_csv(csv, index=False)
    w.tables.append(csv)
    w.add(
        "### Minimum validation loss by hidden proportion and model density"
        + (f" (paper Table {paper})" if paper and paper_label is None else ""),
        "",
        "Minimum validation loss per model (min over epochs, capped), summarised by mean per bucket with its n; "
        '"Model density" (trainable / all weight-space entries) is what the paper calls "model sparsity". '
        "`uc` beside a number: unstable convergence, loss not meaningful (more than "
        f"{UC_MAX_EXPLODED_FRACTION:.0%} of the bucket's models exploded; rule above). " + paper_text,
        "",
        markdown_table(
            summaries,
            paper,
            at_chance="at chance" if rule.source == "chance" else "failed to learn",
            paper_label=paper_label,
        ),
        "",
        f"All statistics (mean, 95 % CI, median, sd, IQR, counts, at-chance and exploded shares, uc) per bucket: "
        f"[{csv.relative_to(w.out).as_posix()}]({csv.relative_to(w.out).as_posix()}).",
        "",
    )

    # Curves.
    log(f"[{name}] figures")
    w.add("### Learning curves", "")
    has_acc = figures.curve_metric(rows) == "val_accuracy"
    chance = figures.chance_levels(rows)
    chance_text = (
        f" Dotted: the task's chance level (loss {chance['val_loss']:.3g}"
        + (f", accuracy {chance['val_accuracy']:.3g}" if "val_accuracy" in chance else "")
        + ")."
        if chance
        else ""
    )
    w.figure(
        figures.curves_by_config(
            rows,
            rule,
            fig_dir / f"{stem}_curves_by_config.png",
            f"{name}: validation {'accuracy and ' if has_acc else ''}loss per epoch per config",
        ),
        f"{name}: validation {'accuracy and ' if has_acc else ''}loss per epoch per config (paper Fig. 1/2): mean "
        f"over the config's models with a shaded 95 % t-interval where it has at least {figures.MIN_CI_MODELS} "
        f"models; dashed, without an interval, where it has fewer; n in the legend." + chance_text,
    )
    metric = figures.curve_metric(rows).replace("val_", "validation ")
    w.figure(
        figures.curves_by_hidden_proportion(
            rows,
            models,
            rule,
            fig_dir / f"{stem}_curves_by_hidden_proportion.png",
            f"{name}: {metric} per model by hidden-proportion band (thick: band mean)",
        ),
        f"{name}: every model's curve coloured by hidden-proportion band, thick line = band mean, n per band in "
        "the legend (paper Fig. 6)." + chance_text,
    )

    # Weight space.
    layouts = weight_space_layouts(models)
    w.add(
        "### Weight space",
        "",
        "Blocks drawn with widths |x|, |h|, |y| and heights |h|, |y| in proportion (a column thinner than "
        f"{figures.MIN_COLUMN_SHARE:.0%} of the width or a row thinner than {figures.MIN_ROW_SHARE:.0%} of the height "
        "is widened so it stays readable); each block shows its "
        "expected trainable weights (rows x cols x density) and density as f<percent>; shade grows with density.",
        "",
    )
    w.figure(
        figures.weight_space(
            layouts,
            fig_dir / f"{stem}_weight_space.png",
            dominant,
            f"{name}: weight space drawn to scale (thin rows/columns widened; blue: dominant "
            f"block {dominant}; shade: density)",
        ),
        f"{name}: weight space of the named configs and a typical sampled model (paper Fig. 3-5, 7a, 9a)",
    )
    w.add(_layout_table(layouts), "")

    # Loss against metrics.
    w.add(f"### Minimum validation loss against hidden proportion, model density and {dominant} density", "")
    w.figure(
        figures.loss_vs_metrics(
            models,
            rule,
            dominant,
            fig_dir / f"{stem}_min_loss_vs_metrics.png",
            f"{name}: minimum validation loss per model ({len(models):,} models)",
        ),
        f"{name}: minimum validation loss per model against hidden proportion, model density (paper: model "
        f"sparsity) and the density of the dominant block {dominant} (paper Fig. 7b, 8, 9b); black steps: bucket "
        "means (dashed where uc); dash-dotted: the failure threshold" + ("; dotted: the chance loss" if chance else ""),
    )

    # Environment scores.
    score_cols = [c for c in SCORE_COLUMNS if c in models and np.isfinite(models[c].to_numpy(dtype=float)).any()]
    if score_cols:
        scored = models[np.isfinite(models[score_cols[0]].to_numpy(dtype=float))]
        s = score_summary(scored, score_cols)
        head = "| hidden proportion | " + " | ".join(f"mean {c} | n" for c in score_cols) + " |"
        lines = [head, "|---|" + "---|---|" * len(score_cols)]
        for label, r in s.iterrows():
            lines.append(
                f"| {label} | "
                + " | ".join(f"{_fmt(r[f'{c}_mean'], 2)} | {int(r[f'{c}_n'])}" for c in score_cols)
                + " |"
            )
        w.add(
            "### Environment scores",
            "",
            f"{len(scored):,} models scored in the environment (scores.parquet).",
            "",
            *lines,
            "",
        )
        w.figure(
            figures.scores_vs_hidden_proportion(
                scored,
                score_cols,
                fig_dir / f"{stem}_scores_vs_hidden_proportion.png",
                f"{name}: environment scores per model",
            ),
            f"{name}: environment scores against hidden proportion",
        )

    graph_regression.report_section(w, fig_dir, stem, models, options, log)  # only when hh masks are graphs

    # Parent network: on the block RNNs (any family without blocks, as the baseline cells, has NaN block columns).
    w.add("### Parent network: predicting minimum validation loss a priori", "")
    blockless = models[list(HYPERPARAMETER_FEATURES[:-1])].isna().any(axis=1).to_numpy()
    if blockless.any():
        configs = ", ".join(sorted(set(models.loc[blockless, "config"].astype(str))))
        w.add(f"The {int(blockless.sum())} models ({configs}) have no block hyperparameters and are left out.", "")
    models = models[~blockless]
    if len(models) < MIN_MODELS:
        w.add(f"Not fitted: {len(models)} models, fewer than {MIN_MODELS}.", "")
        return None, None
    log(f"[{name}] parent network: {len(models)} models, {options.trees} trees, {options.folds} folds")
    t0 = time.time()
    predictor, ev = fit_and_evaluate(
        models, rule, options.trees, options.max_depth, options.folds, options.seed, options.mlp, options.mlp_config
    )
    log(f"[{name}] parent network done in {time.time() - t0:.1f} s")
    chance = float(first.get("chance_loss", np.nan))
    predictor.meta.update(
        {
            "experiment": name,
            "task_name": str(first["task"]),
            "environment": env or None,
            "chance_loss": chance if np.isfinite(chance) and chance > 0 else None,
            "runs": [str(Path(r).absolute()) for r in runs],
        }
    )
    pred_dir = predictor.save(w.out / PREDICTOR_DIR / stem)
    w.add(
        "Features: the 19 hyperparameters (6 block densities, 6 init means, 6 init stds, learning rate) and the "
        "hidden proportion. Target: the capped minimum validation loss (failed models kept at their capped loss).",
        "",
        _evaluation_md(ev),
        "",
    )
    preds = {f"random forest ({ev.trees} trees)": (ev.forest.predicted, ev.forest.r2, ev.forest.mae)}
    if ev.mlp is not None:
        preds["MLP"] = (ev.mlp.predicted, ev.mlp.r2, ev.mlp.mae)
    w.figure(
        figures.predicted_vs_actual(
            ev.actual,
            preds,
            ev.failed,
            fig_dir / f"{stem}_predicted_vs_actual.png",
            f"{name}: parent network, {ev.folds}-fold held-out predictions",
        ),
        f"{name}: held-out predicted against actual minimum validation loss (paper Fig. 10)",
    )
    w.figure(
        figures.feature_importance(
            ev.importances,
            fig_dir / f"{stem}_feature_importance.png",
            f"{name}: random forest permutation importance on held-out folds",
            ev.importances_sd,
        ),
        f"{name}: permutation importance of each feature: the drop in held-out R2 when the feature is shuffled in "
        f"a fold the forest never saw (mean ± sd over {ev.folds} folds x {PERMUTATION_REPEATS} shuffles), in the "
        "units of the ablation's R2 change above",
    )
    w.add(
        _importance_md(ev.importances, ev.importances_sd, ev.importances_ci),
        "",
        _reconcile_md(ev),
        "",
        f"Saved predictor: `{pred_dir.relative_to(w.out).as_posix()}/` (forest as plain arrays in forest.npz, MLP "
        "parameters as Flax msgpack plus normalisation in mlp.json; no pickle). Use it with "
        f"`python -m experiments.recommend --input_dim={x} --output_dim={y} --budget=... "
        f"--predictor={(w.out / PREDICTOR_DIR).as_posix()}`.",
        "",
    )
    return pred_dir, ev


def _comparison_section(w: _Writer, models: pd.DataFrame) -> None:
    """Several runs side by side (``analysis.compare``): a table and a figure of every configuration per run."""
    table = compare.comparison_table(models)
    csv = w.out / TABLES_DIR / "comparison.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv, index=False)
    w.tables.append(csv)
    w.add(
        "## Runs compared",
        "",
        "Minimum validation loss / the run's chance loss (1 = chance; raw where a run records no chance loss) of "
        "each configuration in each run: mean [95 % t-interval] (models). Sampled draws form one row per sampler. "
        "Each run's own analysis follows.",
        "",
        compare.comparison_markdown(table),
        "",
        f"Table: `{csv.relative_to(w.out).as_posix()}`.",
        "",
    )
    w.figure(
        compare.comparison_figure(table, w.out / FIGURES_DIR / "comparison.png", "Configurations across runs"),
        "each configuration's minimum validation loss / chance in each run (mean and 95 % interval over its models)",
    )


def _html(markdown_text: str, title: str) -> str | None:
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    body = MarkdownIt("commonmark").enable("table").render(markdown_text)
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
        "table{border-collapse:collapse;font-size:0.9em;margin:0.5em 0}td,th{border:1px solid #bbb;padding:3px 7px}"
        "th{background:#eee}img{max-width:100%}code{background:#f3f3f3}"
    )
    head = f"<head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
    return f"<!doctype html>\n<html>{head}\n<body>\n{body}</body></html>\n"


def analyze(
    results_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    options: AnalysisOptions = AnalysisOptions(),
    log: Log = lambda s: None,
) -> AnalysisResult:
    """Writes the report of ``results_dirs`` into ``out_dir`` (see the module docstring)."""
    results_dirs = [str(d) for d in results_dirs]
    check_inputs(results_dirs, out_dir)
    if options.trees < 1 or options.max_depth < 1 or options.folds < 2:
        raise AnalysisInputError("need trees >= 1, max_depth >= 1 and folds >= 2")
    df = load_results(results_dirs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST_FILE
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text()).get("results", [])
        except (OSError, json.JSONDecodeError):
            previous = []
        if sorted(previous) != sorted(results_dirs):
            log(f"note: {out / REPORT_FILE} was made from {', '.join(previous) or 'other results'}; overwriting it")

    t0 = time.time()
    unfinished = unfinished_runs(results_dirs)
    for note in unfinished:
        log(f"warning: {note}")
    models, rules = classify(final_per_model(df), options.failure_loss, by="experiment")
    w = _Writer(out)
    w.add(
        "# Analysis of sparse block RNN sweep results",
        "",
        *[f"> **Warning:** {note}\n" for note in unfinished],
        "Results: " + ", ".join(f"`{d}`" for d in results_dirs) + f" — {len(models):,} models, "
        f"{len(df):,} (model, epoch) rows, experiments {', '.join(f'`{e}`' for e in sorted(rules))} (runs of "
        "different tasks, environments or dims are analysed apart).",
        "",
        "## How failed models are treated",
        "",
        rule_markdown(),
        "",
    )
    if len(results_dirs) > 1:
        _comparison_section(w, models)
    predictors, evaluations = {}, {}
    for name in sorted(rules):
        exp_models = models[models["experiment"] == name].reset_index(drop=True)
        exp_rows = df[df["experiment"] == name]
        pred_dir, ev = _task_section(w, name, exp_rows, exp_models, rules[name], options, log)
        if pred_dir is not None:
            predictors[name], evaluations[name] = pred_dir, ev
    w.add(pruning_sections(results_dirs, out))  # when experiments.prune left a pruning.parquet in a results folder

    text = "\n".join(w.lines).rstrip() + "\n"
    report = out / REPORT_FILE
    report.write_text(text)
    html_text = _html(text, "Sparse RNN sweep analysis")
    html = None
    if html_text is not None:
        html = out / HTML_FILE
        html.write_text(html_text)
    manifest.write_text(
        json.dumps(
            json_safe(
                {
                    "results": results_dirs,
                    "models": len(models),
                    "experiments": sorted(rules),
                    "files": [
                        p.relative_to(out).as_posix()
                        for p in [report] + ([html] if html else []) + w.figures + w.tables
                    ]
                    + [p.relative_to(out).as_posix() + "/" for p in predictors.values()],
                    "options": {
                        "trees": options.trees,
                        "max_depth": options.max_depth,
                        "folds": options.folds,
                        "seed": options.seed,
                        "mlp": options.mlp,
                        "failure_loss": dict(options.failure_loss),
                    },
                    "failure_rules": {t: dataclasses.asdict(r) for t, r in rules.items()},
                }
            ),
            indent=1,
            allow_nan=False,
        )
    )
    log(f"report written to {report} in {time.time() - t0:.1f} s")
    return AnalysisResult(report, html, w.figures, w.tables, predictors, evaluations)
