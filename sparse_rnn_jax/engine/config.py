"""The engine's two configs: which models a sweep trains (``PopulationConfig``) and how it trains them
(``TrainConfig``). Frozen dataclasses of plain values, validated on construction (a ValueError naming the field);
their field names are the sweep entry points' flag names and their ``help`` metadata the flags' help. Importing
this module is cheap (no JAX), so entry points can validate flags before anything heavy loads.
"""

from __future__ import annotations

import dataclasses
import math

from sparse_rnn_jax.core import bounds
from sparse_rnn_jax.core.cell_spec import CELLS
from sparse_rnn_jax.core.configs import NAMED_CONFIGS
from sparse_rnn_jax.core.leaky_spec import LEAK_MODES
from sparse_rnn_jax.core.samplers import SAMPLERS, SIZED_SAMPLERS, parse_sampler
from sparse_rnn_jax.core.spec import ACTIVATIONS, COMPUTE_DTYPES, GRAPH_KINDS, check_compute_dtype
from sparse_rnn_jax.core.spec_text import check_spec_text
from sparse_rnn_jax.core.strata import STRATIFICATIONS
from sparse_rnn_jax.models.masks import MASK_MODES

POPULATION_KINDS: dict[str, str] = {
    "num_models": "count0",
    "config_repeats": "count0",
    "per_stratum": "count",
    "budget": "budget",
    "hidden_dim": "dim",
    "hidden_mean": "positive",
    "hidden_std": "nonnegative",
    "config_lr": "positive",
    "uniform_density": "unit_half",
    "hh_graph_beta": "unit",
    "leak_alpha": "unit_half",
}
"""The bounds kind (``core.bounds``) of each numeric field of ``PopulationConfig``."""
SWEEP_KINDS: dict[str, str] = {
    "epochs": "count",
    "batch_size": "batch",
    "eval_batch_size": "batch",
    "seed": "seed",
    "max_buckets": "count",
    "max_models_per_chunk": "count0",
    "steps_per_call": "count",
    "unroll": "unroll",
}
"""The bounds kind (``core.bounds``) of each numeric field of ``TrainConfig``."""
PROGRAM_FORMS: tuple[str, ...] = ("auto", "population", "loop")
"""How a chunk's models share a program (``engine.programs.choose_form``)."""
WEIGHT_LAYOUTS: tuple[str, ...] = ("auto", "dense", "compact")
"""How a train call steps the sparse weights (``engine.layout.resolve_layout``): auto, dense or compact."""


def check_configs(configs) -> None:
    """A ValueError naming the first of ``configs`` that no registered family builds. The paper's names answer
    without importing the models; any other name asks the family registry (``models.registry.named_configs``),
    so a plug-in family's configurations are accepted with no change here."""
    if all(c in NAMED_CONFIGS + CELLS for c in configs):
        return
    from sparse_rnn_jax.models.registry import named_configs

    known = named_configs()
    bad = [c for c in configs if c not in known]
    if bad:
        raise ValueError(f"configs: unknown config {bad[0]!r}; expected any of {known}")


