"""Random Anomaly Detection (the paper's RAD, Table II): sequences of MNIST digits with one anomaly.

``generate`` builds the sequences from MNIST digits (``mnist``: tfds, an IDX folder, or the embedded 5,000);
``task`` makes the engine's Objective and loads the splits. The config's fields are the ``--task=rad`` flags.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from sparse_rnn_jax.tasks.base import TINY_SIZES, TaskDef, descriptor_dict, lazy, task_field

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "sparse_rnn_jax", "rad")


@dataclasses.dataclass(frozen=True)
class RadTaskConfig:
    """The RAD data of a sweep."""

    mnist_source: str = task_field("auto", "MNIST digits: auto | tfds | embedded | idx:DIR.")
    train_size: int = task_field(30_000, "Training sequences.")
    val_size: int = task_field(1_000, "Validation sequences.")
    test_size: int = task_field(1_000, "Test sequences (generated and cached, not used in training).")
    images_per_sequence: int = task_field(10, "Images per sequence (= classes).")
    image_size: int = task_field(50, "Images are resized to image_size x image_size inputs.")
    data_seed: int = task_field(0, "Seed of the generated RAD sequences.")
    cache_dir: str = task_field(DEFAULT_CACHE_DIR, "Cache of generated RAD splits ('' disables).", defining=False)

    def __post_init__(self) -> None:
        src = self.mnist_source
        if not (src in ("auto", "tfds", "embedded") or src.startswith("idx:")):
            raise ValueError(f"mnist_source must be auto, tfds, embedded or idx:DIR, got {src!r}")
        for name, low in (
            ("train_size", 1),
            ("val_size", 1),
            ("test_size", 1),
            ("images_per_sequence", 3),
            ("image_size", 2),
            ("data_seed", 0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")


def dims(config: RadTaskConfig) -> tuple[int, int]:
    """(image_size², images_per_sequence)."""
    return config.image_size * config.image_size, config.images_per_sequence


def descriptor(config: RadTaskConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``): n images then one blank step (seq_len n + 1), the anomaly's
    position scored at the last step; chance_loss is analytic, ln n (``data`` is not needed)."""
    input_dim, output_dim = dims(config)
    n = config.images_per_sequence
    return descriptor_dict("rad", input_dim, output_dim, n + 1, "ce", math.log(n), config.train_size)


def check(config: RadTaskConfig) -> None:
    """An idx:DIR source must name a folder."""
    if config.mnist_source.startswith("idx:") and not Path(config.mnist_source[4:]).is_dir():
        raise ValueError(f"mnist_source: no folder {config.mnist_source[4:]!r}")


TASK = TaskDef(
    name="rad",
    config_type=RadTaskConfig,
    dims=dims,
    load=lazy("sparse_rnn_jax.tasks.rad.task", "load"),
    check=check,
    descriptor=descriptor,
    tiny={"": {"images_per_sequence": 3, "image_size": 6, "cache_dir": "", **TINY_SIZES}},
)
