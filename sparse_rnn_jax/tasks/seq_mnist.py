"""Sequential (row-by-row) MNIST, optionally with a fixed pixel permutation, as last-step classification
(``--task=smnist``; results tables name it ``smnist`` or, permuted, ``psmnist``).

Pixels are scaled to [0, 1] and standardised, ``(p / 255 - 0.1307) / 0.3081``. Without permutation step
t of an example is image row t (T = 28 steps of X = 28 pixels). With ``permuted=True`` the 784 flattened
pixels are first reordered by one fixed permutation (``pixel_permutation(config)``, drawn from
``permutation_seed`` alone, hence identical for every split and sampling seed) and then read as 28 rows
of 28. The label (10 classes) is scored at the last step; chance is ln 10 (the uniform prediction).

The digits come from ``tasks.rad.mnist.load_mnist`` (``mnist_source``: tfds, an IDX folder or the embedded
5,000). ``split_digits`` partitions their indices (stratified by class, seeded by ``config.split_seed``) into
disjoint train/val/test pools; ``make_seq_mnist`` draws ``<split>_size`` examples from its split's pool (reusing
digits, evenly, when the pool is smaller: ``reuse_factor``). Arrays: ``x`` f32[N, 28, 28], ``labels`` int32[N].
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.tasks.base import (
    SPLITS,
    TINY_SIZES,
    TaskDef,
    check_fractions,
    check_int,
    descriptor_dict,
    split_rng,
    task_field,
)

TASK_KEY = 0x53_4D_4E_53  # stream constant for this task ("SMNS")
PERM_KEY = 0x50_45_52_4D  # stream constant for the pixel permutation ("PERM")
SPLIT_KEY = 0x53_50_4C_54  # stream constant for split_digits ("SPLT")
MEAN = 0.1307
STD = 0.3081
ROWS = 28
COLS = 28
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class SeqMnistConfig:
    """Sequential-MNIST data of a sweep."""

    permuted: bool = task_field(False, "Permute the 784 pixels by one fixed permutation first (psMNIST).")
    permutation_seed: int = task_field(0, "Seed of the pixel permutation (the same for every split).")
    mnist_source: str = task_field("auto", "MNIST digits: auto | tfds | embedded | idx:DIR.")
    fractions: tuple[float, float, float] = task_field(
        (0.8, 0.1, 0.1), "(train, val, test) shares of the source examples, split disjointly."
    )
    split_seed: int = task_field(0, "Seed of the stratified partition of the digits into train/val/test pools.")
    train_size: int = task_field(4000, "Training examples (drawn from the train pool).")
    val_size: int = task_field(1000, "Validation examples (drawn from the val pool).")
    test_size: int = task_field(1000, "Test examples (drawn on demand, not used in training).")
    data_seed: int = task_field(0, "Seed of the draws from each pool (each split has its own stream).")

    def __post_init__(self) -> None:
        if not isinstance(self.permuted, (bool, np.bool_)):
            raise ValueError(f"permuted must be a bool, got {type(self.permuted).__name__}")
        check_int("permutation_seed", self.permutation_seed, 0)
        src = self.mnist_source
        if not isinstance(src, str) or not (src in ("auto", "tfds", "embedded") or src.startswith("idx:")):
            raise ValueError(f"mnist_source must be auto, tfds, embedded or idx:DIR, got {src!r}")
        object.__setattr__(self, "fractions", check_fractions(self.fractions))  # a hashable tuple of floats
        check_int("split_seed", self.split_seed, 0)
        for name in ("train_size", "val_size", "test_size"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)

    @property
    def name(self) -> str:
        """The results tables' task name: ``psmnist`` when permuted, else ``smnist``."""
        return "psmnist" if self.permuted else "smnist"


