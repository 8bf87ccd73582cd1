"""One-shot magnitude pruning of trained populations, evaluated as is and after a short fine-tune.

A trained chunk (stacked params and masks, as ``sweep.load_final_params`` returns them) is pruned at each
fraction f of its *currently trainable* weights (mask True), in one of three scopes:

  global     one ranking over every weight array of a model (block RNN: W_hx ... W_yy; cells: W_i, W_h,
             W_yh; leaky gated: also W_ax, W_ah): the round(f n) smallest |w| of its n trainable weights go.
  per_block  every weight array pruned by f separately (a cell's W_i holds all its gates, as PyTorch's
             weight_ih does, and is one array).
  hidden     only the hidden-to-hidden weights: W_hh for the block RNNs (with W_ah for the gated leaky
             one), W_h (every gate) for the cells.

Pruned entries become masked (False): exactly 0 in the forward pass, zero gradient, and Adam keeps them at 0
(``train``), so a fine-tune cannot revive them. Biases (and a leaky model's per-unit α parameters) are never
pruned. Counts are exact: ranks, not a threshold, decide, so ties at the threshold are broken by position
(row-major over the arrays in ``weight_keys`` order) and a group of n trainable weights keeps exactly
n - round(f n) (rounding half up).

Every model of a chunk, at every (scope, fraction) and unpruned (scope ``none``, fraction 0, the control),
forms one bigger population: ``prune_and_finetune`` evaluates it with the engine's jitted ``evaluate`` and
fine-tunes it with the engine's jitted ``train_steps`` (one vmapped program for all variants; a fresh Adam
state, each model's own learning rate, one minibatch stream shared by every variant), then evaluates again.

Summary (``summary_table``): per model and scope, the largest fraction f such that every fraction <= f keeps
the validation accuracy within ACCURACY_TOLERANCE (1 percentage point) of the unpruned control, and
separately the loss within LOSS_TOLERANCE (5 %); as pruned against the unpruned model, and after the
fine-tune against the unpruned control fine-tuned alike (so the fine-tune's own gain is not credited to
pruning). Models that had not learned (``learned_models``: the analysis' chance-loss rule) are left out,
and models at <= 1 % accuracy from the accuracy criterion. Per family: the median and range over models.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from sparse_rnn_jax import cells, leaky
from sparse_rnn_jax.results import spec_columns
from sparse_rnn_jax.spec import BLOCKS
from sparse_rnn_jax.sweep import _eval_indices, _jitted_programs
from sparse_rnn_jax.tasks import Task
from sparse_rnn_jax.train import init_train_state

SCOPES: tuple[str, ...] = ("global", "per_block", "hidden")
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
UNPRUNED_SCOPE = "none"
"""The scope of the unpruned control variant (fraction 0)."""


def weight_keys(family: str) -> dict[str, str]:
    """param key -> mask key of every weight array of a family (biases excluded)."""
    if family == "block" or family in leaky.LEAKY_FAMILIES:
        keys = {f"W_{b}": b for b in BLOCKS}
        if family == "leaky_gated":
            keys.update({k: k for k in leaky.GATE_WEIGHTS})
        return keys
    if family in cells.CELLS:
        return {"W_i": "W_i", "W_h": "W_h", "W_yh": "W_yh"}
    raise ValueError(f"unknown model family {family!r}")


def hidden_keys(family: str) -> tuple[str, ...]:
    """The param keys of a family's hidden-to-hidden weights (the ``hidden`` scope)."""
    if family in cells.CELLS:
        return ("W_h",)
    return ("W_hh", "W_ah") if family == "leaky_gated" else ("W_hh",)


def scope_groups(family: str, scope: str) -> list[tuple[str, ...]]:
    """The groups of param keys that are ranked together in ``scope`` (one fraction per group)."""
    keys = tuple(weight_keys(family))
    if scope == "global":
        return [keys]
    if scope == "per_block":
        return [(k,) for k in keys]
    if scope == "hidden":
        return [hidden_keys(family)]
    raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def pruned_count(fraction: float, trainable: np.ndarray) -> np.ndarray:
    """round(fraction x trainable), half up: how many of ``trainable`` weights a fraction prunes."""
    return np.floor(np.asarray(trainable, np.float64) * fraction + 0.5 + 1e-9).astype(np.int64)


