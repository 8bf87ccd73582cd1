"""What every generated task family shares: the split sizes and seed of its config, the conversion of a
``make(config, rng, n)`` into a registered task, and the sampling of a family's instances over its ``RANGES``.

Kinds of output (``KINDS``): ``regression`` (targets f32[N, T, Y], MSE at the valid steps), ``steps`` (labels
int32[N, T], cross-entropy at the valid steps), ``last`` (labels int32[N], cross-entropy at the last step) and
``multilabel`` (multi-hot targets f32[N, T, Y], sigmoid cross-entropy at the valid steps). The chance loss is the
best constant predictor's on the training split (``core.chance.constant_predictor_loss``), so a task whose classes
are unbalanced is normalised by their entropy.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, Callable, Mapping

import numpy as np

from sparse_rnn_jax.core.chance import constant_predictor_loss
from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.tasks.base import SPLITS, TINY_SIZES, TaskDef, check_int, descriptor_dict, task_field, train_arrays

KINDS: dict[str, str] = {"regression": "mse", "steps": "ce", "last": "ce", "multilabel": "bce"}
"""Output kind -> loss kind."""


@dataclasses.dataclass(frozen=True)
class GeneratedConfig:
    """The split sizes and data seed of every generated family (each family's config adds its parameters)."""

    train_size: int = task_field(1000, "Training sequences.")
    val_size: int = task_field(200, "Validation sequences.")
    test_size: int = task_field(200, "Test sequences (generated on demand, not used in training).")
    data_seed: int = task_field(0, "Seed of the generated task (its teacher, prototypes, ...) and sequences.")

    def __post_init__(self) -> None:
        for name in ("train_size", "val_size", "test_size"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)


def check_float(name: str, value: object, low: float, high: float) -> None:
    """A ValueError naming ``name`` unless ``value`` is a finite number in [low, high]."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and low <= v <= high):
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")


def task_key(name: str) -> int:
    """The stream constant of family ``name`` (stable: a CRC of the name)."""
    return zlib.crc32(name.encode())


def task_rng(name: str, config: GeneratedConfig) -> np.random.Generator:
    """The stream of the family's fixed parts (a teacher network, class prototypes): the same for every split."""
    return core_rng(config.data_seed, task_key(name), len(SPLITS))


def split_arrays(name: str, make: Callable, config: GeneratedConfig, split: str) -> dict[str, np.ndarray]:
    """One split of the family: ``make(config, rng, n)`` with the split's own stream and size."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = int(getattr(config, f"{split}_size"))
    return make(config, core_rng(config.data_seed, task_key(name), SPLITS.index(split)), n)


def chance_of(arrays: Mapping[str, np.ndarray], kind: str) -> float:
    """The best constant predictor's loss on ``arrays`` (a training split) for output ``kind``."""
    if kind in ("regression", "multilabel"):
        return constant_predictor_loss(arrays["targets"], arrays["step_mask"], KINDS[kind])
    if kind == "steps":
        return constant_predictor_loss(arrays["labels"], arrays["step_mask"], "ce")
    return constant_predictor_loss(arrays["labels"], None, "ce")


def engine_task(name: str, kind: str, input_dim: int, output_dim: int, chance: float):
    """The engine's Objective of output ``kind``."""
    from sparse_rnn_jax.engine import task as engine

    make = {
        "regression": engine.regression_task,
        "steps": engine.step_classification_task,
        "last": engine.classification_task,
        "multilabel": engine.multilabel_task,
    }[kind]
    return make(name, input_dim, output_dim, chance_loss=float(chance))


@dataclasses.dataclass(frozen=True)
class Family:
    """A generated family: its registry ``name``, output ``kind``, config type, ``make``, ``dims(config)``,
    ``seq_len(config)`` and sampling ``RANGES`` (``sample_instances``)."""

    name: str
    kind: str
    config_type: type
    make: Callable[[Any, np.random.Generator, int], dict]
    dims: Callable[[Any], tuple[int, int]]
    seq_len: Callable[[Any], int]
    ranges: Mapping[str, tuple]
    constrain: Callable[[dict], dict] = lambda values: values

    def arrays(self, config, split: str) -> dict[str, np.ndarray]:
        return split_arrays(self.name, self.make, config, split)

    def descriptor(self, config, data: Any = None) -> dict:
        """``tasks.base.descriptor_dict`` with the chance loss of the training split (generated when ``data``
        is None)."""
        arrays = self.arrays(config, "train") if data is None else train_arrays(data)
        x, y = self.dims(config)
        chance = chance_of(arrays, self.kind)
        return descriptor_dict(self.name, x, y, self.seq_len(config), KINDS[self.kind], chance, config.train_size)

    def load(self, config, log: Callable[[str], None] = print):
        from sparse_rnn_jax.engine.task import LoadedTask

        train, val = (self.arrays(config, s) for s in ("train", "val"))
        x, y = self.dims(config)
        chance = chance_of(train, self.kind)
        params = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        log(
            f"{self.name}: {config.train_size} / {config.val_size} sequences of {self.seq_len(config)} steps, "
            f"|x| {x}, |y| {y}, {KINDS[self.kind]}; chance {chance:.4g}"
        )
        return LoadedTask(engine_task(self.name, self.kind, x, y, chance), train, val, {self.name: params})

    def task(self) -> TaskDef:
        """The family's registered task: the family itself is its ``generator`` (the zoo samples instances)."""
        return TaskDef(
            name=self.name,
            config_type=self.config_type,
            dims=self.dims,
            load=self.load,
            descriptor=self.descriptor,
            generator=self,
            tiny={"": TINY_SIZES},
        )


def sample_values(ranges: Mapping[str, tuple], u: np.ndarray) -> dict:
    """Parameter values at the unit-cube point ``u`` (one coordinate per range, in order). A range is
    ``(low, high, scale)`` with scale ``int`` (uniform integer), ``logint`` (log-uniform integer) or ``float``
    / ``logfloat``."""
    out = {}
    for (name, (low, high, scale)), v in zip(ranges.items(), np.asarray(u, float)):
        if scale in ("logint", "logfloat"):
            value = math.exp(math.log(low) + v * (math.log(high) - math.log(low)))
        else:
            value = low + v * (high - low)
        if scale in ("int", "logint"):
            value = int(min(high, max(low, round(value))))
        else:
            value = float(round(value, 4))
        out[name] = value
    return out


def sample_instances(family: Family, n: int, seed: int) -> list[dict]:
    """``n`` instances' config overrides: a Latin hypercube over ``family.ranges`` (each range cut into n strata,
    one instance per stratum, strata shuffled independently per parameter), so the instances span every range;
    each instance has its own ``data_seed``."""
    rng = core_rng(seed, task_key(family.name), 7)
    k = len(family.ranges)
    strata = np.stack([rng.permutation(n) for _ in range(k)], axis=1) if k else np.zeros((n, 0))
    u = (strata + rng.random((n, k))) / max(n, 1)
    out = []
    for i in range(n):
        values = family.constrain(sample_values(family.ranges, u[i]))
        values["data_seed"] = int(rng.integers(0, 2**31 - 1))
        family.config_type(**values)  # validates
        out.append(values)
    return out
