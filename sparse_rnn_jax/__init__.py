"""sparse_rnn_jax: populations of varied-density block RNNs (Hershey & Paffenroth 2025) trained as one jitted,
vmapped JAX program.

Layers, each importing only from those before it: ``core`` (specs, accounting, solvers, named configs, samplers;
numpy only) <- ``models`` (the ``Family`` protocol and registry: block, cells, leaky) <- ``engine`` (task protocol,
populations, programs, sweeps, checkpoints, results) <- ``tasks`` (rad, adroit, reber; the registry and the run
config) <- ``studies`` (pruning, gradient scales, benchmark) <- ``analysis`` (tables, figures, parent network).

The public API below is imported lazily on first use, so ``import sparse_rnn_jax`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    # core
    "BLOCKS": "sparse_rnn_jax.core.spec",
    "BlockSpec": "sparse_rnn_jax.core.spec",
    "GraphSpec": "sparse_rnn_jax.core.spec",
    "NetworkSpec": "sparse_rnn_jax.core.spec",
    "make_spec": "sparse_rnn_jax.core.spec",
    "HYPERPARAMETER_FEATURES": "sparse_rnn_jax.core.spec",
    "CellSpec": "sparse_rnn_jax.core.cell_spec",
    "LeakySpec": "sparse_rnn_jax.core.leaky_spec",
    "expected_accounting": "sparse_rnn_jax.core.accounting",
    "exact_accounting": "sparse_rnn_jax.core.accounting",
    "hidden_proportion": "sparse_rnn_jax.core.accounting",
    "hidden_dim_for_budget": "sparse_rnn_jax.core.solvers",
    "balanced_densities": "sparse_rnn_jax.core.solvers",
    "balanced_spec": "sparse_rnn_jax.core.solvers",
    "NAMED_CONFIGS": "sparse_rnn_jax.core.configs",
    "named_spec": "sparse_rnn_jax.core.configs",
    "named_specs": "sparse_rnn_jax.core.configs",
    "SAMPLERS": "sparse_rnn_jax.core.samplers",
    "sample_specs": "sparse_rnn_jax.core.samplers",
    # models
    "Family": "sparse_rnn_jax.models.family",
    "FAMILIES": "sparse_rnn_jax.models.registry",
    "get_family": "sparse_rnn_jax.models.registry",
    "family_of": "sparse_rnn_jax.models.registry",
    "BlockRNN": "sparse_rnn_jax.models.modules",
    "LeakyBlockRNN": "sparse_rnn_jax.models.modules",
    "LearnedLeakyBlockRNN": "sparse_rnn_jax.models.modules",
    "GatedBlockRNN": "sparse_rnn_jax.models.modules",
    "LSTM": "sparse_rnn_jax.models.modules",
    "GRU": "sparse_rnn_jax.models.modules",
    "RNNTanh": "sparse_rnn_jax.models.modules",
    "RNNReLU": "sparse_rnn_jax.models.modules",
    "RecurrentModel": "sparse_rnn_jax.models.modules",
    "Mask": "sparse_rnn_jax.models.modules",
    "init_model": "sparse_rnn_jax.models.block",
    "block_rnn_forward": "sparse_rnn_jax.models.block",
    # engine
    "Objective": "sparse_rnn_jax.engine.task",
    "LoadedTask": "sparse_rnn_jax.engine.task",
    "Batch": "sparse_rnn_jax.engine.task",
    "Member": "sparse_rnn_jax.engine.population",
    "make_chunks": "sparse_rnn_jax.engine.population",
    "PopulationConfig": "sparse_rnn_jax.engine.config",
    "TrainConfig": "sparse_rnn_jax.engine.config",
    "build_members": "sparse_rnn_jax.engine.members",
    "RunPlan": "sparse_rnn_jax.engine.run_plan",
    "make_run_plan": "sparse_rnn_jax.engine.run_plan",
    "PopulationProgram": "sparse_rnn_jax.engine.programs",
    "jitted_programs": "sparse_rnn_jax.engine.programs",
    "run_steps": "sparse_rnn_jax.engine.programs",
    "run_sweep": "sparse_rnn_jax.engine.sweep",
    "load_final_params": "sparse_rnn_jax.engine.sweep",
    "read_results": "sparse_rnn_jax.engine.results",
    "final_per_model": "sparse_rnn_jax.engine.results",
    # tasks
    "TASKS": "sparse_rnn_jax.tasks.registry",
    "get_task": "sparse_rnn_jax.tasks.registry",
    "TaskDef": "sparse_rnn_jax.tasks.base",
    "RunConfig": "sparse_rnn_jax.run.config",
    "train_and_evaluate": "sparse_rnn_jax.run.train",
    "load_run": "sparse_rnn_jax.run.train",
    # studies
    "load_member": "sparse_rnn_jax.studies.trained",
    # analysis
    "analyze": "sparse_rnn_jax.analysis.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sparse_rnn_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
