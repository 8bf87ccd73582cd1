"""Synthetic sweep results with known structure, in the real results schema (``results.RESULT_COLUMNS``) plus
the task's ``chance_loss`` (as ``engine.results.read_results`` adds it from run.json).

Spec columns come from ``results.spec_columns`` on specs drawn by ``samplers.sample_specs`` (and
``samplers.named_specs``), so they are genuine; only the losses are planted:

    min_val_loss = base + amplitude * (hidden_proportion - optimum)^2 + noise

and each model's curve falls monotonically from ``min + spread`` at epoch 1 to ``min`` at its last epoch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.predictor import MLPConfig
from sparse_rnn_jax.core.configs import named_specs
from sparse_rnn_jax.core.samplers import sample_specs
from sparse_rnn_jax.engine.results import RESULT_COLUMNS, spec_columns
from sparse_rnn_jax.engine.workdir import write_parquet_atomic

TASK_DIMS = {"rad": (2500, 10), "ah": (46, 26)}
TASK_LOSS = {"rad": (1.3, 3.0), "ah": (0.065, 0.05)}  # (base, amplitude)
D4RL_MIN, D4RL_MAX = -274.856578, 12794.134825
EPOCHS = 3
"""Epochs of the tests' tables: one MLP output shape (min + 3 epochs) everywhere, so the trainer compiles once."""
SMALL_MLP = MLPConfig(hidden=(32, 32), batch_size=64, evaluations=10, steps_per_evaluation=20)


def planted_loss(task: str, optimum: float = 0.45) -> Callable[[np.ndarray], np.ndarray]:
    base, amplitude = TASK_LOSS[task]
    return lambda hp: base + amplitude * (np.asarray(hp) - optimum) ** 2


def synthetic_results(
    task: str = "rad",
    n_models: int = 60,
    epochs: int = 3,
    seed: int = 0,
    sampler: str | None = None,
    budget: float = 50_000,
    noise: float = 0.02,
    loss_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    failed_fraction: float = 0.0,
    diverged_fraction: float = 0.0,
    named: Sequence[str] = (),
    named_budget: float = 100_000,
    named_seeds: int = 3,
    extra_configs: Sequence[str] = (),
    dims: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """One row per (model, epoch) in the results schema.

    Sampled models (``sampler``: default ``normal_size`` for rad, ``normal`` for ah) get the planted loss;
    a ``failed_fraction`` of them is stuck at a failing loss (2.31 on rad, 10 x base elsewhere) and a
    ``diverged_fraction`` diverges at a random epoch (diverged=True, val_loss NaN from then on). Named
    configs (and ``extra_configs``, built as ``dense`` under another name, e.g. "lstm") get
    ``named_seeds`` models each. ``dims`` overrides the task's (input_dim, output_dim).
    """
    x, y = dims or TASK_DIMS[task]
    rng = np.random.default_rng(seed)
    sampler = sampler or ("normal_size" if task == "rad" else "normal")
    specs = list(sample_specs(sampler, n_models, seed, x, y, budget=budget if sampler == "normal_size" else None).specs)
    configs = [sampler] * len(specs)
    extras = named_specs(named, x, y, budget=named_budget) if named else []
    for extra in extra_configs:
        extras += [named_specs(["dense"], x, y, budget=named_budget)[0].replace(name=extra)]
    for spec in extras:
        specs += [spec] * named_seeds
        configs += [spec.name] * named_seeds
    cols = [spec_columns(s) for s in specs]
    hp = np.array([c["hidden_proportion"] for c in cols])
    loss_fn = loss_fn or planted_loss(task)
    min_loss = loss_fn(hp) + noise * rng.standard_normal(len(specs))
    base, _ = TASK_LOSS[task]
    sampled = np.arange(len(specs)) < n_models
    failed = sampled & (rng.random(len(specs)) < failed_fraction)
    min_loss = np.where(failed, 2.31 if task == "rad" else 10 * base, min_loss)
    diverge_at = np.where(
        sampled & ~failed & (rng.random(len(specs)) < diverged_fraction),
        rng.integers(1, epochs + 1, len(specs)),
        epochs + 1,
    )
    rows = []
    for i, (spec, c) in enumerate(zip(specs, cols)):
        start = min_loss[i] + 0.5 * base
        for e in range(1, epochs + 1):
            frac = (epochs - e) / max(epochs - 1, 1)
            val = min_loss[i] + (start - min_loss[i]) * frac**2
            diverged = e >= diverge_at[i]
            if diverged:
                val = math.nan
            rows.append(
                {
                    "model_id": i,
                    "bucket": spec.hidden_dim // 64,
                    "seed": int(seed * 1000 + i),
                    "config": configs[i],
                    "task": task,
                    "epoch": e,
                    "train_loss": val * 0.95,
                    "val_loss": val,
                    "val_accuracy": (max(0.0, min(1.0, 1.0 - val / 2.5)) if np.isfinite(val) else math.nan)
                    if task == "rad"
                    else math.nan,
                    "diverged": bool(diverged),
                    "trainable_params_exact": int(round(c["trainable_params"])),
                    **c,
                }
            )
    df = pd.DataFrame(rows)[list(RESULT_COLUMNS)]
    return df.assign(chance_loss=math.log(y) if task == "rad" else math.nan)


def synthetic_scores(results: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per-model environment scores that fall with the model's minimum validation loss."""
    rng = np.random.default_rng(seed)
    best = results.groupby("model_id")["val_loss"].min()
    ret = 12000.0 - 80000.0 * best.fillna(1.0).to_numpy() + 200 * rng.standard_normal(len(best))
    return pd.DataFrame(
        {
            "model_id": best.index.to_numpy(),
            "eval_return_mean": ret,
            "eval_return_std": np.abs(300 * rng.standard_normal(len(best))),
            "eval_success_rate": np.clip(ret / 12000.0, 0, 1),
            "d4rl_score": 100 * (ret - D4RL_MIN) / (D4RL_MAX - D4RL_MIN),
        }
    )


def write_workdir(
    path: str | Path, results: pd.DataFrame, scores: pd.DataFrame | None = None, env_id: str | None = None
) -> Path:
    """results.parquet (the results columns), run.json (task, chance loss, status, the data's environment: ``env_id``,
    by default AdroitHandHammer-v1 for ah) and scores.parquet."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chance = results["chance_loss"].iloc[0] if "chance_loss" in results and len(results) else float("nan")
    write_parquet_atomic(results[[c for c in results.columns if c != "chance_loss"]], path / "results.parquet")
    task = str(results["task"].iloc[0]) if len(results) else ""
    record = {"task": task, "chance_loss": float(chance), "status": "complete"}
    env_id = env_id or ("AdroitHandHammer-v1" if task == "ah" else None)
    if env_id:
        record["data"] = {"env_id": env_id, "dataset_id": "local/synthetic/expert-v0"}
    (path / "run.json").write_text(json.dumps(record))
    if scores is not None:
        write_parquet_atomic(scores, path / "scores.parquet")
    return path