def _group_ranks(params: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], family: str,
                 group: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude ranks of the trainable weights of ``group`` per model: (ranks int64[P, N], trainable
    bool[P, N]) over the group's arrays flattened and concatenated; rank 0 is the smallest |w| (masked
    entries rank after every trainable one)."""
    wk = weight_keys(family)
    p = np.asarray(masks[wk[group[0]]]).shape[0]
    mag = np.concatenate([np.abs(np.asarray(params[k], np.float64)).reshape(p, -1) for k in group], axis=1)
    trainable = np.concatenate([np.asarray(masks[wk[k]], bool).reshape(p, -1) for k in group], axis=1)
    key = np.where(trainable, np.nan_to_num(mag, nan=np.inf), np.inf)
    order = np.lexsort((key, ~trainable), axis=-1)  # trainable first, then by magnitude, ties by position
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :].repeat(p, 0), axis=1)
    return ranks, trainable


def prune_masks(params: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], family: str, scope: str,
                fractions: Sequence[float]) -> list[dict[str, np.ndarray]]:
    """Pruned masks of a stacked population (every leaf [P, ...]), one dict per fraction (same keys as
    ``masks``; only the weight masks of ``scope`` change, each keeping its largest-magnitude entries)."""
    for f in fractions:
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"pruning fractions must be in [0, 1], got {f}")
    wk = weight_keys(family)
    out = [dict(masks) for _ in fractions]
    for group in scope_groups(family, scope):
        ranks, trainable = _group_ranks(params, masks, family, group)
        n = trainable.sum(axis=1)
        sizes = [int(np.prod(np.asarray(masks[wk[k]]).shape[1:])) for k in group]
        bounds = np.cumsum([0] + sizes)
        for i, f in enumerate(fractions):
            keep = trainable & (ranks >= pruned_count(f, n)[:, None])
            for j, k in enumerate(group):
                out[i][wk[k]] = keep[:, bounds[j]:bounds[j + 1]].reshape(np.asarray(masks[wk[k]]).shape)
    return out


def trainable_weights(masks: Mapping[str, np.ndarray], family: str, keys: Sequence[str] | None = None) -> np.ndarray:
    """Trainable weights per model of stacked masks (of ``keys``, default every weight array): int64[P]."""
    wk = weight_keys(family)
    keys = list(wk) if keys is None else keys
    return sum(np.asarray(masks[wk[k]], bool).reshape(np.shape(masks[wk[k]])[0], -1).sum(axis=1) for k in keys)


def hidden_proportion_of_masks(masks: Mapping[str, np.ndarray], family: str) -> np.ndarray:
    """The hidden proportion of realised masks, f64[P]: trainable hidden-to-hidden weights over the trainable
    weights computing h (block RNNs: hx, hh, hy (+ W_ax, W_ah); cells: W_i, W_h). NaN where that is 0."""
    top = ["W_i", "W_h"] if family in cells.CELLS else ["W_hx", "W_hh", "W_hy"] + (
        list(leaky.GATE_WEIGHTS) if family == "leaky_gated" else [])
    den = trainable_weights(masks, family, top).astype(np.float64)
    num = trainable_weights(masks, family, hidden_keys(family)).astype(np.float64)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


@dataclasses.dataclass(frozen=True)
class Variants:
    """A pruned population: V variants of each of P models stacked variant-major (row v * P + i is model i
    at variant v). ``params``/``masks`` leaves [V * P, ...]; ``scope``/``fraction`` name the variants."""

    params: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    scope: tuple[str, ...]
    fraction: tuple[float, ...]
    models: int

    @property
    def size(self) -> int:
        return len(self.scope) * self.models


def make_variants(params: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], family: str,
                  scopes: Sequence[str] = SCOPES, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Variants:
    """The unpruned control (scope ``none``, fraction 0) and every (scope, fraction) of a trained chunk,
    stacked; pruned weights are set to exactly 0 in ``params`` as well."""
    p = int(np.shape(next(iter(masks.values())))[0])
    all_masks, scope_names, fracs = [dict(masks)], [UNPRUNED_SCOPE], [0.0]
    for s in scopes:
        all_masks += prune_masks(params, masks, family, s, fractions)
        scope_names += [s] * len(fractions)
        fracs += [float(f) for f in fractions]
    wk = weight_keys(family)
    stacked_masks = {k: np.concatenate([np.asarray(m[k]) for m in all_masks]) for k in masks}
    stacked_params = {}
    for k, v in params.items():
        tiled = np.concatenate([np.asarray(v)] * len(all_masks))
        if k in wk:
            tiled = tiled * stacked_masks[wk[k]].astype(tiled.dtype)
        stacked_params[k] = tiled
    return Variants(stacked_params, stacked_masks, tuple(scope_names), tuple(fracs), p)


# ------------------------------------------------------------------------------------------ fine-tuning


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """How pruned populations are evaluated and fine-tuned.

    steps: minibatch Adam steps after pruning (0: evaluate only).  batch_size: sequences per minibatch.
    eval_batch_size: sequences per evaluation batch.  seed: the fine-tune's minibatch order.
    max_models: most (variant, model) rows per compiled program (memory); a population is split into equal
    pieces, padded with repeats of its last row.  steps_per_call: minibatches per jitted call.  unroll: scan unroll.
    """

    steps: int = 200
    batch_size: int = 16
    eval_batch_size: int = 250
    seed: int = 0
    max_models: int = 256
    steps_per_call: int = 50
    unroll: int = 1

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        for name in ("batch_size", "eval_batch_size", "max_models", "steps_per_call", "unroll"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def finetune_order(seed: int, n: int, batch_size: int, steps: int) -> np.ndarray:
    """int32[steps, batch_size]: consecutive permutations of the n training examples, drawn from
    (seed, pass, 0x9F1E) (a stream of its own, apart from the sweep's epoch orders)."""
    if n < batch_size:
        raise ValueError(f"training set ({n}) is smaller than one batch ({batch_size})")
    per_pass = n // batch_size
    passes = math.ceil(steps / per_pass) if steps else 0
    rows = [np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), e, 0x9F1E]))).permutation(n)
            [: per_pass * batch_size].reshape(per_pass, batch_size) for e in range(passes)]
    return (np.concatenate(rows)[:steps] if rows else np.zeros((0, batch_size), np.int64)).astype(np.int32)


