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

    Keys: rank, config, hidden_dim, densities, learning_rate, hidden_proportion, trainable_params,
    predicted_min_val_loss (by ``ranker``: the forest, the MLP or their mean), predicted_min_val_loss_forest,
    predicted_min_val_loss_mlp (None without an MLP), outside_training_range (features beyond the
    predictor's training data).
    """
    if ranker not in RANKERS:
        raise ValueError(f"ranker must be one of {RANKERS}, got {ranker!r}")
    if ranker != "forest" and predictor.mlp is None:
        raise ValueError(f"ranker {ranker!r} needs a predictor with an MLP; this one has only the forest")
    features = spec_features(specs)
    pred = predictor.predict(features)
    forest, mlp = pred["forest"], pred.get("mlp")
    score = {"forest": forest, "mlp": mlp, "mean": None if mlp is None else (forest + mlp) / 2}[ranker]
    outside = predictor.out_of_range(features)
    rows = []
    for i, spec in enumerate(specs):
        acc = expected_accounting(spec)
        rows.append(
            {
                "config": spec.name,
                "hidden_dim": spec.hidden_dim,
                "densities": spec.densities(),
                "learning_rate": spec.learning_rate,
                "hidden_proportion": acc.hidden_proportion,
                "trainable_params": acc.trainable_params,
                "predicted_min_val_loss": float(score[i]),
                "predicted_min_val_loss_forest": float(forest[i]),
                "predicted_min_val_loss_mlp": None if mlp is None else float(mlp[i]),
                "outside_training_range": outside[i],
            }
        )
    order = np.argsort([r["predicted_min_val_loss"] for r in rows], kind="stable")
    ranked = [rows[i] for i in order]
    for k, r in enumerate(ranked, 1):
        r["rank"] = k
    return [{"rank": r.pop("rank"), **r} for r in ranked]
