"""The task definition a sweep is built from: ``TaskDef``, one per registered task (``tasks.registry``).

A task is a frozen config dataclass (what data to train on; its fields become the sweep entry points' flags, with
their ``help`` from the field metadata) and a few functions of that config. Importing a task's package must stay
cheap (no JAX, no data): a task's heavy functions are bound lazily with ``lazy``, so ``--help`` and flag errors
answer before anything heavy is imported.

Field metadata: ``help`` (flag help text) and ``defining`` (default True): whether the field changes what a run
computes. A run resumed with a different value of a non-defining field (a cache folder, a download switch) is the
same run; any other difference is a different run.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from sparse_rnn_jax.core.rng import rng

SPLITS: tuple[str, ...] = ("train", "val", "test")
LOSSES: tuple[str, ...] = ("ce", "mse", "bce")
TINY_SIZES: dict[str, int] = {"train_size": 24, "val_size": 8, "test_size": 8}
"""Split sizes of a tiny task instance (``TaskDef.tiny``)."""


def task_field(default: Any, help: str, *, defining: bool = True) -> Any:
    """A config dataclass field with its flag help and whether it defines the run."""
    return dataclasses.field(default=default, metadata={"help": help, "defining": defining})


def defining_values(config: Any) -> dict:
    """The config's defining fields as a dict (``task_field``'s ``defining``; fields without metadata define)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.metadata.get("defining", True)}


def check_int(name: str, value: object, minimum: int) -> None:
    """A ValueError naming ``name`` unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_fractions(fractions: Any) -> tuple[float, float, float]:
    """(train, val, test) shares as floats; a ValueError naming ``fractions`` unless three non-negative numbers
    summing to 1."""
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        fr = ()
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        shown = ", ".join(f"{f:g}" for f in fr) if fr else repr(fractions)
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {shown}")
    return fr  # type: ignore[return-value]


def split_rng(seed: int, task_key: int, split: str) -> np.random.Generator:
    """The independent stream of one split (``SPLITS``) of a generated task: ``core.rng.rng(seed, task_key, i)``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_int("seed", seed, 0)
    return rng(seed, task_key, SPLITS.index(split))


def train_arrays(data: Any) -> Mapping[str, np.ndarray]:
    """The training arrays of ``data``: a loaded ``LoadedTask``'s ``train``, or ``data`` itself (a dict of arrays)."""
    return getattr(data, "train", data)


def descriptor_dict(
    name: str, input_dim: int, output_dim: int, seq_len: int, loss: str, chance_loss: float, train_size: int
) -> dict:
    """A task's summary (``descriptor(config, data=None)`` of every task module): its results-table name, dims,
    (padded) sequence length, loss kind (``LOSSES``: ce | mse | bce), chance loss (the best constant predictor's,
    NaN where undefined) and training-set size."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return {
        "name": str(name),
        "input_dim": int(input_dim),
        "output_dim": int(output_dim),
        "seq_len": int(seq_len),
        "loss": loss,
        "chance_loss": float(chance_loss),
        "train_size": int(train_size),
    }


def empirical_mse_descriptor(name: str, config: Any, data: Any, make: Callable, dims: tuple[int, int]) -> dict:
    """``descriptor_dict`` of a regression task whose chance loss is empirical: the variance of the valid training
    targets of ``data`` (the loaded ``LoadedTask`` or the train arrays), generated with ``make(config, "train",
    config.data_seed)`` when ``data`` is None (Mackey-Glass, NARMA)."""
    from sparse_rnn_jax.core.chance import constant_predictor_loss

    arrays = make(config, "train", config.data_seed) if data is None else train_arrays(data)
    chance = constant_predictor_loss(arrays["targets"], arrays["step_mask"], "mse")
    return descriptor_dict(name, *dims, config.seq_len, "mse", chance, config.train_size)


def empirical_mse_load(
    name: str, config: Any, make: Callable, dims: tuple[int, int], info_key: str, note: Callable[[float], str], log
):
    """The train and validation splits (``make(config, split, config.data_seed)``) of a regression task with an
    empirical chance loss (``empirical_mse_descriptor``) as ``engine.task.LoadedTask`` with its
    ``regression_task``; logs ``note(chance)``."""
    from sparse_rnn_jax.engine.task import LoadedTask, regression_task

    train, val = (make(config, s, config.data_seed) for s in ("train", "val"))
    chance = empirical_mse_descriptor(name, config, train, make, dims)["chance_loss"]
    log(note(chance))
    task = regression_task(name, *dims, chance_loss=chance)
    return LoadedTask(task, train, val, {info_key: dataclasses.asdict(config)})


def lazy(module: str, name: str) -> Callable:
    """A function that imports ``module`` on its first call and calls its ``name`` (keeps task packages light)."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = name
    call.__qualname__ = f"lazy({module}.{name})"
    return call


class TaskDef(NamedTuple):
    """A registered task.

    name: the registry key (``--task``).
    config_type: its frozen config dataclass (fields as ``task_field``); constructing it validates the values.
    dims(config) -> (input_dim, output_dim): known before the data is loaded (may read a dataset's metadata).
    load(config, log) -> ``engine.task.LoadedTask``: the engine's Objective and the train/validation arrays.
    after_training(config, data, plan, train_config, workdir, should_stop, log, progress) -> None: work on the
        trained models of the run's ``engine.run_plan.RunPlan`` (environment scoring); may raise ``SweepInterrupted``.
        None for most tasks.
    check(config) -> None: checks of the environment before any work (a folder exists, ...); ValueError if not.
    descriptor(config, data=None) -> dict: the task's summary (``descriptor_dict``): results-table name, dims,
        sequence length, loss kind, chance loss, training size; the meta-dataset's task features.
    unavailable(config) -> str | None: why this machine cannot run the task (packages or local data missing), or
        None; the task zoo skips such an entry with that note instead of failing.
    generator: the family of task instances this task samples from (``tasks.generated.base.GeneratedTask``:
        parameter ranges the zoo draws ``--generated`` instances over), or None for a task of fixed instances.
    tiny: variant name -> the config fields that make a tiny instance of the task (seconds to load): the
        registry-wide tests (tests/tasks/test_registry.py) run every registered task at each variant.
    """

    name: str
    config_type: type
    dims: Callable[[Any], tuple[int, int]]
    load: Callable[..., Any]
    after_training: Callable[..., None] | None = None
    check: Callable[[Any], None] = lambda config: None
    descriptor: Callable[..., dict] | None = None
    unavailable: Callable[[Any], str | None] = lambda config: None
    generator: Any = None
    tiny: Mapping[str, Mapping[str, Any]] = {"": {}}