def _check_inputs(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (ROWS, COLS):
        raise ValueError(f"images must be uint8[N, {ROWS}, {COLS}], got {images.dtype}{list(images.shape)}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array of shape [N], got {labels.dtype}{list(labels.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but images has {images.shape[0]}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must be in [0, {NUM_CLASSES - 1}], got range [{labels.min()}, {labels.max()}]")
    return images, labels


def split_digits(
    labels: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, np.ndarray]:
    """Disjoint index pools {"train", "val", "test"} -> sorted int64 arrays covering all of ``labels``.

    Stratified: within each class the indices are shuffled and cut at ``floor(cumsum(fractions) * count)``,
    so every pool keeps the class proportions up to rounding.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape [N], got {list(labels.shape)}")
    fr = check_fractions(fractions)
    check_int("seed", seed, 0)
    rng = core_rng(seed, SPLIT_KEY)
    cuts = np.cumsum(fr)
    pools: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        bounds = [0, *(int(math.floor(c * idx.size + 1e-9)) for c in cuts[:2]), idx.size]
        for k in range(3):
            pools[k].append(idx[bounds[k] : bounds[k + 1]])
    return {
        name: np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
        for name, parts in zip(SPLITS, pools)
    }


def reuse_factor(pool_size: int, n: int) -> float:
    """Average number of times each drawn pool example appears when ``n`` are drawn from ``pool_size``.

    1.0 when ``n <= pool_size`` (drawn without replacement); ``n / pool_size`` otherwise.
    """
    check_int("pool_size", pool_size, 1)
    check_int("n", n, 0)
    return max(1.0, n / pool_size)


def pixel_permutation(config: SeqMnistConfig) -> np.ndarray:
    """The fixed permutation of the 784 flattened pixels, int64[784] (depends on permutation_seed only)."""
    rng = core_rng(config.permutation_seed, PERM_KEY)
    return rng.permutation(ROWS * COLS)


def _draw(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """n indices from pool: without replacement if possible, else every pool entry floor(n / P) times plus
    a without-replacement draw for the remainder (so reuse counts differ by at most one), shuffled."""
    p = pool.size
    if n <= p:
        return rng.choice(pool, size=n, replace=False)
    reps, rest = divmod(n, p)
    picked = np.concatenate([np.tile(pool, reps), rng.choice(pool, size=rest, replace=False)])
    return rng.permutation(picked)


def to_sequences(images: np.ndarray, permutation: np.ndarray | None = None) -> np.ndarray:
    """uint8[N, 28, 28] -> standardised f32[N, 28, 28] (step, pixel), optionally pixel-permuted first."""
    flat = images.reshape(images.shape[0], ROWS * COLS).astype(np.float32) / np.float32(255.0) - np.float32(MEAN)
    flat /= np.float32(STD)
    if permutation is not None:
        flat = flat[:, permutation]
    return np.ascontiguousarray(flat.reshape(-1, ROWS, COLS))


def make_seq_mnist(
    config: SeqMnistConfig, images: np.ndarray, labels: np.ndarray, split: str, seed: int
) -> dict[str, np.ndarray]:
    """Draw one split.

    Returns {"x": f32[N, 28, 28], "labels": int32[N]} with N = ``<split>_size`` drawn from the split's pool
    of ``split_digits(labels, config.fractions, config.split_seed)``. Use ``reuse_factor(len(pool), N)`` to
    report whether (and how much) examples were reused because the pool was smaller than N.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_int("seed", seed, 0)
    images, labels = _check_inputs(images, labels)
    pool = split_digits(labels, config.fractions, config.split_seed)[split]
    if pool.size == 0:
        raise ValueError(f"split {split!r} has an empty pool (fractions={config.fractions}, {labels.size} images)")
    rng = split_rng(seed, TASK_KEY, split)
    idx = _draw(rng, pool, int(getattr(config, f"{split}_size")))
    perm = pixel_permutation(config) if config.permuted else None
    return {"x": to_sequences(images[idx], perm), "labels": labels[idx].astype(np.int32)}


def dims(config: SeqMnistConfig) -> tuple[int, int]:
    """(28, 10): one row of pixels per step, ten classes."""
    return COLS, NUM_CLASSES


def check(config: SeqMnistConfig) -> None:
    """An idx:DIR source must name a folder."""
    if config.mnist_source.startswith("idx:") and not Path(config.mnist_source[4:]).is_dir():
        raise ValueError(f"mnist_source: no folder {config.mnist_source[4:]!r}")


def descriptor(config: SeqMnistConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``); chance_loss is analytic, ln 10 (``data`` is not needed;
    MNIST's class prior is close to uniform, its entropy about 0.003 nats lower)."""
    return descriptor_dict(config.name, COLS, NUM_CLASSES, ROWS, "ce", math.log(NUM_CLASSES), config.train_size)


def load(config: SeqMnistConfig, log: Callable[[str], None] = print):
    """Loads the digits (``tasks.rad.mnist.load_mnist``), draws the train and validation examples and returns
    ``engine.task.classification_task`` (CE at the last step); a split that reuses digits is logged."""
    from sparse_rnn_jax.engine.task import LoadedTask, classification_task
    from sparse_rnn_jax.tasks.rad.mnist import load_mnist

    digits = load_mnist(config.mnist_source, log=log)
    pools = split_digits(digits.labels, config.fractions, config.split_seed)
    arrays, reuse = {}, {}
    for split in ("train", "val"):
        arrays[split] = make_seq_mnist(config, digits.images, digits.labels, split, config.data_seed)
        n = int(getattr(config, f"{split}_size"))
        reuse[split] = reuse_factor(int(pools[split].size), n)
        if reuse[split] > 1:
            log(
                f"{config.name}: warning: the {split} pool has {pools[split].size} digits for {split}_size={n}; "
                f"each is used {reuse[split]:.2f} times on average (reuse_factor)"
            )
    log(
        f"{config.name}: {config.train_size} / {config.val_size} examples of {ROWS} steps x {COLS} pixels from "
        f"{len(digits.labels)} digits ({digits.source}); chance ln 10"
    )
    info = {
        "mnist_source": digits.source,
        "num_digits": int(len(digits.labels)),
        "pool_sizes": {s: int(p.size) for s, p in pools.items()},
        "reuse_factor": reuse,
        "smnist": dataclasses.asdict(config),
    }
    task = classification_task(config.name, COLS, NUM_CLASSES)
    return LoadedTask(task, arrays["train"], arrays["val"], info)


TINY = {"rows": TINY_SIZES, "permuted": {"permuted": True, **TINY_SIZES}}
"""Field overrides of a tiny instance (``TaskDef.tiny``)."""
TASK = TaskDef(
    name="smnist", config_type=SeqMnistConfig, dims=dims, load=load, check=check, descriptor=descriptor, tiny=TINY
)