def _pieces(total: int, most: int, multiple: int = 1) -> list[tuple[int, int, int]]:
    """Splits range(total) into equal pieces of at most ``most`` rows (a multiple of ``multiple``):
    (start, stop, padded size) each; every piece has the same padded size (one compile)."""
    most = max(multiple, most - most % multiple)
    count = math.ceil(total / most)
    size = math.ceil(total / count)
    size += (-size) % multiple
    return [(s, min(s + size, total), size) for s in range(0, total, size)]


def evaluate_and_finetune(
    params: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    lrs: np.ndarray,
    programs: tuple[Callable, Callable],
    train_data: Mapping[str, jax.Array],
    val_data: Mapping[str, jax.Array],
    cfg: FinetuneConfig,
    *,
    put: Callable = jax.device_put,
    device_multiple: int = 1,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, np.ndarray]:
    """Evaluates a stacked population (rows [R, ...]), fine-tunes it for ``cfg.steps`` minibatches and
    evaluates again. ``programs`` = the engine's jitted (train_steps, evaluate) of the family with a shared
    minibatch stream (``sweep._jitted_programs(..., per_model_order=False)``); data already on the device.

    Returns f64/bool arrays [R]: val_loss_pruned, val_accuracy_pruned (before the fine-tune),
    val_loss_finetuned, val_accuracy_finetuned, diverged_finetune; and ``params`` / ``masks``, the
    fine-tuned weights and the masks (numpy, [R, ...]).
    """
    train_steps, evaluate = programs
    rows = int(np.shape(lrs)[0])
    n_train = int(np.shape(next(iter(train_data.values())))[0])
    n_val = int(np.shape(next(iter(val_data.values())))[0])
    eval_idx, eval_w = (jnp.asarray(a) for a in _eval_indices(n_val, cfg.eval_batch_size))
    order = finetune_order(cfg.seed, n_train, cfg.batch_size, cfg.steps)
    s = cfg.steps_per_call
    pad = (-len(order)) % s
    order = np.concatenate([order, np.zeros((pad, cfg.batch_size), np.int32)])
    valid = np.arange(len(order)) < cfg.steps
    out = {k: np.zeros(rows) for k in ("val_loss_pruned", "val_accuracy_pruned", "val_loss_finetuned", "val_accuracy_finetuned")}
    out["diverged_finetune"] = np.zeros(rows, bool)
    tuned_params = {k: np.zeros_like(np.asarray(v)) for k, v in params.items()}
    for start, stop, size in _pieces(rows, cfg.max_models, device_multiple):
        take = np.minimum(np.arange(start, start + size), stop - 1)  # pad with repeats of the last row
        p_np = {k: np.asarray(v)[take] for k, v in params.items()}
        m_dev = put({k: np.asarray(v)[take] for k, v in masks.items()})
        lr_dev = put(np.asarray(lrs, np.float32)[take])
        n = stop - start
        loss, acc = (np.asarray(a) for a in evaluate(put(p_np), m_dev, val_data, eval_idx, eval_w))
        out["val_loss_pruned"][start:stop], out["val_accuracy_pruned"][start:stop] = loss[:n], acc[:n]
        state = put(init_train_state(p_np))
        for step in range(0, len(order), s):
            state, _ = train_steps(state, m_dev, lr_dev, train_data, jnp.asarray(order[step:step + s]), jnp.asarray(valid[step:step + s]))
        loss, acc = (np.asarray(a) for a in evaluate(state.params, m_dev, val_data, eval_idx, eval_w))
        out["val_loss_finetuned"][start:stop], out["val_accuracy_finetuned"][start:stop] = loss[:n], acc[:n]
        out["diverged_finetune"][start:stop] = np.asarray(state.diverged)[:n]
        for k, v in state.params.items():
            tuned_params[k][start:stop] = np.asarray(v)[:n]
        log(f"  {stop}/{rows} pruned variants evaluated and fine-tuned")
    out["params"] = tuned_params
    out["masks"] = {k: np.asarray(v) for k, v in masks.items()}
    return out


