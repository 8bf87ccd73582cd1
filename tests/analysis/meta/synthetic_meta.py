"""A synthetic meta-dataset in the real schema (``analysis.meta.dataset.COLUMNS``) with planted structure: the
normalised minimum loss of every model on every task is a function of its hidden proportion alone,

    norm_min_loss = 0.2 + 2 * (hidden_proportion - optimum)^2 + noise   (optimum 0.15 by default),

and each curve falls linearly from ``norm_min_loss + 0.3`` to ``norm_min_loss``. The spec columns come from specs
drawn by ``core.samplers`` (and the named configs), so they are genuine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.meta.dataset import COLUMNS
from sparse_rnn_jax.core.configs import named_specs
from sparse_rnn_jax.core.samplers import sample_specs
from sparse_rnn_jax.engine.results import spec_columns

TASKS = {  # name: (input_dim, output_dim, seq_len, loss, chance)
    "alpha": (784, 10, 11, "ce", math.log(10)),
    "beta": (28, 10, 28, "ce", math.log(10)),
    "gamma": (2, 1, 50, "mse", 1 / 6),
    "delta": (7, 7, 20, "bce", 0.5),
}


def planted(hp: np.ndarray, optimum: float = 0.15) -> np.ndarray:
    return 0.2 + 2.0 * (np.asarray(hp) - optimum) ** 2


def synthetic_meta(
    tasks=tuple(TASKS),
    n_sampled: int = 24,
    seeds: int = 3,
    epochs: int = 4,
    noise: float = 0.01,
    seed: int = 0,
    returns_task: str | None = None,
) -> pd.DataFrame:
    """Rows of every task at one budget (dense hidden 16): sampled draws plus the five named configs x seeds."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in tasks:
        x, y, seq, loss, chance = TASKS[t]
        budget = float(16 * x + 16 * 16 + 16 * y + y * x + y * 16 + y * y)
        specs = sample_specs("uniform_size", n_sampled, seed + len(frames), x, y, budget).specs
        named = named_specs(("dense", "uniform", "eqn7", "eqn8", "balanced"), x, y, budget=budget)
        specs = list(specs) + [s for _ in range(seeds) for s in named]
        rows = []
        for i, s in enumerate(specs):
            c = spec_columns(s)
            norm = float(planted(c["hidden_proportion"]) + noise * rng.normal())
            rows.append(
                {
                    **{k: c[k] for k in c if k in COLUMNS},
                    "task": t,
                    "task_kind": t,
                    "results_task": t,
                    "run": f"{t}/b{int(budget)}",
                    "model_id": i,
                    "config": s.name,
                    "seed": int(rng.integers(0, 2**31)),
                    "input_dim": x,
                    "output_dim": y,
                    "seq_len": seq,
                    "loss": loss,
                    "chance_loss": chance,
                    "train_size": 1000,
                    "budget": budget,
                    "budget_level": 16,
                    "hidden_dim": s.hidden_dim,
                    "epochs": epochs,
                    "min_val_loss": norm * chance,
                    "final_val_loss": norm * chance,
                    "best_val_accuracy": np.nan,
                    "diverged": False,
                    "failed": norm >= 0.98,
                    "exploded": False,
                    "norm_min_loss": norm,
                    "eval_return_mean": np.nan,
                    "eval_success_rate": np.nan,
                    "d4rl_score": np.nan,
                    "norm_return": (1.0 - norm + 0.05 * rng.normal()) if t == returns_task else np.nan,
                    **{
                        f"val_loss_epoch_{k}": (norm + 0.3 * (epochs - k) / epochs) * chance
                        for k in range(1, 1 + epochs)
                    },
                    **{f"norm_loss_epoch_{k}": norm + 0.3 * (epochs - k) / epochs for k in range(1, 1 + epochs)},
                }
            )
        frames.append(pd.DataFrame(rows))
    frame = pd.concat(frames, ignore_index=True)
    epoch_cols = [f"val_loss_epoch_{k}" for k in range(1, 1 + epochs)]
    epoch_cols += [f"norm_loss_epoch_{k}" for k in range(1, 1 + epochs)]
    return frame[list(COLUMNS) + epoch_cols]