def _field(default, help: str, **kw):
    """A config field with its flag help."""
    return dataclasses.field(default=default, metadata={"help": help, **kw})


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
    """Which models a sweep trains (``engine.members``)."""

    num_models: int = _field(32, "Networks drawn by the sampler.")
    sampler: str = _field(
        "normal_size",
        f"Hyperparameter sampler, one of {SAMPLERS}, or a mixture such as "
        "normal_size:0.5,uniform_size:0.5 (each component's share of num_models).",
    )
    stratify: str = _field(
        "none",
        "Train a stratified subsample of the sampled population: none, or table_iv (strata = hidden-proportion "
        "cell x model-density cell, up to --per_stratum networks each, sparse strata filled by further draws of "
        "the same sampler; the analysis weights each network by population count / sampled count).",
    )
    per_stratum: int = _field(30, "With --stratify: networks trained per stratum, at most.")
    budget: float | None = _field(None, "Trainable weights (biases excluded) for normal_size and the named configs.")
    hidden_dim: int | None = _field(None, "Hidden size of the named configs when no budget is given.")
    hidden_mean: float = _field(900.0, "Mean of the hidden size for the normal sampler.")
    hidden_std: float = _field(400.0, "Std of the hidden size for the normal sampler.")
    configs: tuple[str, ...] = _field(
        (), f"Named configurations and baseline cells to add: any of {NAMED_CONFIGS + CELLS} (or a plug-in family's)."
    )
    config_repeats: int = _field(1, "Seeds per named configuration.")
    config_lr: float = _field(1e-4, "Learning rate of the named configurations (the reference's 1e-4).")
    specs: tuple[str, ...] = _field(
        (),
        "Explicit block RNNs to add, spec_repeats models (seeds) each: NAME:h=H:lr=LR:hx=D/M/S:... "
        "(core.spec_text; experiments.recommend prints them).",
    )
    spec_repeats: int = _field(1, "Seeds per explicit spec of specs (each repeat its own model and seed).")
    uniform_density: float = _field(0.2, "Density of every block of the 'uniform' named config.")
    activation: str = _field("relu", f"Hidden activation: one of {ACTIVATIONS}.")
    hh_graph: str = _field("none", "Draw the sampled models' hh masks as random graphs: none, er, ws or ba.")
    hh_graph_beta: float = _field(0.1, "Rewiring probability of the ws hh graphs.")
    leak: str = _field(
        "none",
        "Make every block RNN a leaky integrator h' = (1 - alpha) h + alpha act(...): none, "
        "fixed, learned (alpha per unit) or gated (input-gated).",
    )
    leak_alpha: float = _field(
        0.5, "leak fixed: the fixed alpha in (0, 1]; learned, gated: the initial alpha in (0, 1)."
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "configs", tuple(self.configs))
        object.__setattr__(self, "specs", tuple(self.specs))
        for text in self.specs:
            check_spec_text(text)
        if self.stratify not in STRATIFICATIONS:
            raise ValueError(f"stratify must be one of {STRATIFICATIONS}, got {self.stratify!r}")
        if self.stratify != "none" and self.num_models < 1:
            raise ValueError("stratify: needs a sampled population (num_models >= 1)")
        for name, kind in POPULATION_KINDS.items():
            if getattr(self, name) is not None:
                bounds.check(name, getattr(self, name), kind)
        components = parse_sampler(self.sampler)
        check_configs(self.configs)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0.0 < self.uniform_density <= 1.0:
            raise ValueError(f"uniform_density must be in (0, 1], got {self.uniform_density}")
        if not self.config_lr > 0:
            raise ValueError(f"config_lr must be > 0, got {self.config_lr}")
        if self.budget is not None and not 0 < self.budget < math.inf:
            raise ValueError(f"budget must be a positive number, got {self.budget}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1, got {self.hidden_dim}")
        if self.budget is not None and self.hidden_dim is not None:
            raise ValueError("hidden_dim: give one of budget and hidden_dim, not both")
        if not 0 < self.hidden_mean < math.inf:
            raise ValueError(f"hidden_mean must be a positive number, got {self.hidden_mean}")
        if not 0 <= self.hidden_std < math.inf:
            raise ValueError(f"hidden_std must be a number >= 0, got {self.hidden_std}")
        if not self.config_lr < math.inf:
            raise ValueError(f"config_lr must be finite, got {self.config_lr}")
        if any(n in SIZED_SAMPLERS for n, _ in components) and self.num_models > 0 and self.budget is None:
            raise ValueError(f"sampler {self.sampler} needs a budget")
        if self.configs and self.config_repeats > 0 and self.budget is None and self.hidden_dim is None:
            raise ValueError("configs need a budget (or hidden_dim)")
        if "balanced" in self.configs and self.budget is None:
            raise ValueError("configs: balanced needs a budget")
        if self.spec_repeats < 1:
            raise ValueError(f"spec_repeats must be >= 1, got {self.spec_repeats}")
        if self.size == 0:
            raise ValueError("num_models: nothing to train (0 sampled models and no configs)")
        if self.hh_graph not in ("none",) + GRAPH_KINDS:
            raise ValueError(f"hh_graph must be one of {('none',) + GRAPH_KINDS}, got {self.hh_graph!r}")
        if not 0.0 <= self.hh_graph_beta <= 1.0:
            raise ValueError(f"hh_graph_beta must be in [0, 1], got {self.hh_graph_beta}")
        if self.leak not in ("none",) + LEAK_MODES:
            raise ValueError(f"leak must be one of {('none',) + LEAK_MODES}, got {self.leak!r}")
        if self.leak != "none" and not (0 < self.leak_alpha < 1 or (self.leak == "fixed" and self.leak_alpha == 1)):
            raise ValueError("leak_alpha must be in (0, 1) (or exactly 1 with leak fixed)")

    @property
    def size(self) -> int:
        """The number of members (with ``stratify``, an upper bound: every one of the 25 strata full)."""
        sampled = self.num_models if self.stratify == "none" else 25 * self.per_stratum
        return sampled + len(self.configs) * self.config_repeats + len(self.specs) * self.spec_repeats


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a sweep trains.

    epochs: passes over the training set.  batch_size: sequences per minibatch (shared by all models).
    eval_batch_size: sequences per evaluation batch.  seed: minibatch order (model seeds are separate).
    per_model_order: each model draws its own minibatch order.  max_buckets: hidden-size buckets.
    max_models_per_chunk: models per compiled program (memory bound).  steps_per_call: minibatches per
    jitted call (progress and stop granularity).  mask_mode: "exact" or "bernoulli".  unroll: scan unroll.
    compute_dtype: the products' operand dtype (``models.precision``).  program_form: auto, population or loop
    (``engine.programs.choose_form``).  weight_layout: auto, dense or compact (``engine.layout``). Every run
    keeps each finished chunk's trained weights in its final checkpoint (``engine.sweep.load_final_params``).
    """

    epochs: int = _field(25, "Training epochs.")
    batch_size: int = _field(16, "Sequences per minibatch.")
    eval_batch_size: int = _field(250, "Sequences per evaluation batch.")
    seed: int = _field(0, "Sweep seed: sampled hyperparameters, model seeds and minibatch order.")
    per_model_order: bool = _field(False, "Give each model its own minibatch order (default: one shared stream).")
    max_buckets: int = _field(12, "Hidden-size buckets per model family (each compiles once).")
    max_models_per_chunk: int = _field(
        0,
        "Models per compiled program; 0 sizes chunks from the device's memory (the largest model's arrays, "
        "half the memory): hundreds on a CPU, more on an accelerator.",
    )
    steps_per_call: int = _field(50, "Minibatches per jitted call (progress and stop granularity).")
    mask_mode: str = _field("exact", f"Masks with exact trainable counts, or Bernoulli masks: {MASK_MODES}.")
    unroll: int = _field(1, "lax.scan unroll of the time loop.")
    compute_dtype: str = _field(
        "float32",
        f"Operand dtype of the products with the data, one of {COMPUTE_DTYPES} (Flax's dtype: parameters, Adam's "
        "moments, losses and the recurrent state stay float32; bfloat16 accumulates in float32 and runs on a "
        "CPU's AMX units and on tensor cores).",
    )
    program_form: str = _field(
        "auto",
        "How a chunk's models share a compiled program: population (batched: one product for all models), loop "
        "(one model after another through each call's steps, in the same program; equal results to float "
        "rounding), or auto (the batched program, which measured faster on every shape tried).",
    )
    weight_layout: str = _field(
        "auto",
        "How a train call steps the sparse weights: compact (Adam's pass over the trainable entries only, the "
        "weights expanded to dense for the products; bit-identical results), dense, or auto (compact for float32 "
        "batched programs on a CPU, where it measured faster; dense elsewhere).",
    )

    def __post_init__(self):
        for name, kind in SWEEP_KINDS.items():
            bounds.check(name, getattr(self, name), kind)
        check_compute_dtype(self.compute_dtype)
        if self.program_form not in PROGRAM_FORMS:
            raise ValueError(f"program_form must be one of {PROGRAM_FORMS}, got {self.program_form!r}")
        if self.weight_layout not in WEIGHT_LAYOUTS:
            raise ValueError(f"weight_layout must be one of {WEIGHT_LAYOUTS}, got {self.weight_layout!r}")
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {self.mask_mode!r}")