PRUNING_COLUMNS: tuple[str, ...] = (
    "model_id", "config", "family", "task", "output_dim", "hidden_dim", "hidden_proportion", "learning_rate",
    "scope", "fraction", "trainable_weights", "remaining_weights", "remaining_hidden_proportion",
    "val_loss_pruned", "val_accuracy_pruned", "val_loss_finetuned", "val_accuracy_finetuned", "diverged_finetune",
    "finetune_steps",
)
"""Columns of ``pruning.parquet``, one row per (model, scope, fraction); scope ``none`` (fraction 0) is the
unpruned control. ``trainable_weights`` counts the trained model's weights (biases excluded),
``remaining_weights`` those left after pruning, ``remaining_hidden_proportion`` the hidden proportion of
what is left; ``*_pruned`` are measured right after pruning, ``*_finetuned`` after ``finetune_steps``
minibatches (accuracy NaN for tasks without one)."""


def prune_and_finetune(
    members: Sequence, params: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], family: str, activation: str,
    task: Task, train_data: Mapping[str, jax.Array], val_data: Mapping[str, jax.Array], cfg: FinetuneConfig,
    scopes: Sequence[str] = SCOPES, fractions: Sequence[float] = DEFAULT_FRACTIONS, *,
    put: Callable = jax.device_put, device_multiple: int = 1, log: Callable[[str], None] = lambda _: None,
) -> pd.DataFrame:
    """Prunes the trained models ``members`` of one chunk (``params``/``masks`` [P, ...], P = len(members),
    e.g. from ``sweep.load_final_params``) at every (scope, fraction), evaluates, fine-tunes and evaluates
    again; returns the ``PRUNING_COLUMNS`` rows."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"scopes must be among {SCOPES}, got {bad}")
    variants = make_variants(params, masks, family, scopes, fractions)
    lrs = np.tile(np.asarray([m.spec.learning_rate for m in members], np.float32), len(variants.scope))
    log(f"{family}: {len(members)} models x {len(variants.scope)} variants")
    res = evaluate_and_finetune(variants.params, variants.masks, lrs,
                                _jitted_programs(task, family, activation, cfg.unroll, False),
                                train_data, val_data, cfg, put=put, device_multiple=device_multiple, log=log)
    trained = trainable_weights(masks, family)
    remaining = trainable_weights(variants.masks, family)
    remaining_hp = hidden_proportion_of_masks(variants.masks, family)
    hidden_proportion = [spec_columns(m.spec)["hidden_proportion"] for m in members]
    rows = []
    for v, (scope, fraction) in enumerate(zip(variants.scope, variants.fraction)):
        for i, m in enumerate(members):
            r = v * len(members) + i
            rows.append({
                "model_id": m.model_id, "config": m.config, "family": m.spec.family, "task": task.name,
                "output_dim": m.spec.output_dim, "hidden_dim": m.spec.hidden_dim, "hidden_proportion": hidden_proportion[i],
                "learning_rate": m.spec.learning_rate, "scope": scope, "fraction": fraction,
                "trainable_weights": int(trained[i]), "remaining_weights": int(remaining[r]),
                "remaining_hidden_proportion": float(remaining_hp[r]),
                "val_loss_pruned": float(res["val_loss_pruned"][r]),
                "val_accuracy_pruned": float(res["val_accuracy_pruned"][r]) if task.has_accuracy else math.nan,
                "val_loss_finetuned": float(res["val_loss_finetuned"][r]),
                "val_accuracy_finetuned": float(res["val_accuracy_finetuned"][r]) if task.has_accuracy else math.nan,
                "diverged_finetune": bool(res["diverged_finetune"][r]), "finetune_steps": cfg.steps,
            })
    return pd.DataFrame(rows, columns=list(PRUNING_COLUMNS))


# -------------------------------------------------------------------------------------------- summary

ACCURACY_TOLERANCE = 0.01
"""A pruned model "keeps its accuracy" while it is at most 1 percentage point below its unpruned control."""
LOSS_TOLERANCE = 0.05
"""... and "keeps its loss" while its validation loss is at most 5 % above its unpruned control's."""


