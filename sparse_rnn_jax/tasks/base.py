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
from typing import Any, Callable, NamedTuple


def task_field(default: Any, help: str, *, defining: bool = True) -> Any:
    """A config dataclass field with its flag help and whether it defines the run."""
    return dataclasses.field(default=default, metadata={"help": help, "defining": defining})


def defining_values(config: Any) -> dict:
    """The config's defining fields as a dict (``task_field``'s ``defining``; fields without metadata define)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.metadata.get("defining", True)}


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
    load(config, log) -> ``engine.task.TaskData``: the engine's Task and the train/validation arrays.
    after_training(config, data, members, train_config, workdir, should_stop, log, progress) -> None: work on the
        trained models (environment scoring); may raise ``SweepInterrupted``. None for most tasks.
    keeps_final_params(config) -> bool: whether ``after_training`` needs each chunk's trained weights.
    check(config) -> None: checks of the environment before any work (a folder exists, ...); ValueError if not.
    """

    name: str
    config_type: type
    dims: Callable[[Any], tuple[int, int]]
    load: Callable[..., Any]
    after_training: Callable[..., None] | None = None
    keeps_final_params: Callable[[Any], bool] = lambda config: False
    check: Callable[[Any], None] = lambda config: None
