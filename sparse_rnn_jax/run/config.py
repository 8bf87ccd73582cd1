"""The frozen config of one sweep run: ``RunConfig`` = the task and its data config, the population and the
training config. It round-trips through JSON (run.json's ``config``) and is cheap to import (no JAX), so entry
points build and validate it from their flags before anything heavy loads.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.tasks.base import TaskDef, defining_values
from sparse_rnn_jax.tasks.registry import get_task

MATMUL_PRECISIONS: tuple[str, ...] = ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a sweep run.

    task: the registered task's name (``tasks.registry.TASKS``).  data: the task's config dataclass.
    population: which models (``engine.members.PopulationConfig``).  train: how they train (``TrainConfig``).
    matmul_precision: ``jax_default_matmul_precision`` (None: JAX's default).
    """

    task: str
    data: Any
    population: PopulationConfig
    train: TrainConfig
    matmul_precision: str | None = None

    def __post_init__(self) -> None:
        task = get_task(self.task)
        if not isinstance(self.data, task.config_type):
            raise ValueError(f"data must be a {task.config_type.__name__} for task {self.task!r}")
        if self.matmul_precision is not None and self.matmul_precision not in MATMUL_PRECISIONS:
            raise ValueError(f"matmul_precision must be one of {MATMUL_PRECISIONS}, got {self.matmul_precision!r}")

    @property
    def task_def(self) -> TaskDef:
        """The registered task definition of ``task``."""
        return get_task(self.task)

    def to_dict(self) -> dict:
        """A JSON-able dict (tuples become lists)."""
        return {
            "task": self.task,
            "data": dataclasses.asdict(self.data),
            "population": dataclasses.asdict(self.population),
            "train": dataclasses.asdict(self.train),
            "matmul_precision": self.matmul_precision,
        }

    def defining_dict(self) -> dict:
        """``to_dict`` without the fields that do not change what a run computes (a cache folder, ...)."""
        d = json.loads(json.dumps(self.to_dict()))
        d["data"] = json.loads(json.dumps(defining_values(self.data)))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """The inverse of ``to_dict``; a ValueError naming an unknown or bad field."""
        if not isinstance(d, dict) or "task" not in d:
            raise ValueError("a run config needs a task")
        if not isinstance(d["task"], str):
            raise ValueError(f"task: {d['task']!r} is not a string")
        for part in ("data", "population", "train"):
            if not isinstance(d.get(part, {}), dict):
                raise ValueError(f"{part}: {d[part]!r} is not an object")
        if d.get("matmul_precision") is not None and not isinstance(d["matmul_precision"], str):
            raise ValueError(f"matmul_precision: {d['matmul_precision']!r} is not a string")
        task = get_task(d["task"])
        return cls(
            task=d["task"],
            data=_dataclass_from(task.config_type, d.get("data", {}), "data"),
            population=_dataclass_from(PopulationConfig, d.get("population", {}), "population"),
            train=_dataclass_from(TrainConfig, d.get("train", {}), "train"),
            matmul_precision=d.get("matmul_precision"),
        )


RETIRED_FIELDS: dict[str, tuple[str, ...]] = {"train": ("save_final_params",)}
"""Fields older run.json files hold that no longer change anything (every run keeps its trained weights in its
final checkpoints now); dropped when such a file is read."""


def _dataclass_from(cls: type, values: dict, where: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in values.items() if k not in RETIRED_FIELDS.get(where, ())}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kwargs = {}
    for k, v in values.items():
        if isinstance(v, list) and _is_tuple_type(hints.get(k)):
            v = tuple(v)
        if not _has_type(v, hints.get(k)):
            raise ValueError(f"{where}.{k}: {v!r} is not {_type_words(hints.get(k))}")
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except TypeError as e:  # a value of the right type that a check still cannot compare
        raise ValueError(f"{where}: {e}") from None


def _has_type(value, tp) -> bool:
    """Whether a JSON value fits a config field's type hint (int for int, int or float for float, bool for bool,
    a tuple of strings or numbers for a tuple, None where the hint allows it)."""
    if tp is None or tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is tuple or origin is tuple:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, tuple) and all(any(_has_type(v, a) for a in args) if args else True for v in value)
    return True


def _type_words(tp) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_words(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if tp is tuple or typing.get_origin(tp) is tuple:
        return "a list"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _is_tuple_type(tp) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_is_tuple_type(a) for a in typing.get_args(tp))
    return tp is tuple or origin is tuple