def metric_of(df: pd.DataFrame) -> str:
    """``accuracy`` when the rows have accuracies, else ``loss``: the metric of figures and the headline."""
    return "accuracy" if np.isfinite(df["val_accuracy_pruned"].to_numpy(dtype=float)).any() else "loss"


def metrics_of(df: pd.DataFrame) -> list[str]:
    """The criteria a summary reports: accuracy (when the task has one) and loss."""
    return ["accuracy", "loss"] if metric_of(df) == "accuracy" else ["loss"]


def _within(value: np.ndarray, reference: float, metric: str) -> np.ndarray:
    if metric == "accuracy":
        return value >= reference - ACCURACY_TOLERANCE - 1e-9
    return np.isfinite(value) & (value <= reference * (1.0 + LOSS_TOLERANCE) + 1e-12)


def learned_models(df: pd.DataFrame) -> pd.Index:
    """Model ids whose unpruned model learned something: for tasks with a known chance loss
    (``analysis.convergence.chance_loss``) a validation loss below CHANCE_MARGIN x chance, as the analysis'
    failure rule; for other tasks every model with a finite loss."""
    from sparse_rnn_jax.analysis.convergence import CHANCE_MARGIN, chance_loss

    base = df[df["scope"] == UNPRUNED_SCOPE].drop_duplicates("model_id")
    ok = []
    for loss, task, out_dim in zip(base["val_loss_pruned"].to_numpy(dtype=float), base["task"], base["output_dim"]):
        chance = chance_loss(str(task), int(out_dim))
        ok.append(bool(np.isfinite(loss)) and (chance is None or loss < CHANCE_MARGIN * chance))
    return pd.Index(base["model_id"].to_numpy()[np.asarray(ok, bool)], name="model_id")


def scored_models(df: pd.DataFrame, metric: str) -> pd.Index:
    """The models a criterion is measured on: those that learned (``learned_models``) and, for accuracy, whose
    unpruned accuracy exceeds ACCURACY_TOLERANCE (a model at 0 % has no accuracy to lose)."""
    learned = learned_models(df)
    if metric != "accuracy":
        return learned
    base = df[(df["scope"] == UNPRUNED_SCOPE) & df["model_id"].isin(learned)].drop_duplicates("model_id")
    return pd.Index(base.loc[base["val_accuracy_pruned"] > ACCURACY_TOLERANCE, "model_id"].to_numpy(), name="model_id")


