"""The embedded Reber grammar (the related thesis' task): next-symbol sets or grammatical/ungrammatical strings.

``grammar`` generates the strings and arrays; ``task`` makes the engine's Objective. The config's fields are the
``--task=reber`` flags.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sparse_rnn_jax.tasks.base import TINY_SIZES, TaskDef, descriptor_dict, lazy, task_field
from sparse_rnn_jax.tasks.reber.grammar import CORRUPTIONS, DEFAULT_MAX_LEN, VARIANTS, ReberConfig


@dataclasses.dataclass(frozen=True)
class ReberTaskConfig:
    """The Reber data of a sweep."""

    variant: str = task_field(
        "next_symbol", f"One of {VARIANTS}: next_symbol (7 sigmoid outputs) or classification (2 classes)."
    )
    train_size: int = task_field(10_000, "Training strings.")
    val_size: int = task_field(1_000, "Validation strings.")
    test_size: int = task_field(1_000, "Test strings (generated, not used in training).")
    max_len: int = task_field(DEFAULT_MAX_LEN, "Longest string (longer ones are redrawn); the padded sequence length.")
    corruption: str = task_field("substitute", f"How ungrammatical strings are made (classification): {CORRUPTIONS}.")
    data_seed: int = task_field(0, "Seed of the generated strings (each split has its own stream).")

    def __post_init__(self) -> None:
        try:
            self.grammar_config()
        except ValueError as e:
            raise ValueError(str(e).replace("ReberConfig.seed", "data_seed").replace("ReberConfig.", "")) from None

    def grammar_config(self) -> ReberConfig:
        """The generator's ``ReberConfig`` of this task config."""
        return ReberConfig(
            variant=self.variant,
            train_size=self.train_size,
            val_size=self.val_size,
            test_size=self.test_size,
            max_len=self.max_len,
            corruption=self.corruption,
            seed=self.data_seed,
        )


def descriptor(config: ReberTaskConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``); seq_len is ``max_len`` (the padded length). Classification:
    chance ln 2. Next symbol: bce, chance of the best constant set prediction on the training strings, that of
    ``data`` (the loaded ``LoadedTask``) or of a fresh load when None."""
    input_dim, output_dim = config.grammar_config().dims
    if config.variant != "next_symbol":
        return descriptor_dict(
            "reber_classification", input_dim, output_dim, config.max_len, "ce", math.log(2), config.train_size
        )
    if data is None:
        data = TASK.load(config, lambda message: None)
    chance = data.objective.chance_loss
    return descriptor_dict("reber_next_symbol", input_dim, output_dim, config.max_len, "bce", chance, config.train_size)


TASK = TaskDef(
    name="reber",
    config_type=ReberTaskConfig,
    dims=lambda config: config.grammar_config().dims,
    load=lazy("sparse_rnn_jax.tasks.reber.task", "load"),
    descriptor=descriptor,
    tiny={v: {"variant": v, "max_len": 16, **TINY_SIZES} for v in ("next_symbol", "classification")},
)