def max_prunable(df: pd.DataFrame, stage: str = "pruned", metric: str | None = None) -> pd.DataFrame:
    """Per (model, scope): the largest fraction f such that every fraction <= f keeps the model's ``metric``
    (default ``metric_of``) within tolerance of its unpruned control (``stage`` "pruned": no retraining,
    against the unpruned model; "finetuned": after the fine-tune, against the unpruned control fine-tuned
    alike); 0 when the smallest fraction already falls outside. Column ``max_fraction_{stage}``."""
    metric = metric or metric_of(df)
    col = f"val_{metric}_{stage}"
    ref = df[df["scope"] == UNPRUNED_SCOPE].drop_duplicates("model_id").set_index("model_id")[col]
    out = []
    for (model_id, scope), g in df[df["scope"] != UNPRUNED_SCOPE].groupby(["model_id", "scope"], sort=True):
        g = g.sort_values("fraction")
        ok = _within(g[col].to_numpy(dtype=float), float(ref.loc[model_id]), metric)
        bad = np.flatnonzero(~ok)
        fractions = g["fraction"].to_numpy(dtype=float)
        largest = fractions[-1] if not len(bad) else (fractions[bad[0] - 1] if bad[0] > 0 else 0.0)
        out.append({"model_id": model_id, "scope": scope, "family": g["family"].iloc[0], "config": g["config"].iloc[0],
                    f"max_fraction_{stage}": float(largest)})
    return pd.DataFrame(out, columns=["model_id", "scope", "family", "config", f"max_fraction_{stage}"])


def summary_table(df: pd.DataFrame, group: str = "family") -> pd.DataFrame:
    """Per (``group``, scope): how much can be pruned before the metric falls, for each criterion of
    ``metrics_of`` (accuracy within ACCURACY_TOLERANCE, loss within LOSS_TOLERANCE), without and with the
    fine-tune: ``{metric}_models`` (``scored_models``), ``unpruned_{metric}`` (their mean) and
    ``{metric}_{stage}_{median,min,max}``, the median and range over models of ``max_prunable``."""
    keys = [group, "scope"]
    scopes = [s for s in SCOPES if s in set(df["scope"])]
    table = df[df["scope"] != UNPRUNED_SCOPE][keys].drop_duplicates().reset_index(drop=True)
    for metric in metrics_of(df):
        part = df[df["model_id"].isin(scored_models(df, metric))]
        base = part[part["scope"] == UNPRUNED_SCOPE].drop_duplicates("model_id").set_index("model_id")[f"val_{metric}_pruned"]
        per_model = max_prunable(part, "pruned", metric).merge(
            max_prunable(part, "finetuned", metric)[["model_id", "scope", "max_fraction_finetuned"]], on=["model_id", "scope"])
        per_model["unpruned"] = per_model["model_id"].map(base)
        agg = {f"{metric}_models": ("model_id", "nunique"), f"unpruned_{metric}": ("unpruned", "mean")}
        for stage in ("pruned", "finetuned"):
            for stat in ("median", "min", "max"):
                agg[f"{metric}_{stage}_{stat}"] = (f"max_fraction_{stage}", stat)
        stats = per_model.groupby(keys, sort=False).agg(**agg).reset_index() if len(per_model) else pd.DataFrame(columns=keys + list(agg))
        table = table.merge(stats, on=keys, how="left")
        table[f"{metric}_models"] = table[f"{metric}_models"].fillna(0).astype(int)
    order = {s: i for i, s in enumerate(scopes)}
    return table.sort_values(keys, key=lambda c: c.map(order) if c.name == "scope" else c).reset_index(drop=True)


def mean_curves(df: pd.DataFrame, learned_only: bool = True) -> pd.DataFrame:
    """Mean metric per (family, scope, fraction) over the models that learned (or all), before and after the
    fine-tune; the unpruned control appears at fraction 0 of every scope."""
    metric = metric_of(df)
    if learned_only:
        df = df[df["model_id"].isin(learned_models(df))]
    base = df[df["scope"] == UNPRUNED_SCOPE]
    scopes = [s for s in SCOPES if s in set(df["scope"])]
    parts = [df[df["scope"] != UNPRUNED_SCOPE]] + [base.assign(scope=s) for s in scopes]
    both = pd.concat(parts, ignore_index=True)
    return (both.groupby(["family", "scope", "fraction"], sort=True)
            .agg(models=("model_id", "nunique"), pruned=(f"val_{metric}_pruned", "mean"),
                 finetuned=(f"val_{metric}_finetuned", "mean"))
            .reset_index())
